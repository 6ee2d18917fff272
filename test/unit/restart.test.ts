import { strict as assert } from 'node:assert';
import { childCheck, restartCheck, shutdownCheck } from '../../src/health/checks';
import { CheckRegistry } from '../../src/health/registry';
import { renderMetrics } from '../../src/health/metrics';
import { RestartPolicy, RestartSettings } from '../../src/supervisor/restart';
import { FakeLifecycle, quiet, scriptedProbe } from '../health/fakes';
import { FakeClock } from './fake-clock';

const settings = (s: Partial<RestartSettings> = {}): RestartSettings => ({ mode: 'on-failure', maxRestarts: 5, delayMs: 1000, windowMs: 60_000, ...s });

/** Delays of the restarts a child that always dies after `ranMs` gets, until the policy says no. */
function delays(p: RestartPolicy, ranMs: number, max = 20): { delays: number[]; reason: string } {
  const out: number[] = [];
  for (let i = 0; i < max; i++) {
    const d = p.decide(true, ranMs);
    if (!d.restart) return { delays: out, reason: d.reason };
    out.push(d.delayMs);
  }
  return { delays: out, reason: 'none' };
}

describe('restart policy', () => {
  it('doubles the delay from --restart-delay and stops at --max-restarts', () => {
    const r = delays(new RestartPolicy(settings()), 100);
    assert.deepEqual(r.delays, [1000, 2000, 4000, 8000, 16000]);
    assert.match(r.reason, /budget spent: 5 restart\(s\)/);
  });

  it('caps the delay at 30 s (or at --restart-delay when that is longer)', () => {
    assert.deepEqual(delays(new RestartPolicy(settings({ maxRestarts: 8 })), 100).delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.deepEqual(delays(new RestartPolicy(settings({ maxRestarts: 3, delayMs: 45_000 })), 100).delays, [45000, 45000, 45000]);
  });

  it('a stable run (as long as the window) resets both the delay and the count', () => {
    const p = new RestartPolicy(settings({ maxRestarts: 3 }));
    assert.deepEqual([p.decide(true, 10), p.decide(true, 10), p.decide(true, 10)].map((d) => d.restart && d.delayMs), [1000, 2000, 4000]);
    assert.equal(p.decide(true, 10).restart, false, 'budget spent');
    const again = p.decide(true, 60_000);
    assert.deepEqual(again, { restart: true, delayMs: 1000, attempt: 1 });
    // One ms short of the window is not stable.
    assert.deepEqual(p.decide(true, 59_999), { restart: true, delayMs: 2000, attempt: 2 });
  });

  it('never restarts nothing; on-failure only failures; always also clean exits', () => {
    assert.deepEqual(new RestartPolicy(settings({ mode: 'never' })).decide(true, 0), { restart: false, reason: '--restart never' });
    const onFailure = new RestartPolicy(settings());
    assert.equal(onFailure.decide(false, 0).restart, false);
    assert.equal(onFailure.decide(true, 0).restart, true);
    const always = new RestartPolicy(settings({ mode: 'always' }));
    assert.deepEqual(always.decide(false, 0), { restart: true, delayMs: 1000, attempt: 1 });
  });

  it('--max-restarts 0 gives no restart at all', () => {
    assert.equal(new RestartPolicy(settings({ maxRestarts: 0 })).decide(true, 0).restart, false);
  });
});

describe('checks while restarting', () => {
  it('liveness passes (child), readiness fails (restart), shutdown untouched', () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    life.enter('running');
    life.childStatus = { code: 1, signal: null };
    life.enter('restarting');
    assert.equal(childCheck(life, clock).state().ok, true);
    assert.equal(restartCheck(life, clock).state().ok, false);
    assert.equal(shutdownCheck(life, clock).state().ok, true);
    // Once the budget is spent hainit exits: the child check fails as before.
    life.enter('exited');
    assert.equal(childCheck(life, clock).state().ok, false);
  });

  it('a restarted child must pass readiness again, and liveness waits for it', async () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    const ready = scriptedProbe(() => clock.now(), [true, true, false, false, true]);
    const live = scriptedProbe(() => clock.now(), [true]);
    const timing = { intervalMs: 1000, timeoutMs: 500, failureThreshold: 3, successThreshold: 1 };
    const reg = new CheckRegistry({ lifecycle: life, clock, log: quiet, timing, startupTimeoutMs: undefined, restarts: true }, [
      { name: 'ready-http', kind: 'ready', probe: ready.probe },
      { name: 'live-http', kind: 'live', probe: live.probe },
    ]);
    reg.attach();
    const readyz = () => reg.checksFor('readyz').every((c) => c.state().ok);
    assert.deepEqual(reg.checksFor('readyz').map((c) => c.name), ['child', 'shutdown', 'restart', 'startup', 'ready-http']);
    life.enter('running');
    await clock.runUntil(10);
    assert.equal(readyz(), true);
    assert.equal(live.runs.length, 1, 'liveness started once ready');

    life.enter('restarting');
    assert.equal(readyz(), false);
    assert.equal(reg.checksFor('livez').every((c) => c.state().ok), true, 'liveness passes while restarting');
    const liveRuns = live.runs.length;
    await clock.runUntil(5000);
    assert.equal(live.runs.length, liveRuns, 'no liveness runs while restarting');

    life.enter('running');
    // The ready probe's cached "ok" from the old child is gone: not ready until it passes again.
    assert.equal(readyz(), false);
    assert.equal(reg.checksFor('readyz').find((c) => c.name === 'ready-http')!.state().reason, 'not run yet');
    await clock.runUntil(5010);
    assert.equal(readyz(), true);
    assert.ok(live.runs.length > liveRuns, 'liveness resumes once the new child is ready');
    assert.equal(reg.startupPassed, true, 'the startup gate stays open');
    reg.close();
  });

  it('/metrics has the restarting phase and the restart count', () => {
    const life = new FakeLifecycle();
    life.enter('running');
    life.restarts = 2;
    life.enter('restarting');
    const text = renderMetrics({ lifecycle: life, orphansReaped: () => 0, checks: [], startupPassed: () => true, usage: () => undefined });
    assert.match(text, /^hainit_phase\{phase="restarting"\} 1$/m);
    assert.match(text, /^hainit_phase\{phase="running"\} 0$/m);
    assert.match(text, /^hainit_child_restarts_total 2$/m);
  });
});
