/**
 * Heavier variants of test/reliability (issue 7), with figures instead of assertions:
 *
 *   npx tsc -p . && node lib/bench/reliability.js [soak SECONDS] [storm RT STD] [zombies N]
 *
 * Without arguments: a 60 s soak (RSS and descriptors every second), a 200,000-signal storm and
 * 100,000 orphans. Needs root (PID namespaces), cc and python3, as the tests do.
 */
import { spawn } from 'node:child_process';
import { PYTHON, fixture, startHainit } from '../support/pid1';
import { compileC, freePort, get, probeLoad, rssKb, soak, until } from '../support/load';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(exe: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(exe, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.on('close', () => resolve(out));
  });
}

async function soakBench(seconds: number): Promise<void> {
  const f = await soak(seconds);
  console.log(`soak ${seconds} s: ${f.probes} probes (${f.probeFailures} failed), ${f.reaped} orphans reaped, ${f.signals} signals, exit ${f.code}`);
  console.log(`  RSS kB per second: ${f.rss.join(' ')}`);
  console.log(`  fds per second:    ${f.fds.join(' ')}`);
}

async function stormBench(rt: number, std: number): Promise<void> {
  const port = await freePort();
  const h = startHainit(['--health-listen', `127.0.0.1:${port}`, '--shutdown-delay', '1s', '--', PYTHON, fixture('stormecho.py')], { timeoutMs: 120_000 });
  await h.waitForOutput(/ready pid=/);
  await until('probes', async () => (await get(port, '/livez')).status === 200);
  const pid = await h.hostPid();
  const before = rssKb(pid);
  const t0 = Date.now();
  const out = await run(compileC(fixture('sigstorm.c')), [String(pid), String(rt), String(std), '0']);
  const r = await h.exited;
  const m = /"counts":\s*(\{[^}]*\})/.exec(r.stdout);
  const got = m ? (JSON.parse(m[1]) as Record<string, number>) : {};
  const rtGot = ['34', '35', '36', '37', '38', '39', '40', '41', '64'].reduce((n, s) => n + (got[s] ?? 0), 0);
  console.log(`storm: ${out.trim()} in ${Date.now() - t0} ms; child took ${rtGot}/${rt} real-time; hainit exit ${r.code} (signal ${r.signal}); RSS before ${before} kB`);
}

async function zombieBench(n: number): Promise<void> {
  const port = await freePort();
  const h = startHainit(['--health-listen', `127.0.0.1:${port}`, '--', compileC(fixture('orphanstorm.c')), String(n), '500'], { timeoutMs: 300_000 });
  const pid = await h.hostPid();
  await until('probes', async () => (await get(port, '/livez')).status === 200);
  const rss = [rssKb(pid)];
  let done = false;
  await h.waitForOutput(/waiting for USR1/, 10_000);
  await h.signal('USR1');
  void h.waitForOutput(/done orphans=/, 280_000).then(() => (done = true), () => (done = true));
  while (!done) {
    const l = await probeLoad(port, 200, 2);
    rss.push(rssKb(pid));
    if (l.failed) console.log(`  ${l.failed} probes failed`);
    await sleep(500);
  }
  await sleep(1000);
  rss.push(rssKb(pid));
  console.log(`zombies: ${h.stdout.replace('waiting for USR1', '').trim()}; RSS kB every ~0.5 s: ${rss.join(' ')}`);
  await h.signal('TERM');
  const r = await h.exited;
  console.log(`  exit ${r.code}`);
}

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  const all = a.length === 0;
  if (all || a[0] === 'soak') await soakBench(Number(a[1] ?? 60));
  if (all || a[0] === 'storm') await stormBench(Number(a[1] ?? 20_000), Number(a[2] ?? 200_000));
  if (all || a[0] === 'zombies') await zombieBench(Number(a[1] ?? 100_000));
  process.exit(0);
}

void main();
