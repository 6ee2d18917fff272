import { CancelSignal } from '../runtime/cancel';
import { Logger } from '../log/logger';
import { NativeAddon } from '../native';
import { Reaper } from '../reaper/reaper';
import { CommandResult, describeResult, runCommand } from './command';

export interface HooksDeps {
  readonly addon: NativeAddon;
  readonly reaper: Reaper;
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
}

/** --post-start and --pre-stop commands: run bounded, logged, and known while they run. */
export class Hooks {
  /** hook commands running now: not leftovers of the child */
  readonly running = new Set<number>();

  constructor(private readonly d: HooksDeps) {}

  async run(argv: readonly string[], name: string, timeoutMs: number, abort?: CancelSignal): Promise<CommandResult> {
    const result = await runCommand({ ...this.d, onSpawn: (pid) => this.running.add(pid), abort }, argv, name, timeoutMs);
    if (result.pid) this.running.delete(result.pid);
    const level = succeeded(result) ? 'info' : 'warn';
    this.d.log.write(level, `${name} finished: ${describeResult(result)} in ${result.ms} ms`);
    return result;
  }
}

export function succeeded(r: CommandResult): boolean {
  return r.code === 0 && !r.timedOut;
}
