import { strict as assert } from 'node:assert';
import { Server, Socket, createServer } from 'node:net';
import { PYTHON, assertInOrder, cleanEnv, fixture, shutdownLog, startHainit } from '../../support/pid1';
import { freePort, get, namespaceProcesses, percentile, round, until } from '../../support/load';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reliability: hung and failing dependencies', function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  const conns: Socket[] = [];
  afterEach(() => {
    for (const c of conns.splice(0)) c.destroy();
    for (const s of servers.splice(0)) s.close();
  });

  /** A port that accepts connections and never answers a byte. */
  async function blackHole(): Promise<number> {
    const port = await freePort();
    const s = createServer((c) => {
      conns.push(c);
      c.on('error', () => undefined);
      c.resume(); // reads (and so sees the checker hang up), never writes
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
    return port;
  }

  it('checks against a silent port, an unresolvable name and a command that never exits: probes stay fast, no check process piles up', async () => {
    const hole = await blackHole();
    const port = await freePort();
    const h = startHainit([
      '--health-listen', `127.0.0.1:${port}`, '--check-interval', '300ms', '--check-timeout', '400ms', '--failure-threshold', '1',
      '--ready-http', `http://127.0.0.1:${hole}/ready`, '--ready-http', 'http://nonexistent.invalid/', '--ready-exec', 'sleep 1000',
      '--ready-tcp', `127.0.0.1:${hole}`,
      '--', PYTHON, fixture('graceful.py'),
    ], { timeoutMs: 40_000 });
    await until('the probe endpoint', async () => (await get(port, '/livez')).status === 200);
    const pid = await h.hostPid();
    const lat: number[] = [];
    const sleeps: number[] = [];
    const t0 = Date.now();
    let verbose = '';
    while (Date.now() - t0 < 4000) {
      const live = await get(port, '/livez', 1000);
      const ready = await get(port, '/readyz?verbose', 1000);
      assert.equal(live.status, 200);
      assert.equal(ready.status, 503);
      verbose = ready.body;
      lat.push(live.ms, ready.ms);
      sleeps.push(namespaceProcesses(pid).filter((p) => p.comm === 'sleep').length);
      await sleep(50);
    }
    console.log(`      ${lat.length} probes over 4 s of hung checks: p50 ${round(percentile(lat, 50))} ms, p99 ${round(percentile(lat, 99))} ms, max ${round(Math.max(...lat))} ms; exec-check processes alive at once: at most ${Math.max(...sleeps)}`);
    // every check failed on its timeout, the black hole's TCP connect passes
    assert.match(verbose, /\[-\]ready-http failed/);
    assert.match(verbose, /\[-\]ready-http-2 failed/);
    assert.match(verbose, /\[-\]ready-exec failed/);
    assert.match(verbose, /\[\+\]ready-tcp ok/);
    // the timed-out exec checks were killed: at most the current one runs
    assert.ok(Math.max(...sleeps) <= 1, `exec-check processes alive at once: ${sleeps.join(',')}`);
    // the connections to the black hole were given up, not left open one per check
    assert.ok(conns.filter((c) => !c.destroyed).length <= 3, `${conns.filter((c) => !c.destroyed).length} connections to the silent port still open`);
    await h.signal('TERM');
    const r = await h.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /timed out|timeout/i);
  });

  it('drain commands that hang or leave children behind are killed with their process group on their timeout, nothing is left', async () => {
    const h = startHainit([
      '--pre-stop', "sh -c 'sleep 100 & sleep 100'", '--pre-stop', 'sleep 100', '--pre-stop-timeout', '700ms', '--grace-period', '15s',
      '--', PYTHON, fixture('graceful.py'),
    ], { env: cleanEnv({ LINGER: '2' }), timeoutMs: 30_000 });
    await h.waitForOutput(/ready/);
    const pid = await h.hostPid();
    const t0 = Date.now();
    await h.signal('TERM');
    // the stop signal reaches the child after both drain commands timed out; it then lingers 2 s
    await h.waitForOutput(/got SIG 15/, 10_000);
    const stopAt = Date.now() - t0;
    await sleep(300);
    const left = namespaceProcesses(pid).filter((p) => !/python/.test(p.comm));
    const r = await h.exited;
    console.log(`      drain: stop signal after ${stopAt} ms, hainit done after ${Date.now() - t0} ms; left during the child's linger: ${JSON.stringify(left)}`);
    assert.deepEqual(left, [], 'drain command processes left behind');
    assert.equal(r.code, 0, r.stderr);
    assertInOrder(r.stderr, [
      /pre-stop\[1\] timed out after 700 ms: killing its process group/,
      /pre-stop\[2\] timed out after 700 ms: killing its process group/,
      /shutdown: sending SIGTERM to the child after \d+ ms/,
      /shutdown: done in \d+ ms, exit code 0/,
    ]);
    assert.ok(stopAt >= 1400, `the stop signal came after ${stopAt} ms, before both drain timeouts`);
    // within the grace period, by hainit's own clock: the lingering child exited by itself, no SIGKILL
    const s = shutdownLog(r.stderr);
    assert.ok(s.stopSignalMs !== undefined && s.stopSignalMs >= 1400, `stop signal at ${s.stopSignalMs} ms`);
    assert.doesNotMatch(r.stderr, /within the grace period: SIGKILL/);
    assert.ok(s.doneMs !== undefined && s.doneMs < 15_000, `shutdown done in ${s.doneMs} ms (grace period 15 s)`);
  });
});
