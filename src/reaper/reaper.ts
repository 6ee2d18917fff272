import { EventEmitter } from 'node:events';
import { NativeAddon, ReapedStatus } from '../native';
import { systemConstants, uptimeSeconds } from '../proc/system';

export interface ReaperEvents {
  orphan: [ReapedStatus];
}

/**
 * Collects every exit status in the process, driven by SIGCHLD. hainit starts all its processes
 * through the native spawn (never libuv's), so waitpid(-1) cannot steal a status libuv waits
 * for; statuses of processes hainit started go to their watchers, the rest are orphans.
 */
export class Reaper extends EventEmitter<ReaperEvents> {
  private readonly watchers = new Map<number, (status: ReapedStatus) => void>();
  orphansReaped = 0;
  private readonly byCommand = new Map<string, number>();

  constructor(private readonly addon: NativeAddon, private readonly wantDetails = true) {
    super();
  }

  /** Called with the status of `pid` when it exits; watch right after spawning it. */
  watch(pid: number, onExit: (status: ReapedStatus) => void): void {
    this.watchers.set(pid, onExit);
  }

  reapNow(): void {
    for (const status of this.addon.reap(this.wantDetails)) {
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
  }

  /** How long a reaped process lived, from its start time (clock ticks since boot). */
  static lifetimeMs(startTicks: number): number | undefined {
    if (startTicks < 0) return undefined;
    const uptime = uptimeSeconds();
    if (Number.isNaN(uptime)) return undefined;
    return Math.max(0, Math.round((uptime - startTicks / systemConstants().clockTicks) * 1000));
  }

  /** `sh ×7, chrome ×30`, most frequent first: a leak shows at a glance. */
  summary(): string {
    return [...this.byCommand.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ×${n}`)
      .join(', ');
  }
}
