/**
 * Start-up in CPU time: user + system time of `node bin/hainit -- true` (hainit, and the `true` it
 * waits for) against the same Node's `node -e 0`, on every Node the bench knows, and through the sh
 * launcher with the flags the install gives that Node (scripts/fit-launcher.cjs).
 *
 *   npm run build && node lib/bench/startup-cpu.js [RUNS]    (default 150 runs per command)
 *
 * Why a third measure beside hyperfine's wall times (section 1) and callgrind's counts
 * (startup-count.ts): wall times on this shared 2-core machine move by ±0.1 in the ratio from run
 * to run, because they include waiting for a CPU; counts repeat, but see only user-space
 * instructions of hainit's own process. CPU time is what the kernel charged (the scheduler's
 * nanosecond total, from wait4(2)): it holds the system calls, page faults and the child that
 * the counts leave out, and none of the waiting. Each command runs RUNS times, interleaved, the
 * order reversed every other round; a run is one wait4 of the command (`true` included, as
 * hainit waits for it). Python's os.wait4 reads it: Node's child_process does not return the
 * child's resource usage.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, ensureNode22, median, nodeFlavours, table } from './util';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const fitLauncher: { FLAG: string; flagIsFree(node: string): boolean; withoutFlag(text: string): string } = require('../../scripts/fit-launcher.cjs');

interface Command {
  readonly name: string;
  readonly argv: readonly string[];
  readonly path?: string;
}

const MEASURE = `
import json, os, subprocess, sys
commands, runs = json.load(sys.stdin)
out = {c['name']: [] for c in commands}
faults = {c['name']: [] for c in commands}
for i in range(runs):
    for c in (commands if i % 2 == 0 else commands[::-1]):
        env = dict(os.environ)
        if c.get('path'): env['PATH'] = c['path'] + ':' + env['PATH']
        p = subprocess.Popen(c['argv'], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = status
        out[c['name']].append((ru.ru_utime + ru.ru_stime) * 1000)
        faults[c['name']].append(ru.ru_minflt)
json.dump([out, faults], sys.stdout)
`;

function main(): void {
  const runs = Number(process.argv[2] ?? 150);
  ensureNode22();
  const hainit = path.join(ROOT, 'bin', 'hainit');
  const source = fs.readFileSync(hainit, 'utf8');
  const commands: Command[] = [];
  const made: string[] = [];
  process.on('exit', () => made.forEach((f) => fs.rmSync(f, { force: true })));
  const flavours = nodeFlavours();
  for (const f of flavours) {
    commands.push({ name: `node -e 0 (${f.label})`, argv: [f.node, '-e', '0'] });
    commands.push({ name: `node bin/hainit -- true (${f.label})`, argv: [f.node, hainit, '--', 'true'] });
    if (spawnSync(f.node, ['--disable-sigusr1', '-e', '0'], { stdio: 'ignore' }).status !== 0) continue;
    // the launcher as an install on this Node leaves it, beside bin/hainit (same ../lib)
    const fitted = fitLauncher.flagIsFree(f.node) ? source : fitLauncher.withoutFlag(source);
    const launcher = path.join(ROOT, 'bin', `.cpu-hainit-${f.version}`);
    fs.writeFileSync(launcher, fitted, { mode: 0o755 });
    made.push(launcher);
    commands.push({ name: `bin/hainit -- true (sh launcher, ${f.label})`, argv: [launcher, '--', 'true'], path: path.dirname(f.node) });
  }
  // warm-up: each form makes the code cache for its flags if it has none (as the install does)
  for (const c of commands) spawnSync(c.argv[0], [...c.argv.slice(1, -1), 'sh', '-c', 'kill $$'], { stdio: 'ignore', env: c.path ? { ...process.env, PATH: `${c.path}:${process.env.PATH}` } : process.env });
  const [times, faults] = JSON.parse(execFileSync('python3', ['-c', MEASURE], { input: JSON.stringify([commands, runs]), encoding: 'utf8', maxBuffer: 1 << 24 })) as Record<string, number[]>[];
  const rows = commands.map((c) => {
    const label = /\((?:sh launcher, )?(node \d+)\)$/.exec(c.name)?.[1] as string;
    const ref = times[`node -e 0 (${label})`];
    const own = median(times[c.name]);
    const pageFaults = String(median(faults[c.name]));
    if (c.name.startsWith('node -e 0')) return [c.name, own.toFixed(2), '', '', pageFaults];
    const [lo, hi] = ratioInterval(times[c.name], ref);
    return [c.name, own.toFixed(2), `${(own / median(ref)).toFixed(3)}x`, `${lo.toFixed(3)}-${hi.toFixed(3)}x`, pageFaults];
  });
  process.stdout.write(`Start-up CPU time (user + system, wait4; hainit with the \`true\` it waits for), median of ${runs} interleaved runs, against the same Node's \`node -e 0\`:\n\n`);
  process.stdout.write(table(['command', 'CPU ms', '/ node -e 0', '95% interval', 'page faults'], rows) + '\n');
  process.stdout.write('\nThe interval is the ratio of medians over 2000 resamplings of both commands\' runs (bootstrap,\n2.5th to 97.5th percentile): a target inside it is neither met nor missed by this run. Page faults: the\nmedian of minor faults (ru_minflt, the `true` child\'s about 50 included), which repeat where times do not.\n');
}

/**
 * The 2.5th and 97.5th percentiles of median(a) / median(b) over resamplings of a and b (the
 * bootstrap; a fixed seed, so a rerun on the same numbers prints the same interval). CPU times on a
 * shared machine move by a few per cent from run to run: one ratio of medians cannot tell 1.09
 * from 1.11.
 */
function ratioInterval(a: readonly number[], b: readonly number[], rounds = 2000): [number, number] {
  let seed = 0x9e3779b9;
  const random = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const resample = (xs: readonly number[]): number[] => xs.map(() => xs[Math.floor(random() * xs.length)]);
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) ratios.push(median(resample(a)) / median(resample(b)));
  ratios.sort((x, y) => x - y);
  return [ratios[Math.floor(rounds * 0.025)], ratios[Math.ceil(rounds * 0.975) - 1]];
}

main();
