/**
 * 5. The probe endpoint (issue 4): hainit as PID 1 (`--health-listen 127.0.0.1:PORT -- sleep 1000`)
 *    against a bare Node `http` server on the same node binary answering the same bytes (200,
 *    body "ok", the same headers as hainit's /livez), both loaded with wrk on 127.0.0.1:
 *    keep-alive (`wrk -t1 -c10`) and one connection per request as the kubelet does
 *    (`-H 'Connection: close'`).
 * 6. Signal forwarding latency (bench/fixtures/siglat.c) while wrk hammers the endpoint.
 *
 * Traffic goes to 127.0.0.1 only, and every wrk run is bounded (-d, or SIGINT when the signals
 * are done).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LineReader, NodeFlavour, ROOT, UNSHARE, childrenOf, exited, finish, median, quantile, sleep, waitFor, which } from './util';
import { SignalResult } from './pid1';

/** The bare server: Node's http with default options, the bytes hainit's /livez sends. */
export function bareServerScript(port: number): string {
  return [
    "const http = require('http');",
    "const body = Buffer.from('ok');",
    "const headers = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', Vary: 'Accept' };",
    `http.createServer((q, s) => { s.writeHead(200, headers); s.end(q.method === 'HEAD' ? undefined : body); }).listen(${port}, '127.0.0.1');`,
  ].join('\n');
}

/**
 * Diagnostic: the bare server with hainit's server limits (src/health/server.ts SERVER_LIMITS):
 * what the hardening alone costs, apart from hainit's routing and rendering.
 */
export function hardenedServerScript(port: number): string {
  return [
    "const http = require('http');",
    "const body = Buffer.from('ok');",
    "const headers = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', Vary: 'Accept' };",
    "const s = http.createServer({ headersTimeout: 2000, requestTimeout: 5000, connectionsCheckingInterval: 500, keepAliveTimeout: 5000, maxHeaderSize: 8192, requireHostHeader: false },",
    "  (q, r) => { r.writeHead(200, headers); r.end(q.method === 'HEAD' ? undefined : body); });",
    's.maxConnections = 256; s.maxHeadersCount = 50;',
    `s.listen(${port}, '127.0.0.1');`,
  ].join('\n');
}

export function hardenedServer(f: NodeFlavour): ProbeSubject {
  return { name: `(diag) bare node http + hainit's limits (${f.label})`, ref: bareServerName(f), argv: (port) => [f.node, '-e', hardenedServerScript(port)] };
}

export interface ProbeSubject {
  readonly name: string;
  /** name of the bare server this one is compared with */
  readonly ref?: string;
  readonly hainit?: boolean;
  /** argv (run under unshare as PID 1) serving on port; `child` is what hainit supervises */
  readonly argv: (port: number, child: readonly string[]) => string[];
}

export const bareServerName = (f: NodeFlavour): string => `bare node http (${f.label})`;

export function bareServer(f: NodeFlavour): ProbeSubject {
  return { name: bareServerName(f), argv: (port) => [f.node, '-e', bareServerScript(port)] };
}

export function hainitServer(name: string, argv0: readonly string[], ref: string): ProbeSubject {
  return { name, ref, hainit: true, argv: (port, child) => [...argv0, '--health-listen', `127.0.0.1:${port}`, '--', ...child] };
}

export function hainitOn(f: NodeFlavour): readonly string[] {
  return [f.node, path.join(ROOT, 'bin', 'hainit')];
}

/** A free port on 127.0.0.1 (bound and released: the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function get(port: number, p = '/livez'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: 500 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

export async function waitServing(port: number, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await get(port)) === 200) return;
    if (Date.now() > deadline) throw new Error(`nothing answers 200 on 127.0.0.1:${port}/livez`);
    await sleep(20);
  }
}

interface Running {
  readonly cp: ChildProcess;
  readonly init: number;
  readonly port: number;
}

export async function startServer(s: ProbeSubject, child: readonly string[]): Promise<Running> {
  const port = await freePort();
  const cp = spawn(UNSHARE[0], [...UNSHARE.slice(1), ...s.argv(port, child)], { stdio: 'ignore' });
  const init = await waitFor('the server to start', () => childrenOf(cp.pid!)[0]);
  await waitServing(port);
  return { cp, init, port };
}

export async function stopServer(r: Running): Promise<void> {
  try {
    process.kill(r.init, 'SIGKILL');
  } catch {
    /* gone */
  }
  await finish(r.cp, [r.init]);
}

// ---------------------------------------------------------------- wrk

export interface WrkResult {
  readonly rps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly requests: number;
  /** socket errors + non-2xx/3xx responses */
  readonly errors: number;
}

function usOf(v: string, unit: string): number {
  const x = Number(v);
  return unit === 'us' ? x : unit === 'ms' ? x * 1000 : unit === 's' ? x * 1e6 : unit === 'm' ? x * 6e7 : NaN;
}

export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const lat = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? usOf(m[1], m[2]) : NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  let errors = 0;
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (se) errors += Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) errors += Number(non2xx[1]);
  return { rps, p50Us: lat('50'), p99Us: lat('99'), requests, errors };
}

export type ProbeMode = 'keep-alive' | 'close';

function wrkArgs(port: number, mode: ProbeMode, seconds: number): string[] {
  return ['-t1', '-c10', `-d${seconds}s`, '--latency', ...(mode === 'close' ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/livez`];
}

function runWrk(port: number, mode: ProbeMode, seconds: number): WrkResult {
  const res = spawnSync('wrk', wrkArgs(port, mode, seconds), { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  if (res.status !== 0) throw new Error(`wrk failed (${res.status}): ${res.stderr}`);
  return parseWrk(res.stdout);
}

export type ProbeRun = WrkResult & { readonly cpuUsPerRequest: number };

export interface ProbeResult {
  readonly name: string;
  readonly ref?: string;
  readonly hainit?: boolean;
  readonly mode: ProbeMode;
  /** every run of this server (a reference server runs once per pair it is in) */
  readonly runs: ProbeRun[];
  /** per pair (this server and its reference, run back to back): this / reference */
  readonly pairs: { readonly rps: number; readonly cpu: number }[];
}

/** CPU time (user + system, all threads) the server process has used so far, in microseconds. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14 and 15 (utime, stime), in clock ticks (USER_HZ, 100 on Linux)
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/**
 * All servers run for the whole section (idle while another is loaded), and every measured run
 * follows a 1 s warm-up run on the same server. In each of `passes` passes, for each mode, every
 * server that has a reference runs back to back with it, the reference first in every other
 * pair: on a shared machine throughput drifts by up to 2x within a minute, and two runs a second
 * apart see the same machine. The ratio of a pair is the measurement; the medians of all runs
 * are context.
 */
export async function measureProbe(subjects: ProbeSubject[], passes: number, seconds: number): Promise<ProbeResult[]> {
  if (!which('wrk')) throw new Error('wrk not found (Debian: apt-get install wrk)');
  const running = new Map<string, Running>();
  const modes: ProbeMode[] = ['keep-alive', 'close'];
  const results: ProbeResult[] = [];
  for (const mode of modes) for (const s of subjects) results.push({ name: s.name, ref: s.ref, hainit: s.hainit, mode, runs: [], pairs: [] });
  const result = (name: string, mode: ProbeMode): ProbeResult => results.find((r) => r.name === name && r.mode === mode)!;
  const measure = (name: string, mode: ProbeMode): ProbeRun => {
    const r = running.get(name)!;
    runWrk(r.port, mode, 1); // every run starts from the same state: a server idle for a while has a smaller heap
    const before = cpuUs(r.init);
    const w = runWrk(r.port, mode, seconds);
    const run = { ...w, cpuUsPerRequest: (cpuUs(r.init) - before) / w.requests };
    result(name, mode).runs.push(run);
    return run;
  };
  const compared = subjects.filter((s) => s.ref && subjects.some((x) => x.name === s.ref));
  try {
    for (const s of subjects) running.set(s.name, await startServer(s, ['sleep', '1000']));
    for (let pass = 0; pass < passes; pass++) {
      for (const mode of modes) {
        for (const [k, s] of compared.entries()) {
          // the second run of a pair may differ (in close mode it meets the first's TIME_WAIT sockets)
          const refFirst = (pass + k) % 2 === 0;
          const a = measure(refFirst ? s.ref! : s.name, mode);
          const b = measure(refFirst ? s.name : s.ref!, mode);
          const [mine, ref] = refFirst ? [b, a] : [a, b];
          result(s.name, mode).pairs.push({ rps: mine.rps / ref.rps, cpu: mine.cpuUsPerRequest / ref.cpuUsPerRequest });
        }
      }
    }
  } finally {
    for (const r of running.values()) await stopServer(r);
  }
  return results;
}

/** Median and min-max of the per-pair ratios to the reference (req/s), and the median CPU ratio. */
export function probeRatio(r: ProbeResult): { ratio: number; lo: number; hi: number; cpuRatio: number } | undefined {
  if (r.pairs.length === 0) return undefined;
  const rps = r.pairs.map((p) => p.rps);
  return { ratio: median(rps), lo: Math.min(...rps), hi: Math.max(...rps), cpuRatio: median(r.pairs.map((p) => p.cpu)) };
}

// ---------------------------------------------------------------- 6. forwarding under probe load

export interface LoadedSignalResult extends SignalResult {
  /** what wrk achieved against the loaded server while the signals were sent */
  readonly loadRps: number;
  readonly loadTarget: string;
}

/**
 * siglat with the handshake (SIGLAT_WAIT_STDIN): the init starts with its child, wrk starts
 * hammering `loadPort()` (keep-alive, -t1 -c10), after 500 ms the signals go, and wrk is stopped
 * with SIGINT (it prints its report) once they are done.
 */
export async function measureSignalsUnderLoad(
  siglat: string,
  name: string,
  initArgv: (child: string[]) => string[],
  direct: boolean,
  load: { port?: number; target: string },
  count: number,
  gapUs: number,
): Promise<LoadedSignalResult> {
  // hainit serves its own endpoint: give it a port now; the others are loaded through load.port.
  const port = load.port ?? (await freePort());
  const argv = [String(count), String(gapUs), direct ? 'direct' : 'init', '--', ...UNSHARE, ...initArgv([siglat, 'child']).map((a) => a.replace('@PORT@', String(port)))];
  const cp = spawn(siglat, ['send', ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SIGLAT_WAIT_STDIN: '1' } });
  let stdout = '';
  let stderr = '';
  cp.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const errLines = new LineReader(cp.stderr!);
  let wrk: ChildProcess | undefined;
  try {
    for (;;) {
      const l = await errLines.next(30000);
      if (l === 'ready') break;
      stderr += `${l}\n`;
    }
    await waitServing(port);
    wrk = spawn('wrk', wrkArgs(port, 'keep-alive', 120), { stdio: ['ignore', 'pipe', 'ignore'] });
    let wrkOut = '';
    wrk.stdout!.setEncoding('utf8').on('data', (d: string) => (wrkOut += d));
    await sleep(500);
    cp.stdin!.end('g');
    await exited(cp);
    wrk.kill('SIGINT');
    await finish(wrk, []);
    const lat = stdout.split('\n').filter(Boolean).map((l) => Number(l) / 1000);
    if (cp.exitCode !== 0 || lat.length !== count) throw new Error(`siglat under load for ${name} failed (${cp.exitCode}): ${stderr.trim()}`);
    return {
      name,
      p50Us: quantile(lat, 0.5),
      p99Us: quantile(lat, 0.99),
      maxUs: Math.max(...lat),
      count,
      loadRps: parseWrk(wrkOut).rps,
      loadTarget: load.target,
    };
  } finally {
    if (wrk && wrk.exitCode === null) wrk.kill('SIGKILL');
    if (cp.exitCode === null) cp.kill('SIGKILL');
  }
}

/** Start a bare server (for loading the machine while a C init forwards signals). */
export async function startBare(f: NodeFlavour): Promise<{ port: number; stop: () => Promise<void> }> {
  const r = await startServer(bareServer(f), []);
  return { port: r.port, stop: () => stopServer(r) };
}

