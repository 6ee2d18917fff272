import { Logger } from '../log/logger';
import { NativeAddon, ReapedStatus } from '../native';
import { Reaper } from '../reaper/reaper';
import { SignalRouter } from '../signals/router';
import { signalName } from '../signals/names';
import { spawnProcess } from './spawn';

export interface ChildRunnerDeps {
  readonly addon: NativeAddon;
  readonly reaper: Reaper;
  readonly router: SignalRouter;
  readonly log: Logger;
  readonly now: () => number;
  readonly env: NodeJS.ProcessEnv;
  /** as bytes when known: the child gets exactly what hainit was given */
  readonly command: readonly (string | Buffer)[];
  /** -g: signals go to the child's process group */
  readonly signalGroup: boolean;
  /** told of each exit, after `status` is set and before `exited` resolves */
  readonly onExit: (status: ReapedStatus) => void;
}

/**
 * The one application process: starts it (again, for a restart), knows whether it runs, and
 * where a signal for it goes. Its exit comes from the Reaper, which owns every wait.
 */
export class ChildRunner {
  pid: number | undefined;
  /** set once the current child has exited */
  status: ReapedStatus | undefined;
  startedAt = 0;
  /** bumped at each start: late results of hooks for an earlier child are ignored */
  generation = 0;
  private resolveExited!: () => void;
  /** resolves when the current child has exited */
  exited = new Promise<void>((r) => (this.resolveExited = r));

  constructor(private readonly d: ChildRunnerDeps) {}

  /** A child was started and has not exited. */
  get running(): boolean {
    return this.pid !== undefined && this.status === undefined;
  }

  /** The forwarding target: the child, or its process group with -g; 0 when there is none. */
  get target(): number {
    if (!this.running) return 0;
    return this.d.signalGroup ? -(this.pid as number) : (this.pid as number);
  }

  /** Starts the command; undefined when it runs, else the exit code (126/127) with the reason logged. */
  start(opts: { keepFds: readonly number[]; foreground: boolean; restart: number }): number | undefined {
    const { addon, router, reaper, log, command } = this.d;
    const result = spawnProcess(addon, command, this.d.env, { keepFds: opts.keepFds, foreground: opts.foreground, newProcessGroup: true });
    if (!result.ok) {
      log.error(result.message);
      return result.exitCode;
    }
    this.pid = result.pid;
    this.status = undefined;
    this.exited = new Promise<void>((r) => (this.resolveExited = r));
    this.startedAt = this.d.now();
    this.generation++;
    router.setTarget(this.target);
    reaper.watch(result.pid, (status) => this.onExit(status));
    const shown = command.map(String).join(' ');
    if (opts.restart) log.info(`child restarted (restart ${opts.restart})`, { pid: result.pid, command: shown });
    else log.debug('child started', { pid: result.pid, command: shown });
    return undefined;
  }

  /** kill(2) to the target; 0 or -errno (-ESRCH when there is no child). */
  signal(sig: number): number {
    const target = this.target;
    return target === 0 ? -3 : this.d.addon.kill(target, sig);
  }

  private onExit(status: ReapedStatus): void {
    this.status = status;
    this.d.router.setTarget(0);
    this.d.onExit(status);
    this.resolveExited();
  }
}

export function describeExit(status: { code: number | null; signal: number | null }): string {
  return status.signal !== null ? `was killed by ${signalName(status.signal)}` : `exited with code ${status.code}`;
}
