import { EventEmitter } from 'node:events';
import { NativeAddon, SignalMode } from '../native';
import { SIGNAL_RECORD, SignalEvent, decodeSignalRecord, recordSignal } from './record';

export type { SignalEvent };

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
   * after the last poll, e.g. a signal forwarded just before the child's SIGCHLD. With settleMs
   * (at exit) it first waits up to that long for a handler still running: the signal it forwarded
   * may have ended the child, and the child's exit overtaken its record. */
  drain(settleMs = 0): void {
    const rest = this.addon.signalsRead(settleMs);
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
    for (; off + SIGNAL_RECORD.size <= buf.length; off += SIGNAL_RECORD.size) {
      this.consumed++;
      if (recordSignal(buf, off) === SIGCHLD) sawChild = true;
      else this.emit('signal', decodeSignalRecord(buf, off));
    }
    this.pending = Buffer.from(buf.subarray(off));
    // SIGCHLD coalesces anyway: one reap pass per batch of records is enough.
    if (sawChild) this.emit('childExited');
  }
}

/** "pid 0 (outside the container)", "pid 42 (kill)", "the kernel", "the terminal". The name is
 * the one the native handler read as the signal arrived; "gone" when even then it had exited. */
export function describeSender(e: SignalEvent): string {
  if (e.code > 0) return e.code === 0x80 ? 'the kernel or terminal' : 'the kernel';
  if (e.senderPid === 0) return 'pid 0 (outside the container)';
  return `pid ${e.senderPid} (${e.senderComm || 'gone'})`;
}
