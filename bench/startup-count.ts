/**
 * Start-up counted, not timed: instructions (callgrind, hainit's own process, children not
 * followed) of `node bin/hainit -- true` against the same Node's `node -e 0`, on every Node the
 * bench knows (20, 22, 24; Node 22 is installed into node_modules/.bench when missing). Counts
 * do not move with the machine's load, where hyperfine's wall times on a shared machine do.
 *
 *   npm run build && node lib/bench/startup-count.js [RUNS]    (default 5 runs per command)
 *
 * The code cache of each Node is whatever bin/hainit finds: the one `npm run build` trained
 * (Node 20, and Node 24 under `npm run bench`), or, for a Node without one, the one its first
 * run wrote (the warm-up run below), as on a user's machine.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, ensureNode22, median, nodeFlavours, table } from './util';

function instructions(argv: string[]): number {
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`callgrind gave no count for ${argv.join(' ')}:\n${r.stderr.slice(-2000)}`);
  return Number(m[1]);
}

function main(): void {
  const runs = Number(process.argv[2] ?? 5);
  ensureNode22();
  const hainit = path.join(ROOT, 'bin', 'hainit');
  const rows: string[][] = [];
  for (const f of nodeFlavours()) {
    // warm-up: makes the code cache for a Node that has none
    spawnSync(f.node, [hainit, '--', 'true'], { stdio: 'ignore' });
    const cache = fs.existsSync(path.join(ROOT, 'lib', `hainit-${f.version}.cache`)) ? 'yes' : 'no';
    const bare: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < runs; i++) {
      bare.push(instructions([f.node, '-e', '0']));
      ours.push(instructions([f.node, hainit, '--', 'true']));
    }
    const b = median(bare);
    const h = median(ours);
    rows.push([f.label, f.version, cache, (b / 1e6).toFixed(1), (h / 1e6).toFixed(1), `${(h / b).toFixed(3)}x`,
      `${(Math.min(...ours) / 1e6).toFixed(1)}-${(Math.max(...ours) / 1e6).toFixed(1)}`]);
    process.stderr.write(`  .. ${f.label} done\n`);
  }
  process.stdout.write(`Start-up instructions (callgrind, median of ${runs}), \`node bin/hainit -- true\` / \`node -e 0\` of the same Node:\n\n`);
  process.stdout.write(table(['node', 'version', 'cache in lib/', 'node -e 0 M', 'hainit M', 'ratio', 'hainit min-max M'], rows) + '\n');
}

main();
