import { EventEmitter } from 'node:events';
import { LifecycleView } from '../../src/health/checks';
import { ProbeFn, ProbeOutcome } from '../../src/health/runners';
import { Logger } from '../../src/log/logger';
import type { Phase } from '../../src/supervisor/supervisor';

export const quiet = new Logger('error', 'text');

/** The supervisor as the health endpoint sees it, driven by the test. */
export class FakeLifecycle extends EventEmitter<{ phase: [Phase] }> implements LifecycleView {
  phase: Phase = 'starting';
  childPid: number | undefined;
  childStatus: unknown = undefined;
  readonly signalsReceived = new Map<number, number>();
  readonly signalsForwarded = new Map<number, number>();
  restarts = 0;

  enter(phase: Phase): void {
    if (phase === 'running' && this.childPid === undefined) this.childPid = 4242;
    if (phase === 'exited') this.childStatus = { code: 0, signal: null };
    this.phase = phase;
    this.emit('phase', phase);
  }
}

/**
 * A probe whose answers the test scripts: each run takes the next outcome from `script` (the last
 * one repeats); 'hang' never answers until aborted. Records when each run started.
 */
export function scriptedProbe(now: () => number, script: Array<boolean | 'hang'>) {
  const runs: number[] = [];
  const aborted: number[] = [];
  const probe: ProbeFn = (abort) => {
    runs.push(now());
    const step = script.length > 1 ? (script.shift() as boolean | 'hang') : script[0];
    if (step === 'hang') {
      return new Promise<ProbeOutcome>((resolve) => {
        abort.addEventListener('abort', () => {
          aborted.push(now());
          resolve({ ok: false, reason: 'aborted' });
        }, { once: true });
      });
    }
    return Promise.resolve(step ? { ok: true } : { ok: false, reason: 'connection refused' });
  };
  return { probe, runs, aborted, script };
}
