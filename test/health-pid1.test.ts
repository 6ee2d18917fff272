import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { AddressInfo, Server, Socket, createServer, connect } from 'node:net';
import { freePort } from '../support/load';
import { cleanEnv, fixture, runHainit, startHainit, Running } from '../support/pid1';

interface Answer { status: number; body: string; headers: http.IncomingHttpHeaders; ms: number }

function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error(`${path}: no answer within 3 s`)));
    req.end();
  });
}


async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 8000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn().catch(() => false)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('probe endpoint, hainit as PID 1', function () {
  this.timeout(30_000);
  let h: Running | undefined;
  let port: number;
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    if (h) await h.kill();
    h = undefined;
  });

  async function startWithProbes(args: string[], command = ['python3', fixture('graceful.py')]): Promise<Running> {
    port = await freePort();
    h = startHainit(['--health-listen', `127.0.0.1:${port}`, ...args, '--', ...command]);
    await until('the probe endpoint', async () => (await request(port, '/livez')).status === 200);
    return h;
  }

  it('answers every path and method as the README section "The probe endpoint" says', async () => {
    await startWithProbes([]);
    await until('readiness', async () => (await request(port, '/readyz')).status === 200);
    for (const path of ['/livez', '/readyz', '/startupz', '/healthz']) {
      const r = await request(port, path);
      assert.equal(r.status, 200, path);
      assert.equal(r.body, 'ok');
      assert.equal(r.headers['cache-control'], 'no-store');
      const head = await request(port, path, { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.equal(head.body, '');
    }
    assert.equal((await request(port, '/livez', { method: 'POST' })).status, 405);
    assert.equal((await request(port, '/readyz', { method: 'DELETE' })).status, 405);
    assert.equal((await request(port, '/nope')).status, 404);
    assert.equal((await request(port, '/readyz/nope')).status, 404);
    const verbose = await request(port, '/readyz?verbose');
    assert.match(verbose.body, /\[\+\]child ok/);
    assert.match(verbose.body, /\[\+\]shutdown ok/);
    const excluded = await request(port, '/readyz?verbose&exclude=shutdown');
    assert.doesNotMatch(excluded.body, /\[\+\]shutdown ok/);
    assert.equal((await request(port, '/readyz/child')).body, 'ok');
    const json = await request(port, '/readyz', { headers: { accept: 'application/health+json' } });
    assert.match(String(json.headers['content-type']), /application\/health\+json/);
    assert.equal(JSON.parse(json.body).status, 'pass');
    const metrics = await request(port, '/metrics');
    assert.match(metrics.body, /^hainit_child_up 1$/m);
    assert.match(metrics.body, /hainit_phase\{phase="running"\} 1/);
  });

  it("keeps readiness false until the application's port opens, then flips it and /startupz once", async () => {
    const appPort = await freePort();
    await startWithProbes(['--ready-tcp', `127.0.0.1:${appPort}`]);
    await sleep(800);
    const before = await request(port, '/readyz?verbose');
    assert.equal(before.status, 503);
    assert.match(before.body, /\[-\]ready-tcp failed/);
    assert.equal((await request(port, '/startupz')).status, 503);
    assert.equal((await request(port, '/livez')).status, 200, 'liveness does not wait for readiness');
    const app = createServer((s) => s.destroy()).listen(appPort, '127.0.0.1');
    servers.push(app);
    await until('readiness', async () => (await request(port, '/readyz')).status === 200);
    // Checks run fast until readiness first passes: hainit's own line says when it passed, on its
    // clock. At the 5 s --check-interval it could not have passed before 5 s (the first check, at
    // the start, failed); the port opened at 0.8 s.
    const passed = /ready: readiness passed (\d+) ms after the child started/.exec(h?.stderr ?? '');
    assert.ok(passed && Number(passed[1]) >= 800 && Number(passed[1]) < 4000, `readiness passed ${passed?.[1]} ms after the child started (port opened at ~800 ms):\n${h?.stderr}`);
    assert.equal((await request(port, '/startupz')).status, 200);
    app.close();
    await sleep(1500);
    assert.equal((await request(port, '/startupz')).status, 200, '/startupz stays passed once it passed');
  });

  it('fails /readyz (check shutdown) while /livez stays 200 as soon as the signal is received', async () => {
    const r = await startWithProbes(['--shutdown-delay', '3s']);
    await until('readiness', async () => (await request(port, '/readyz')).status === 200);
    await r.signal('TERM');
    // The server catches up with the signal records before it answers, so readiness fails as soon
    // as hainit's signal handler has run (kill(2) returns before that: under load, a moment later).
    const took = await until('readiness to fail', async () => (await request(port, '/readyz')).status === 503, 2000);
    // Timed on purpose: readiness failing at once is what the shutdown delay is for (the endpoint's
    // removal starts with the signal), and 500 ms is the kubelet's probe bound.
    assert.ok(took < 500, `readiness failed ${took} ms after SIGTERM`);
    const ready = await request(port, '/readyz');
    assert.match(ready.body, /\[-\]shutdown failed/);
    assert.equal((await request(port, '/livez')).status, 200);
    assert.doesNotMatch(r.stdout, /got SIG/, 'the app has not been told to stop during the delay');
  });

  it('answers at once even when an application check never gets an answer', async () => {
    const blackHole = createServer(() => undefined).listen(0, '127.0.0.1');
    servers.push(blackHole);
    await new Promise((r) => blackHole.once('listening', r));
    const hole = (blackHole.address() as AddressInfo).port;
    await startWithProbes(['--ready-http', `http://127.0.0.1:${hole}/`, '--live-http', `http://127.0.0.1:${hole}/`, '--check-timeout', '10s', '--check-interval', '1s']);
    await sleep(1500);
    for (let i = 0; i < 10; i++) {
      for (const path of ['/livez', '/readyz', '/healthz', '/metrics']) {
        const r = await request(port, path);
        // a probe's answer time is the contract: the kubelet's bound (README "Reliability": p99 < 500 ms)
        assert.ok(r.ms < 500, `${path} took ${r.ms} ms`);
      }
    }
    assert.equal((await request(port, '/readyz')).status, 503);
  });

  it('is not starved by clients that send their headers slowly, or never', async () => {
    await startWithProbes([]);
    const slow: Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write('GET /livez HTTP/1.1\r\nHost: x\r\n');
      slow.push(s);
    }
    try {
      await sleep(300);
      for (let i = 0; i < 10; i++) {
        const r = await request(port, '/livez');
        assert.equal(r.status, 200);
        assert.ok(r.ms < 500, `probe took ${r.ms} ms with 50 slow clients`); // the kubelet's bound, as above
      }
    } finally {
      for (const s of slow) s.destroy();
    }
  });

  it('exits 125 naming the address when the port is in use, before starting the child', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    servers.push(busy);
    await new Promise((r) => busy.once('listening', r));
    const p = (busy.address() as AddressInfo).port;
    const r = await runHainit(['--health-listen', `127.0.0.1:${p}`, '--', 'sh', '-c', 'echo child-ran']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${p}`));
    assert.match(r.stderr, /EADDRINUSE|in use/);
    assert.doesNotMatch(r.stdout, /child-ran/);
  });

  it('stops the child gracefully and exits 125 when readiness never passes within --startup-timeout', async () => {
    const appPort = await freePort();
    const r = await runHainit(['--ready-tcp', `127.0.0.1:${appPort}`, '--startup-timeout', '1500ms', '--', 'python3', fixture('graceful.py')], { env: cleanEnv() });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stdout, /got SIG 15 /);
    assert.match(r.stderr, /ready-tcp/);
  });
});
