import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { MAX_TIMER_MS, TimerPrimitives, clockOn, longTimeout } from '../../src/runtime/clock';
import { unclosed } from '../../src/config/command-line';

/** Virtual timer primitives that, like Node, turn a delay past 2^31-1 ms into 1 ms. */
function virtualTimers() {
  let t = 0;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const armed: number[] = [];
  const timers: TimerPrimitives = {
    now: () => t,
    setTimeout(fn, ms) {
      armed.push(ms);
      const delay = ms > MAX_TIMER_MS || ms < 1 ? 1 : ms; // Node's TimeoutOverflowWarning rule
      const id = ++seq;
      pending.set(id, { at: t + delay, fn });
      return id;
    },
    clearTimeout(id) {
      pending.delete(id as number);
    },
  };
  /** runs every timer due up to `until`, in order */
  const advance = (until: number) => {
    for (;;) {
      const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > until) break;
      pending.delete(next[0]);
      t = next[1].at;
      next[1].fn();
    }
    t = until;
  };
  return { timers, advance, armed, pending };
}

const HOUR = 3_600_000;

describe('long timers (virtual time)', () => {
  it('fires a 600 h timer at 600 h, not at once, never arming a libuv timer past 2^31-1 ms', () => {
    const v = virtualTimers();
    let firedAt: number | undefined;
    longTimeout(() => (firedAt = v.timers.now()), 600 * HOUR, { timers: v.timers });
    v.advance(599 * HOUR);
    assert.equal(firedAt, undefined, 'fired before 600 h');
    v.advance(601 * HOUR);
    assert.equal(firedAt, 600 * HOUR);
    assert.ok(v.armed.every((ms) => ms <= MAX_TIMER_MS), `armed ${v.armed.join(', ')}`);
    assert.equal(v.armed.length, Math.ceil((600 * HOUR) / MAX_TIMER_MS));
  });

  it('any delay up to 2^53 ms fires exactly then, in few re-arms', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (ms) => {
        const v = virtualTimers();
        let firedAt: number | undefined;
        longTimeout(() => (firedAt = v.timers.now()), ms, { timers: v.timers });
        v.advance(ms - 1);
        if (ms > 1) assert.equal(firedAt, undefined);
        v.advance(ms + 2);
        assert.equal(firedAt, Math.max(ms, 1));
        assert.ok(v.armed.every((a) => a <= MAX_TIMER_MS));
      }),
      { numRuns: 500 },
    );
  });

  it('clear() stops it between chunks', () => {
    const v = virtualTimers();
    let fired = false;
    const t = longTimeout(() => (fired = true), 1000 * HOUR, { timers: v.timers });
    v.advance(700 * HOUR);
    t.clear();
    v.advance(2000 * HOUR);
    assert.equal(fired, false);
    assert.equal(v.pending.size, 0);
  });

  it("the real clock's sleep is built on it: a 600 h sleep is still pending after real time passes", async () => {
    const v = virtualTimers();
    const clock = clockOn(v.timers);
    let woke = false;
    void clock.sleep(600 * HOUR).then(() => (woke = true));
    v.advance(HOUR);
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false);
    v.advance(600 * HOUR);
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, true);
  });
});

describe('hook lines that no shell can parse', () => {
  it('finds an unclosed quote, backquote or $( ', () => {
    assert.equal(unclosed('"x'), 'a double quote');
    assert.equal(unclosed("sh -c 'exit 0"), 'a single quote');
    assert.equal(unclosed('echo `date'), 'a backquote');
    assert.equal(unclosed('echo $(date'), 'a "$("');
    assert.equal(unclosed(`echo "$(echo '"')"`), undefined);
    assert.equal(unclosed("echo a # it's a comment"), undefined);
    // $$ is one token: found by the random-line property below (sh -n accepts it)
    assert.equal(unclosed('`$${`}'), undefined);
    assert.equal(unclosed('echo $${x'), undefined);
    assert.equal(unclosed('echo `$$'), 'a backquote');
  });

  it("never refuses a line sh -n accepts, and what it refuses sh -n refuses too (random lines of shell punctuation)", () => {
    const chars = ['a', "'", '"', '`', '$', '(', ')', '\\', '#', ' ', ';', '\n', '<', '{', '}'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...chars), { minLength: 1, maxLength: 10 }).map((a) => a.join('')), (line) => {
        const mine = unclosed(line);
        const sh = spawnSync('sh', ['-n', '-c', line]);
        if (mine !== undefined) assert.notEqual(sh.status, 0, `refused ${JSON.stringify(line)} (${mine}) but sh -n accepts it`);
      }),
      { numRuns: 400 },
    );
  });
});
