import type { RestartMode } from '../config/config';
import { Logger } from '../log/logger';

/** The longest pause between restarts (README "Memory watchdog and restarts": the delay doubles up to 30 s). */
export const MAX_RESTART_DELAY_MS = 30_000;

export interface RestartSettings {
  readonly mode: RestartMode;
  readonly maxRestarts: number;
  /** the first delay; it doubles with each restart in a row */
  readonly delayMs: number;
  /** a run at least this long is stable: the delay and the count start over */
  readonly windowMs: number;
}

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number; /** 1 for the first restart in a row */ readonly attempt: number }
  | { readonly restart: false; readonly reason: string };

/**
 * When to restart the child in place, and after how long. Restarts are counted in a row: a run
 * that lasted `windowMs` (the child was healthy for a while) starts the count and the delay over,
 * as Kubernetes resets its CrashLoopBackOff and supervisord its startretries. A child that keeps
 * dying soon after starting spends the budget, and hainit then exits with its code: a container
 * that idles with a dead application (the pm2 and supervisord trap) is never restarted by the
 * orchestrator.
 */
export class RestartPolicy {
  /** restarts since the last stable run */
  private inARow = 0;

  constructor(private readonly s: RestartSettings) {}

  get enabled(): boolean {
    return this.s.mode !== 'never';
  }

  /**
   * The child ended after `ranMs`; `failed` when its (remapped) exit code is not 0 or a signal
   * killed it, and always for a stop hainit itself initiated (memory). Counts the restart it allows.
   */
  decide(failed: boolean, ranMs: number): RestartDecision {
    const { mode, maxRestarts, delayMs, windowMs } = this.s;
    if (mode === 'never') return { restart: false, reason: '--restart never' };
    if (mode === 'on-failure' && !failed) return { restart: false, reason: '--restart on-failure' };
    if (ranMs >= windowMs) this.inARow = 0;
    if (this.inARow >= maxRestarts) {
      return { restart: false, reason: `restart budget spent: ${maxRestarts} restart(s) without a run of ${windowMs} ms (--max-restarts)` };
    }
    const delay = Math.min(delayMs * 2 ** this.inARow, Math.max(MAX_RESTART_DELAY_MS, delayMs));
    this.inARow++;
    return { restart: true, delayMs: delay, attempt: this.inARow };
  }
}

/**
 * The restart side of the lifecycle: the policy's decisions, a restart the memory watchdog asked
 * for (decided when it asked, carried out when the child has stopped), and the count.
 */
export class RestartController {
  /** restarts in place so far */
  count = 0;
  private pending: RestartDecision | undefined;
  private readonly policy: RestartPolicy;

  constructor(private readonly s: RestartSettings, private readonly log: Logger) {
    this.policy = new RestartPolicy(s);
  }

  get enabled(): boolean {
    return this.policy.enabled;
  }

  /** The memory watchdog wants the child gone: a restart if the policy allows one (then kept for the exit). */
  forMemory(ranMs: number): RestartDecision {
    const decision = this.policy.decide(true, ranMs);
    if (decision.restart) this.pending = decision;
    return decision;
  }

  /** A shutdown took over a restart stop: no restart after all. */
  cancel(): void {
    this.pending = undefined;
  }

  /** The child exited with (remapped) `code` after `ranMs`: restart it? `stopping`: hainit is shutting down. */
  afterExit(code: number, how: string, ranMs: number, stopping: boolean): RestartDecision {
    const pending = this.pending;
    this.pending = undefined;
    if (stopping) return { restart: false, reason: 'shutting down' };
    const decision = pending ?? this.policy.decide(code !== 0, ranMs);
    if (decision.restart) {
      this.count++;
      this.log.write(code === 0 && !pending ? 'info' : 'warn',
        `child ${how} after ${ranMs} ms: restart ${decision.attempt} of ${this.s.maxRestarts} in ${decision.delayMs} ms`);
    } else if (this.policy.enabled) {
      this.log.write(code === 0 ? 'info' : 'warn', `child ${how} after ${ranMs} ms: not restarted (${decision.reason}): exiting with code ${code}`);
    }
    return decision;
  }
}
