import { SignalEvent } from '../signals/router';

export const SIGINT = 2;
export const SIGTERM = 15;
export const SIGCONT = 18;
/** Signals that, as received, begin the shutdown sequence (README "Signals"). */
export const SHUTDOWN_SIGNALS: readonly number[] = [SIGTERM, SIGINT];

/**
 * What hainit does with a signal record the native handler passed up. Forwarding itself already
 * happened in the handler (`forwarded`); this decides the rest: TERM and INT begin the shutdown
 * while they are in `notify` mode, other signals wait for a child that has not started yet.
 */
export type SignalAction =
  /** hainit raised it itself (or its own terminal did, in the foreground): not the child's */
  | 'own'
  /** the handler forwarded it */
  | 'forwarded'
  /** --rewrite N:0 */
  | 'dropped'
  /** TERM/INT before the stop signal went: the shutdown sequence (or its next step) */
  | 'shutdown'
  /** the child is restarting: what was meant for the dead one means nothing to the new one */
  | 'dropped-restarting'
  /** no child yet (--wait-for): forwarded once it starts */
  | 'hold'
  /** there was a child but kill(2) failed */
  | 'failed'
  | 'none';

export interface SignalView {
  /** the signal it becomes after --rewrite (0: dropped) */
  readonly rewriteTo: number;
  readonly restartingWithoutChild: boolean;
  readonly childStarted: boolean;
}

export function decideSignal(e: SignalEvent, view: SignalView): SignalAction {
  if (e.fromSelf || e.fromOwnTty) return 'own';
  if (e.forwarded) return 'forwarded';
  if (view.rewriteTo === 0) return 'dropped';
  if (SHUTDOWN_SIGNALS.includes(e.signal)) return 'shutdown';
  if (view.restartingWithoutChild) return 'dropped-restarting';
  if (!view.childStarted) return 'hold';
  if (e.errno) return 'failed';
  return 'none';
}
