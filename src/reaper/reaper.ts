import { EventEmitter } from 'node:events';
import { NativeAddon, ReapedStatus } from '../native';
import { REAPED_RECORD, decodeReaped } from './record';

export interface ReaperEvents {
  orphan: [ReapedStatus];
}

/** Records per native call: a storm of zombies is reaped in passes of this many. */
const BATCH = 256;

/**
 * Collects every exit status in the process, driven by SIGCHLD. hainit starts all its processes
 * through the native spawn (never libuv's), so waitpid(-1) cannot steal a status libuv waits
 * for; statuses of processes hainit started go to their watchers, the rest are orphans.
 *
 * What forensics wants of an orphan (its name, for the summary at exit; how long it lived, for
 * the line logged per orphan) is read in the native loop while it is still a zombie, one /proc
 * file each.
 */
export class Reaper extends EventEmitter<ReaperEvents> {
  private readonly watchers = new Map<number, (status: ReapedStatus) => void>();
  orphansReaped = 0;
  private readonly byCommand = new Map<string, number>();
  private readonly records = Buffer.alloc(BATCH * REAPED_RECORD.size);

  constructor(private readonly addon: NativeAddon, private readonly wantDetails = true) {
    super();
  }

  /** Called with the status of `pid` when it exits; watch right after spawning it. */
  watch(pid: number, onExit: (status: ReapedStatus) => void): void {
    this.watchers.set(pid, onExit);
  }

  reapNow(): void {
    for (;;) {
      const n = this.addon.reap(this.wantDetails, this.records);
      for (let i = 0; i < n; i++) this.dispatch(decodeReaped(this.records, i));
      if (n < BATCH) return;
    }
  }

  private dispatch(status: ReapedStatus): void {
    const watcher = this.watchers.get(status.pid);
    if (watcher) {
      this.watchers.delete(status.pid);
      watcher(status);
    } else {
      this.orphansReaped++;
      if (status.comm) this.byCommand.set(status.comm, (this.byCommand.get(status.comm) ?? 0) + 1);
      this.emit('orphan', status);
    }
  }

  /** `sh ×7, chrome ×30`, most frequent first: a leak shows at a glance. */
  summary(): string {
    return [...this.byCommand.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ×${n}`)
      .join(', ');
  }
}
