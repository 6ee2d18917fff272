import { CancelController } from '../runtime/cancel';
import { EventEmitter } from 'node:events';
import { Logger } from '../log/logger';
import { Clock } from '../runtime/clock';
import type { Phase } from '../supervisor/supervisor';
import { Check, CheckKind, LifecycleView, childCheck, memoryCheck, restartCheck, shutdownCheck, startupCheck } from './checks';
import { CheckTiming, PeriodicCheck, PeriodicCheckHooks, ProbeFn } from './runners';

/** The probe paths; /healthz is every check. */
export type Endpoint = 'livez' | 'readyz' | 'startupz' | 'healthz';
export const ENDPOINTS: readonly Endpoint[] = ['livez', 'readyz', 'startupz', 'healthz'];
const KIND_OF: Record<Endpoint, CheckKind | undefined> = { livez: 'live', readyz: 'ready', startupz: 'startup', healthz: undefined };

/** An application check before it runs: `ready-http`, `live-exec-2`… */
export interface ApplicationCheck {
  readonly name: string;
  readonly kind: 'ready' | 'live';
  readonly probe: ProbeFn;
}

export interface HealthEvents {
  /** readiness passed for the first time, `ms` after the child began running */
  ready: [ms: number];
  /** --startup-timeout expired first: the supervisor stops the child and exits 125 */
  startupTimeout: [message: string];
}

export interface RegistryDeps {
  readonly lifecycle: LifecycleView;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timing: CheckTiming;
  readonly startupTimeoutMs: number | undefined;
  /** --restart is not `never`: the `restart` check exists */
  readonly restarts?: boolean;
}

/**
 * Every check, once: the built-ins (`child`, `shutdown`, `startup`) and the application's. It
 * follows the lifecycle (it never drives it): application checks run while the child is
 * `running` (the kubelet too stops liveness probes during termination, and readiness is failed
 * by `shutdown` anyway), liveness checks only once readiness has passed (as a startupProbe
 * holds liveness back), and the startup gate opens the first time every readiness check passes.
 */
export class CheckRegistry extends EventEmitter<HealthEvents> {
  readonly checks: readonly Check[];
  private readonly application: readonly PeriodicCheck[];
  private readonly byEndpoint = new Map<Endpoint, readonly Check[]>();
  private passed = false;
  /** readiness has passed since the current child started (the startup gate is once per hainit) */
  private childReady = false;
  private runningSince: number | undefined;
  private startupTimer: CancelController | undefined;
  private readonly onPhase = (phase: Phase) => this.follow(phase);

  constructor(private readonly d: RegistryDeps, application: readonly ApplicationCheck[]) {
    super();
    const hooks: PeriodicCheckHooks = {
      starting: () => !this.childReady,
      ran: (c, o, ms) => d.log.trace(`check ${c.name}: ${o.ok ? 'passed' : `failed: ${o.reason}`}`, { ms }),
      changed: (c) => this.changed(c),
    };
    this.application = application.map(
      (a) => new PeriodicCheck(a.name, [a.kind], a.probe, this.timingFor(a.kind), a.kind === 'live', d.clock, hooks),
    );
    this.checks = [
      childCheck(d.lifecycle, d.clock),
      shutdownCheck(d.lifecycle, d.clock),
      ...(d.restarts ? [restartCheck(d.lifecycle, d.clock)] : []),
      ...(d.lifecycle.memory ? [memoryCheck(d.lifecycle.memory, d.clock)] : []),
      startupCheck(this, d.clock),
      ...this.application,
    ];
    // The lists are fixed once built: a probe request filters nothing.
    for (const e of ENDPOINTS) {
      const kind = KIND_OF[e];
      this.byEndpoint.set(e, Object.freeze(kind === undefined ? [...this.checks] : this.checks.filter((c) => c.kinds.includes(kind))));
    }
    const names = new Set<string>();
    for (const c of this.checks) {
      if (names.has(c.name)) throw new Error(`duplicate check name ${c.name}`);
      names.add(c.name);
    }
  }

  /** The kubelet requires successThreshold 1 for liveness: a live check recovers on one success. */
  private timingFor(kind: 'ready' | 'live'): CheckTiming {
    return kind === 'live' ? { ...this.d.timing, successThreshold: 1 } : this.d.timing;
  }

  get startupPassed(): boolean {
    return this.passed;
  }

  /** The checks a probe path reports, in registration order. */
  checksFor(endpoint: Endpoint): readonly Check[] {
    return this.byEndpoint.get(endpoint) ?? [];
  }

  /** Starts following the lifecycle (and catches up with where it already is). */
  attach(): void {
    this.d.lifecycle.on('phase', this.onPhase);
    this.follow(this.d.lifecycle.phase);
  }

  close(): void {
    this.d.lifecycle.off('phase', this.onPhase);
    for (const c of this.application) c.stop();
    this.startupTimer?.abort();
  }

  private follow(phase: Phase): void {
    if (phase === 'starting') return;
    if (phase === 'restarting') {
      // The next child starts from scratch: not ready until its readiness checks pass, liveness
      // held back until then. The --startup-timeout clock keeps running across restarts.
      for (const c of this.application) c.reset();
      this.childReady = false;
      return;
    }
    if (phase !== 'running') {
      for (const c of this.application) c.stop();
      this.startupTimer?.abort();
      return;
    }
    if (this.runningSince === undefined) {
      this.runningSince = this.d.clock.now();
      this.armStartupTimeout();
    }
    for (const c of this.application) if (c.kinds.includes('ready') || this.childReady) c.start();
    this.evaluateGate();
  }

  private armStartupTimeout(): void {
    const ms = this.d.startupTimeoutMs;
    if (ms === undefined) return;
    const timer = (this.startupTimer = new CancelController());
    void this.d.clock.sleep(ms, timer.signal).then(() => {
      if (timer.signal.aborted || this.passed) return;
      const failing = this.checksFor('readyz')
        .filter((c) => c.name !== 'startup')
        .map((c) => [c.name, c.state()] as const)
        .filter(([, s]) => !s.ok)
        .map(([name, s]) => `${name}: ${s.reason ?? 'failed'}`);
      this.emit('startupTimeout', `readiness did not pass within ${ms} ms of the child's start (--startup-timeout)${failing.length ? `; failing: ${failing.join('; ')}` : ''}`);
    });
  }

  private changed(c: PeriodicCheck): void {
    const s = c.state();
    // Before the first pass, readiness failures are the normal state of a starting application.
    const level = s.ok || (!this.passed && c.kinds.includes('ready')) ? 'info' : 'warn';
    this.d.log.write(level, `check ${c.name} ${s.ok ? 'passed' : `failed: ${s.reason}`}`);
    this.evaluateGate();
  }

  private evaluateGate(): void {
    if (this.childReady || this.d.lifecycle.phase !== 'running') return;
    const all = this.checksFor('readyz').every((c) => c.name === 'startup' || c.state().ok);
    if (!all) return;
    this.childReady = true;
    if (this.passed) {
      this.d.log.info(`ready again after restart ${this.d.lifecycle.restarts ?? 0}`);
      for (const c of this.application) if (c.kinds.includes('live')) c.start();
      return;
    }
    this.passed = true;
    this.startupTimer?.abort();
    const ms = Math.round(this.d.clock.now() - (this.runningSince ?? this.d.clock.now()));
    // Worth a line at info only when there was an application check to wait for: a plain
    // `hainit -- app` stays as quiet as tini.
    const waited = this.application.some((c) => c.kinds.includes('ready'));
    this.d.log.write(waited ? 'info' : 'debug', `ready: readiness passed ${ms} ms after the child started`);
    for (const c of this.application) if (c.kinds.includes('live')) c.start();
    this.emit('ready', ms);
  }
}
