import type { ReapedStatus } from '../native';

/**
 * struct hainit_reaped (native/hainit.h): what the native reap loop writes for each process it
 * reaps. Defined here once; test/unit/layout.test.ts compiles the header and checks every size
 * and offset against it.
 */
export const REAPED_RECORD = {
  size: 40,
  pid: 0,
  code: 4,
  signo: 8,
  flags: 12,
  livedMs: 16,
  comm: 24,
  commBytes: 16,
} as const;

/** HAINIT_REAPED_CORE */
export const REAPED_CORE = 1;
/** HAINIT_REAPED_NAMED: its name was looked for (found or not), within the naming budget */
export const REAPED_NAMED = 2;

/** The pid of record `i`, read alone. */
export function recordPid(buf: Buffer, i: number): number {
  return buf.readInt32LE(i * REAPED_RECORD.size + REAPED_RECORD.pid);
}

/** Whether record `i` was named, read alone: a storm's unnamed orphans need only this and the pid. */
export function reapedNamed(buf: Buffer, i: number): boolean {
  return (buf.readInt32LE(i * REAPED_RECORD.size + REAPED_RECORD.flags) & REAPED_NAMED) !== 0;
}

/** Record `i` of `buf`. */
export function decodeReaped(buf: Buffer, i: number): ReapedStatus {
  const at = i * REAPED_RECORD.size;
  const signo = buf.readInt32LE(at + REAPED_RECORD.signo);
  const lived = Number(buf.readBigInt64LE(at + REAPED_RECORD.livedMs));
  const comm = buf.subarray(at + REAPED_RECORD.comm, at + REAPED_RECORD.comm + REAPED_RECORD.commBytes);
  const commEnd = comm.indexOf(0);
  return {
    pid: buf.readInt32LE(at + REAPED_RECORD.pid),
    code: signo ? null : buf.readInt32LE(at + REAPED_RECORD.code),
    signal: signo || null,
    core: (buf.readInt32LE(at + REAPED_RECORD.flags) & REAPED_CORE) !== 0,
    comm: comm.toString('latin1', 0, commEnd < 0 ? comm.length : commEnd),
    livedMs: lived < 0 ? undefined : lived,
  };
}

/** Writes `status` as record `i` of `buf`, as the native loop would: for fakes of the addon in
 * tests. Named unless said otherwise when it has a name or a lifetime. */
export function encodeReaped(buf: Buffer, i: number, status: ReapedStatus, named = status.comm !== '' || status.livedMs !== undefined): void {
  const at = i * REAPED_RECORD.size;
  buf.fill(0, at, at + REAPED_RECORD.size);
  buf.writeInt32LE(status.pid, at + REAPED_RECORD.pid);
  buf.writeInt32LE(status.signal ? -1 : (status.code ?? 0), at + REAPED_RECORD.code);
  buf.writeInt32LE(status.signal ?? 0, at + REAPED_RECORD.signo);
  buf.writeInt32LE((status.core ? REAPED_CORE : 0) | (named ? REAPED_NAMED : 0), at + REAPED_RECORD.flags);
  buf.writeBigInt64LE(BigInt(status.livedMs ?? -1), at + REAPED_RECORD.livedMs);
  buf.write(status.comm, at + REAPED_RECORD.comm, REAPED_RECORD.commBytes, 'latin1');
}
