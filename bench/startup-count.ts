/**
 * Start-up counted, not timed: instructions (callgrind, hainit's own process, children not
 * followed) of `node bin/hainit -- true` against the same Node's `node -e 0`, on every Node the
 * bench knows (20, 22, 24; Node 22 is installed into node_modules/.bench when missing). Counts
 * do not move with the machine's load, where hyperfine's wall times on a shared machine do.
 *
 *   npm run build && node lib/bench/startup-count.js [RUNS]    (default 5 runs per command)
 *
 * Two measures per Node:
 * - the whole process, as `node -e 0` is counted. Node draws a random hash seed at every start,
 *   and its own start-up moves with it by about ±4 M instructions, so these are medians.
 * - hainit's own part: from the first statement of bin/hainit to the exit (reading the bundle and
 *   its cache, node:vm, deserialising, running hainit), main thread. A copy of bin/hainit beside
 *   it (same ../lib) starts with `process.ppid;`, and callgrind's --dump-before=getppid cuts the
 *   count there: this part repeats to within 0.1 M, so it shows what a change to hainit gains.
 *   Where the count went inside it: the same cut at more places (README, "Choices", start-up).
 * Under valgrind SIGRTMAX cannot be caught (valgrind keeps it for itself), so hainit logs the one
 * warning a real start does not ("does not let hainit catch SIGRTMAX"): about 0.1 M of each
 * hainit count (Node 24; 1.1 M while signal names came from node:os), not in any real run.
 *
 * - through the sh launcher (what npm's bin runs), on Nodes that have its flags: the Node process
 *   as the launcher execs it (`node FLAGS bin/hainit -- true`, with the cache for those flags)
 *   plus the launcher's own sh part, counted once (deterministic) on a copy of its lines up to the
 *   exec: valgrind drops the counts of a process image that execs.
 * The code cache of each Node is whatever bin/hainit finds: the one `npm run build` trained
 * (Node 20, and Node 24 under `npm run bench`), or, for a Node without one, the one its first
 * run wrote (the warm-up run below), as on a user's machine.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, ensureNode22, mean, median, nodeFlavours, table } from './util';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const fitLauncher: { FLAG: string; flagIsFree(node: string): boolean; execLine(text: string): { index: number; flags: string[] } } = require('../../scripts/fit-launcher.cjs');

function instructions(argv: string[]): number {
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`callgrind gave no count for ${argv.join(' ')}:\n${r.stderr.slice(-2000)}`);
  return Number(m[1]);
}

/**
 * Main-thread instructions from bin/hainit's first statement to the exit (see above), and those of
 * the process's other threads (V8's concurrent Sparkplug compiles code that start-up ran often;
 * `node -e 0` exits before its own batches are compiled there).
 */
function ownPart(node: string, marked: string, args: string[]): { own: number; threads: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hainit-count-'));
  const total = (file: string): number => {
    const m = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(file, 'utf8'));
    if (!m) throw new Error(`callgrind wrote no total in ${file} for ${node} ${marked}`);
    return Number(m[1]);
  };
  try {
    const out = path.join(dir, 'cg.out');
    spawnSync('valgrind', ['--tool=callgrind', '--separate-threads=yes', '--dump-before=getppid', `--callgrind-out-file=${out}`, node, marked, ...args], { stdio: 'ignore' });
    // the last part of thread 1 (cg.out-01): everything after the marker; other threads: cg.out-02...
    const others = fs.readdirSync(dir).filter((f) => /^cg\.out-(\d+)$/.test(f) && f !== 'cg.out-01');
    return { own: total(`${out}-01`), threads: others.reduce((n, f) => n + total(path.join(dir, f)), 0) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** bin/hainit's launcher: its Node flags, and the instructions its sh part costs up to the exec. */
function launcher(source: string): { flags: string[]; sh: number } {
  const { index, flags } = fitLauncher.execLine(source);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hainit-count-'));
  try {
    const lines = path.join(dir, 'launcher');
    fs.writeFileSync(lines, source.slice(0, index));
    return { flags, sh: instructions(['/bin/sh', lines, '--', 'true']) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const runs = Number(process.argv[2] ?? 5);
  ensureNode22();
  const hainit = path.join(ROOT, 'bin', 'hainit');
  const source = fs.readFileSync(hainit, 'utf8');
  const { flags, sh } = launcher(source);
  if (!source.includes("\n'use strict';\n")) throw new Error("bin/hainit has no 'use strict'; line to put the marker after");
  const marked = path.join(ROOT, 'bin', '.count-hainit');
  fs.writeFileSync(marked, source.replace("\n'use strict';\n", "\n'use strict'; process.ppid;\n"), { mode: 0o755 });
  process.on('exit', () => fs.rmSync(marked, { force: true }));
  const rows: string[][] = [];
  for (const f of nodeFlavours()) {
    // warm-up: makes the code cache for a Node that has none, as the install script does (its
    // run logs a line, so the cache holds the logger: scripts/bundle.mjs, TRAINING_COMMAND)
    const training = [hainit, '--', 'sh', '-c', 'kill $$'];
    spawnSync(f.node, training, { stdio: 'ignore' });
    // the launcher's flags as the install script fits them to this Node (scripts/fit-launcher.cjs)
    const viaLauncher = spawnSync(f.node, [...flags, '-e', '0'], { stdio: 'ignore' }).status === 0;
    const nodeFlags = viaLauncher && !fitLauncher.flagIsFree(f.node) ? flags.filter((x) => x !== fitLauncher.FLAG) : flags;
    if (viaLauncher) spawnSync(f.node, [...nodeFlags, ...training], { stdio: 'ignore' });
    const cache = fs.existsSync(path.join(ROOT, 'lib', `hainit-${f.version}.cache`)) ? 'yes' : 'no';
    const bare: number[] = [];
    const ours: number[] = [];
    const launched: number[] = [];
    const own: number[] = [];
    const threads: number[] = [];
    for (let i = 0; i < runs; i++) {
      bare.push(instructions([f.node, '-e', '0']));
      ours.push(instructions([f.node, hainit, '--', 'true']));
      if (viaLauncher) launched.push(instructions([f.node, ...nodeFlags, hainit, '--', 'true']) + sh);
      if (i < 3) {
        const part = ownPart(f.node, marked, ['--', 'true']);
        own.push(part.own);
        threads.push(part.threads);
      }
    }
    const b = median(bare);
    const h = median(ours);
    const l = viaLauncher ? median(launched) : NaN;
    rows.push([f.label, f.version, cache, (b / 1e6).toFixed(1), (h / 1e6).toFixed(1), `${(h / b).toFixed(3)}x`,
      `${(Math.min(...ours) / 1e6).toFixed(1)}-${(Math.max(...ours) / 1e6).toFixed(1)}`,
      viaLauncher ? `${(l / 1e6).toFixed(1)} (${(l / b).toFixed(3)}x)${nodeFlags === flags ? '' : ` without ${fitLauncher.FLAG}`}` : 'no launcher flags',
      `${(median(own) / 1e6).toFixed(2)} (${(Math.min(...own) / 1e6).toFixed(2)}-${(Math.max(...own) / 1e6).toFixed(2)})`,
      (median(threads) / 1e6).toFixed(2), `${(mean(ours) / mean(bare)).toFixed(3)}x`]);
    process.stderr.write(`  .. ${f.label} done\n`);
  }
  process.stdout.write(`Start-up instructions (callgrind, median of ${runs}), \`node bin/hainit -- true\` / \`node -e 0\` of the same Node; through the sh launcher: its Node (${flags.join(' ')}, as the install fits them to each Node) plus its sh part, ${(sh / 1e6).toFixed(2)} M; hainit's own part (from bin/hainit's first statement to the exit, main thread, 3 runs; includes about 0.1 M for a warning only valgrind causes), and the instructions of its other threads (V8's concurrent Sparkplug; in the whole count):\n\n`);
  process.stdout.write(table(['node', 'version', 'cache in lib/', 'node -e 0 M', 'hainit M', 'ratio', 'hainit min-max M', 'sh launcher M (ratio)', "hainit's own part M", 'other threads M', 'ratio of means'], rows) + '\n');
}

main();
