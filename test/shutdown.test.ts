import { strict as assert } from 'node:assert';
import { createServer, Server } from 'node:net';
import { freePort } from '../support/load';
import { assertInOrder, cleanEnv, fixture, runHainit, shutdownLog, startHainit } from '../support/pid1';

const py = (name: string) => ['python3', fixture(name)];
const monoNs = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, as Python's clock_gettime_ns
const msSince = (t: bigint, ns: string | bigint) => Number((BigInt(ns) - t) / 1_000_000n);

describe('shutdown sequence, hainit as PID 1', function () {
  this.timeout(30_000);

  it('SIGKILLs a child that ignores SIGTERM before the grace period and exits 137 by it', async () => {
    const h = startHainit(['--grace-period', '3s', '--', ...py('graceful.py')], { env: cleanEnv({ IGNORE: 'TERM' }) });
    await h.waitForOutput(/ready/);
    const t0 = Date.now();
    await h.signal('TERM');
    const r = await h.exited;
    const took = Date.now() - t0;
    assert.equal(r.code, 137, r.stderr);
    // What hainit did, by its own clock: it waited for the child until the kill point (the grace
    // period less its margin, 750 ms of 3 s), the child died of that SIGKILL, and hainit was done
    // inside the grace period. That the orchestrator's SIGKILL at 3 s finds hainit gone is the
    // contract, so the time is asserted; from outside only loosely (signal delivery and exit under
    // load), since the kill point is already read from hainit.
    const s = shutdownLog(r.stderr);
    assert.ok(s.sigkillMs !== undefined && s.sigkillMs >= 2250 && s.sigkillMs < 3000, `SIGKILL after ${s.sigkillMs} ms (kill point 2250 ms)`);
    assertInOrder(r.stderr, [/did not exit within the grace period: SIGKILL/, /child was killed by SIGKILL/, /shutdown: done in \d+ ms, exit code 137/]);
    assert.ok(s.doneMs !== undefined && s.doneMs < 3000, `done ${s.doneMs} ms into a 3 s grace period`);
    assert.ok(took >= 2250 && took < 3000 + 2000, `exited ${took} ms after SIGTERM (grace 3s)`);
  });

  it('runs delay, drain commands in order, then the stop signal', async () => {
    const h = startHainit([
      '--shutdown-delay', '1s', '--pre-stop', 'echo drain-one', '--pre-stop', "sh -c 'sleep 0.3; echo drain-two'",
      '--stop-signal', 'QUIT', '--', ...py('graceful.py'),
    ], { env: cleanEnv({ EXIT: '0' }) });
    await h.waitForOutput(/ready/);
    const t0 = monoNs();
    await h.signal('TERM');
    const r = await h.exited;
    assert.equal(r.code, 0, r.stderr);
    const got = /got SIG (\d+) at (\d+)/.exec(r.stdout);
    assert.ok(got, r.stdout);
    assert.equal(got[1], '3', 'the child got --stop-signal QUIT, not TERM');
    // The child saw the stop signal only after the delay and both drains (a lower bound holds on any machine).
    const after = msSince(t0, got[2]);
    assert.ok(after >= 1250, `stop signal ${after} ms after SIGTERM: expected delay 1s + drains ~0.3s`);
    // hainit's own account: the delay waited out, then each drain, then the stop signal
    const s = shutdownLog(r.stderr);
    assert.ok(s.delayOverMs !== undefined && s.delayOverMs >= 1000, `delay over after ${s.delayOverMs} ms (--shutdown-delay 1s)`);
    assertInOrder(r.stderr, [/delay over/, /pre-stop\[1\]: drain-one/, /pre-stop\[2\]: drain-two/, /pre-stop\[2\] finished/, /sending SIGQUIT to the child/]);
    assert.ok(s.stopSignalMs !== undefined && s.stopSignalMs >= s.delayOverMs + 300, `stop signal at ${s.stopSignalMs} ms, delay over at ${s.delayOverMs} ms, drains ~0.3 s`);
  });

  it('cuts a hung drain command at its timeout and leaves none of its processes behind', async () => {
    const h = startHainit(['--pre-stop', "sh -c 'sleep 60 & sleep 60'", '--pre-stop-timeout', '500ms', '--', ...py('graceful.py')]);
    await h.waitForOutput(/ready/);
    const t0 = monoNs();
    await h.signal('TERM');
    const r = await h.exited;
    assert.equal(r.code, 0, r.stderr);
    const got = /got SIG 15 at (\d+)/.exec(r.stdout);
    assert.ok(got, r.stdout);
    assert.ok(msSince(t0, got[1]) >= 450, `stop signal ${msSince(t0, got[1])} ms after SIGTERM (drain timeout 500ms)`);
    // The hung drain was cut at its timeout (hainit says so), and only then came the stop signal:
    // not after the drain's 60 s, which the run's 20 s limit would not have reached.
    assertInOrder(r.stderr, [/pre-stop\[1\] timed out after 500 ms: killing its process group/, /sending SIGTERM to the child after \d+ ms/]);
    const s = shutdownLog(r.stderr);
    assert.ok(s.stopSignalMs !== undefined && s.stopSignalMs >= 500, `stop signal at ${s.stopSignalMs} ms`);
    assert.doesNotMatch(r.stderr, /left after the child exited/, 'the drain command\'s children were killed with it');
  });

  it('skips the remaining delay on a second SIGTERM', async () => {
    const h = startHainit(['--shutdown-delay', '20s', '--', ...py('graceful.py')]);
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    await new Promise((r) => setTimeout(r, 300));
    await h.signal('TERM');
    const r = await h.exited;
    assert.match(r.stdout, /got SIG 15 at \d+/, r.stdout + r.stderr);
    // The delay ended because of the second signal, by hainit's clock far short of its 20 s.
    assertInOrder(r.stderr, [/second SIGTERM: skipping the remaining delay/, /delay over after \d+ ms/, /sending SIGTERM to the child/]);
    const s = shutdownLog(r.stderr);
    assert.ok(s.delayOverMs !== undefined && s.delayOverMs < 10_000, `delay over after ${s.delayOverMs} ms of --shutdown-delay 20s`);
  });

  it('after the second signal skipped the delay, every further TERM/INT reaches the child; none kills everything (README: a third signal)', async () => {
    const h = startHainit(['--shutdown-delay', '20s', '--grace-period', '4s', '--', 'python3', fixture('sigecho.py')]);
    await h.waitForOutput(/ready/);
    for (const sig of ['TERM', 'TERM', 'INT', 'TERM']) {
      await h.signal(sig);
      await new Promise((r) => setTimeout(r, 250));
    }
    const r = await h.exited;
    // the first began the shutdown, the second skipped the delay (the stop signal SIGTERM went), the others were forwarded
    assert.deepEqual(r.stdout.match(/got \d+/g), ['got 15', 'got 2', 'got 15'], r.stdout + r.stderr);
    assert.equal(r.code, 137, r.stderr);
    // no signal killed everything: the SIGKILL came at the grace period's kill point (3 s of 4 s)
    const killedAt = shutdownLog(r.stderr).sigkillMs;
    assert.ok(killedAt !== undefined && killedAt >= 3000, `SIGKILL after ${killedAt} ms, before the grace period's kill point`);
    assert.match(r.stderr, /second SIGTERM: skipping/);
    assert.match(r.stderr, /shutdown: SIGINT from .* forwarded to the child/);
  });

  it("gives a double-forked daemon SIGTERM and time for its last words, then exits with the main child's code", async () => {
    const h = startHainit(['--', ...py('daemon.py')], { env: cleanEnv({ EXIT: '7' }) });
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    const r = await h.exited;
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, /daemon: last words/);
    assert.match(r.stderr, /1 process\(es\) left after the child exited: SIGTERM/);
  });

  it('also cleans up leftovers when the child exits by itself', async () => {
    const r = await runHainit(['--orphan-grace', '500ms', '--', 'sh', '-c', "sh -c 'trap \"\" TERM; sleep 60' & sleep 0.3; exit 4"]);
    assert.equal(r.code, 4, r.stderr);
    // TERM, then at --orphan-grace SIGKILL for the leftover that ignores it: hainit did not wait
    // for its 60 s sleep (the run's 20 s limit would have ended it first)
    assertInOrder(r.stderr, [/\d+ process\(es\) left after the child exited: SIGTERM, then SIGKILL after \d+ ms/, /SIGKILL to \d+ leftover process\(es\) that ignored SIGTERM/]);
    assert.equal(r.timedOut, false);
  });

  it('takes milliseconds when the child exits at once (the fast path)', async () => {
    const h = startHainit(['--log-level', 'debug', '--', 'sleep', '100']);
    await h.waitForOutput(/child started/, 10_000, 'stderr');
    await h.signal('TERM');
    const r = await h.exited;
    assert.equal(r.code, 143, r.stderr);
    // With no delay and no drains the stop signal goes at once, the child's death ends the
    // shutdown, and nothing waits on the grace period (30 s): read from hainit's own lines.
    const s = shutdownLog(r.stderr);
    assertInOrder(r.stderr, [/shutdown: SIGTERM from/, /sending SIGTERM to the child/, /child was killed by SIGTERM/, /shutdown: done in \d+ ms, exit code 143/]);
    assert.doesNotMatch(r.stderr, /within the grace period: SIGKILL/);
    assert.ok(s.doneMs !== undefined && s.doneMs < 1000, `shutdown done in ${s.doneMs} ms`);
  });

  it('forwards -r TERM:QUIT as the stop signal after the drain', async () => {
    const h = startHainit(['-r', 'TERM:QUIT', '--', ...py('graceful.py')]);
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    const r = await h.exited;
    assert.match(r.stdout, /got SIG 3 /);
  });

  it('drops SIGTERM entirely with -r TERM:0', async () => {
    const h = startHainit(['-v', '-r', 'TERM:0', '--', ...py('graceful.py')]);
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    await new Promise((r) => setTimeout(r, 500));
    assert.doesNotMatch(h.stdout, /got SIG/);
    await h.signal('INT');
    const r = await h.exited;
    // hainit says it dropped the TERM, and the child (which exits on the first signal it gets)
    // got only the INT, which began the shutdown: TERM neither reached it nor began one
    assertInOrder(r.stderr, [/SIGTERM from .* dropped \(--rewrite 15:0\)/, /shutdown: SIGINT from/]);
    assert.doesNotMatch(r.stderr, /shutdown: SIGTERM/);
    assert.deepEqual(r.stdout.match(/got SIG \d+/g), ['got SIG 2']);
  });

  it('warns at start-up when the delay and drains cannot fit in the grace period', async () => {
    const r = await runHainit(['--grace-period', '5s', '--shutdown-delay', '5s', '--', 'true']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /reach the --grace-period/);
  });
});

describe('start-up: --wait-for and --post-start', function () {
  this.timeout(30_000);
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('waits for a port that opens later, then starts the child', async () => {
    const port = await freePort();
    const h = startHainit(['--wait-for', `tcp://127.0.0.1:${port}`, '--', 'sh', '-c', 'echo started']);
    await new Promise((r) => setTimeout(r, 800));
    assert.doesNotMatch(h.stdout, /started/, 'the child must not start before the port opens');
    server = createServer((s) => s.destroy()).listen(port, '127.0.0.1');
    const r = await h.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /started/);
  });

  it('exits 125 naming what never came', async () => {
    const port = await freePort();
    const r = await runHainit(['--wait-for', `tcp://127.0.0.1:${port}`, '--wait-timeout', '1s', '--', 'sh', '-c', 'echo started']);
    assert.equal(r.code, 125);
    assert.doesNotMatch(r.stdout, /started/);
    assert.match(r.stderr, new RegExp(`never came.*tcp://127.0.0.1:${port}`));
  });

  it('refuses a malformed --wait-for with 125', async () => {
    const r = await runHainit(['--wait-for', 'localhost:80', '--', 'true']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /localhost:80/);
  });

  it('stops the child gracefully when --post-start fails and exits non-zero', async () => {
    const r = await runHainit(['--post-start', "sh -c 'sleep 0.5; exit 3'", '--', ...py('graceful.py')]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stdout, /got SIG 15 /, 'the child got a graceful SIGTERM');
    assert.match(r.stderr, /post-start failed \(exit code 3\)/);
  });
});

