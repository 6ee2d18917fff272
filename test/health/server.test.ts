import { CancelController } from '../../src/cancel';
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import { Config } from '../../src/config/config';
import { parseInvocation } from '../../src/config/parse';
import { UsageError } from '../../src/config/values';
import { startHealth } from '../../src/health';
import { CheckRegistry } from '../../src/health/registry';
import { httpProbe, tcpProbe } from '../../src/health/runners';
import { SERVER_LIMITS, createHealthServer, listen } from '../../src/health/server';
import { CommandDeps } from '../../src/supervisor/command';
import { FakeClock } from '../unit/fake-clock';
import { FakeLifecycle, quiet } from './fakes';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A real server on 127.0.0.1, a fake lifecycle and one scripted readiness check. */
async function fixture(checkName = 'ready-http') {
  const clock = new FakeClock();
  const life = new FakeLifecycle();
  let appReady = false;
  const registry = new CheckRegistry(
    { lifecycle: life, clock, log: quiet, timing: { intervalMs: 1_000, timeoutMs: 500, failureThreshold: 1, successThreshold: 1 }, startupTimeoutMs: undefined },
    [{ name: checkName, kind: 'ready', probe: async () => ({ ok: appReady, reason: 'HTTP status 500 from 10.1.2.3' }) }],
  );
  registry.attach();
  const server = createHealthServer({ checksFor: (e) => registry.checksFor(e), metrics: () => 'hainit_child_up 1\n', log: quiet, clock });
  const { port } = await listen(server, { host: '127.0.0.1', port: 0 }, quiet);
  const setReady = async (v: boolean) => {
    appReady = v;
    await clock.runUntil(clock.now() + 1_000);
  };
  const close = () => {
    registry.close();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  };
  return { clock, life, registry, server, port, setReady, close };
}

describe('health: HTTP server', function () {
  let f: Awaited<ReturnType<typeof fixture>>;
  beforeEach(async () => (f = await fixture()));
  afterEach(() => f.close());

  it('a plain probe answer follows every flip of a check (answers are prepared once per state, per server)', async () => {
    const a = await fixture();
    const b = await fixture('ready-tcp');
    try {
      for (const f of [a, b]) {
        f.life.enter('running');
        await f.setReady(true); // the startup gate opens for good
      }
      const seen: string[] = [];
      for (const ready of [true, false, true, false]) {
        await a.setReady(ready);
        await b.setReady(!ready);
        for (const f of [a, b]) {
          const r = await request(f.port, 'GET', '/readyz');
          const h = await request(f.port, 'HEAD', '/readyz');
          assert.equal(h.status, r.status);
          seen.push(`${r.status} ${r.body.split('\n')[0]}`);
        }
      }
      assert.deepEqual(seen, [
        '200 ok', '503 [-]ready-tcp failed', '503 [-]ready-http failed', '200 ok',
        '200 ok', '503 [-]ready-tcp failed', '503 [-]ready-http failed', '200 ok',
      ]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('before the application is ready: /livez 200, /readyz and /startupz 503', async () => {
    f.life.enter('running');
    const live = await request(f.port, 'GET', '/livez');
    assert.equal(live.status, 200);
    assert.equal(live.body, 'ok');
    const ready = await request(f.port, 'GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body, '[-]startup failed\n[-]ready-http failed\nreadyz check failed\n');
    assert.ok(!ready.body.includes('10.1.2.3'), 'reasons never reach the wire');
    assert.equal((await request(f.port, 'GET', '/startupz')).status, 503);
  });

  it('once ready: every probe 200; when draining: /readyz 503 [-]shutdown, /livez still 200', async () => {
    f.life.enter('running');
    await f.setReady(true);
    for (const p of ['/livez', '/readyz', '/startupz', '/healthz']) {
      const r = await request(f.port, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body, 'ok', p);
    }
    f.life.enter('draining');
    const ready = await request(f.port, 'GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body, '[-]shutdown failed\nreadyz check failed\n');
    assert.equal((await request(f.port, 'GET', '/livez')).status, 200);
    assert.equal((await request(f.port, 'GET', '/startupz')).status, 200, 'the gate stays open');
  });

  it('GET and HEAD on every path: same status and headers, HEAD without a body, never cached', async () => {
    f.life.enter('running');
    for (const p of ['/livez', '/readyz', '/startupz', '/healthz', '/metrics', '/livez/child', '/readyz/ready-http', '/startupz/startup', '/healthz/shutdown']) {
      const get = await request(f.port, 'GET', p);
      const head = await request(f.port, 'HEAD', p);
      assert.ok(get.status === 200 || get.status === 503, `${p}: ${get.status}`);
      assert.equal(head.status, get.status, p);
      assert.equal(head.body, '', p);
      assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)), p);
      for (const r of [get, head]) {
        assert.equal(r.headers['cache-control'], 'no-store', p);
        assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
        assert.equal(r.headers['server'], undefined, p);
      }
    }
  });

  it('other methods: 405 with Allow; a request body is not read and the connection closes', async () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const p of ['/livez', '/readyz/child', '/metrics']) {
        const r = await request(f.port, m, p, { 'content-type': 'text/plain' }, m === 'POST' ? 'x'.repeat(100_000) : undefined);
        assert.equal(r.status, 405, `${m} ${p}`);
        assert.equal(r.headers.allow, 'GET, HEAD');
        if (m === 'POST') assert.equal(r.headers.connection, 'close');
      }
    }
  });

  it('unknown paths and checks: 404', async () => {
    for (const p of ['/', '/health', '/livezz', '/livez/nope', '/livez/shutdown', '/startupz/child', '/readyz/child/x', '/metrics/x', '/%zz', '/../livez/x']) {
      const r = await request(f.port, 'GET', p);
      assert.equal(r.status, 404, p);
      assert.equal(r.body, 'not found\n');
    }
    assert.equal((await request(f.port, 'POST', '/nope')).status, 404, 'a path that does not exist is 404 whatever the method');
  });

  it('?verbose, ?exclude= and per-check paths', async () => {
    f.life.enter('running');
    const v = await request(f.port, 'GET', '/readyz?verbose');
    assert.equal(v.body, '[+]child ok\n[+]shutdown ok\n[-]startup failed\n[-]ready-http failed\nreadyz check failed\n');
    const ex = await request(f.port, 'GET', '/readyz?exclude=startup&exclude=ready-http');
    assert.equal(ex.status, 200);
    assert.equal(ex.body, 'ok');
    const exv = await request(f.port, 'GET', '/readyz?verbose=1&exclude=startup,ready-http&exclude=bogus');
    assert.equal(exv.body, '[+]child ok\n[+]shutdown ok\n[+]startup excluded: ok\n[+]ready-http excluded: ok\nwarn: some health checks cannot be excluded: no matches for "bogus"\nreadyz check passed\n');
    const one = await request(f.port, 'GET', '/readyz/child');
    assert.equal(one.status, 200);
    assert.equal(one.body, 'ok');
    const bad = await request(f.port, 'GET', '/readyz/ready-http');
    assert.equal(bad.status, 503);
    assert.equal(bad.body, '[-]ready-http failed\nreadyz/ready-http check failed\n');
    const absolute = await request(f.port, 'GET', 'http://example.com/livez?verbose');
    assert.equal(absolute.body, '[+]child ok\nlivez check passed\n');
  });

  it('Accept: application/health+json', async () => {
    f.life.enter('running');
    await f.setReady(true);
    const r = await request(f.port, 'GET', '/readyz', { accept: 'application/health+json' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/health+json');
    assert.equal(r.headers.vary, 'Accept');
    const body = JSON.parse(r.body);
    assert.equal(body.status, 'pass');
    assert.deepEqual(Object.keys(body.checks), ['child', 'shutdown', 'startup', 'ready-http:responseTime']);
    assert.ok(!Number.isNaN(Date.parse(body.checks.child[0].time)));
    f.life.enter('draining');
    const d = JSON.parse((await request(f.port, 'GET', '/readyz', { accept: 'application/health+json' })).body);
    assert.equal(d.status, 'fail');
    assert.equal(d.checks.shutdown[0].status, 'fail');
  });

  it('/metrics: Prometheus text format', async () => {
    const r = await request(f.port, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(r.body, 'hainit_child_up 1\n');
  });

  it('a slow-header client does not hold up a probe, and is closed once idle for the idle timeout', async () => {
    const slow = net.connect(f.port, '127.0.0.1');
    await new Promise((r) => slow.once('connect', r));
    slow.write('GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    let slowReply = '';
    slow.on('data', (c) => (slowReply += c));
    const t0 = Date.now();
    const closed = new Promise<void>((r) => slow.once('close', () => r()));
    const probe = await request(f.port, 'GET', '/livez');
    assert.equal(probe.status, 200);
    assert.equal(slow.destroyed, false, 'the probe was answered while the slow client still held its connection');
    await closed;
    const after = Date.now() - t0;
    assert.ok(after >= SERVER_LIMITS.idleTimeoutMs - 100, `closed after ${after} ms`);
    // 408 from node:http's header timeout (few connections: not tracked), or closed without a word
    assert.match(slowReply, /^(HTTP\/1\.1 408 |$)/);
  }).timeout(SERVER_LIMITS.idleTimeoutMs + SERVER_LIMITS.idleJitterMs + 8_000);

  it('oversized headers: 431, nothing about the host', async () => {
    const r = await request(f.port, 'GET', '/livez', { 'x-big': 'a'.repeat(SERVER_LIMITS.maxHeaderBytes + 1) });
    assert.equal(r.status, 431);
    assert.equal(r.body, '');
  });

  it('a malformed request: 400 and a closed connection', async () => {
    const s = net.connect(f.port, '127.0.0.1');
    let reply = '';
    s.on('data', (c) => (reply += c));
    s.write('BLAH\x01 / HTTP/9\r\n\r\n');
    await new Promise((r) => s.once('close', r));
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.doesNotMatch(reply, /at |node|\/work\//);
  });

  it('the port already taken: a UsageError naming the address and the error', async () => {
    const other = createHealthServer({ checksFor: () => [], metrics: () => '', log: quiet, clock: new FakeClock() });
    await assert.rejects(listen(other, { host: '127.0.0.1', port: f.port }, quiet), (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, `--health-listen 127.0.0.1:${f.port}: cannot listen: address already in use (EADDRINUSE)`);
      return true;
    });
  });
});

describe('health: probes of the application (real sockets)', () => {
  const servers: net.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  async function serve(handler: http.RequestListener | 'hang'): Promise<{ port: number; server: net.Server; open: Set<net.Socket> }> {
    const open = new Set<net.Socket>();
    // The hanging server reads (and ignores) what comes, so it sees the client go away.
    const server = handler === 'hang' ? net.createServer((s) => s.resume()) : http.createServer(handler);
    server.on('connection', (s: net.Socket) => {
      open.add(s);
      s.on('close', () => open.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    servers.push(server);
    server.on('close', () => open.forEach((s) => s.destroy()));
    const done = server.close.bind(server);
    server.close = ((cb?: (err?: Error) => void) => {
      open.forEach((s) => s.destroy());
      return done(cb);
    }) as typeof server.close;
    return { port: (server.address() as AddressInfo).port, server, open };
  }

  it('http: 200-399 pass (redirects are not followed), other codes fail', async () => {
    const codes = [200, 204, 302, 399, 400, 404, 500, 503];
    let i = 0;
    const { port } = await serve((_req, res) => {
      res.writeHead(codes[i++], codes[i - 1] === 302 ? { location: 'http://192.0.2.1/' } : {});
      res.end();
    });
    const results: boolean[] = [];
    for (let n = 0; n < codes.length; n++) results.push((await httpProbe(`http://127.0.0.1:${port}/ready`)(new CancelController().signal)).ok);
    assert.deepEqual(results, [true, true, true, true, false, false, false, false]);
  });

  it('tcp: an open port passes; a closed one fails naming the error', async () => {
    const { port } = await serve('hang');
    assert.deepEqual(await tcpProbe('127.0.0.1', port)(new CancelController().signal), { ok: true });
    const free = await serve('hang');
    free.server.close();
    await new Promise((r) => setTimeout(r, 50));
    const r = await tcpProbe('127.0.0.1', free.port)(new CancelController().signal);
    assert.equal(r.ok, false);
    assert.match(r.reason ?? '', /ECONNREFUSED/);
  });

  it('an aborted http run settles at once and drops its connection', async () => {
    const hung = await serve('hang');
    const abort = new CancelController();
    const run = httpProbe(`http://127.0.0.1:${hung.port}/`)(abort.signal);
    while (hung.open.size === 0) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    const r = await run;
    assert.equal(r.ok, false);
    while (hung.open.size > 0) await new Promise((r) => setTimeout(r, 10));
  });

  function configFor(args: string[]): Config {
    const inv = parseInvocation([...args, 'app'], {});
    if (inv.kind !== 'run') throw new Error('not a run');
    return { ...inv.config, healthListen: { host: '127.0.0.1', port: 0 } };
  }
  const noCommands = {} as CommandDeps;

  it('a check whose target never answers leaves every probe answering at once', async () => {
    const hung = await serve('hang');
    const life = new FakeLifecycle();
    const health = await startHealth({
      config: configFor(['--ready-http', `http://127.0.0.1:${hung.port}/`, '--live-tcp', `${hung.port}`, '--check-timeout', '30s']),
      log: quiet, lifecycle: life, reaper: { orphansReaped: 0 }, commands: noCommands,
    });
    try {
      life.enter('running');
      while (hung.open.size === 0) await new Promise((r) => setTimeout(r, 10));
      const port = (health.address as AddressInfo).port;
      for (const p of ['/readyz', '/livez', '/startupz', '/healthz?verbose', '/metrics']) {
        const r = await request(port, 'GET', p);
        assert.ok([200, 503].includes(r.status), p);
        assert.ok(hung.open.size > 0, `${p} answered while the check's request was still hanging`);
      }
      assert.equal((await request(port, 'GET', '/readyz/ready-http')).status, 503);
    } finally {
      await health.close();
    }
  });

  it('readiness flips when the application starts listening; /startupz flips once', async () => {
    const app = await serve('hang');
    const appPort = app.port;
    app.server.close();
    const life = new FakeLifecycle();
    const health = await startHealth({
      config: configFor(['--ready-tcp', `127.0.0.1:${appPort}`]),
      log: quiet, lifecycle: life, reaper: { orphansReaped: 0 }, commands: noCommands,
    });
    let readyEvents = 0;
    health.on('ready', () => readyEvents++);
    try {
      life.enter('running');
      const port = (health.address as AddressInfo).port;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await request(port, 'GET', '/readyz')).status, 503);
      assert.equal((await request(port, 'GET', '/startupz')).status, 503);
      const late = net.createServer();
      await new Promise<void>((r) => late.listen(appPort, '127.0.0.1', () => r()));
      servers.push(late);
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await request(port, 'GET', '/readyz')).status;
      }
      assert.equal(status, 200);
      assert.equal((await request(port, 'GET', '/startupz')).status, 200);
      assert.equal(health.startupPassed, true);
      assert.equal(readyEvents, 1);
      const metrics = await request(port, 'GET', '/metrics');
      assert.match(metrics.body, /^hainit_check_up\{check="ready-tcp"\} 1$/m);
      assert.match(metrics.body, /^hainit_child_memory_rss_bytes \d+$/m);
    } finally {
      await health.close();
    }
  });

  it('without --health-listen nothing listens, but the gate still works', async () => {
    const life = new FakeLifecycle();
    const inv = parseInvocation(['app'], {});
    if (inv.kind !== 'run') throw new Error('not a run');
    const health = await startHealth({ config: inv.config, log: quiet, lifecycle: life, reaper: { orphansReaped: 0 }, commands: noCommands });
    assert.equal(health.address, undefined);
    life.enter('running');
    assert.equal(health.startupPassed, true);
    await health.close();
  });
});
