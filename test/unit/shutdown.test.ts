import { strict as assert } from 'node:assert';
import { Logger } from '../../src/log/logger';
import { ShutdownActions, ShutdownSequence, cleanupLeftovers, timingWarnings } from '../../src/shutdown/sequence';
import { FakeClock, settle } from './fake-clock';

const quiet = new Logger('error', 'text');

/** A fake world: one child (pid 10) that exits on the signals it honours, plus optional leftovers. */
function world(clock: FakeClock, opts: { honours?: number[]; drainMs?: number[]; leftovers?: number[]; leftoversHonour?: number[] } = {}) {
  const events: string[] = [];
  let gone = false;
  let exited!: () => void;
  const childExited = new Promise<void>((r) => (exited = r));
  let others = [...(opts.leftovers ?? [])];
  const exit = () => {
    if (!gone) {
      gone = true;
      events.push(`${clock.now()} child exited`);
      exited();
    }
  };
  const act: ShutdownActions = {
    childGone: () => gone,
    childExited,
    enterPhase: (p) => events.push(`${clock.now()} phase ${p}`),
    sendStopSignal: (sig) => {
      events.push(`${clock.now()} stop ${sig}`);
      if (opts.honours?.includes(sig)) exit();
    },
    forward: (sig) => {
      events.push(`${clock.now()} forward ${sig}`);
      if (opts.honours?.includes(sig)) exit();
    },
    runPreStop: async (i, cmd, timeoutMs, abort) => {
      events.push(`${clock.now()} pre-stop ${i} ${cmd} (timeout ${timeoutMs})`);
      await clock.sleep(Math.min(opts.drainMs?.[i - 1] ?? 0, timeoutMs), abort);
      events.push(`${clock.now()} pre-stop ${i} done`);
    },
    leftovers: () => [...(gone ? [] : [10]), ...others],
    signalAll: (pids, sig) => {
      events.push(`${clock.now()} signalAll ${sig} ${pids.join(',')}`);
      if (sig === 9) {
        if (pids.includes(10)) exit();
        others = others.filter((p) => !pids.includes(p));
      } else if (opts.leftoversHonour?.includes(sig)) {
        others = others.filter((p) => !pids.includes(p));
      }
    },
  };
  return { act, events, exit };
}

const timings = { gracePeriodMs: 30_000, shutdownDelayMs: 5_000, preStop: [{ text: 'drain-a' }, { text: 'drain-b' }], preStopTimeoutMs: 10_000, orphanGraceMs: 2_000 };

describe('shutdown sequence (virtual time)', () => {
  it('runs the phases in order: readiness off, delay, drains in order, then the stop signal', async () => {
    const clock = new FakeClock();
    const w = world(clock, { honours: [3], drainMs: [1000, 2000] });
    const seq = new ShutdownSequence(timings, clock, quiet, w.act);
    const done = seq.run(3);
    await clock.runUntil(60_000);
    await done;
    assert.deepEqual(w.events, [
      '0 phase draining',
      '5000 pre-stop 1 drain-a (timeout 10000)',
      '6000 pre-stop 1 done',
      '6000 pre-stop 2 drain-b (timeout 10000)',
      '8000 pre-stop 2 done',
      '8000 phase stopping',
      '8000 stop 3',
      '8000 child exited',
    ]);
  });

  it('SIGKILLs everything about one second before the grace period when the child ignores the stop signal', async () => {
    const clock = new FakeClock();
    const w = world(clock, { honours: [], leftovers: [11] });
    const seq = new ShutdownSequence({ ...timings, shutdownDelayMs: 0, preStop: [] }, clock, quiet, w.act);
    const done = seq.run(15);
    await clock.runUntil(60_000);
    await done;
    assert.deepEqual(w.events, ['0 phase draining', '0 phase stopping', '0 stop 15', '29000 signalAll 9 10,11', '29000 child exited']);
    assert.equal(seq.killedChild, true);
    assert.equal(seq.exitBy, 30_000);
  });

  it('bounds a hung drain command by its timeout and by the time left before the kill', async () => {
    const clock = new FakeClock();
    const w = world(clock, { honours: [15], drainMs: [60_000, 60_000] });
    const seq = new ShutdownSequence({ ...timings, shutdownDelayMs: 15_000 }, clock, quiet, w.act);
    const done = seq.run(15);
    await clock.runUntil(60_000);
    await done;
    assert.ok(w.events.includes('15000 pre-stop 1 drain-a (timeout 10000)'));
    assert.ok(w.events.includes('25000 pre-stop 2 drain-b (timeout 4000)'), w.events.join('\n'));
    assert.ok(w.events.includes('29000 stop 15'));
  });

  it('cuts the delay short when the child exits by itself', async () => {
    const clock = new FakeClock();
    const w = world(clock);
    const seq = new ShutdownSequence(timings, clock, quiet, w.act);
    const done = seq.run(15);
    await clock.runUntil(1_000);
    w.exit();
    await settle();
    await done;
    assert.deepEqual(w.events, ['0 phase draining', '1000 child exited', '1000 phase stopping']);
  });

  it('skips the remaining delay and drain commands on a second signal; from the stop signal on, every further one is forwarded, none kills', async () => {
    const clock = new FakeClock();
    const w = world(clock, { honours: [], drainMs: [5000, 5000] });
    const seq = new ShutdownSequence(timings, clock, quiet, w.act);
    const done = seq.run(15);
    await clock.runUntil(2_000);
    seq.again(15);
    // a third in the same batch of records, before the skip has reached the stop signal
    seq.again(2);
    await clock.runUntil(3_000);
    assert.ok(w.events.includes('2000 stop 15'), w.events.join('\n'));
    assert.ok(w.events.indexOf('2000 forward 2') > w.events.indexOf('2000 stop 15'), w.events.join('\n'));
    assert.ok(!w.events.some((e) => e.includes('pre-stop')), 'no drain command ran after the skip');
    seq.again(15);
    seq.again(2);
    await clock.runUntil(3_500);
    assert.ok(w.events.includes('3000 forward 15') && w.events.includes('3000 forward 2'), w.events.join('\n'));
    assert.ok(!w.events.some((e) => e.includes('signalAll')), 'nothing killed before killAt');
    assert.equal(seq.leftoverDeadline(), seq.killAt);
    await clock.runUntil(60_000);
    await done;
    assert.ok(w.events.includes(`${seq.killAt} signalAll 9 10`), w.events.join('\n'));
  });

  it('a second signal after the stop signal has gone is forwarded, not acted on', async () => {
    const clock = new FakeClock();
    const w = world(clock, { honours: [2] });
    const seq = new ShutdownSequence({ ...timings, shutdownDelayMs: 0, preStop: [] }, clock, quiet, w.act);
    const done = seq.run(15);
    await clock.runUntil(500);
    assert.ok(w.events.includes('0 stop 15'), w.events.join('\n'));
    seq.again(2);
    await clock.runUntil(600);
    await done;
    assert.deepEqual(w.events.slice(-2), ['500 forward 2', '500 child exited']);
  });
});

describe('leftover cleanup', () => {
  it('sends SIGTERM, returns as soon as the leftovers are gone', async () => {
    const clock = new FakeClock();
    const w = world(clock, { leftovers: [20, 21], leftoversHonour: [15] });
    w.exit();
    const done = cleanupLeftovers(w.act, clock, quiet, 2_000, Infinity, Infinity);
    await clock.runUntil(5_000);
    await done;
    assert.deepEqual(w.events.slice(1), ['0 signalAll 15 20,21']);
  });

  it('SIGKILLs what ignores SIGTERM after --orphan-grace, never past the kill deadline', async () => {
    const clock = new FakeClock();
    const w = world(clock, { leftovers: [20] });
    w.exit();
    const done = cleanupLeftovers(w.act, clock, quiet, 2_000, 1_500, 3_000);
    await clock.runUntil(5_000);
    await done;
    assert.deepEqual(w.events.slice(1), ['0 signalAll 15 20', '1500 signalAll 9 20']);
  });

  it('does nothing when nothing is left', async () => {
    const clock = new FakeClock();
    const w = world(clock);
    w.exit();
    await cleanupLeftovers(w.act, clock, quiet, 2_000, Infinity, Infinity);
    assert.deepEqual(w.events.slice(1), []);
  });
});

describe('timing warnings', () => {
  it('warns when the delay and drain budget reach the grace period', () => {
    assert.equal(timingWarnings(timings).length, 0);
    assert.equal(timingWarnings({ ...timings, shutdownDelayMs: 20_000 }).length, 1);
    assert.match(timingWarnings({ ...timings, gracePeriodMs: 5_000 })[0], /grace-period \(5000 ms\)/);
  });
});
