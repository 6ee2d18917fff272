/**
 * struct hainit_sigrecord (native/hainit.h): what the native signal handler writes to its pipe
 * for each signal. Defined here once; test/unit/layout.test.ts compiles the header and checks
 * every size, offset and flag against it.
 */
export const SIGNAL_RECORD = {
  size: 56,
  signo: 0,
  code: 4,
  pid: 8,
  uid: 12,
  sent: 16,
  target: 20,
  err: 24,
  flags: 28,
  monoNs: 32,
  comm: 40,
  commBytes: 16,
} as const;

/** HAINIT_REC_* */
export const RecordFlag = { forwarded: 1, self: 2, tty: 4 } as const;

/** One signal as the native handler saw it. */
export interface SignalEvent {
  readonly signal: number;
  /** siginfo si_code: <= 0 sent by a process, > 0 by the kernel (e.g. 0x80 SI_KERNEL: the terminal) */
  readonly code: number;
  readonly senderPid: number;
  readonly senderUid: number;
  /** the sender's name, read by the native handler as the signal arrived; '' when it was gone
   * already, or the signal came from the kernel or from outside the container */
  readonly senderComm: string;
  /** what the handler forwarded (after rewrite) and to whom; 0 when nothing */
  readonly sent: number;
  readonly target: number;
  readonly errno: number;
  readonly forwarded: boolean;
  readonly fromSelf: boolean;
  readonly fromOwnTty: boolean;
  readonly monoNs: bigint;
}

/** The signal number of the record at `off`, read alone: SIGCHLD's records need nothing more. */
export function recordSignal(buf: Buffer, off: number): number {
  return buf.readInt32LE(off + SIGNAL_RECORD.signo);
}

export function decodeSignalRecord(buf: Buffer, off: number): SignalEvent {
  const R = SIGNAL_RECORD;
  const flags = buf.readInt32LE(off + R.flags);
  const comm = buf.subarray(off + R.comm, off + R.comm + R.commBytes);
  const commEnd = comm.indexOf(0);
  return {
    signal: buf.readInt32LE(off + R.signo),
    code: buf.readInt32LE(off + R.code),
    senderPid: buf.readInt32LE(off + R.pid),
    senderUid: buf.readInt32LE(off + R.uid),
    senderComm: comm.toString('latin1', 0, commEnd < 0 ? comm.length : commEnd),
    sent: buf.readInt32LE(off + R.sent),
    target: buf.readInt32LE(off + R.target),
    errno: buf.readInt32LE(off + R.err),
    forwarded: (flags & RecordFlag.forwarded) !== 0,
    fromSelf: (flags & RecordFlag.self) !== 0,
    fromOwnTty: (flags & RecordFlag.tty) !== 0,
    monoNs: buf.readBigInt64LE(off + R.monoNs),
  };
}
