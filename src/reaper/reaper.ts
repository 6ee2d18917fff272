import { EventEmitter } from 'node:events';
import { NativeAddon, ReapedStatus } from '../native';
import { realClock } from '../runtime/clock';
import { REAPED_RECORD, decodeReaped, reapedNamed, recordPid } from './record';

export interface ReaperEvents {
  /** an orphan reaped; `comm` is '' when it was not named (past the budget) */
  orphan: [ReapedStatus];
}

/** Records per native call: a storm of zombies is reaped in passes of this many. */
const BATCH = 256;

/**
 * Orphans named per second by default, in bursts of up to as many: the first 64 of a storm get
 * their name read, the rest are reaped at tini's cost and counted. Naming reads the zombie's
 * /proc entry, about three times what the reap itself costs (README "Choices").
 */
export const NAMES_PER_SECOND = 64;

export interface ReaperOptions {
  /** orphans named per second, in bursts of up to as many; Infinity names every one (-v, -w) */
  readonly namesPerSecond?: number;
  /** monotonic milliseconds */
  readonly now?: () => number;
}

/**
 * Collects every exit status in the process, driven by SIGCHLD. hainit starts all its processes
 * through the native spawn (never libuv's), so waitpid(-1) cannot steal a status libuv waits
 * for; statuses of processes hainit started go to their watchers, the rest are orphans.
 *
 * What forensics wants of an orphan (its name, for the summary at exit; how long it lived, for
 * the line logged per orphan) is read in the native loop while it is still a zombie, one /proc
 * file each, within a budget of names per second (a token bucket): in a storm the rest are
 * reaped without, and counted as not named.
 */
export class Reaper extends EventEmitter<ReaperEvents> {
  private readonly watchers = new Map<number, (status: ReapedStatus) => void>();
  orphansReaped = 0;
  /** orphans reaped past the naming budget, whose name was not read */
  orphansUnnamed = 0;
  private readonly byCommand = new Map<string, number>();
  private readonly records = Buffer.alloc(BATCH * REAPED_RECORD.size);
  private readonly rate: number;
  private readonly now: () => number;
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly addon: NativeAddon, options: ReaperOptions = {}) {
    super();
    this.rate = options.namesPerSecond ?? NAMES_PER_SECOND;
    this.now = options.now ?? realClock.now;
    this.tokens = this.rate;
    this.refilledAt = this.now();
  }

  /** Called with the status of `pid` when it exits; watch right after spawning it. */
  watch(pid: number, onExit: (status: ReapedStatus) => void): void {
    this.watchers.set(pid, onExit);
  }

  reapNow(): void {
    for (;;) {
      const named = this.namesAllowed();
      const n = this.addon.reap(named, this.records);
      if (named > 0) this.tokens -= Math.min(n, named);
      for (let i = 0; i < n; i++) this.dispatch(i);
      if (n < BATCH) return;
    }
  }

  /** Names this pass may read: what the bucket holds, refilled at `rate` a second. */
  private namesAllowed(): number {
    if (this.rate === Infinity) return BATCH;
    const now = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) * this.rate) / 1000);
    this.refilledAt = now;
    return Math.min(BATCH, Math.floor(this.tokens));
  }

  /** An unnamed orphan nobody logs costs a pid read and two counts: no object per zombie. */
  private dispatch(i: number): void {
    const watcher = this.watchers.get(recordPid(this.records, i));
    if (watcher) {
      const status = decodeReaped(this.records, i);
      this.watchers.delete(status.pid);
      watcher(status);
      return;
    }
    this.orphansReaped++;
    const named = reapedNamed(this.records, i);
    if (!named) this.orphansUnnamed++;
    if (!named && this.listenerCount('orphan') === 0) return;
    const status = decodeReaped(this.records, i);
    if (status.comm) this.byCommand.set(status.comm, (this.byCommand.get(status.comm) ?? 0) + 1);
    this.emit('orphan', status);
  }

  /** `sh ×7, chrome ×30`, most frequent first: a leak shows at a glance. In a storm, then
   * `and 1936 more not named: reaped in a storm`; '' when no name is known. */
  summary(): string {
    const names = [...this.byCommand.entries()].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ×${n}`);
    if (this.orphansUnnamed > 0) names.push(`${names.length ? 'and ' : ''}${this.orphansUnnamed} ${names.length ? 'more ' : ''}not named: reaped in a storm`);
    return names.join(', ');
  }
}
