/**
 * 1. Start-up wall time of `X -- true` (and bare `node -e 0`), with hyperfine -N (no shell):
 *    every run is fork + exec + the init's own start + spawning `true` + reaping it + exit.
 * 2a. Peak RSS of `X -- true`: /usr/bin/time's %M (ru_maxrss from wait4).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Init, NODE, ROOT, fmt, median, quantile, ratio, table, which } from './util';

export interface Row {
  readonly name: string;
  readonly argv: string[];
  /** diagnostic rows explain hainit's numbers, they are not peers */
  readonly diagnostic?: boolean;
}

export function startupRows(list: Init[], withDiagnostics: boolean): Row[] {
  const rows: Row[] = [
    { name: 'node -e 0', argv: [NODE, '-e', '0'] },
    ...list.map((i) => ({ name: `${i.name} -- true`, argv: i.argv(['true']) })),
  ];
  if (withDiagnostics) {
    const addon = path.join(ROOT, 'build', 'Release', 'hainit.node');
    rows.push(
      { name: '(diag) node: load the addon', argv: [NODE, '-e', `require(${JSON.stringify(addon)})`], diagnostic: true },
      // hainit's modules pull in http + https (and with them tls and crypto) at load time.
      { name: "(diag) node: require('https')", argv: [NODE, '-e', "require('https')"], diagnostic: true },
      { name: '(diag) hainit --version', argv: [NODE, path.join(ROOT, 'bin', 'hainit'), '--version'], diagnostic: true },
    );
  }
  return rows;
}

export interface StartupResult {
  readonly name: string;
  readonly diagnostic: boolean;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly runs: number;
}

/**
 * hyperfine runs all runs of one command before the next; on a shared machine load drifts, so
 * the runs are split into `passes` hyperfine invocations whose command order rotates, and the
 * samples are pooled.
 */
export function measureStartup(rows: Row[], runs: number, tmp: string, passes: number): StartupResult[] {
  const hyperfine = which('hyperfine');
  if (!hyperfine) throw new Error('hyperfine not found');
  const json = path.join(tmp, 'startup.json');
  // -N: no intermediate shell; hyperfine splits each command shell-style, so quote what needs it.
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const times = rows.map(() => [] as number[]);
  for (let pass = 0; pass < passes; pass++) {
    const n = Math.ceil(runs / passes);
    const order = rows.map((_, i) => (i + pass) % rows.length);
    const args = ['-N', '--style', 'none', '--warmup', '1', '--runs', String(n), '--export-json', json];
    for (const i of order) args.push(rows[i].argv.map(quote).join(' '));
    const res = spawnSync(hyperfine, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`hyperfine failed (${res.status}): ${res.stderr}`);
    const data = JSON.parse(fs.readFileSync(json, 'utf8')) as { results: { times: number[] }[] };
    order.forEach((i, k) => times[i].push(...data.results[k].times.map((s) => s * 1000)));
  }
  return rows.map((r, i) => {
    const t = times[i];
    return { name: r.name, diagnostic: !!r.diagnostic, medianMs: median(t), p90Ms: quantile(t, 0.9), runs: t.length };
  });
}

export function startupTable(results: StartupResult[]): string {
  const node = results.find((r) => r.name === 'node -e 0');
  const hainit = results.find((r) => r.name.startsWith('hainit'));
  const rows = results.map((r) => [
    r.name,
    fmt(r.medianMs, 2),
    fmt(r.p90Ms, 2),
    r.name.startsWith('hainit') || r.diagnostic ? ratio(r.medianMs, node?.medianMs ?? NaN) : '',
    hainit && !r.name.startsWith('hainit') && !r.diagnostic ? ratio(hainit.medianMs, r.medianMs) : '',
  ]);
  return table(['command', 'median ms', 'p90 ms', '/ node -e 0', 'hainit / this'], rows);
}

// ---------------------------------------------------------------- peak RSS

export interface PeakResult {
  readonly name: string;
  readonly medianKb: number;
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
  return all.map((r, i) => ({ name: r.name, medianKb: median(samples[i]), maxKb: Math.max(...samples[i]), runs }));
}
