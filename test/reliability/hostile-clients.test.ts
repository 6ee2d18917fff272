import { strict as assert } from 'node:assert';
import { Socket, connect } from 'node:net';
import { SERVER_LIMITS } from '../../src/health/server';
import { spawnSync } from 'node:child_process';
import { HAINIT, PYTHON, Running, fixture, startHainit } from '../../support/pid1';
import { Attackers, HostileKind, ProbeWindow, fdCount, freePort, get, kubeletAddress, percentile, probeWindow, round, rssKb, settled, startAttackers, until } from '../../support/load';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every socket opened here, destroyed in afterEach whatever happened. */
const sockets = new Set<Socket>();
function open(port: number): Socket {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  return s;
}

function closedWithin(s: Socket, ms: number): Promise<boolean> {
  if (s.destroyed || s.readyState === 'closed') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Writes `data` on a fresh connection and collects what comes back until the server closes it. */
function exchange(port: number, data: Buffer | string, timeoutMs = 5000): Promise<{ reply: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = open(port);
    let reply = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve({ reply, closed: false });
    }, timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (d: string) => (reply += d));
    s.on('close', () => {
      clearTimeout(t);
      resolve({ reply, closed: true });
    });
    s.on('connect', () => s.write(data));
  });
}

describe('reliability: hostile probe clients', function () {
  this.timeout(60_000);
  let h: Running;
  let port: number;
  let pid: number;
  let rssBaseline: number;
  let fdBaseline: number;
  /** how much bigger hainit may be after a test (the pipelined flood sets its own) */
  let rssAllowanceKb: number;

  // one hainit per test: the pid1 helper kills every hainit after each test
  beforeEach(async () => {
    port = await freePort();
    h = startHainit(['--health-listen', `127.0.0.1:${port}`, '--', PYTHON, fixture('graceful.py')], { timeoutMs: 120_000 });
    await until('the probe endpoint', async () => (await get(port, '/readyz')).status === 200);
    pid = await h.hostPid();
    for (let i = 0; i < 300; i++) await get(port, '/livez');
    await sleep(200);
    rssBaseline = rssKb(pid);
    fdBaseline = fdCount(pid);
    rssAllowanceKb = 64 * 1024;
  });
  afterEach(async function () {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (this.currentTest?.state !== 'passed') return;
    // every connection the server had is gone again, and hainit is as big as it was (roughly)
    await until('hainit closed every connection', () => fdCount(pid) <= fdBaseline, 8000).catch(() => undefined);
    const fds = fdCount(pid);
    const rss = rssKb(pid);
    console.log(`      afterwards: hainit fds ${fdBaseline} -> ${fds}, RSS ${rssBaseline} -> ${rss} kB`);
    await h.signal('TERM');
    const r = await h.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fds <= fdBaseline, `hainit holds ${fds - fdBaseline} more descriptors than before the hostile clients`);
    assert.ok(rss - rssBaseline < rssAllowanceKb, `RSS ${rssBaseline} -> ${rss} kB`);
  });

  // Found with this test (issue 7): the server answered a silent connection's headers timeout
  // with socket.end(408), which only half-closes: the socket stayed open (and counted against
  // maxConnections, 256 then) until the client closed its side, and a client that never reads
  // never does. Since issue 14 a new connection is never refused (the least recently active one
  // makes room at the cap), and an idle connection is closed outright after the idle timeout.
  it('thousands of idle connections that never read: every probe answers meanwhile, and hainit lets go of the sockets after the idle timeout', async () => {
    const idle: Socket[] = [];
    for (let i = 0; i < 2000; i++) idle.push(open(port)); // no 'data' listener: they never read
    await until('hainit to hold the idle connections', () => fdCount(pid) >= fdBaseline + 1900, 20_000);
    const t0 = Date.now();
    const w = await probeWindow(port, pid, 3000, 50);
    const deadline = SERVER_LIMITS.idleTimeoutMs + SERVER_LIMITS.idleJitterMs + 3000;
    await until('hainit to let go of the idle sockets', () => fdCount(pid) <= fdBaseline + 5, deadline).catch(() => undefined);
    const fds = fdCount(pid);
    console.log(
      `      2000 idle connections: ${w.latencies.length} probes, ${w.failed} failed ${JSON.stringify(w.failures)}, p99 ${round(percentile(w.latencies, 99))} ms;` +
        ` hainit fds ${fdBaseline} -> ${fds} ${Date.now() - t0} ms after they connected`,
    );
    assert.equal(w.failed, 0, `probes failed while idle clients held 2000 connections: ${JSON.stringify(w.failures)}`);
    assert.ok(fds <= fdBaseline + 5, `hainit still holds ${fds - fdBaseline} sockets of the idle clients`);
    assert.equal((await get(port, '/livez')).status, 200);
  });

  it('slow headers (slowloris): probes answer while they drip, and they are closed 10-15 s after they came', async () => {
    const slow: Socket[] = [];
    for (let i = 0; i < 100; i++) {
      const s = open(port);
      s.resume(); // reads, so it sees the server close
      s.on('connect', () => s.write('GET /livez HTTP/1.1\r\nHost: x\r\n'));
      slow.push(s);
    }
    const drip = setInterval(() => {
      for (const s of slow) if (!s.destroyed && s.writable) s.write('X-a: b\r\n');
    }, 200);
    try {
      const lat: number[] = [];
      const t0 = Date.now();
      while (Date.now() - t0 < 1500) {
        const a = await get(port, '/livez', 2000);
        assert.equal(a.status, 200);
        lat.push(a.ms);
      }
      clearInterval(drip);
      const limit = SERVER_LIMITS.idleTimeoutMs + SERVER_LIMITS.idleJitterMs + 4000;
      const closed = await Promise.all(slow.map((s) => closedWithin(s, limit)));
      console.log(`      100 slowloris clients: ${lat.length} probes meanwhile, p99 ${round(percentile(lat, 99))} ms; all closed ${Date.now() - t0} ms after they came`);
      assert.equal(closed.filter((c) => !c).length, 0, 'slowloris connections still open');
    } finally {
      clearInterval(drip);
    }
  });

  it('oversized headers get 431 (or 400), garbage gets 400 or a close, and the server goes on', async () => {
    const big = `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(12 * 1024)}\r\n\r\n`;
    const many = `GET /livez HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 500 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`;
    const replies = await Promise.all([...Array(50).fill(big), ...Array(20).fill(many)].map((d) => exchange(port, d)));
    for (const r of replies.slice(0, 50)) {
      assert.ok(r.closed, 'an oversized request left the connection open');
      assert.match(r.reply, /^(HTTP\/1\.1 (431|400) |$)/, `oversized headers: ${r.reply.slice(0, 80)}`);
    }
    assert.ok(replies.slice(0, 50).some((r) => /^HTTP\/1\.1 431 /.test(r.reply)), 'no 431 at all');
    // many small headers: maxHeadersCount keeps only the first ones; the size limit may also apply
    for (const r of replies.slice(50)) assert.match(r.reply, /^HTTP\/1\.1 (200|431|400) /, `500 headers: ${r.reply.slice(0, 80)}`);

    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 8) & 0xff;
    const garbage = [
      ...Array.from({ length: 60 }, (_, i) => Buffer.from(Array.from({ length: 16 + i * 50 }, rand))),
      Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'), // a TLS ClientHello
      Buffer.from('GET /livez HTTP/9.9\r\n\r\n'),
      Buffer.from('GET /livez HTTP/1.1\r\nContent-Length: -1\r\n\r\n'),
      Buffer.from('GET /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
      Buffer.from('GET /%%%%% HTTP/1.1\r\n\r\n'),
      Buffer.from('\r\n\r\n\r\n'),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    ];
    const g = await Promise.all(garbage.map((d) => exchange(port, d)));
    for (const [i, r] of g.entries()) {
      assert.doesNotMatch(r.reply, /at .*\.js|node:|Error:|Node\.js/i, `garbage #${i} leaked details: ${r.reply.slice(0, 200)}`);
      assert.match(r.reply, /^(HTTP\/1\.1 \d{3} |$)/, `garbage #${i}: ${r.reply.slice(0, 80)}`);
    }
    assert.equal((await get(port, '/livez')).status, 200);
    assert.equal((await get(port, '/readyz')).status, 200);
  });

  it('a pipelined flood on one connection is answered in order while fresh probes answer in milliseconds', async () => {
    // Found with this test (issue 7): node:http answers pipelined requests synchronously, so one
    // pipelining client held PID 1's event loop (fresh probes ~250 ms p50). A probe never
    // pipelines: a connection with more than SERVER_LIMITS.maxPipelined requests parsed in one
    // turn of the event loop is dropped, after answering those in order.
    rssAllowanceKb = 160 * 1024;
    const n = 20_000;
    const flood = Buffer.from('GET /livez HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n));
    const s = open(port);
    let got = 0;
    let ok = 0;
    let tail = '';
    const done = new Promise<void>((resolve) => {
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        const text = tail + d;
        let i = text.indexOf('HTTP/1.1 ');
        let last = 0;
        while (i >= 0 && i + 12 <= text.length) {
          got++;
          if (text.startsWith('200', i + 9)) ok++;
          last = i + 12;
          i = text.indexOf('HTTP/1.1 ', last);
        }
        tail = text.slice(Math.max(last, text.length - 16));
        if (got >= n) resolve();
      });
      s.on('close', () => resolve());
    });
    s.on('connect', () => s.write(flood));
    const lat: number[] = [];
    let flooding = true;
    const prober = (async () => {
      while (flooding) {
        // the kubelet's default timeoutSeconds is 1
        const a = await get(port, '/readyz', 1000);
        assert.equal(a.status, 200);
        lat.push(a.ms);
      }
    })();
    const t0 = Date.now();
    let rssMax = 0;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKb(pid))), 50);
    // Probes go on for a fixed window that covers the flood and what follows it.
    await Promise.all([Promise.race([done, sleep(20_000)]), sleep(1500)]);
    clearInterval(sampler);
    flooding = false;
    await prober;
    s.destroy();
    // a second one that never reads: the server must stop parsing (backpressure), not buffer answers
    const deaf = open(port);
    deaf.on('connect', () => deaf.write(flood));
    await sleep(1500);
    const deafRss = rssKb(pid);
    assert.equal((await get(port, '/readyz', 3000)).status, 200);
    deaf.destroy();
    await sleep(1000);
    const rssAfter = rssKb(pid);
    console.log(
      `      pipelined: ${got}/${n} answers in ${Date.now() - t0} ms; ${lat.length} fresh probes meanwhile, p50 ${round(percentile(lat, 50))} ms,` +
        ` p99 ${round(percentile(lat, 99))} ms; RSS ${rssBaseline} kB, at most ${rssMax} kB during, ${deafRss} kB with a non-reading pipeliner, ${rssAfter} kB after`,
    );
    assert.ok(got >= 1 && got < n, `the flood was cut short: ${got} of ${n} answered`);
    assert.equal(ok, got, 'what was answered was answered in order, 200 each');
    assert.ok(lat.length >= 3, 'fresh probes during the flood');
    // the kubelet-visible bound of issue 14 (timings are the bench's business, bench/RESULTS.md)
    assert.ok(percentile(lat, 99) < 500, `fresh probes p99 ${percentile(lat, 99)} ms during the flood`);
    assert.ok(Math.max(...lat) < 1000, `slowest fresh probe ${Math.max(...lat)} ms (the kubelet's timeout is 1 s)`);
    assert.ok(rssMax - rssBaseline < 160 * 1024, `RSS ${rssBaseline} -> ${rssMax} kB during the pipelined flood`);
    assert.ok(deafRss - rssBaseline < 160 * 1024, `RSS ${rssBaseline} -> ${deafRss} kB with a pipeliner that never reads`);
  });
});

/**
 * Issue 14: what the kubelet sees while hostile clients use the port, each class in its own
 * processes (test/fixtures/hostile.js, reconnecting at once whenever cut) against hainit as PID 1:
 * a fresh connection and GET /livez every 50 ms with the kubelet's 1 s timeout. The bound is the
 * kubelet's: p99 under 500 ms, a failed probe counting as 1000 ms (so more than 1% failures fail
 * the test), and hainit's RSS under 150 MB throughout. Before issue 14 every one of these made
 * every fresh probe fail (ECONNRESET at the 256-connection cap) or time out (the pipeliners).
 */
describe('reliability: hostile clients, as the kubelet sees them (issue 14)', function () {
  this.timeout(120_000);
  // hainit listens on every address, as by default; the attackers come from the loopback (a
  // sidecar), the probes from an address of their own, as the kubelet's do (from the node)
  let kubelet: ReturnType<typeof kubeletAddress>;
  before(() => {
    kubelet = kubeletAddress();
  });
  after(() => kubelet.release());
  const P99_MS = 500;
  const RSS_MAX_KB = 150 * 1024;
  let h: Running | undefined;
  let attackers: Attackers[] = [];

  afterEach(async () => {
    for (const a of attackers) await a.stop();
    attackers = [];
    if (h) {
      await h.signal('TERM');
      const r = await h.exited;
      h = undefined;
      assert.equal(r.code, 0, r.stderr);
    }
  });

  async function start(args: string[] = [], prefix?: readonly string[]): Promise<{ port: number; pid: number }> {
    const port = await freePort();
    h = startHainit([...args, '--health-listen', `0.0.0.0:${port}`, '--', PYTHON, fixture('graceful.py')], { timeoutMs: 180_000, prefix });
    await until('the probe endpoint', async () => (await get(port, '/livez', 3000, kubelet.address)).status === 200);
    return { port, pid: await h.hostPid() };
  }

  /** Starts the attackers, waits for the connection count to settle, probes for `ms`. */
  async function underAttack(port: number, pid: number, mix: Array<[HostileKind, number]>, ms = 8000): Promise<{ w: ProbeWindow; held: number; rss0: number }> {
    const rss0 = rssKb(pid);
    let source = 2;
    for (const [kind, n] of mix) {
      const procs = Math.max(1, Math.ceil(n / 2000));
      attackers.push(startAttackers(kind, n, port, procs, source));
      source += procs;
    }
    const held = await settled(pid);
    const w = await probeWindow(port, pid, ms, 50, 1000, kubelet.address);
    return { w, held, rss0 };
  }

  function report(what: string, r: { w: ProbeWindow; held: number; rss0: number }): void {
    const stats = attackers.flatMap((a) => a.stats());
    const by = new Map<string, { opened: number; cut: number; connected: number; answers: number }>();
    for (const s of stats) {
      const t = by.get(s.kind) ?? { opened: 0, cut: 0, connected: 0, answers: 0 };
      t.opened += s.opened;
      t.cut += s.cut;
      t.connected += s.connected;
      t.answers += s.answers;
      by.set(s.kind, t);
    }
    console.log(
      `      ${what}: hainit held ${r.held} descriptors; ${r.w.latencies.length} fresh probes, ${r.w.failed} failed ${JSON.stringify(r.w.failures)},` +
        ` p50 ${round(percentile(r.w.latencies, 50))} ms, p99 ${round(percentile(r.w.latencies, 99))} ms, max ${round(Math.max(...r.w.latencies))} ms;` +
        ` RSS ${r.rss0} -> at most ${r.w.rssMaxKb} kB; clients ${[...by].map(([k, t]) => `${k} opened ${t.opened} cut ${t.cut} connected ${t.connected} answers ${t.answers}`).join('; ')}`,
    );
  }

  function assertKubeletHappy(r: { w: ProbeWindow }): void {
    const p99 = percentile(r.w.latencies, 99);
    assert.ok(p99 < P99_MS, `fresh probes p99 ${round(p99)} ms (failures count as 1000 ms: ${JSON.stringify(r.w.failures)})`);
    assert.ok(r.w.rssMaxKb < RSS_MAX_KB, `hainit's RSS reached ${r.w.rssMaxKb} kB`);
  }

  /** at most one line per 10 s (SERVER_LIMITS.defenceLogMs), the first at once */
  function assertRateLimitedLog(stderr: string, sinceMs: number): string[] {
    const lines = stderr.split('\n').filter((l) => l.includes('health endpoint: busy clients'));
    assert.ok(lines.length <= 2 + Math.ceil(sinceMs / SERVER_LIMITS.defenceLogMs), `${lines.length} log lines in ${sinceMs} ms:\n${lines.join('\n')}`);
    return lines;
  }

  for (const [kind, n, what] of [
    ['idle', 1500, '1500 idle connections that reconnect when cut'],
    ['slow', 1500, '1500 connections that never finish their headers, reconnecting when cut'],
    ['keepalive', 1500, '1500 keep-alive holders sending a request every 3 s'],
    ['pipeline', 32, '32 pipeliners writing 20,000 requests at a time, reconnecting when cut'],
  ] as const) {
    it(`${what}: fresh probes answer (p99 < 500 ms) and RSS stays under 150 MB`, async () => {
      const t0 = Date.now();
      const { port, pid } = await start();
      const r = await underAttack(port, pid, [[kind, n]]);
      report(what, r);
      // the attack really took place at this scale (far beyond the old cap of 256)
      if (kind !== 'pipeline') assert.ok(r.held >= n * 0.9, `hainit held only ${r.held} descriptors`);
      else assert.ok(attackers[0].stats()[0].answers > 0, 'the pipeliners got no answers at all');
      assertKubeletHappy(r);
      const lines = assertRateLimitedLog(h!.stderr, Date.now() - t0);
      if (kind === 'pipeline') assert.match(lines.join('\n'), /dropped \d+ pipelining more than the limit per turn/);
    });
  }

  it('all four at once (600 idle, 600 slow, 600 keep-alive holders, 32 pipeliners)', async () => {
    const { port, pid } = await start();
    const r = await underAttack(port, pid, [
      ['idle', 600],
      ['slow', 600],
      ['keepalive', 600],
      ['pipeline', 32],
    ]);
    report('mix', r);
    assert.ok(r.held >= 1700, `hainit held only ${r.held} descriptors`);
    assertKubeletHappy(r);
  });

  it('past the connection cap (--health-max-connections 300): 500 idle clients are held aside natively, none is cut, said in a rate-limited line', async () => {
    const t0 = Date.now();
    const { port, pid } = await start(['--health-max-connections', '300']);
    const r = await underAttack(port, pid, [['idle', 500]]);
    report('500 idle clients, cap 300', r);
    assertKubeletHappy(r);
    const lines = assertRateLimitedLog(h!.stderr, Date.now() - t0);
    assert.match(lines.join('\n'), /held \d+ aside until they send a request \(past the cap\)/);
    // and /metrics counts it, for a dashboard
    const parked = Number(/^hainit_health_clients_total\{action="parked"\} (\d+)$/m.exec((await get(port, '/metrics', 3000, kubelet.address)).body)?.[1]);
    const logged = lines.reduce((n, l) => n + Number(/held (\d+) aside/.exec(l)?.[1] ?? 0), 0);
    assert.ok(parked > 0 && parked >= logged, `hainit_health_clients_total{action="parked"} is ${parked}, the log said ${logged}`);
    // Held aside, they have no reason to reconnect: before the waiting room every accept past the
    // cap closed one of them, which came back at once (tens of thousands a second, RSS 204-262 MB).
    const st = attackers[0].stats()[0];
    assert.ok(st.connected >= 450 && st.opened < 1000, `the idle clients churned: ${JSON.stringify(st)}`);
  });

  it('past the connection cap (--health-max-connections 300): 600 keep-alive holders keep getting their answers, none is cut', async () => {
    const { port, pid } = await start(['--health-max-connections', '300']);
    const r = await underAttack(port, pid, [['keepalive', 600]]);
    report('600 keep-alive holders, cap 300', r);
    assertKubeletHappy(r);
    const st = attackers[0].stats()[0];
    assert.ok(st.cut === 0 && st.connected === 600, `holders were cut: ${JSON.stringify(st)}`);
    // each sends one request every 3 s: over the window (8 s and the settling) at least 2 each
    assert.ok(st.answers >= 1200, `the holders got only ${st.answers} answers`);
  });

  // More clients than hainit has descriptors: with its descriptor limit lowered to FD_LIMIT (prlimit
  // lowers the hard limit, which Node raises the soft one to), the cap and the waiting room cannot
  // hold them all, and every client cut reconnects at once. Before the native policy (issue 14, last
  // point) a quiet newcomer went through node:http's JavaScript sockets and was cut again, and a
  // probe queued behind the reconnecting ones: p99 1.2-2.1 s here. Now the accept queue is emptied
  // natively, the newest quiet one is parked and the one parked the longest makes room, and quiet
  // newcomers wait in the kernel (TCP_DEFER_ACCEPT) while the endpoint is past its cap.
  const FD_LIMIT = 3000;
  for (const [what, mix] of [
    [`5000 idle clients against a descriptor limit of ${FD_LIMIT}`, [['idle', 5000]]],
    [`a mix beyond the descriptor limit of ${FD_LIMIT}: 3000 idle, 1000 slow-header, 1000 keep-alive holders`, [['idle', 3000], ['slow', 1000], ['keepalive', 1000]]],
  ] as const) {
    it(`${what}: every probe answers (p99 < 500 ms), RSS under 150 MB, said in a rate-limited line and /metrics`, async () => {
      const t0 = Date.now();
      const { port, pid } = await start([], ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--']);
      const r = await underAttack(port, pid, mix as unknown as Array<[HostileKind, number]>);
      report(what, r);
      // the attack really outnumbered the descriptors: hainit held all it could, and the clients
      // tried more connections than that
      const tried = attackers.flatMap((a) => a.stats()).reduce((n, s) => n + s.attempts, 0);
      assert.ok(r.held > FD_LIMIT * 0.75 && tried > FD_LIMIT * 1.2, `hainit held ${r.held} descriptors; clients tried ${tried} connections (descriptor limit ${FD_LIMIT})`);
      assert.equal(r.w.failed, 0, `probes failed: ${JSON.stringify(r.w.failures)}`);
      assertKubeletHappy(r);
      const lines = assertRateLimitedLog(h!.stderr, Date.now() - t0);
      assert.match(lines.join('\n'), /held \d+ aside until they send a request/);
      const m = (await get(port, '/metrics', 3000, kubelet.address)).body;
      const total = (a: string): number => Number(new RegExp(`^hainit_health_clients_total\\{action="${a}"\\} (\\d+)$`, 'm').exec(m)?.[1] ?? NaN);
      console.log(`      /metrics: parked ${total('parked')}, triaged ${total('triaged')}, evicted ${total('evicted')}, timed_out ${total('timed_out')}`);
      assert.ok(total('parked') > 0, 'hainit_health_clients_total{action="parked"} is 0');
      // the room filled: the loopback, which holds most of it, has its new connections dropped
      assert.match(h!.stderr, /the kernel now drops new connections from 127\.0\.0\.0\/8 \(holding \d+\)/);
      assert.match(m, /^hainit_health_peers_limited 1$/m);
    });
  }

  // A flood beyond what the descriptors, the waiting room and the kernel's accept queue (4096) hold
  // together, from a sidecar on the loopback, whose clients give up a connection not made within
  // 900 ms and make a new one at once (before TCP's first retransmission at 1 s: no back-off, a
  // flood that does not thin out by itself).
  // Before (b6f4795), the accept queue stayed full of them: the kernel dropped every SYN, the
  // kubelet's too (at 32,000 such clients against 20,000 descriptors, one probe answered in 10 s).
  // Now the peers that hold most of the waiting room have their new connections dropped by the
  // kernel (a socket filter, native/peers.c); the kubelet comes from another address.
  describe('more clients than the descriptors, the waiting room and the accept queue hold', function () {
    this.timeout(180_000);

    const limited = async (port: number): Promise<number> =>
      Number(/^hainit_health_peers_limited (\d+)$/m.exec((await get(port, '/metrics', 3000, kubelet.address)).body)?.[1] ?? NaN);

    it(`9000 impatient idle clients (a new connection when one is not made within 900 ms) from the loopback against a descriptor limit of ${FD_LIMIT}: the loopback is limited in the kernel, probes from the kubelet's address answer (p99 < 500 ms), said in a line and /metrics`, async () => {
      const { port, pid } = await start([], ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--']);
      attackers.push(startAttackers('idle', 9000, port, 5, 2, 900));
      await until('the loopback limited', async () => (await limited(port)) >= 1, 30_000);
      const opened = (): number => attackers[0].stats().reduce((n, st) => n + st.opened, 0);
      const opened0 = opened();
      const w = await probeWindow(port, pid, 8000, 100, 1000, kubelet.address);
      const churn = opened() - opened0;
      report('9000 impatient idle clients from the loopback', { w, held: fdCount(pid), rss0: 0 });
      console.log(`      connections the clients got in the window: ${churn}`);
      // kept out in the kernel, the flood does not churn through hainit: before (b6f4795), its
      // clients got 90,000-120,000 connections in such a window, each accepted, parked and reset,
      // and hainit's CPU time was 5-10 times what it is now. Now 4,000-6,000: those whose handshake
      // was made before the limit (held back by TCP_DEFER_ACCEPT: their clients see them
      // established) still come in for a few seconds.
      assert.ok(churn < 4 * FD_LIMIT, `the clients got ${churn} connections in the window`);
      assert.equal(w.failed, 0, `probes failed: ${JSON.stringify(w.failures)}`);
      assertKubeletHappy({ w });
      assert.match(h!.stderr, /the kernel now drops new connections from 127\.0\.0\.0\/8 \(holding \d+\)/);
      const m = (await get(port, '/metrics', 3000, kubelet.address)).body;
      assert.match(m, /^hainit_health_peer_drop_seconds_total [1-9]/m);
    });

    it('an address probes came from while calm (Docker\'s HEALTHCHECK through `hainit probe`, on the loopback) is limited only while the accept queue is over half full', async () => {
      const { port } = await start([], ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--']);
      const probe = spawnSync(process.execPath, [HAINIT, 'probe', `http://127.0.0.1:${port}/livez`], { encoding: 'utf8' });
      assert.equal(probe.status, 0, probe.stderr);
      attackers.push(startAttackers('idle', 9000, port, 5, 2, 900));
      await until('the loopback limited', async () => (await limited(port)) >= 1, 30_000);
      assert.match(h!.stderr, /127\.0\.0\.0\/8 \(holding \d+; probes came from there: only while the accept queue is over half full\)/);
    });
  });
});
