import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { NativeAddon, SignalMode } from '../native';

/** One signal as the native handler saw it (see native/hainit.h, struct hainit_sigrecord). */
export interface SignalEvent {
  readonly signal: number;
  /** siginfo si_code: <= 0 sent by a process, > 0 by the kernel (e.g. 0x80 SI_KERNEL: the terminal) */
  readonly code: number;
  readonly senderPid: number;
  readonly senderUid: number;
  /** what the handler forwarded (after rewrite) and to whom; 0 when nothing */
  readonly sent: number;
  readonly target: number;
  readonly errno: number;
  readonly forwarded: boolean;
  readonly fromSelf: boolean;
  readonly fromOwnTty: boolean;
  readonly monoNs: bigint;
}

const RECORD = 40;
const SIGCHLD = 17;

export interface SignalRouterEvents {
  signal: [SignalEvent];
  childExited: [];
}

/**
 * Owns hainit's signal dispositions. Forwarding itself happens inside the native handler
 * (kill() from the handler: latency independent of the event loop); this class configures
 * where signals go and turns the handler's records into events for logs, metrics and shutdown.
 */
export class SignalRouter extends EventEmitter<SignalRouterEvents> {
  private pending = Buffer.alloc(0);
  private rewrites = new Map<number, number>();

  constructor(private readonly addon: NativeAddon) {
    super();
  }

  /** records handled so far (see catchUp) */
  private consumed = 0;

  install(rewrites: ReadonlyMap<number, number>): void {
    const rc = this.addon.signalsInstall((records) => this.onData(records));
    if (rc < 0) throw new Error(`installing signal handlers failed: errno ${-rc}`);
    this.rewrites = new Map(rewrites);
    for (const [from, to] of rewrites) this.addon.signalsRewrite(from, to);
    // SIGCHLD is ours: it drives the reaper and is never forwarded.
    this.addon.signalsMode(SIGCHLD, SignalMode.notify);
  }

  /** >0: the child; <0: its process group; 0: hold signals back (queued by the caller). */
  setTarget(target: number): void {
    this.addon.signalsTarget(target);
  }

  /** notify: the handler only reports the signal; the lifecycle decides (shutdown signals). */
  setMode(signal: number, mode: keyof typeof SignalMode): void {
    this.addon.signalsMode(signal, SignalMode[mode]);
  }

  /** The signal forwarded for a received one; 0 when --rewrite drops it. */
  rewriteOf(signal: number): number {
    return this.rewrites.get(signal) ?? signal;
  }

  /** Handles the records still in the pipe: handlers run on other threads and may have written
   * after the last poll, e.g. a signal forwarded just before the child's SIGCHLD. */
  drain(): void {
    const rest = this.addon.signalsRead();
    if (rest.length) this.onData(rest);
  }

  /** Handles every record already written: a caller about to answer from the lifecycle's state
   * (a probe after `kill -TERM`) sees a signal the moment its handler ran, not on the next poll.
   * One call into the addon, no system call, when nothing is pending. */
  catchUp(): void {
    if (this.addon.signalsWritten() > this.consumed) this.drain();
  }

  dropped(): number {
    return this.addon.signalsDropped();
  }

  private onData(chunk: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    let sawChild = false;
    for (; off + RECORD <= buf.length; off += RECORD) {
      this.consumed++;
      const signal = buf.readInt32LE(off);
      if (signal === SIGCHLD) {
        sawChild = true;
        continue;
      }
      const flags = buf.readInt32LE(off + 28);
      this.emit('signal', {
        signal,
        code: buf.readInt32LE(off + 4),
        senderPid: buf.readInt32LE(off + 8),
        senderUid: buf.readInt32LE(off + 12),
        sent: buf.readInt32LE(off + 16),
        target: buf.readInt32LE(off + 20),
        errno: buf.readInt32LE(off + 24),
        forwarded: (flags & 1) !== 0,
        fromSelf: (flags & 2) !== 0,
        fromOwnTty: (flags & 4) !== 0,
        monoNs: buf.readBigInt64LE(off + 32),
      });
    }
    this.pending = Buffer.from(buf.subarray(off));
    // SIGCHLD coalesces anyway: one reap pass per batch of records is enough.
    if (sawChild) this.emit('childExited');
  }
}

/** "pid 0 (outside the container)", "pid 42 (kill)", "the kernel", "the terminal". */
export function describeSender(e: SignalEvent): string {
  if (e.code > 0) return e.code === 0x80 ? 'the kernel or terminal' : 'the kernel';
  if (e.senderPid === 0) return 'pid 0 (outside the container)';
  let comm = '';
  try {
    comm = readFileSync(`/proc/${e.senderPid}/comm`, 'utf8').trim();
  } catch {
    comm = 'gone';
  }
  return `pid ${e.senderPid} (${comm})`;
}
