/**
 * hainit benchmark: hainit side by side with tini, tini-static, dumb-init, catatonit and bare
 * Node, in one run. `npm run bench` (full, ~3-4 min) or `npm run bench -- --quick`
 * (HAINIT_BENCH_QUICK=1 works too, ~1 min). `--only startup,rss,reap,signals` picks sections;
 * `--out FILE` also writes the report (markdown) to FILE.
 *
 * Environment: HAINIT_BENCH_QUICK=1 (quick mode), HAINIT_BENCH_NODE=/path/to/node (the node for
 * hainit and the bare-node rows; default: the one running this script).
 *
 * Needs root (unshare --pid), cc, hyperfine; /usr/bin/time for peak RSS (python3 otherwise).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { measureSignals, measureSteadyRss, reapRound, reapSubjects, steadySubjects, SignalResult } from './pid1';
import { measurePeakRss, measureStartup, startupRows, startupTable } from './startup';
import { Init, NODE, buildFixtures, commandOutput, fmt, inits, median, ratio, table } from './util';

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
      process.stderr.write(`usage: node lib/bench/run.js [--quick|--full] [--only startup,rss,reap,signals] [--out FILE]\n`);
      process.exit(2);
    }
  }
  return o;
}

const SETTINGS = {
  full: { startupRuns: 150, startupPasses: 10, peakRuns: 15, steadyRounds: 3, settleMs: 1000, orphans: 2000, e2eRounds: 7, zombieRounds: 5, signals: 2000, gapUs: 1000 },
  quick: { startupRuns: 30, startupPasses: 3, peakRuns: 5, steadyRounds: 1, settleMs: 500, orphans: 2000, e2eRounds: 3, zombieRounds: 2, signals: 300, gapUs: 1000 },
};

const TARGET = { startup: 1.15, rss: 1.15, reap: 1.5, forwardP99Us: 1000 };

const out: string[] = [];
function say(s = ''): void {
  out.push(s);
  process.stdout.write(`${s}\n`);
}
const note = (s: string): void => void process.stderr.write(`  .. ${s}\n`);
const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED');

async function main(): Promise<void> {
  const opt = options();
  const S = opt.quick ? SETTINGS.quick : SETTINGS.full;
  const want = (s: string): boolean => opt.only.size === 0 || opt.only.has(s);
  const list: Init[] = inits();
  const { dir: tmp, bin } = buildFixtures();
  const t0 = Date.now();
  const summary: string[][] = [];

  say(`# hainit benchmark (${opt.quick ? 'quick' : 'full'} mode)`);
  say();
  say(`- date: ${new Date().toISOString()}`);
  say(`- machine: nproc ${os.cpus().length} (${commandOutput('nproc', [])} usable), kernel ${os.release()}, ${os.cpus()[0]?.model ?? 'cpu?'}`);
  say(`- node ${commandOutput(NODE, ['--version'])} (${NODE}; set HAINIT_BENCH_NODE to pick another); hainit ${require('../../package.json').version} (git ${commandOutput('git', ['-C', `${__dirname}/../..`, 'describe', '--always', '--dirty'])})`);
  say(`- load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on this machine skews timings; see the end for the load at the end)`);
  say(`- peers: ${list.filter((i) => i.name !== 'hainit').map((i) => i.name).join(', ')} (Debian packages)`);
  say(`- rerun: \`npm run bench\` (quick: \`npm run bench -- --quick\` or HAINIT_BENCH_QUICK=1)`);
  say();

  if (want('startup')) {
    note(`start-up: hyperfine -N, ${S.startupRuns} runs per command`);
    const rows = startupRows(list, true);
    const res = measureStartup(rows, S.startupRuns, tmp, S.startupPasses);
    say(`## 1. Start-up wall time of \`X -- true\` (hyperfine -N, ${S.startupRuns} runs in ${S.startupPasses} passes, command order rotating, 1 warm-up run per pass; not PID 1)`);
    say();
    say(startupTable(res));
    say();
    const node = res.find((r) => r.name === 'node -e 0')!;
    const h = res.find((r) => r.name.startsWith('hainit'))!;
    const r = h.medianMs / node.medianMs;
    summary.push(['start-up median, hainit / node -e 0', ratio(h.medianMs, node.medianMs), `<= ${TARGET.startup}x`, verdict(r <= TARGET.startup)]);

    note(`peak RSS: /usr/bin/time -f %M, ${S.peakRuns} runs per command`);
    const peak = measurePeakRss(rows, S.peakRuns, tmp);
    const pn = peak.find((p) => p.name === 'node -e 0')!;
    const ph = peak.find((p) => p.name.startsWith('hainit'))!;
    say(`## 2a. Peak RSS of \`X -- true\` (ru_maxrss via /usr/bin/time, median of ${S.peakRuns})`);
    say();
    say(table(['command', 'median kB', 'max kB', 'hainit / this'], peak.map((p) => [p.name, String(p.medianKb), String(p.maxKb), p === ph ? '' : ratio(ph.medianKb, p.medianKb)])));
    say();
    say('ru_maxrss includes the forked copy of /usr/bin/time before exec: the `true` row is that floor, so the small inits all sit near it.');
    say();
    const pr = ph.medianKb / pn.medianKb;
    summary.push(['peak RSS of `-- true`, hainit / node -e 0', ratio(ph.medianKb, pn.medianKb), `<= ${TARGET.rss}x`, verdict(pr <= TARGET.rss)]);
  }

  if (want('rss')) {
    note(`RSS supervising sleep 30 as PID 1: ${S.steadyRounds} round(s), sampled ${S.settleMs} ms after sleep starts`);
    const res = await measureSteadyRss(steadySubjects(list), S.steadyRounds, S.settleMs);
    const bare = res[0];
    const h = res.find((r) => r.name === 'hainit')!;
    say(`## 2b. Memory of the init supervising \`sleep 30\` as PID 1 (kB, median of ${S.steadyRounds}, sampled ${S.settleMs} ms after sleep started)`);
    say();
    const keys = ['VmRSS', 'RssAnon', 'RssFile', 'Pss'];
    say(table(['init', ...keys, 'hainit VmRSS / this'], res.map((r) => [r.name, ...keys.map((k) => String(r.mem[k] ?? 'n/a')), r === h ? '' : ratio(h.mem.VmRSS, r.mem.VmRSS)])));
    say();
    say('`node (spawn only)` is `node -e "child_process.spawn(\'sleep\', ...)"` as PID 1: what any Node init costs before doing anything.');
    say();
    const r = h.mem.VmRSS / bare.mem.VmRSS;
    summary.push(['VmRSS supervising sleep, hainit / node (spawn only)', ratio(h.mem.VmRSS, bare.mem.VmRSS), `<= ${TARGET.rss}x`, verdict(r <= TARGET.rss)]);
  }

  if (want('reap')) {
    const subjects = reapSubjects(list, bin('orphans'), S.orphans);
    const e2e = subjects.map(() => [] as number[]);
    const zomb = subjects.map(() => [] as number[]);
    note(`reaping: ${S.e2eRounds} end-to-end + ${S.zombieRounds} ready-zombie rounds per init, ${S.orphans} orphans each, rounds interleaved`);
    for (let k = 0; k < Math.max(S.e2eRounds, S.zombieRounds); k++) {
      for (let i = 0; i < subjects.length; i++) {
        if (k < S.e2eRounds) e2e[i].push((await reapRound(subjects[i], S.orphans, 'e2e', 250)).endToEndMs!);
        if (k < S.zombieRounds && !subjects[i].selfReap) zomb[i].push((await reapRound(subjects[i], S.orphans, 'zombies', 250)).zombiesMs!);
      }
    }
    const hi = subjects.findIndex((s) => s.name === 'hainit');
    const ti = subjects.findIndex((s) => s.name === 'tini');
    say(`## 3. Reaping ${S.orphans} orphans, init as PID 1 (ms; medians, min-max in brackets)`);
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
      summary.push(['reap 2000 orphans end to end, hainit / tini', ratio(median(e2e[hi]), median(e2e[ti])), `<= ${TARGET.reap}x`, verdict(r <= TARGET.reap)]);
      const rz = median(zomb[hi]) / median(zomb[ti]);
      summary.push(['reap 2000 ready zombies, hainit / tini (not a target)', ratio(median(zomb[hi]), median(zomb[ti])), '(info)', rz <= TARGET.reap ? 'within 1.5x' : 'beyond 1.5x']);
    }
  }

  if (want('signals')) {
    note(`signal forwarding: ${S.signals} SIGUSR1 per init, one in flight, ${S.gapUs} us apart`);
    const res: SignalResult[] = [];
    const tini = list.find((i) => i.name === 'tini') ?? list[0];
    res.push(measureSignals(bin('siglat'), tini, S.signals, S.gapUs, true, 'none (kill the child directly)'));
    for (const i of list) res.push(measureSignals(bin('siglat'), i, S.signals, S.gapUs, false, i.name));
    const h = res.find((r) => r.name === 'hainit')!;
    say(`## 4. Signal forwarding latency, kill(init, SIGUSR1) -> child's handler runs (us; ${S.signals} signals, idle, ${S.gapUs} us apart)`);
    say();
    say(table(['init', 'p50 us', 'p99 us', 'max us', 'hainit p99 / this'], res.map((r) => [r.name, fmt(r.p50Us), fmt(r.p99Us), fmt(r.maxUs), r === h ? '' : ratio(h.p99Us, r.p99Us)])));
    say();
    say('Both ends stamp CLOCK_MONOTONIC (bench/fixtures/siglat.c): the sender right before kill(), the child in its SIGUSR1 handler.');
    say();
    summary.push(['signal forwarding p99, hainit', `${fmt(h.p99Us)} us`, `< ${TARGET.forwardP99Us} us`, verdict(h.p99Us < TARGET.forwardP99Us)]);
  }

  say('## Targets');
  say();
  say(table(['measure', 'hainit', 'target', 'verdict'], summary));
  say();
  say(`(bench took ${Math.round((Date.now() - t0) / 1000)} s; load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (opt.out) fs.writeFileSync(opt.out, `${out.join('\n')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
