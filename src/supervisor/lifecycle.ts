import { EventEmitter } from 'node:events';
import { EXIT_GRACE_OVER, EXIT_USAGE, ExitStatus, exitCodeOf, exitCodeOfSignal, remapExit } from '../exit-codes';

/**
 * hainit's life as one state machine (STYLE.md: "one lifecycle state machine owns the truth").
 * The health server, metrics and logs read the phase; only the Supervisor moves it, and only
 * along the table below.
 *
 *   starting ──ready──▶ running ──drain──▶ draining ──stop──▶ stopping ──exit──▶ exited
 *      │                   │                  ▲                   ▲
 *      └──────restart──────┴──▶ restarting ───┴──drain / stop─────┘   (a shutdown during a restart)
 *                                   └──ready──▶ running
 *
 * `starting`: waiting for --wait-for, then the child runs until --post-start passes.
 * `restarting`: from the moment hainit decides to restart the child in place (its graceful stop,
 *   the leftovers, the restart delay) until the new child is ready.
 * `draining`: readiness fails, the shutdown delay and the --pre-stop commands run.
 * `stopping`: the stop signal has gone to the child; SIGKILL comes at the end of the grace period.
 * Every phase can `exit`: the child may die, or hainit give up, at any point.
 */
export type Phase = 'starting' | 'running' | 'draining' | 'stopping' | 'restarting' | 'exited';

export type LifecycleEvent =
  /** the child runs and --post-start (if any) succeeded */
  | 'ready'
  /** hainit decided to restart the child in place (--restart, or --max-memory) */
  | 'restart'
  /** the shutdown began: readiness fails, delay, drain commands */
  | 'drain'
  /** the stop signal goes to the child */
  | 'stop'
  /** the exit code is known */
  | 'exit';

export const TRANSITIONS: { readonly [P in Phase]: { readonly [E in LifecycleEvent]?: Phase } } = {
  starting: { ready: 'running', restart: 'restarting', drain: 'draining', stop: 'stopping', exit: 'exited' },
  running: { restart: 'restarting', drain: 'draining', stop: 'stopping', exit: 'exited' },
  restarting: { ready: 'running', drain: 'draining', stop: 'stopping', exit: 'exited' },
  draining: { stop: 'stopping', exit: 'exited' },
  stopping: { exit: 'exited' },
  exited: {},
};

export interface LifecycleEvents {
  phase: [Phase];
}

/** The current phase; moved only by events the table allows from it. */
export class Lifecycle extends EventEmitter<LifecycleEvents> {
  phase: Phase = 'starting';

  constructor(private readonly trace: (message: string) => void = () => undefined) {
    super();
  }

  /** Applies `event`; false (and no change) when the table has no such move from the current phase. */
  apply(event: LifecycleEvent): boolean {
    const next = TRANSITIONS[this.phase][event];
    if (next === undefined) return false;
    if (next !== this.phase) {
      this.phase = next;
      this.trace(`phase ${next} (${event})`);
      this.emit('phase', next);
    }
    return true;
  }

  /** The shutdown has begun: draining or stopping. */
  get shuttingDown(): boolean {
    return this.phase === 'draining' || this.phase === 'stopping';
  }
}

/** Why hainit is about to exit: each ending has one exit code (README, "Exit codes"). */
export type Ending =
  /** the child exited (or died) and will not be restarted */
  | { readonly kind: 'child-exited'; readonly status: ExitStatus }
  /** the command could not be started: 126 or 127 */
  | { readonly kind: 'spawn-failed'; readonly code: number }
  /** a shutdown signal came before the child ever started (--wait-for): 128+N */
  | { readonly kind: 'stopped-before-start'; readonly signal: number }
  /** --wait-for timed out */
  | { readonly kind: 'dependencies-missing' }
  /** the grace period ran out; `status` when the child itself had exited by then */
  | { readonly kind: 'grace-over'; readonly status: ExitStatus | undefined };

/**
 * The exit code, decided in one place. `override` is set when hainit, not the child, decided the
 * outcome (--post-start failed, --startup-timeout): 125 whatever the child's own code.
 */
export function decideExitCode(ending: Ending, override: number | undefined, remap: ReadonlyMap<number, number>): number {
  switch (ending.kind) {
    case 'spawn-failed':
      return ending.code;
    case 'stopped-before-start':
      // 128+N as if hainit had died of the signal (143 for SIGTERM): the container was stopped,
      // it did not fail (not 125), and it never did its work (not 0).
      return exitCodeOfSignal(ending.signal);
    case 'dependencies-missing':
      return EXIT_USAGE;
    case 'child-exited':
      return override ?? remapExit(exitCodeOf(ending.status), remap);
    case 'grace-over':
      return override ?? (ending.status ? remapExit(exitCodeOf(ending.status), remap) : EXIT_GRACE_OVER);
  }
}
