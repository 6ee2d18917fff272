import type { Phase } from '../supervisor/supervisor';
import { formatBytes } from '../units';
import { MemoryStatus, describeLimit } from '../watch/memory';

/** Which probe a check belongs to: /livez, /readyz, /startupz (/healthz shows them all). */
export type CheckKind = 'live' | 'ready' | 'startup';

export interface CheckState {
  readonly ok: boolean;
  /** why it fails: for the log only, never for the wire (the endpoint is public) */
  readonly reason: string | undefined;
  /** how long the last run took; undefined for checks read from hainit's own state */
  readonly lastDurationMs: number | undefined;
  /** clock time of the observation the state comes from */
  readonly observedAt: number;
}

/**
 * A check is data, as in kube-apiserver's healthz: a name, the probes it belongs to and its
 * current state. `state()` never waits on anything: application checks answer from their cache,
 * built-in ones from the lifecycle, so a probe request costs the same whatever the application does.
 */
export interface Check {
  readonly name: string;
  readonly kinds: readonly CheckKind[];
  /** hainit's own knowledge, or a check of the application */
  readonly origin: 'hainit' | 'application';
  state(): CheckState;
}

/** What the health endpoint reads from the supervisor; the supervisor satisfies it as it is. */
export interface LifecycleView {
  readonly phase: Phase;
  readonly childPid: number | undefined;
  /** set once the child has exited */
  readonly childStatus: unknown;
  readonly signalsReceived: ReadonlyMap<number, number>;
  readonly signalsForwarded: ReadonlyMap<number, number>;
  /** child restarts in place (--restart); absent until restarts exist */
  readonly restarts?: number;
  /** the memory watchdog; absent without --max-memory */
  readonly memory?: MemoryStatus;
  on(event: 'phase', listener: (phase: Phase) => void): unknown;
  off(event: 'phase', listener: (phase: Phase) => void): unknown;
}

export interface Now {
  now(): number;
}

/**
 * `child`: the child is alive. Before it has been started (hainit still waiting for --wait-for
 * dependencies) it counts as alive, so a livenessProbe does not kill a pod that is merely
 * waiting; /readyz is held closed meanwhile by the `startup` gate. While hainit restarts it in
 * place (within the restart budget) it counts as alive too: the kubelet must not restart the
 * container on top of hainit's own restart; /readyz is held closed by the `restart` check.
 */
export function childCheck(lifecycle: LifecycleView, clock: Now): Check {
  return {
    name: 'child',
    origin: 'hainit',
    kinds: ['live', 'ready'],
    state() {
      const notYetStarted = lifecycle.childPid === undefined && lifecycle.phase === 'starting';
      const alive = lifecycle.childPid !== undefined && lifecycle.childStatus === undefined && lifecycle.phase !== 'exited';
      const ok = notYetStarted || alive || lifecycle.phase === 'restarting';
      return { ok, reason: ok ? undefined : `the child is not running (phase ${lifecycle.phase})`, lastDurationMs: undefined, observedAt: clock.now() };
    },
  };
}

/** Phases in which new traffic must go elsewhere (kube-apiserver's `shutdown` readyz check). */
const SHUTTING_DOWN: ReadonlySet<Phase> = new Set<Phase>(['draining', 'stopping', 'exited']);

/** `shutdown`: fails from the shutdown signal on. Readiness only: /livez stays 200 while draining,
 * or the kubelet would restart a container that is merely shutting down cleanly. */
export function shutdownCheck(lifecycle: LifecycleView, clock: Now): Check {
  return {
    name: 'shutdown',
    origin: 'hainit',
    kinds: ['ready'],
    state() {
      const ok = !SHUTTING_DOWN.has(lifecycle.phase);
      return { ok, reason: ok ? undefined : `shutting down (phase ${lifecycle.phase})`, lastDurationMs: undefined, observedAt: clock.now() };
    },
  };
}

/** `restart` (with --restart): fails while the child is being restarted in place. Readiness only,
 * like `shutdown`: the new child is not serving yet, but nothing is wrong with the container. */
export function restartCheck(lifecycle: LifecycleView, clock: Now): Check {
  return {
    name: 'restart',
    origin: 'hainit',
    kinds: ['ready'],
    state() {
      const ok = lifecycle.phase !== 'restarting';
      return { ok, reason: ok ? undefined : `the child is restarting (restart ${lifecycle.restarts ?? 0})`, lastDurationMs: undefined, observedAt: clock.now() };
    },
  };
}

/**
 * `memory` (with --max-memory): fails once the watchdog has acted on the current child, naming
 * the figure. Readiness, not liveness: hainit itself stops or restarts the child gracefully, and
 * a failing liveness probe would make the kubelet kill the container on top of that; in /readyz
 * it tells an operator why the pod went unready. A single sample over the limit does not fail it.
 */
export function memoryCheck(memory: MemoryStatus, clock: Now): Check {
  return {
    name: 'memory',
    origin: 'hainit',
    kinds: ['ready'],
    state() {
      const ok = !memory.tripped;
      const r = memory.last;
      const reason = ok || !r ? (ok ? undefined : 'over --max-memory')
        : `${formatBytes(r.usedBytes, 'log')} over --max-memory ${describeLimit(memory.limit, r)} for ${memory.overFor} samples`;
      return { ok, reason, lastDurationMs: undefined, observedAt: clock.now() };
    },
  };
}

/** `startup`: the gate. Passes for good once readiness has passed once; /startupz reads only this. */
export function startupCheck(gate: { readonly startupPassed: boolean }, clock: Now): Check {
  return {
    name: 'startup',
    origin: 'hainit',
    kinds: ['ready', 'startup'],
    state() {
      const ok = gate.startupPassed;
      return { ok, reason: ok ? undefined : 'readiness has not passed yet', lastDurationMs: undefined, observedAt: clock.now() };
    },
  };
}

/**
 * The kubelet's threshold rule (pkg/kubelet/prober/worker.go): a check flips only after
 * `failureThreshold` consecutive failures or `successThreshold` consecutive successes; a run
 * that agrees with the current state resets nothing but is counted like any other.
 */
export class Thresholds {
  private last: boolean | undefined;
  private run = 0;

  constructor(public ok: boolean, private readonly failureThreshold: number, private readonly successThreshold: number) {}

  /** Records one result; true when the state flipped. */
  record(success: boolean): boolean {
    if (this.last === success) this.run++;
    else {
      this.last = success;
      this.run = 1;
    }
    const needed = success ? this.successThreshold : this.failureThreshold;
    if (this.run < needed || this.ok === success) return false;
    this.ok = success;
    return true;
  }
}
