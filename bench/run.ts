/**
 * hainit benchmark: hainit side by side with tini, tini-static, dumb-init, catatonit and bare
 * Node, in one run. `npm run bench` (full, ~6 min) or `npm run bench -- --quick`
 * (HAINIT_BENCH_QUICK=1 works too, ~1 min). `--only startup,rss,reap,signals,probe,signals-load,hostile`
 * picks sections; `--only probe-cost` (instructions and system calls per probe request, under
 * valgrind and strace, ~15 min) runs only when named. `--out FILE` also writes the report
 * (markdown) to FILE.
 *
 * Environment: HAINIT_BENCH_QUICK=1 (quick mode), HAINIT_BENCH_NODE=/path/to/node (the node for
 * hainit and the bare-node rows; default: the one running this script).
 *
 * Needs root (unshare --pid), cc, hyperfine, wrk; /usr/bin/time for peak RSS (python3 otherwise);
 * valgrind (callgrind_control) and strace for probe-cost.
 * dist/hainit is built first (npm run build:binary) when it is missing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measureSignals, measureSteadyRss, reapRound, reapSubjects, steadySubjects, SignalResult } from './pid1';
import { LoadedSignalResult, ProbeSubject, bareServer, bareServerName, hainitOn, hardenedServer, hainitServer, measureProbe, measureSignalsUnderLoad, probeRatio, startBare } from './probe';
import { CostResult, costToolsMissing, measureCost } from './cost';
import { HOSTILE_CLASSES, hostileTable, measureHostile } from './hostile';
import { percentile } from '../support/load';
import { distRef, launcherFor, measurePeakRss, measureStartup, peakTable, startupRatio, startupRows, startupTable } from './startup';
import { DIST_HAINIT, Init, NODE, NodeFlavour, ROOT, ensureNode22, buildFixtures, commandOutput, fmt, inits, median, nodeFlavours, ratio, table } from './util';

interface Options {
  quick: boolean;
  only: Set<string>;
  out?: string;
}

function options(): Options {
  const argv = process.argv.slice(2);
  const o: Options = { quick: !!process.env.HAINIT_BENCH_QUICK && process.env.HAINIT_BENCH_QUICK !== '0', only: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--full') o.quick = false;
    else if (a === '--only') for (const s of (argv[++i] ?? '').split(',')) o.only.add(s.trim());
    else if (a === '--out') o.out = argv[++i];
    else {
      process.stderr.write(`usage: node lib/bench/run.js [--quick|--full] [--only startup,rss,reap,signals,probe,probe-cost,signals-load,hostile] [--out FILE]\n`);
      process.exit(2);
    }
  }
  return o;
}

const SETTINGS = {
  full: { startupRuns: 150, startupPasses: 10, peakRuns: 15, steadyRounds: 3, settleMs: 1000, orphans: 2000, e2eRounds: 7, zombieRounds: 5, signals: 2000, gapUs: 1000, probePasses: 6, probeSeconds: 1, costWarm: { 'keep-alive': 20000, close: 3000 }, costCount: { 'keep-alive': 20000, close: 10000 } },
  quick: { startupRuns: 30, startupPasses: 3, peakRuns: 5, steadyRounds: 1, settleMs: 500, orphans: 2000, e2eRounds: 3, zombieRounds: 2, signals: 300, gapUs: 1000, probePasses: 2, probeSeconds: 1, costWarm: { 'keep-alive': 20000, close: 3000 }, costCount: { 'keep-alive': 2000, close: 1000 } },
};

const TARGET = { startup: 1.10, rss: 1.15, reap: 1.5, forwardP99Us: 1000, probeRps: 0.9, hostileP99Ms: 500, hostileRssMb: 150 };

const out: string[] = [];
function say(s = ''): void {
  out.push(s);
  process.stdout.write(`${s}\n`);
}
const note = (s: string): void => void process.stderr.write(`  .. ${s}\n`);
const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED');
const loadavg = (): string => os.loadavg()[0].toFixed(2);

/** dist/hainit is the shipped artifact: build it when missing (tsc has just run under npm run bench). */
function ensureBinary(): void {
  if (fs.existsSync(DIST_HAINIT)) return;
  note('dist/hainit is missing: node scripts/build-binary.mjs');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-binary.mjs')], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) note('building dist/hainit failed: its rows are left out');
}

/** What every section reads: the settings, the inits, the Nodes, the fixtures, and the verdict table it adds to. */
interface Context {
  readonly S: (typeof SETTINGS)['full'];
  readonly list: Init[];
  readonly flavours: NodeFlavour[];
  readonly mainFlavour: NodeFlavour;
  readonly dist: Init | undefined;
  readonly tmp: string;
  readonly bin: (name: string) => string;
  readonly summary: string[][];
}

/** The report's head: what ran, where, on which build. */
function header(c: Context, quick: boolean): void {
  const { list, flavours, dist } = c;
  say(`# hainit benchmark (${quick ? 'quick' : 'full'} mode)`);
  say();
  say(`- date: ${new Date().toISOString()}`);
  say(`- machine: nproc ${os.cpus().length} (${commandOutput('nproc', [])} usable), kernel ${os.release()}, ${os.cpus()[0]?.model ?? 'cpu?'}`);
  say(`- node ${commandOutput(NODE, ['--version'])} (${NODE}; set HAINIT_BENCH_NODE to pick another) for hainit in the reaping, signal and probe sections; start-up and memory also on ${flavours.map((f) => `${f.label} = ${f.version} (${f.node})`).join(', ')}`);
  say(`- dist/hainit: ${dist ? `${DIST_HAINIT} (${(fs.statSync(DIST_HAINIT).size / 1048576).toFixed(1)} MiB, built ${fs.statSync(DIST_HAINIT).mtime.toISOString()})` : 'missing (npm run build:binary failed?)'}`);
  say(`- hainit ${require('../../package.json').version} (git ${commandOutput('git', ['-C', `${__dirname}/../..`, 'describe', '--always', '--dirty'])})`);
  say(`- load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on this machine skews timings; see the end for the load at the end)`);
  say(`- peers: ${list.filter((i) => i.name !== 'hainit').map((i) => i.name).join(', ')} (Debian packages)`);
  say(`- rerun: \`npm run bench\` (quick: \`npm run bench -- --quick\` or HAINIT_BENCH_QUICK=1)`);
  say();
}

/** 1 and 2a: start-up wall time and peak RSS of `X -- true`. */
function startupSection(c: Context): void {
  const { S } = c;
  note(`start-up: hyperfine -N, ${S.startupRuns} runs per command in ${S.startupPasses} passes`);
  const rows = startupRows(c.list, c.flavours, true);
  const load0 = loadavg();
  const res = measureStartup(rows, S.startupRuns, c.tmp, S.startupPasses);
  say(`## 1. Start-up wall time of \`X -- true\` (hyperfine -N, ${S.startupRuns} runs per command in ${S.startupPasses} passes, command order rotating, 1 warm-up run per pass; not PID 1; load ${load0} -> ${loadavg()})`);
  say();
  say(startupTable(res));
  say();
  say('`/ ref`: pooled median over the reference\'s pooled median; `per-pass / ref`: min-max of the same ratio within each pass (same pass, same load).');
  say('Each `node N bin/hainit` is compared with the same binary\'s `node -e 0`; dist/hainit (Node 24 inside) with Node 24\'s.');
  say('The 1.10x target is read on every hainit row: `node N bin/hainit` (Node\'s own start, then hainit\'s), `bin/hainit (sh launcher)` (what `npm i hainit` users run: the same plus the launcher\'s sh, which moves NODE_* aside and adds --disable-sigusr1; Nodes >= 22.14 only) and dist/hainit (what images without Node run).');
  say('Every `X -- true` row also starts `true` itself (fork, exec, its own start: most of tini\'s row), which `node -e 0` does not.');
  say();
  for (const r of res) {
    if (!r.row.hainit) continue;
    const q = startupRatio(res, r)!;
    c.summary.push([`start-up median, ${r.row.name.replace(' -- true', '')} / ${r.row.ref}`, `${q.ratio.toFixed(2)}x (passes ${q.lo.toFixed(2)}-${q.hi.toFixed(2)}x)`, `<= ${TARGET.startup}x`, verdict(q.ratio <= TARGET.startup)]);
  }

  note(`peak RSS: /usr/bin/time -f %M, ${S.peakRuns} runs per command, interleaved`);
  const peak = measurePeakRss(rows, S.peakRuns, c.tmp);
  say(`## 2a. Peak RSS of \`X -- true\` (ru_maxrss via /usr/bin/time, median of ${S.peakRuns} interleaved runs)`);
  say();
  say(peakTable(peak));
  say();
  say('ru_maxrss includes the forked copy of /usr/bin/time before exec: the `true` row is that floor, so the small inits all sit near it.');
  say('All binaries are warm in the page cache (file-backed pages count in RSS).');
  say();
  for (const p of peak) {
    if (!p.row.hainit) continue;
    const ref = peak.find((x) => x.row.name === p.row.ref)!;
    c.summary.push([`peak RSS of \`-- true\`, ${p.row.name.replace(' -- true', '')} / ${p.row.ref}`, `${ratio(p.medianKb, ref.medianKb)} (${p.medianKb} vs ${ref.medianKb} kB)`, `<= ${TARGET.rss}x`, verdict(p.medianKb / ref.medianKb <= TARGET.rss)]);
  }
}

/** 2b: memory of the init supervising `sleep 30` as PID 1. */
async function rssSection(c: Context): Promise<void> {
  const { S } = c;
  note(`RSS supervising sleep 30 as PID 1: ${S.steadyRounds} round(s), sampled ${S.settleMs} ms after sleep starts`);
  const load0 = loadavg();
  const res = await measureSteadyRss(steadySubjects(c.list, c.flavours, distRef(c.flavours)), S.steadyRounds, S.settleMs);
  say(`## 2b. Memory of the init supervising \`sleep 30\` as PID 1 (kB, median of ${S.steadyRounds} interleaved rounds, sampled ${S.settleMs} ms after sleep started; load ${load0} -> ${loadavg()})`);
  say();
  const keys = ['VmRSS', 'RssAnon', 'RssFile', 'Pss'];
  say(table(['init', ...keys, 'VmRSS min-max', 'VmRSS / ref', 'ref'], res.map((r) => {
    const ref = res.find((x) => x.name === r.ref);
    return [r.name, ...keys.map((k) => String(r.mem[k] ?? 'n/a')), `${r.vmRssMin}-${r.vmRssMax}`, ref ? ratio(r.mem.VmRSS, ref.mem.VmRSS) : '', r.ref ?? ''];
  })));
  say();
  say('`node (spawn only)` is `node -e "child_process.spawn(\'sleep\', ...)"` as PID 1: what any Node init costs before doing anything.');
  say();
  for (const r of res) {
    const ref = res.find((x) => x.name === r.ref);
    if (!ref) continue;
    c.summary.push([`VmRSS supervising sleep, ${r.name} / ${ref.name}`, `${ratio(r.mem.VmRSS, ref.mem.VmRSS)} (${r.mem.VmRSS} vs ${ref.mem.VmRSS} kB)`, `<= ${TARGET.rss}x`, verdict(r.mem.VmRSS / ref.mem.VmRSS <= TARGET.rss)]);
  }
}

/** 3: reaping 2000 orphans, end to end and as ready zombies, beside tini. */
async function reapSection(c: Context): Promise<void> {
  const { S } = c;
  const subjects = reapSubjects(c.list, c.bin('orphans'), S.orphans);
  const e2e = subjects.map(() => [] as number[]);
  const zomb = subjects.map(() => [] as number[]);
  const zcpu = subjects.map(() => [] as number[]);
  const load0 = loadavg();
  note(`reaping: ${S.e2eRounds} end-to-end + ${S.zombieRounds} ready-zombie rounds per init, ${S.orphans} orphans each, rounds interleaved`);
  for (let k = 0; k < Math.max(S.e2eRounds, S.zombieRounds); k++) {
    for (let i = 0; i < subjects.length; i++) {
      if (k < S.e2eRounds) e2e[i].push((await reapRound(subjects[i], S.orphans, 'e2e', 250)).endToEndMs!);
      if (k < S.zombieRounds && !subjects[i].selfReap) {
        const z = await reapRound(subjects[i], S.orphans, 'zombies', 250);
        zomb[i].push(z.zombiesMs!);
        zcpu[i].push(z.zombiesCpuMs!);
      }
    }
  }
  const hi = subjects.findIndex((s) => s.name === 'hainit');
  const ti = subjects.findIndex((s) => s.name === 'tini');
  say(`## 3. Reaping ${S.orphans} orphans, init as PID 1 (ms; medians, min-max in brackets; hainit = \`${c.mainFlavour.label} bin/hainit\`; load ${load0} -> ${loadavg()})`);
  say();
  const span = (v: number[]): string => (v.length ? `${fmt(median(v))} [${fmt(Math.min(...v))}-${fmt(Math.max(...v))}]` : 'n/a');
  say(table(['init', `end to end (${S.e2eRounds} rounds)`, `ready zombies (${S.zombieRounds} rounds)`, 'hainit / this (e2e)', 'hainit / this (zombies)'], subjects.map((s, i) => [
    s.name,
    span(e2e[i]),
    s.selfReap ? 'n/a' : span(zomb[i]),
    i === hi ? '' : ratio(median(e2e[hi]), median(e2e[i])),
    i === hi || s.selfReap ? '' : ratio(median(zomb[hi]), median(zomb[i])),
  ])));
  say();
  say('End to end: the factory (the init\'s child) holds 2000 double-forked orphans blocked on a pipe, closes it (stamping CLOCK_MONOTONIC), and the');
  say('host polls the init\'s children (/proc/PID/task/*/children, every 0.25 ms) until none but the factory is left; a full /proc scan then');
  say('confirms no zombie remains. Ready zombies: the init is SIGSTOPped, the orphans are released and all become zombies, then SIGCONT');
  say('-> none left: the init\'s own reaping throughput. `none` is the factory as PID 1 reaping with a plain waitpid loop.');
  say();
  if (ti >= 0) {
    const r = median(e2e[hi]) / median(e2e[ti]);
    c.summary.push(['reap 2000 orphans end to end, hainit / tini', ratio(median(e2e[hi]), median(e2e[ti])), `<= ${TARGET.reap}x`, verdict(r <= TARGET.reap)]);
    const rz = median(zomb[hi]) / median(zomb[ti]);
    c.summary.push(['reap 2000 ready zombies, hainit / tini (wall clock)', ratio(median(zomb[hi]), median(zomb[ti])), '(info)', rz <= TARGET.reap ? 'within 1.5x' : 'beyond 1.5x']);
    // The CPU time of the init's main thread meanwhile (schedstat): the wall clock mostly measures the wait for a CPU on a loaded machine.
    const rc = median(zcpu[hi]) / median(zcpu[ti]);
    c.summary.push(["reap 2000 ready zombies, CPU of the init's main thread, hainit / tini", `${ratio(median(zcpu[hi]), median(zcpu[ti]))} (${fmt(median(zcpu[hi]))} vs ${fmt(median(zcpu[ti]))} ms)`, `<= ${TARGET.reap}x`, verdict(rc <= TARGET.reap)]);
  }
}

/** 4: signal forwarding latency, idle. */
function signalsSection(c: Context): void {
  const { S } = c;
  note(`signal forwarding: ${S.signals} SIGUSR1 per init, one in flight, ${S.gapUs} us apart`);
  const res: SignalResult[] = [];
  const tini = c.list.find((i) => i.name === 'tini') ?? c.list[0];
  const load0 = loadavg();
  res.push(measureSignals(c.bin('siglat'), tini, S.signals, S.gapUs, true, 'none (kill the child directly)'));
  for (const i of c.list) res.push(measureSignals(c.bin('siglat'), i, S.signals, S.gapUs, false, i.name === 'hainit' ? `hainit (${c.mainFlavour.label} bin/hainit)` : i.name));
  if (c.dist) res.push(measureSignals(c.bin('siglat'), c.dist, S.signals, S.gapUs, false, c.dist.name));
  const hs = res.filter((r) => r.name.includes('hainit'));
  const ti = res.find((r) => r.name === 'tini');
  say(`## 4. Signal forwarding latency, kill(init, SIGUSR1) -> child's handler runs (us; ${S.signals} signals, idle, ${S.gapUs} us apart; load ${load0} -> ${loadavg()})`);
  say();
  say(table(['init', 'p50 us', 'p99 us', 'max us', 'p99 / tini p99'], res.map((r) => [r.name, fmt(r.p50Us), fmt(r.p99Us), fmt(r.maxUs), ti ? ratio(r.p99Us, ti.p99Us) : ''])));
  say();
  say('Both ends stamp CLOCK_MONOTONIC (bench/fixtures/siglat.c): the sender right before kill(), the child in its SIGUSR1 handler.');
  say();
  for (const h of hs) c.summary.push([`signal forwarding p99, idle, ${h.name}`, `${fmt(h.p99Us)} us (p50 ${fmt(h.p50Us)})`, `< ${TARGET.forwardP99Us} us`, verdict(h.p99Us < TARGET.forwardP99Us)]);
}

/** The bare reference, `bin/hainit` on it, and dist/hainit with its own reference when it differs. */
function probeServers(c: Context): ProbeSubject[] {
  const bareRef = bareServer(c.mainFlavour);
  const out: ProbeSubject[] = [bareRef, hainitServer(`hainit (${c.mainFlavour.label} bin/hainit)`, hainitOn(c.mainFlavour), bareRef.name)];
  const dref = distRef(c.flavours);
  if (c.dist && dref) {
    if (dref.label !== c.mainFlavour.label) out.push(bareServer(dref));
    out.push(hainitServer('dist/hainit', [DIST_HAINIT], bareServerName(dref)));
  }
  return out;
}

/** 5: probe endpoint throughput, each server back to back with its reference (information; 5b decides). */
async function probeSection(c: Context): Promise<void> {
  const { S } = c;
  const [bareRef, ...others] = probeServers(c);
  // The same bare server twice: how far apart two identical servers measure on this machine.
  const control: ProbeSubject = { ...bareRef, name: `(control) ${bareRef.name}, a second one`, ref: bareRef.name };
  const subjects = [bareRef, ...others, hardenedServer(c.mainFlavour), control];
  note(`probe endpoint: wrk -t1 -c10, ${S.probePasses} passes of ${S.probeSeconds} s runs, each server back to back with its reference, per mode (keep-alive, Connection: close)`);
  const load0 = loadavg();
  const res = await measureProbe(subjects, S.probePasses, S.probeSeconds);
  say(`## 5. Probe endpoint: GET /livez on 127.0.0.1 with wrk -t1 -c10 -d${S.probeSeconds}s (${S.probePasses} passes, each server back to back with its reference; load ${load0} -> ${loadavg()})`);
  say();
  say(table(['server', 'mode', 'req/s median', 'req/s min-max', 'p50 us', 'p99 us', 'errors', 'req/s / ref (median of pairs)', 'pairs min-max', 'CPU us/req', 'CPU / ref (median of pairs)'], res.map((r) => {
    const q = probeRatio(r);
    const rps = r.runs.map((w) => w.rps);
    return [
      r.name, r.mode, fmt(median(rps), 0), `${fmt(Math.min(...rps), 0)}-${fmt(Math.max(...rps), 0)}`,
      fmt(median(r.runs.map((w) => w.p50Us))), fmt(median(r.runs.map((w) => w.p99Us))),
      String(r.runs.reduce((n, w) => n + w.errors, 0)),
      q ? `${q.ratio.toFixed(2)}x` : '', q ? `${q.lo.toFixed(2)}-${q.hi.toFixed(2)}x` : '',
      fmt(median(r.runs.map((w) => w.cpuUsPerRequest))), q ? `${q.cpuRatio.toFixed(2)}x` : '',
    ];
  })));
  say();
  say('hainit runs as PID 1 (`unshare --pid --fork --mount-proc hainit --health-listen 127.0.0.1:PORT -- sleep 1000`); the bare server, also');
  say('PID 1 of its own namespace, is Node\'s `http.createServer` with default options sending the same status, headers and body. `close`');
  say('adds `-H \'Connection: close\'`: one TCP connection per request, as the kubelet probes. Latency: wrk\'s per-request percentiles');
  say('(median over runs). Ratios: each server runs right before or after its reference (alternating), and `req/s / ref` is the');
  say('median of those pairs\' ratios: throughput here drifts by up to 2x within a minute, two runs a second apart see the same machine.');
  say('hainit keeps its hardening on (header and request timeouts, 256 connections max, the pipelining guard); the (diag) row');
  say('is the bare server with the same limits (src/health/server.ts SERVER_LIMITS), to split hardening from routing and rendering.');
  say('The (control) row is a second bare server, identical to the reference: its distance from 1.00x is the noise of this');
  say('measurement on this machine. The verdicts on throughput come from section 5b, which counts instead of timing.');
  say('`CPU us/req`: the server process\'s CPU time (user + system, all threads, /proc/PID/stat) during the run over the requests wrk');
  say('completed: what a request costs, less moved by other load on the machine than req/s (lower is better; `CPU / ref` above 1 costs more).');
  say();
  // Wall-clock req/s informs, the counts of section 5b decide: see the control row.
  for (const r of res) {
    const q = probeRatio(r);
    if (!q || !(r.hainit || r.name.startsWith('(control)'))) continue;
    c.summary.push([`probe req/s (${r.mode}), ${r.name} / ${r.ref}`, `${q.ratio.toFixed(2)}x (median of ${r.pairs.length} pairs, ${q.lo.toFixed(2)}-${q.hi.toFixed(2)}x; CPU per request ${q.cpuRatio.toFixed(2)}x)`, '(info: wall clock)', q.ratio >= TARGET.probeRps ? `>= ${TARGET.probeRps}x` : `< ${TARGET.probeRps}x`]);
  }
}

/** 5b: instructions and system calls per probe request. Under valgrind it takes about 15 minutes: only when asked for by name. */
async function costSection(c: Context): Promise<void> {
  const { S } = c;
  const missing = costToolsMissing();
  if (missing) note(`probe cost: ${missing} not found, section left out`);
  else {
    const subjects = probeServers(c);
    note(`probe cost: callgrind and strace -c, ${S.costWarm['keep-alive']} + ${S.costCount['keep-alive']} keep-alive and ${S.costWarm.close} + ${S.costCount.close} close requests per server`);
    const res = await measureCost(subjects, ['keep-alive', 'close'], S.costWarm, S.costCount, c.tmp);
    const refOf = (r: CostResult): CostResult | undefined => res.find((x) => x.name === r.ref && x.mode === r.mode);
    say(`## 5b. What a probe request costs the server: instructions and system calls per request (GET /livez; ${S.costCount['keep-alive']} keep-alive requests after ${S.costWarm['keep-alive']}, ${S.costCount.close} with Connection: close after ${S.costWarm.close})`);
    say();
    say(table(['server', 'mode', 'instructions / request', '/ ref', 'system calls / request', '/ ref', 'commonest calls / request'], res.map((r) => {
      const ref = refOf(r);
      return [r.name, r.mode, fmt(r.instructionsPerRequest, 0), ref ? ratio(r.instructionsPerRequest, ref.instructionsPerRequest) : '',
        fmt(r.syscallsPerRequest, 2), ref ? ratio(r.syscallsPerRequest, ref.syscallsPerRequest) : '', r.topSyscalls];
    })));
    say();
    say('Instructions: user space, every thread, counted by callgrind while the server answered (`callgrind_control -z` after the warm-up,');
    say('`-d` after the count); the server is not PID 1 here. System calls: `strace -c -f` attached to the server as PID 1 of its namespace,');
    say('as in section 5. Both are counts, not times, so the machine\'s speed drops out: repeated runs agree within 2-3%. A server under');
    say('wrk is bound by one CPU, so its req/s is that CPU\'s speed over the CPU time a request costs; with neither count above 1.11x the');
    say('reference, it answers at least 0.9x the reference\'s req/s on the same CPU (instructions are not cycles: a cache-hungry path');
    say('could still cost more time per instruction).');
    say();
    for (const r of res) {
      const ref = refOf(r);
      if (!ref || !r.hainit) continue;
      const ir = r.instructionsPerRequest / ref.instructionsPerRequest;
      const sc = r.syscallsPerRequest / ref.syscallsPerRequest;
      c.summary.push([`probe cost per request (${r.mode}), ${r.name} / ${r.ref}`, `instructions ${ir.toFixed(2)}x, system calls ${sc.toFixed(2)}x: req/s at equal CPU >= ${(1 / Math.max(ir, sc)).toFixed(2)}x`, `>= ${TARGET.probeRps}x`, verdict(1 / Math.max(ir, sc) >= TARGET.probeRps)]);
    }
  }
}

/** 6: signal forwarding latency while wrk hammers a probe endpoint. */
async function signalsLoadSection(c: Context): Promise<void> {
  const { S } = c;
  note(`signal forwarding under probe load: ${S.signals} SIGUSR1 per init while wrk -t1 -c10 hammers a /livez`);
  const load0 = loadavg();
  const siglat = c.bin('siglat');
  const tini = c.list.find((i) => i.name === 'tini');
  const res: LoadedSignalResult[] = [];
  const bare = await startBare(c.mainFlavour);
  try {
    const target = `bare node http (${c.mainFlavour.label})`;
    if (tini) {
      res.push(await measureSignalsUnderLoad(siglat, 'none (kill the child directly)', (c) => tini.argv(c), true, { port: bare.port, target }, S.signals, S.gapUs));
      res.push(await measureSignalsUnderLoad(siglat, 'tini', (c) => tini.argv(c), false, { port: bare.port, target }, S.signals, S.gapUs));
    }
    // Diagnostic: the same machine load, but hainit's own event loop idle (the bare server takes it).
    const hArgv0 = (argv0: readonly string[]) => (c: string[]): string[] => [...argv0, '--', ...c];
    res.push(await measureSignalsUnderLoad(siglat, `(diag) hainit (${c.mainFlavour.label} bin/hainit), endpoint idle`, hArgv0(hainitOn(c.mainFlavour)), false, { port: bare.port, target }, S.signals, S.gapUs));
  } finally {
    await bare.stop();
  }
  const hArgv = (argv0: readonly string[]) => (c: string[]): string[] => [...argv0, '--health-listen', '127.0.0.1:@PORT@', '--', ...c];
  res.push(await measureSignalsUnderLoad(siglat, `hainit (${c.mainFlavour.label} bin/hainit)`, hArgv(hainitOn(c.mainFlavour)), false, { target: 'its own /livez' }, S.signals, S.gapUs));
  if (c.dist) res.push(await measureSignalsUnderLoad(siglat, 'dist/hainit', hArgv([DIST_HAINIT]), false, { target: 'its own /livez' }, S.signals, S.gapUs));
  const ti = res.find((r) => r.name === 'tini');
  say(`## 6. Signal forwarding latency while wrk hammers a probe endpoint (us; ${S.signals} signals, ${S.gapUs} us apart; load ${load0} -> ${loadavg()})`);
  say();
  say(table(['init', 'wrk loads', 'wrk req/s', 'p50 us', 'p99 us', 'max us', 'p99 / tini p99'], res.map((r) => [r.name, r.loadTarget, fmt(r.loadRps, 0), fmt(r.p50Us), fmt(r.p99Us), fmt(r.maxUs), ti ? ratio(r.p99Us, ti.p99Us) : ''])));
  say();
  say('hainit serves the endpoint it is forwarding signals for (`--health-listen 127.0.0.1:PORT -- siglat child`), so its JS thread');
  say('is busy answering probes. tini and `none` have no endpoint: a bare Node server on the same machine takes the same wrk load, so');
  say('they see the same CPU pressure (2 cores: wrk on one, the server on the other) without serving it. wrk starts 500 ms before');
  say('the first signal and stops after the last (SIGINT). The (diag) row is hainit without an endpoint while wrk loads the bare');
  say('server: the same CPU pressure on the machine, but hainit\'s own JS thread idle.');
  say();
  for (const h of res.filter((r) => r.name.includes('hainit') && !r.name.startsWith('(diag)'))) c.summary.push([`signal forwarding p99 under probe load, ${h.name}`, `${fmt(h.p99Us)} us (p50 ${fmt(h.p50Us)})`, `< ${TARGET.forwardP99Us} us`, verdict(h.p99Us < TARGET.forwardP99Us)]);
}

/** 7: what the kubelet sees while hostile clients use the probe port. */
async function hostileSection(c: Context): Promise<void> {
  const seconds = c.S === SETTINGS.quick ? 4 : 10;
  note(`hostile clients: ${HOSTILE_CLASSES.length} classes, fresh probes every 50 ms for ${seconds} s each`);
  const load0 = loadavg();
  // as users run it: the sh launcher with its Node flags (--max-semi-space-size among them), where this Node has them
  const launcher = launcherFor(c.mainFlavour);
  const name = launcher ? `hainit (bin/hainit, sh launcher, ${c.mainFlavour.label})` : `hainit (${c.mainFlavour.label} bin/hainit)`;
  const res = await measureHostile((args) => hainitServer(name, [...(launcher ? [launcher] : hainitOn(c.mainFlavour)), ...args], ''), HOSTILE_CLASSES, seconds);
  say(`## 7. Hostile clients: what the kubelet sees (${name} as PID 1; a fresh GET /livez every 50 ms for ${seconds} s, 1 s timeout; load ${load0} -> ${loadavg()})`);
  say();
  say(hostileTable(res));
  say();
  say('Each class runs against a fresh hainit (`--health-listen 0.0.0.0:PORT -- sleep 1000`), from processes of its own');
  say('(test/fixtures/hostile.js) connecting from 127.0.0.2 and up; every client reconnects at once when cut (the impatient ones');
  say('also when a connection is not made within 900 ms). The probes come from an address of the machine\'s own, not the loopback, as');
  say('the kubelet\'s come from the node (support/load.ts kubeletAddress). Probing starts once');
  say('hainit\'s descriptor count has settled. A failed probe counts as 1000 ms. `p99 / calm`: against the first row, the same');
  say('probes with nobody else on the port. `RSS`: hainit\'s VmRSS before the clients came, and the largest sampled (every 100 ms) while probing.');
  say();
  for (const r of res) {
    if (r.name.startsWith('calm')) continue;
    const p99 = percentile(r.w.latencies, 99);
    c.summary.push([`probe p99 under hostile clients: ${r.name}`, `${fmt(p99)} ms (${r.w.failed} failed), RSS ${fmt(r.w.rssMaxKb / 1024)} MB`, `< ${TARGET.hostileP99Ms} ms, < ${TARGET.hostileRssMb} MB`, verdict(p99 < TARGET.hostileP99Ms && r.w.rssMaxKb / 1024 < TARGET.hostileRssMb)]);
  }
}

/** The sections in report order; `--only` picks some (probe-cost runs only when named). */
const SECTIONS: readonly { readonly name: string; readonly run: (c: Context) => void | Promise<void>; readonly onlyWhenNamed?: boolean }[] = [
  { name: 'startup', run: startupSection },
  { name: 'rss', run: rssSection },
  { name: 'reap', run: reapSection },
  { name: 'signals', run: signalsSection },
  { name: 'probe', run: probeSection },
  { name: 'probe-cost', run: costSection, onlyWhenNamed: true },
  { name: 'signals-load', run: signalsLoadSection },
  { name: 'hostile', run: hostileSection },
];

async function main(): Promise<void> {
  const opt = options();
  // Node 22's code cache is not trained in advance: its first run makes it (bin/hainit), as for a user.
  ensureNode22();
  const flavours = nodeFlavours();
  ensureBinary();
  const { dir: tmp, bin } = buildFixtures();
  const c: Context = {
    S: opt.quick ? SETTINGS.quick : SETTINGS.full,
    list: inits(),
    flavours,
    mainFlavour: flavours[0],
    dist: fs.existsSync(DIST_HAINIT) ? { name: 'dist/hainit', argv: (cmd) => [DIST_HAINIT, '--', ...cmd] } : undefined,
    tmp,
    bin,
    summary: [],
  };
  const t0 = Date.now();
  header(c, opt.quick);
  for (const s of SECTIONS) {
    if (s.onlyWhenNamed ? opt.only.has(s.name) : opt.only.size === 0 || opt.only.has(s.name)) await s.run(c);
  }
  say('## Targets');
  say();
  say(table(['measure', 'hainit', 'target', 'verdict'], c.summary));
  say();
  say(`(bench took ${Math.round((Date.now() - t0) / 1000)} s; load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (opt.out) fs.writeFileSync(opt.out, `${out.join('\n')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
