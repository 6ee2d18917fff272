import { strict as assert } from 'node:assert';
import { Thresholds, childCheck, shutdownCheck } from '../../src/health/checks';
import { ApplicationCheck, CheckRegistry } from '../../src/health/registry';
import { CheckTiming, FAST_START_MS, PeriodicCheck, PeriodicCheckHooks } from '../../src/health/runners';
import { FakeClock } from '../unit/fake-clock';
import { FakeLifecycle, quiet, scriptedProbe } from './fakes';

const timing: CheckTiming = { intervalMs: 5_000, timeoutMs: 2_000, failureThreshold: 3, successThreshold: 1 };

describe('health: threshold rule (kubelet)', () => {
  it('a readiness check starts failed and passes on successThreshold consecutive successes', () => {
    const t = new Thresholds(false, 3, 2);
    assert.equal(t.record(true), false);
    assert.equal(t.ok, false);
    assert.equal(t.record(false), false);
    assert.equal(t.record(true), false, 'the run of successes restarted');
    assert.equal(t.record(true), true);
    assert.equal(t.ok, true);
  });

  it('fails only after failureThreshold consecutive failures; a success in between resets the run', () => {
    const t = new Thresholds(true, 3, 1);
    t.record(false);
    t.record(false);
    t.record(true);
    t.record(false);
    assert.equal(t.record(false), false);
    assert.equal(t.ok, true);
    assert.equal(t.record(false), true);
    assert.equal(t.ok, false);
    assert.equal(t.record(true), true, 'successThreshold 1: one success recovers');
  });
});

describe('health: built-in checks', () => {
  it('child: alive while waiting to start and while running, failed once the child is gone', () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    const child = childCheck(life, clock);
    assert.equal(child.state().ok, true, 'not started yet (waiting for dependencies) is not dead');
    life.enter('running');
    assert.equal(child.state().ok, true);
    life.enter('draining');
    assert.equal(child.state().ok, true, 'still alive while draining');
    life.enter('exited');
    assert.equal(child.state().ok, false);
    assert.match(child.state().reason ?? '', /not running/);
  });

  it('shutdown: fails from draining on, for readiness only', () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    const s = shutdownCheck(life, clock);
    assert.deepEqual(s.kinds, ['ready']);
    life.enter('running');
    assert.equal(s.state().ok, true);
    for (const p of ['draining', 'stopping', 'exited'] as const) {
      life.enter(p);
      assert.equal(s.state().ok, false, p);
    }
  });
});

function periodic(clock: FakeClock, script: Array<boolean | 'hang'>, opts: { initiallyOk?: boolean; starting?: () => boolean; timing?: CheckTiming } = {}) {
  const p = scriptedProbe(() => clock.now(), script);
  const flips: string[] = [];
  const hooks: PeriodicCheckHooks = {
    starting: opts.starting ?? (() => false),
    ran: () => undefined,
    changed: (c) => flips.push(`${clock.now()} ${c.state().ok ? 'pass' : 'fail'}`),
  };
  const check = new PeriodicCheck('ready-http', ['ready'], p.probe, opts.timing ?? timing, opts.initiallyOk ?? false, clock, hooks);
  return { check, flips, ...p };
}

describe('health: application checks on virtual time', () => {
  it('runs at once, then every interval, start to start', async () => {
    const clock = new FakeClock();
    const { check, runs } = periodic(clock, [true]);
    check.start();
    await clock.runUntil(16_000);
    check.stop();
    assert.deepEqual(runs, [0, 5_000, 10_000, 15_000]);
  });

  it('while starting, readiness runs fast and backs off from a few hundred ms to the interval', async () => {
    const clock = new FakeClock();
    const { check, runs } = periodic(clock, [false], { starting: () => true });
    check.start();
    await clock.runUntil(20_000);
    check.stop();
    const gaps = runs.slice(1).map((t, i) => t - runs[i]);
    assert.equal(gaps[0], FAST_START_MS);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1], `gaps never shrink: ${gaps.join(',')}`);
    assert.equal(Math.max(...gaps), 5_000, 'capped at the interval');
    assert.ok(gaps.filter((g) => g < 1_000).length >= 3, `several fast runs first: ${gaps.join(',')}`);
  });

  it('a readiness check passes on the first success after failures (initial state is failed)', async () => {
    const clock = new FakeClock();
    const { check, flips } = periodic(clock, [false, false, false, false, true]);
    check.start();
    assert.equal(check.state().ok, false);
    assert.equal(check.state().reason, 'not run yet');
    await clock.runUntil(20_000);
    check.stop();
    assert.deepEqual(flips, ['20000 pass']);
  });

  it('failureThreshold consecutive failures flip a passing check; fewer do not', async () => {
    const clock = new FakeClock();
    const { check, flips } = periodic(clock, [true, false, false, true, false, false, false, true]);
    check.start();
    await clock.runUntil(36_000);
    check.stop();
    assert.deepEqual(flips, ['0 pass', '30000 fail', '35000 pass']);
  });

  it('a run that never answers fails at the timeout, is aborted, and does not pile up', async () => {
    const clock = new FakeClock();
    const { check, runs, aborted } = periodic(clock, ['hang'], { initiallyOk: true, timing: { ...timing, failureThreshold: 1 } });
    check.start();
    await clock.runUntil(1_999);
    assert.equal(check.state().ok, true, 'still the old state during the run');
    await clock.runUntil(2_000);
    assert.equal(check.state().ok, false);
    assert.match(check.state().reason ?? '', /timed out after 2000 ms/);
    assert.equal(check.state().lastDurationMs, 2_000);
    assert.deepEqual(aborted, [2_000]);
    await clock.runUntil(11_000);
    check.stop();
    assert.deepEqual(runs, [0, 5_000, 10_000]);
  });

  it('stop() cuts a run short and records nothing', async () => {
    const clock = new FakeClock();
    const { check, aborted, flips } = periodic(clock, ['hang']);
    check.start();
    await clock.runUntil(500);
    check.stop();
    await clock.runUntil(10_000);
    assert.deepEqual(aborted, [500]);
    assert.deepEqual(flips, []);
    assert.equal(check.state().reason, 'not run yet');
  });
});

function registry(clock: FakeClock, life: FakeLifecycle, apps: ApplicationCheck[], startupTimeoutMs?: number) {
  const r = new CheckRegistry({ lifecycle: life, clock, log: quiet, timing, startupTimeoutMs }, apps);
  const events: string[] = [];
  r.on('ready', (ms) => events.push(`${clock.now()} ready after ${ms}`));
  r.on('startupTimeout', (m) => events.push(`${clock.now()} timeout: ${m}`));
  r.attach();
  return { r, events };
}

const names = (r: CheckRegistry, e: 'livez' | 'readyz' | 'startupz' | 'healthz') => r.checksFor(e).map((c) => c.name);

describe('health: registry and startup gate', () => {
  it('puts each check on its probes', () => {
    const clock = new FakeClock();
    const ready = scriptedProbe(() => clock.now(), [true]);
    const live = scriptedProbe(() => clock.now(), [true]);
    const { r } = registry(clock, new FakeLifecycle(), [
      { name: 'ready-http', kind: 'ready', probe: ready.probe },
      { name: 'live-tcp', kind: 'live', probe: live.probe },
    ]);
    assert.deepEqual(names(r, 'livez'), ['child', 'live-tcp']);
    assert.deepEqual(names(r, 'readyz'), ['child', 'shutdown', 'startup', 'ready-http']);
    assert.deepEqual(names(r, 'startupz'), ['startup']);
    assert.deepEqual(names(r, 'healthz'), ['child', 'shutdown', 'startup', 'ready-http', 'live-tcp']);
    r.close();
  });

  it('without application checks, readiness passes as soon as the child runs', async () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    const { r, events } = registry(clock, life, []);
    const startup = r.checksFor('startupz')[0];
    assert.equal(startup.state().ok, false);
    await clock.runUntil(1_000);
    life.enter('running');
    assert.equal(startup.state().ok, true);
    assert.deepEqual(events, ['1000 ready after 0']);
    r.close();
  });

  it('opens the gate within a fast-start pause of the application becoming ready, and only once', async () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    let appUp = false;
    const runs: number[] = [];
    const { r, events } = registry(clock, life, [
      { name: 'ready-tcp', kind: 'ready', probe: async () => (runs.push(clock.now()), { ok: appUp, reason: appUp ? undefined : 'ECONNREFUSED' }) },
    ]);
    life.enter('running');
    await clock.runUntil(3_100);
    appUp = true;
    await clock.runUntil(30_000);
    const passedAt = Number(events[0].split(' ')[0]);
    assert.ok(passedAt > 3_100 && passedAt - 3_100 < 1_500, `ready ${passedAt - 3_100} ms after the app (runs ${runs.join(',')})`);
    assert.equal(events.length, 1);
    appUp = false;
    await clock.runUntil(60_000);
    assert.equal(r.startupPassed, true, 'the gate never closes again');
    assert.equal(r.checksFor('readyz').find((c) => c.name === 'ready-tcp')?.state().ok, false);
    const after = runs.filter((t) => t > passedAt);
    assert.ok(after.slice(1).every((t, i) => t - after[i] === 5_000), `interval after the gate: ${after.join(',')}`);
    r.close();
  });

  it('liveness checks wait for the gate, then run', async () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    let appUp = false;
    const live = scriptedProbe(() => clock.now(), [false]);
    const { r } = registry(clock, life, [
      { name: 'ready-http', kind: 'ready', probe: async () => ({ ok: appUp }) },
      { name: 'live-http', kind: 'live', probe: live.probe },
    ]);
    life.enter('running');
    await clock.runUntil(10_000);
    assert.deepEqual(live.runs, []);
    assert.equal(r.checksFor('livez').every((c) => c.state().ok), true, 'liveness starts as passing');
    appUp = true;
    await clock.runUntil(60_000);
    assert.ok(live.runs.length >= 3);
    assert.equal(r.checksFor('livez').find((c) => c.name === 'live-http')?.state().ok, false);
    r.close();
  });

  it('--startup-timeout fires when readiness never passes, naming what failed', async () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    const { r, events } = registry(clock, life, [{ name: 'ready-http', kind: 'ready', probe: async () => ({ ok: false, reason: 'HTTP status 500' }) }], 30_000);
    await clock.runUntil(5_000);
    life.enter('running');
    await clock.runUntil(34_999);
    assert.deepEqual(events, []);
    await clock.runUntil(35_000);
    assert.equal(events.length, 1);
    assert.match(events[0], /^35000 timeout: readiness did not pass within 30000 ms/);
    assert.match(events[0], /ready-http: HTTP status 500/);
    r.close();
  });

  it('--startup-timeout does not fire once readiness passed, nor after shutdown began', async () => {
    const clock = new FakeClock();
    for (const how of ['passes', 'shutdown'] as const) {
      const life = new FakeLifecycle();
      const { r, events } = registry(clock, life, [{ name: 'ready-http', kind: 'ready', probe: async () => ({ ok: how === 'passes' }) }], 10_000);
      life.enter('running');
      await clock.runUntil(clock.now() + 1_000);
      if (how === 'shutdown') life.enter('draining');
      await clock.runUntil(clock.now() + 60_000);
      assert.ok(events.every((e) => !e.includes('timeout')), `${how}: ${events.join('; ')}`);
      r.close();
    }
  });

  it('application checks stop when shutdown begins (the kubelet stops liveness probes then too)', async () => {
    const clock = new FakeClock();
    const life = new FakeLifecycle();
    const ready = scriptedProbe(() => clock.now(), [true]);
    const { r } = registry(clock, life, [{ name: 'ready-http', kind: 'ready', probe: ready.probe }]);
    life.enter('running');
    await clock.runUntil(10_000);
    const before = ready.runs.length;
    life.enter('draining');
    await clock.runUntil(60_000);
    assert.equal(ready.runs.length, before);
    assert.equal(r.checksFor('readyz').find((c) => c.name === 'shutdown')?.state().ok, false);
    assert.equal(r.checksFor('livez').every((c) => c.state().ok), true, '/livez stays 200 while draining');
    r.close();
  });
});
