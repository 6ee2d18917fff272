/**
 * Shared by the reliability tests (test/reliability/*.test.ts) and their heavier variants in
 * bench/reliability.ts: probe requests with timings, hainit's memory and descriptors from /proc,
 * the processes of hainit's PID namespace, and small C helpers compiled at test time.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo, createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import * as path from 'node:path';
import { readStat } from '../src/proc/procfs';
import { descendantsOf, startHainit } from './pid1';

export interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** One GET on a fresh connection (no agent), bounded by `timeoutMs`; from and to `host`. */
export function get(port: number, urlPath: string, timeoutMs = 3000, host = '127.0.0.1'): Promise<Answer> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.request({ host, localAddress: host, port, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${urlPath}: no answer within ${timeoutMs} ms`)));
    req.end();
  });
}

/**
 * An address the kubelet's probes can come from: not on the loopback, where a sidecar's flood
 * comes from. One of this machine's IPv4 addresses, or else 198.18.0.1 (a benchmarking range)
 * added to `lo` until `release()`.
 */
export function kubeletAddress(): { address: string; release(): void } {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return { address: a.address, release: () => undefined };
  }
  const address = '198.18.0.1';
  const r = spawnSync('ip', ['addr', 'add', `${address}/32`, 'dev', 'lo'], { encoding: 'utf8' });
  if (r.status !== 0 && !/exists/.test(r.stderr)) throw new Error(`ip addr add ${address}/32 dev lo: ${r.stderr || r.error}`);
  return { address, release: () => void spawnSync('ip', ['addr', 'del', `${address}/32`, 'dev', 'lo']) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await Promise.resolve().then(fn).catch(() => false)) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM ...). */
export function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

export function rssKb(pid: number): number {
  return statusKb(pid, 'VmRSS');
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** State letter (R, S, Z ...) and command name of a process, undefined when it is gone. */
export function procState(pid: number): { state: string; comm: string } | undefined {
  const s = readStat(pid);
  return s && { state: s.state, comm: s.comm };
}

/**
 * Every process in hainit's PID namespace but hainit itself, as the host sees them. hainit is the
 * namespace's init, so every process in it is a descendant (orphans are re-parented to it).
 */
export function namespaceProcesses(hainitHostPid: number): Array<{ pid: number; state: string; comm: string }> {
  const out: Array<{ pid: number; state: string; comm: string }> = [];
  for (const pid of descendantsOf(hainitHostPid)) {
    if (pid === hainitHostPid) continue;
    const st = procState(pid);
    if (st) out.push({ pid, ...st });
  }
  return out;
}

/**
 * Compiles a small C program (a path, e.g. fixture('sigstorm.c'); once per source text) into the temporary directory and returns
 * the path of the executable. Statically linked when possible: it starts faster.
 */
export function compileC(file: string): string {
  const source = readFileSync(file, 'utf8');
  const name = path.basename(file, '.c');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = path.join(tmpdir(), 'hainit-reliability');
  mkdirSync(dir, { recursive: true });
  const exe = path.join(dir, `${name}-${hash}`);
  if (existsSync(exe)) return exe;
  const src = `${exe}.c`;
  writeFileSync(src, source);
  const tmp = `${exe}.${process.pid}.tmp`;
  let r = spawnSync('cc', ['-O2', '-static', '-o', tmp, src], { encoding: 'utf8' });
  if (r.status !== 0) r = spawnSync('cc', ['-O2', '-o', tmp, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc ${src} failed: ${r.stderr}`);
  spawnSync('mv', ['-f', tmp, exe]);
  return exe;
}

/** Sends `count` well-formed GETs over `conns` keep-alive connections; resolves with latencies. */
export async function probeLoad(port: number, count: number, conns: number, urlPath = '/livez'): Promise<{ ok: number; failed: number; latencies: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = http.request({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (res.statusCode === 200) ok++;
          else failed++;
          resolve();
        });
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.end();
    });
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (next < count) {
        next++;
        await one();
      }
    }),
  );
  agent.destroy();
  return { ok, failed, latencies };
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child that leaves an orphan behind every ~50 ms (a subshell's background sleep) and ignores USR1 and HUP. */
const ORPHAN_LOOP = "trap '' USR1 HUP; while :; do (sleep 0.01 &); sleep 0.04; done";

export interface SoakFigures {
  seconds: number;
  probes: number;
  probeFailures: number;
  reaped: number;
  signals: number;
  rss: number[];
  fds: number[];
  /** RSS once a second during the warm-up */
  warm: number[];
  code: number | null;
  stderr: string;
}

/**
 * Probes (keep-alive and fresh connections), orphans, exec checks and signals for `seconds`;
 * samples hainit's RSS (kB) and open descriptors once a second after `warmupSeconds` of the same load.
 */
export async function soak(seconds: number, warmupSeconds = 5, warmupProbes = 0): Promise<SoakFigures> {
  const port = await freePort();
  const h = startHainit(
    ['--health-listen', `127.0.0.1:${port}`, '--ready-exec', 'true', '--check-interval', '250ms', '--', 'sh', '-c', ORPHAN_LOOP],
    { timeoutMs: (seconds + 70) * 1000 },
  );
  await until('readiness', async () => (await get(port, '/readyz')).status === 200);
  const pid = await h.hostPid();
  let probes = 0;
  let probeFailures = 0;
  let signals = 0;
  const rss: number[] = [];
  const fds: number[] = [];
  let end = 0;
  const signaller = async (): Promise<void> => {
    while (Date.now() < end) {
      await h.signal('USR1');
      await h.signal('HUP');
      signals += 2;
      await sleep(100);
    }
  };
  const load = async (): Promise<void> => {
    while (Date.now() < end) {
      const keep = await probeLoad(port, 500, 4, '/readyz');
      probes += keep.ok + keep.failed;
      probeFailures += keep.failed;
      for (let i = 0; i < 50; i++) {
        const a = await get(port, i % 2 ? '/livez' : '/metrics').catch(() => undefined);
        probes++;
        if (a?.status !== 200) probeFailures++;
      }
    }
  };
  // Warm-up under the same load: V8's heap grows to its working size in steps during the first
  // seconds (Node 24: ~100 -> ~130 MB about 10 s in, then flat for minutes; bench/reliability.ts).
  // It ends once RSS has stayed within 2 MiB for 3 s, after at least `warmupSeconds` and
  // `warmupProbes` (at most 40 s). The steps come with the volume of work, not with time: on a slow
  // machine a 3 s plateau can come before the last step (CI: 79 -> 93 MB in the measured window).
  const warm: number[] = [];
  const warmStart = Date.now();
  for (;;) {
    end = Date.now() + 1000;
    await Promise.all([signaller(), load()]);
    warm.push(rssKb(pid));
    const last = warm.slice(-4);
    const elapsed = (Date.now() - warmStart) / 1000;
    const steady = last.length === 4 && Math.max(...last) - Math.min(...last) < 2048;
    if (elapsed >= 40 || (elapsed >= warmupSeconds && probes >= warmupProbes && steady)) break;
  }
  rss.push(rssKb(pid));
  fds.push(fdCount(pid));
  end = Date.now() + seconds * 1000;
  const sampler = setInterval(() => {
    rss.push(rssKb(pid));
    fds.push(fdCount(pid));
  }, 1000);
  await Promise.all([signaller(), load()]);
  clearInterval(sampler);
  await sleep(500);
  rss.push(rssKb(pid));
  fds.push(fdCount(pid));
  const metrics = (await get(port, '/metrics')).body;
  const reaped = Number(/^hainit_orphans_reaped_total (\d+)/m.exec(metrics)?.[1]);
  await h.signal('TERM');
  const r = await h.exited;
  return { seconds, probes, probeFailures, reaped, signals, rss, fds, warm, code: r.code, stderr: r.stderr };
}


// ------------------------------------------------------------------ hostile clients (issue 14)

export type HostileKind = 'idle' | 'slow' | 'keepalive' | 'pipeline';

export interface HostileStats {
  kind: HostileKind;
  count: number;
  /** connections tried so far (connect() called) */
  attempts: number;
  /** connections established so far, and cut by the server */
  opened: number;
  cut: number;
  /** connect/read errors by code (ECONNREFUSED, ECONNRESET ...) */
  errors: Record<string, number>;
  answers: number;
  connected: number;
}

export interface Attackers {
  /** the latest counts of every attacker process */
  stats(): HostileStats[];
  stop(): Promise<HostileStats[]>;
}

/**
 * `count` hostile clients of one kind (test/fixtures/hostile.js), split over `procs` processes of
 * their own (each with its own event loop and descriptor limit), connecting from 127.0.0.2, .3 ...
 * so that their ephemeral ports never run short for the prober on 127.0.0.1. With `patienceMs`, a
 * connection not made by then is given up and tried again at once (no TCP back-off).
 */
export function startAttackers(kind: HostileKind, count: number, port: number, procs = 1, firstSource = 2, patienceMs = 0): Attackers {
  const children = Array.from({ length: procs }, (_, i) => {
    const n = Math.floor(count / procs) + (i < count % procs ? 1 : 0);
    const cp = spawn(process.execPath, [path.join(__dirname, '../../test/fixtures/hostile.js'), kind, String(n), String(port), '127.0.0.1', `127.0.0.${firstSource + i}`, String(patienceMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let last: HostileStats = { kind, count: n, attempts: 0, opened: 0, cut: 0, errors: {}, answers: 0, connected: 0 };
    let buf = '';
    cp.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l) last = JSON.parse(l) as HostileStats;
    });
    const closed = new Promise<void>((r) => cp.once('close', () => r()));
    return { cp, closed, last: () => last };
  });
  return {
    stats: () => children.map((c) => c.last()),
    stop: async () => {
      for (const c of children) c.cp.kill('SIGTERM');
      await Promise.all(children.map((c) => Promise.race([c.closed, sleep(5000)])));
      for (const c of children) if (c.cp.exitCode === null) c.cp.kill('SIGKILL');
      return children.map((c) => c.last());
    },
  };
}

/** Waits until hainit's descriptor count has not moved by more than 1% for `quietMs` (at most `maxMs`). */
export async function settled(pid: number, quietMs = 1500, maxMs = 30_000): Promise<number> {
  const t0 = Date.now();
  let ref = fdCount(pid);
  let since = Date.now();
  for (;;) {
    await sleep(250);
    const n = fdCount(pid);
    if (Math.abs(n - ref) > Math.max(5, ref / 100)) {
      ref = n;
      since = Date.now();
    }
    if (Date.now() - since >= quietMs || Date.now() - t0 > maxMs) return n;
  }
}

export interface ProbeWindow {
  /** latency of every probe in ms; one that failed counts as its timeout */
  latencies: number[];
  /** failed probes by reason (ECONNRESET, ECONNREFUSED, timeout, HTTP status) */
  failures: Record<string, number>;
  failed: number;
  /** hainit's largest RSS sampled meanwhile, kB */
  rssMaxKb: number;
}

/**
 * What the kubelet sees: a fresh connection and `GET /livez` every `everyMs` for `ms`, each with
 * the kubelet's default 1 s timeout; hainit's RSS sampled every 100 ms meanwhile.
 */
export async function probeWindow(port: number, pid: number, ms: number, everyMs = 100, timeoutMs = 1000, host = '127.0.0.1'): Promise<ProbeWindow> {
  const w: ProbeWindow = { latencies: [], failures: {}, failed: 0, rssMaxKb: rssKb(pid) };
  const sampler = setInterval(() => {
    try {
      w.rssMaxKb = Math.max(w.rssMaxKb, rssKb(pid));
    } catch {
      /* gone: the test will say */
    }
  }, 100);
  const fail = (why: string): void => {
    w.failed++;
    w.failures[why] = (w.failures[why] ?? 0) + 1;
    w.latencies.push(timeoutMs);
  };
  const t0 = Date.now();
  try {
    while (Date.now() - t0 < ms) {
      const started = Date.now();
      try {
        const a = await get(port, '/livez', timeoutMs, host);
        if (a.status === 200) w.latencies.push(a.ms);
        else fail(`HTTP ${a.status}`);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        fail(err.code ?? (/no answer within/.test(err.message) ? 'timeout' : err.message));
      }
      await sleep(Math.max(0, everyMs - (Date.now() - started)));
    }
  } finally {
    clearInterval(sampler);
  }
  return w;
}
