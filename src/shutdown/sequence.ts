import { CancelController, CancelSignal } from '../runtime/cancel';
import { Logger } from '../log/logger';
import { step, stepAsync } from '../log/internal-error';
import { signalName } from '../signals/names';
import { Clock } from '../runtime/clock';

export const SIGTERM = 15;
export const SIGKILL = 9;

export interface ShutdownTimings {
  readonly gracePeriodMs: number;
  readonly shutdownDelayMs: number;
  /** the drain commands, as written (they run through the ShutdownActions) */
  readonly preStop: readonly { readonly text: string }[];
  readonly preStopTimeoutMs: number;
  readonly orphanGraceMs: number;
}

/** What the sequence does to the world; the supervisor provides the real ones, tests fake them. */
export interface ShutdownActions {
  readonly childGone: () => boolean;
  /** resolves when the main child has exited */
  readonly childExited: Promise<void>;
  readonly enterPhase: (phase: 'draining' | 'stopping') => void;
  readonly sendStopSignal: (signal: number) => void;
  /** passes a further TERM/INT on to the child (after --rewrite), once the stop signal has gone */
  readonly forward: (signal: number) => void;
  readonly runPreStop: (index: number, command: string, timeoutMs: number, abort: CancelSignal) => Promise<void>;
  /** every process hainit still has under it, the main child included */
  readonly leftovers: () => number[];
  readonly signalAll: (pids: readonly number[], signal: number) => void;
}

/** How much before the grace period ends everything left gets SIGKILL ("about one second"). */
export function killMarginMs(gracePeriodMs: number): number {
  return Math.min(1000, Math.floor(gracePeriodMs / 4));
}

/** Warnings for timings that cannot fit in the grace period. */
export function timingWarnings(t: ShutdownTimings): string[] {
  const budget = t.shutdownDelayMs + t.preStop.length * t.preStopTimeoutMs;
  const usable = t.gracePeriodMs - killMarginMs(t.gracePeriodMs);
  if (budget < usable) return [];
  return [
    `--shutdown-delay (${t.shutdownDelayMs} ms) plus ${t.preStop.length} --pre-stop command(s) of up to ${t.preStopTimeoutMs} ms ` +
      `reach the --grace-period (${t.gracePeriodMs} ms): the application may get no time between its stop signal and SIGKILL`,
  ];
}

/**
 * The Kubernetes-style shutdown (README "The shutdown sequence"): readiness fails -> delay -> drain commands -> stop
 * signal -> SIGKILL about a second before the grace period ends. Every wait ends as soon as
 * there is nothing left to wait for. A second shutdown signal skips what remains of the delay
 * and the drain commands. Once the stop signal has gone, every further one is the child's, as
 * under tini: apps use a second signal to quit at once (Celery's cold shutdown, "Ctrl-C again to
 * force"), so hainit no longer acts on them itself; the grace period stays the bound.
 */
export class ShutdownSequence {
  readonly startedAt: number;
  readonly killAt: number;
  readonly exitBy: number;
  private readonly skip = new CancelController();
  /** the stop signal has gone to the child: further shutdown signals are forwarded */
  stopSent = false;
  /** shutdown signals that came after the skip, before the stop signal went: forwarded after it */
  private readonly afterStop: number[] = [];
  killedChild = false;

  constructor(
    private readonly t: ShutdownTimings,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly act: ShutdownActions,
  ) {
    this.startedAt = clock.now();
    this.exitBy = this.startedAt + t.gracePeriodMs;
    this.killAt = this.exitBy - killMarginMs(t.gracePeriodMs);
  }

  private elapsed(): number {
    return Math.round(this.clock.now() - this.startedAt);
  }

  /** A further shutdown signal, as received, that the native handler did not forward itself. */
  again(signal: number): void {
    if (this.stopSent) {
      this.act.forward(signal);
    } else if (!this.skip.signal.aborted) {
      this.log.info(`shutdown: second ${signalName(signal)}: skipping the remaining delay and drain commands`);
      this.skip.abort();
    } else {
      // the stop signal is about to go (the skip is a few promise turns from it)
      this.afterStop.push(signal);
    }
  }

  /**
   * Runs until the main child is gone (stopped, or killed at killAt). Each step that calls out
   * (the phase's listeners, a drain command, the stop signal, the SIGKILL) is a `step`: a bug in
   * one is logged and the sequence goes on, so the child still gets its stop signal and SIGKILL.
   */
  async run(stopSignal: number): Promise<void> {
    const { t, act, clock, log } = this;
    const cutShort = anyOf(this.skip.signal, act.childExited);
    step(log, 'the shutdown (draining)', () => act.enterPhase('draining'));
    if (t.shutdownDelayMs > 0 && !act.childGone() && !this.skip.signal.aborted) {
      await clock.sleep(Math.min(t.shutdownDelayMs, this.killAt - clock.now()), cutShort);
      log.info(`shutdown: delay over after ${this.elapsed()} ms${act.childGone() ? ' (the child exited)' : ''}`);
    }
    for (let i = 0; i < t.preStop.length; i++) {
      if (act.childGone() || this.skip.signal.aborted) break;
      const left = this.killAt - clock.now();
      if (left <= 0) break;
      await stepAsync(log, `pre-stop[${i + 1}]`, () => act.runPreStop(i + 1, t.preStop[i].text, Math.min(t.preStopTimeoutMs, left), this.skip.signal));
    }
    step(log, 'the shutdown (stopping)', () => act.enterPhase('stopping'));
    if (!act.childGone()) {
      log.info(`shutdown: sending ${signalName(stopSignal)} to the child after ${this.elapsed()} ms`);
      step(log, `the shutdown (${signalName(stopSignal)} to the child)`, () => act.sendStopSignal(stopSignal));
      this.stopSent = true;
      for (const s of this.afterStop.splice(0)) step(log, `the shutdown (${signalName(s)} forwarded)`, () => act.forward(s));
      await clock.sleep(this.killAt - clock.now(), anyOf(act.childExited));
    }
    if (!act.childGone()) {
      this.killedChild = true;
      // Without the list (a bug), the child at least: as a subreaper, hainit's exit would not end it.
      const pids = step(log, 'the shutdown (the processes to SIGKILL)', () => act.leftovers());
      log.warn(`shutdown: the child did not exit within the grace period: SIGKILL to ${pids ? `${pids.length} process(es)` : 'the child'} after ${this.elapsed()} ms`);
      step(log, 'the shutdown (SIGKILL)', () => (pids ? act.signalAll(pids, SIGKILL) : act.sendStopSignal(SIGKILL)));
      await clock.sleep(this.exitBy - clock.now(), anyOf(act.childExited));
    }
  }

  /** Step 6, within the grace period. */
  leftoverDeadline(): number {
    return this.killAt;
  }
}

/**
 * Step 6 (and the same when the child exits on its own): processes left behind get SIGTERM and
 * --orphan-grace to finish, then SIGKILL; returns once none remain or at `hardDeadline`.
 */
export async function cleanupLeftovers(
  act: Pick<ShutdownActions, 'leftovers' | 'signalAll'>,
  clock: Clock,
  log: Logger,
  orphanGraceMs: number,
  killDeadline: number,
  hardDeadline: number,
): Promise<void> {
  let pids = act.leftovers();
  if (pids.length === 0) return;
  const started = clock.now();
  const termMs = Math.round(Math.min(orphanGraceMs, killDeadline - started));
  if (termMs > 0) {
    log.info(`${pids.length} process(es) left after the child exited: SIGTERM, then SIGKILL after ${termMs} ms`, { pids: pids.slice(0, 20).join(',') });
    act.signalAll(pids, SIGTERM);
    pids = await waitUntilGone(act, clock, started + termMs);
    if (pids.length === 0) {
      log.info(`leftover processes exited after ${Math.round(clock.now() - started)} ms`);
      return;
    }
  }
  log.warn(`SIGKILL to ${pids.length} leftover process(es) that ignored SIGTERM`, { pids: pids.slice(0, 20).join(',') });
  act.signalAll(pids, SIGKILL);
  await waitUntilGone(act, clock, hardDeadline);
}

const POLL_MS = 10;

async function waitUntilGone(act: Pick<ShutdownActions, 'leftovers'>, clock: Clock, deadline: number): Promise<number[]> {
  for (;;) {
    const pids = act.leftovers();
    const left = deadline - clock.now();
    if (pids.length === 0 || left <= 0) return pids;
    await clock.sleep(Math.min(POLL_MS, left));
  }
}

/** An CancelSignal that fires when any of the inputs does. */
function anyOf(...inputs: (CancelSignal | Promise<unknown>)[]): CancelSignal {
  const c = new CancelController();
  for (const i of inputs) {
    if (i instanceof CancelSignal) {
      if (i.aborted) c.abort();
      else i.addEventListener('abort', () => c.abort(), { once: true });
    } else {
      void i.then(() => c.abort());
    }
  }
  return c.signal;
}
