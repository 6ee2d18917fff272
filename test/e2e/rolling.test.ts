/**
 * A rolling update with zero failed requests, for real: replicas of examples/app under hainit in
 * Docker (`--network host`, each on its own loopback ports), behind a load balancer in this test
 * that follows each replica's /readyz the way Kubernetes Endpoints do: it polls every
 * POLL_MS, and what it sees reaches its routing table LAG_MS later (the propagation through the
 * API server, the endpoints controller and kube-proxy). Steady traffic runs while each old
 * replica is replaced: a new one is started, waited for in the table, then the old one gets
 * `docker stop -t 10`.
 *
 * With --shutdown-delay >= LAG_MS (+ one poll), the balancer has taken the old replica out before
 * the app receives SIGTERM and stops accepting: zero failed requests. With the delay at 0 the same
 * run fails requests (connections refused during the lag): the test can fail.
 *
 * The balancer does not retry (a retry would hide exactly what the test measures) and opens a
 * new connection per request, as kube-proxy's iptables rules send each new connection anew.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { AddressInfo, createServer } from 'node:net';

import { Engine, Images, images, needEngine } from '../../support/docker';

const POLL_MS = 100;
const LAG_MS = 1000;
const CONCURRENCY = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(port: number, p: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(timeoutMs, () => req.destroy());
  });
}

interface Replica { name: string; id: string; app: number; health: number; ready: boolean }

class Balancer {
  readonly replicas: Replica[] = [];
  private timer?: NodeJS.Timeout;
  private rr = 0;
  private server?: http.Server;
  port = 0;

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const live = this.replicas.filter((r) => r.ready);
      if (live.length === 0) {
        res.writeHead(503).end('no endpoint\n');
        return;
      }
      const to = live[this.rr++ % live.length];
      const up = http.request({ host: '127.0.0.1', port: to.app, path: req.url, method: req.method, agent: false }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502).end(`${to.name}: ${(err as NodeJS.ErrnoException).code}\n`);
        else res.destroy();
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server!.address() as AddressInfo).port;
    const poll = async () => {
      await Promise.all(this.replicas.map(async (r) => {
        const ok = (await get(r.health, '/readyz', POLL_MS * 5)) === 200;
        setTimeout(() => (r.ready = ok), LAG_MS); // what the probe saw reaches the table LAG_MS later
      }));
      if (this.timer) this.timer = setTimeout(poll, POLL_MS);
    };
    this.timer = setTimeout(poll, 0);
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    clearTimeout(t);
    await new Promise((r) => this.server?.close(r));
  }
}

interface Load { total: number; failed: number; statuses: Map<number, number> }

/** CONCURRENCY clients, one request after another each, until `stop()`. */
function steadyLoad(port: number): { done: Promise<Load>; stop: () => void } {
  let stopped = false;
  const load: Load = { total: 0, failed: 0, statuses: new Map() };
  const client = async () => {
    while (!stopped) {
      const s = await get(port, '/?ms=10', 5000);
      load.total++;
      if (s !== 200) load.failed++;
      load.statuses.set(s, (load.statuses.get(s) ?? 0) + 1);
    }
  };
  const done = Promise.all(Array.from({ length: CONCURRENCY }, client)).then(() => load);
  return { done, stop: () => (stopped = true) };
}

describe('e2e: a rolling update behind a load balancer that follows /readyz', function () {
  this.timeout(180_000);
  this.slow(60_000);
  let e: Engine;
  let img: Images;

  before(function () {
    this.timeout(300_000);
    e = needEngine(this);
    img = images(e);
  });

  afterEach(() => {
    const ids = e?.docker(['ps', '-aq', '--filter', 'label=e2e=rolling']).stdout.toString().split('\n').filter(Boolean) ?? [];
    if (ids.length) e.docker(['rm', '-f', ...ids]);
  });

  async function replica(lb: Balancer, name: string, delay: string): Promise<Replica> {
    const app = await freePort();
    const health = await freePort();
    const id = (await e.okAsync(['run', '-d', '--network', 'host', '--label', 'e2e=rolling', '--name', `rolling-${name}-${process.pid}`,
      '-e', `PORT=${app}`, '-e', `HAINIT_HEALTH_LISTEN=127.0.0.1:${health}`, '-e', `HAINIT_READY_TCP=${app}`,
      '-e', `HAINIT_SHUTDOWN_DELAY=${delay}`, '-e', 'HAINIT_GRACE_PERIOD=10s',
      img.hainit, 'node', '/app/server.js'])).trim();
    const r: Replica = { name, id, app, health, ready: false };
    lb.replicas.push(r);
    const until = Date.now() + 20_000;
    while (!r.ready) {
      assert.ok(Date.now() < until, `${name} never entered the balancer:\n${e.ok(['logs', id])}`);
      await sleep(50);
    }
    return r;
  }

  /** Two replicas, replaced one by one under steady traffic; the figures. */
  async function rollout(delay: string) {
    const lb = new Balancer();
    await lb.start();
    try {
      const old = [await replica(lb, 'a1', delay), await replica(lb, 'b1', delay)];
      const load = steadyLoad(lb.port);
      await sleep(500);
      const stops: Array<{ ms: number; code: number }> = [];
      for (const [i, o] of old.entries()) {
        await replica(lb, `${'ab'[i]}2`, delay);
        // Deleting a pod starts two things at once: the kubelet's shutdown (here docker stop), and the
        // endpoint's removal, which reaches the balancer LAG_MS later, like any readiness change.
        const t0 = Date.now();
        setTimeout(() => lb.replicas.splice(lb.replicas.indexOf(o), 1), LAG_MS);
        await e.okAsync(['stop', '-t', '10', o.id]);
        stops.push({ ms: Date.now() - t0, code: Number((await e.okAsync(['inspect', '-f', '{{.State.ExitCode}}', o.id])).trim()) });
        await sleep(Math.max(0, LAG_MS - (Date.now() - t0)));
      }
      await sleep(500);
      load.stop();
      const l = await load.done;
      const figures = `shutdown delay ${delay}, lag ${LAG_MS} ms: ${l.total} requests, ${l.failed} failed ` +
        `(${[...l.statuses].map(([s, n]) => `${s || 'error'}: ${n}`).join(', ')}); docker stop -t 10 took ${stops.map((s) => `${s.ms} ms (exit ${s.code})`).join(', ')}`;
      console.log(`      ${figures}`);
      return { load: l, stops };
    } finally {
      await lb.stop();
    }
  }

  it('with --shutdown-delay 2s (>= the 1 s lag): zero failed requests, and each old replica exits 0 before docker stop\'s timeout', async () => {
    const { load, stops } = await rollout('2s');
    assert.ok(load.total > 200, `steady traffic: ${load.total} requests`);
    assert.equal(load.failed, 0);
    for (const s of stops) {
      // 0 is the app's own exit: Docker's SIGKILL at 10 s would have made it 137
      assert.equal(s.code, 0, 'the app drained and exited by itself');
      assert.ok(s.ms >= 2000, `${s.ms} ms: after the delay`);
    }
  });

  it('the same rollout with --shutdown-delay 0 fails requests: the balancer still routes to a replica that stopped accepting', async () => {
    const { load, stops } = await rollout('0s');
    assert.ok(load.failed > 0, 'requests failed during the propagation lag');
    for (const s of stops) assert.equal(s.code, 0);
  });
});
