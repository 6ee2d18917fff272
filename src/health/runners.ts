import { CancelController, CancelSignal } from '../cancel';
import { checkOnce } from '../net/check';
import { Clock } from '../shutdown/clock';
import { CommandDeps, describeResult, runCommand } from '../supervisor/command';
import { Check, CheckKind, CheckState, Thresholds } from './checks';

export interface ProbeOutcome {
  readonly ok: boolean;
  readonly reason?: string;
}

/** One run of an application check; it must settle soon after `abort` fires. */
export type ProbeFn = (abort: CancelSignal) => Promise<ProbeOutcome>;

export interface CheckTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
}

/**
 * Pause after the first readiness run while hainit waits for the application to come up; it grows
 * by half each run up to the interval, so readiness is seen a fraction of a second after it is
 * true without hammering an application that takes a minute to start.
 */
export const FAST_START_MS = 250;
const FAST_START_GROWTH = 1.5;

export interface PeriodicCheckHooks {
  /** true while readiness has never passed: run fast */
  starting(): boolean;
  /** every finished run (for debug logs) */
  ran(check: PeriodicCheck, outcome: ProbeOutcome, ms: number): void;
  /** the state flipped */
  changed(check: PeriodicCheck): void;
}

/**
 * An application check run in the background with kubelet semantics: one run at a time, each
 * bounded by the timeout, `interval` apart (start to start), flipping only after the thresholds.
 * Requests read `state()`, the cached result, and never wait for a run.
 */
export class PeriodicCheck implements Check {
  readonly origin = 'application';
  private thresholds: Thresholds;
  private current: CheckState;
  private lastFailure: string | undefined;
  private stopper: CancelController | undefined;

  /** `initiallyOk`: the kubelet starts readiness as failed and liveness as passing. */
  constructor(
    readonly name: string,
    readonly kinds: readonly CheckKind[],
    private readonly probe: ProbeFn,
    private readonly timing: CheckTiming,
    private readonly initiallyOk: boolean,
    private readonly clock: Clock,
    private readonly hooks: PeriodicCheckHooks,
  ) {
    this.thresholds = new Thresholds(initiallyOk, timing.failureThreshold, timing.successThreshold);
    this.current = { ok: initiallyOk, reason: initiallyOk ? undefined : 'not run yet', lastDurationMs: undefined, observedAt: clock.now() };
  }

  state(): CheckState {
    return this.current;
  }

  get running(): boolean {
    return this.stopper !== undefined;
  }

  /** Runs at once, then on schedule until stop(). */
  start(): void {
    if (this.stopper) return;
    this.stopper = new CancelController();
    void this.loop(this.stopper.signal);
  }

  /** Stops and forgets every result: the state a new child starts from. */
  reset(): void {
    this.stop();
    this.thresholds = new Thresholds(this.initiallyOk, this.timing.failureThreshold, this.timing.successThreshold);
    this.lastFailure = undefined;
    this.current = { ok: this.initiallyOk, reason: this.initiallyOk ? undefined : 'not run yet', lastDurationMs: undefined, observedAt: this.clock.now() };
  }

  /** Stops the schedule and cuts a run in progress short; the cached state stays. */
  stop(): void {
    this.stopper?.abort();
    this.stopper = undefined;
  }

  private async loop(stop: CancelSignal): Promise<void> {
    let fastPause = FAST_START_MS;
    while (!stop.aborted) {
      const started = this.clock.now();
      await this.runOnce(stop);
      if (stop.aborted) return;
      let period = this.timing.intervalMs;
      if (this.hooks.starting()) {
        period = Math.min(period, Math.round(fastPause));
        fastPause *= FAST_START_GROWTH;
      }
      await this.pause(Math.max(0, started + period - this.clock.now()), stop);
    }
  }

  /** A sleep cut short by stop(), through a signal of its own so no listener outlives it. */
  private async pause(ms: number, stop: CancelSignal): Promise<void> {
    const wake = new CancelController();
    const onStop = () => wake.abort();
    stop.addEventListener('abort', onStop, { once: true });
    await this.clock.sleep(ms, wake.signal);
    stop.removeEventListener('abort', onStop);
  }

  private async runOnce(stop: CancelSignal): Promise<void> {
    const started = this.clock.now();
    const abort = new CancelController();
    const cancel = () => abort.abort();
    stop.addEventListener('abort', cancel, { once: true });
    const timer = new CancelController();
    const { timeoutMs } = this.timing;
    const run = this.safeProbe(abort.signal);
    const timedOut = this.clock.sleep(timeoutMs, timer.signal).then(() => undefined);
    const outcome = await Promise.race([run, timedOut]);
    timer.abort();
    if (outcome === undefined) {
      abort.abort();
      if (!stop.aborted) this.record({ ok: false, reason: `timed out after ${timeoutMs} ms` }, timeoutMs);
      // The next run waits for this one to end: a hung target never piles up connections or processes.
      await run;
    } else if (!stop.aborted) {
      this.record(outcome, this.clock.now() - started);
    }
    stop.removeEventListener('abort', cancel);
  }

  private async safeProbe(abort: CancelSignal): Promise<ProbeOutcome> {
    try {
      return await this.probe(abort);
    } catch (e) {
      return { ok: false, reason: (e as Error)?.message ?? String(e) };
    }
  }

  /** Exposed for the tests of the threshold rule; the schedule calls it after each run. */
  record(outcome: ProbeOutcome, ms: number): void {
    const flipped = this.thresholds.record(outcome.ok);
    if (!outcome.ok) this.lastFailure = outcome.reason ?? 'failed';
    const ok = this.thresholds.ok;
    this.current = { ok, reason: ok ? undefined : this.lastFailure, lastDurationMs: ms, observedAt: this.clock.now() };
    this.hooks.ran(this, outcome, ms);
    if (flipped) this.hooks.changed(this);
  }
}

/** HTTP GET as the kubelet does it (net/check.ts). */
export function httpProbe(url: string): ProbeFn {
  const u = new URL(url);
  return (abort) => checkOnce(u, abort);
}

/** The port accepts a connection (kubelet tcpSocket). */
export function tcpProbe(host: string, port: number): ProbeFn {
  const u = new URL(`tcp://${host.includes(':') ? `[${host}]` : host}:${port}`);
  return (abort) => checkOnce(u, abort);
}

/**
 * Exit 0 is success. Runs through hainit's native spawn (runCommand), never child_process: the
 * reaper's waitpid(-1) would take libuv's exit statuses. Output is discarded, as the kubelet keeps
 * it only for events.
 */
export function execProbe(deps: CommandDeps, argv: readonly string[], name: string, timeoutMs: number): ProbeFn {
  return async (abort) => {
    const r = await runCommand({ ...deps, abort }, argv, name, timeoutMs, true);
    return r.code === 0 && !r.timedOut ? { ok: true } : { ok: false, reason: describeResult(r) };
  };
}
