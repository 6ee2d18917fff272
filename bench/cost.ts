/**
 * 5b. What one probe request costs the server, counted so that the machine's speed drops out.
 *
 * On a shared machine req/s moves by up to 2x within a minute, even between two identical
 * servers run a second apart; but a server under wrk is bound by one CPU (req/s x CPU time per
 * request is one CPU second per second), so its throughput is the CPU's speed over what a
 * request costs. The cost is counted twice:
 *  - instructions per request in user space, every thread (V8's helpers too), by callgrind: the
 *    server runs under valgrind (not PID 1: callgrind_control finds it by its pid), `warm`
 *    requests are sent, the counters are zeroed (`callgrind_control -z`), `count` more are sent
 *    and the counters dumped (`callgrind_control -d`);
 *  - system calls per request, every thread, by `strace -c -f` attached to the server (PID 1 of
 *    its namespace, as in section 5) for `count` requests after `warm`.
 * The requests come from this process (sendRequests).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProbeMode, ProbeSubject, freePort, startServer, stopServer, waitServing } from './probe';
import { childrenOf, exited, LineReader, sleep, which } from './util';

export interface CostResult {
  readonly name: string;
  readonly ref?: string;
  readonly hainit?: boolean;
  readonly mode: ProbeMode;
  readonly instructionsPerRequest: number;
  readonly syscallsPerRequest: number;
  /** the three commonest system calls, per request */
  readonly topSyscalls: string;
}

export function costToolsMissing(): string | undefined {
  return ['valgrind', 'callgrind_control', 'strace'].find((t) => !which(t));
}

/**
 * `n` GET /livez on 127.0.0.1:port: keep-alive over 10 connections (as wrk -c10 in section 5), or
 * one connection per request, one at a time (as the kubelet probes). Rejects on an answer other
 * than 200 when `strict` (the counted requests; a warm-up under valgrind may meet hainit's 2 s
 * header timeout while everything is still interpreted).
 */
function sendRequests(port: number, n: number, mode: ProbeMode, strict = true): Promise<void> {
  const conns = mode === 'keep-alive' ? 10 : 1;
  const agent = mode === 'keep-alive' ? new http.Agent({ keepAlive: true, maxSockets: conns }) : undefined;
  const headers = mode === 'close' ? { Connection: 'close' } : {};
  let sent = 0;
  let done = 0;
  let retries = 0;
  return new Promise((resolve, reject) => {
    const one = (): void => {
      if (sent >= n) return;
      sent++;
      const req = http.get({ host: '127.0.0.1', port, path: '/livez', agent: agent ?? false, headers }, (res) => {
        if (res.statusCode !== 200 && strict) return reject(new Error(`/livez answered ${res.statusCode}`));
        res.resume();
        res.on('end', () => {
          if (++done === n) {
            agent?.destroy();
            resolve();
          } else one();
        });
      });
      // A keep-alive socket the server closed as this request left: send it again.
      req.on('error', (e) => {
        if (++retries > 100) return reject(e);
        sent--;
        setTimeout(one, 10);
      });
    };
    for (let i = 0; i < conns; i++) one();
  });
}

async function instructions(s: ProbeSubject, mode: ProbeMode, warm: number, count: number, dir: string): Promise<number> {
  const port = await freePort();
  const file = path.join(dir, `callgrind.${process.pid}.${port}`);
  const cp = spawn('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', '--fair-sched=yes', `--callgrind-out-file=${file}`, '--dump-instr=no', '--dump-line=no', ...s.argv(port, ['sleep', '1000'])], { stdio: 'ignore' });
  try {
    await waitServing(port, 120_000);
    await sendRequests(port, warm, mode, false);
    execFileSync('callgrind_control', ['-z', String(cp.pid)], { stdio: 'ignore' });
    await sendRequests(port, count, mode);
    execFileSync('callgrind_control', ['-d', String(cp.pid)], { stdio: 'ignore' });
    const totals = /^totals:\s+(\d+)/m.exec(fs.readFileSync(`${file}.1`, 'utf8'));
    if (!totals) throw new Error(`no totals in ${file}.1`);
    return Number(totals[1]) / count;
  } finally {
    const kids = cp.pid ? childrenOf(cp.pid) : [];
    cp.kill('SIGKILL');
    for (const k of kids) {
      try {
        process.kill(k, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await exited(cp);
    for (const f of fs.readdirSync(dir)) if (f.startsWith(path.basename(file))) fs.rmSync(path.join(dir, f), { force: true });
  }
}

async function syscalls(s: ProbeSubject, mode: ProbeMode, warm: number, count: number, dir: string): Promise<{ perRequest: number; top: string }> {
  const r = await startServer(s, ['sleep', '1000']);
  const file = path.join(dir, `strace.${process.pid}.${r.port}`);
  try {
    await sendRequests(r.port, warm, mode, false);
    const st = spawn('strace', ['-c', '-f', '-o', file, '-p', String(r.init)], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines = new LineReader(st.stderr!);
    // Attached once it says so (the threads with it: strace -p attaches them all at once).
    while (!/attached/.test(await lines.next(10_000)));
    await sleep(200);
    await sendRequests(r.port, count, mode);
    st.kill('SIGINT');
    await exited(st);
    const calls = new Map<string, number>();
    let total = NaN;
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5 || !/^[\d.]+$/.test(f[0])) continue;
      if (f[f.length - 1] === 'total') total = Number(f[3]);
      else calls.set(f[f.length - 1], Number(f[3]));
    }
    const top = [...calls].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([n, c]) => `${n} ${(c / count).toFixed(2)}`).join(', ');
    return { perRequest: total / count, top };
  } finally {
    await stopServer(r);
    fs.rmSync(file, { force: true });
  }
}

export async function measureCost(subjects: readonly ProbeSubject[], modes: readonly ProbeMode[], warm: Record<ProbeMode, number>, count: Record<ProbeMode, number>, dir: string): Promise<CostResult[]> {
  const out: CostResult[] = [];
  for (const mode of modes) {
    for (const s of subjects) {
      const ir = await instructions(s, mode, warm[mode], count[mode], dir).catch((e) => { throw new Error(`${s.name}, ${mode}, under callgrind: ${e.message}`); });
      const sc = await syscalls(s, mode, warm[mode], count[mode], dir).catch((e) => { throw new Error(`${s.name}, ${mode}, under strace: ${e.message}`); });
      out.push({ name: s.name, ref: s.ref, hainit: s.hainit, mode, instructionsPerRequest: ir, syscallsPerRequest: sc.perRequest, topSyscalls: sc.top });
    }
  }
  return out;
}
