import { PS_OPTIONS } from '../config/options';
import { parseSubcommand } from '../config/parse';
import { UsageError } from '../config/values';
import { EXIT_OK, EXIT_USAGE } from '../exit-codes';
import { isZombie, listPids } from '../proc/procfs';
import { formatBytes } from '../units';
import { Clock, ProcessInfo, readClock, readProcess, signalNames } from './process';

/**
 * `hainit ps [--json] [--proc DIR]`: the process tree read from /proc, for images that have no
 * `ps` and no shell (distroless, scratch) and for use with no hainit running. It only reads.
 *
 * Exit codes: 0 the tree was printed; 125 bad argument, or DIR cannot be listed.
 */

export const PS_USAGE = 'usage: hainit ps [--json] [--proc DIR]';

export interface TreeNode {
  readonly proc: ProcessInfo;
  readonly children: TreeNode[];
}

/**
 * Children under their parents, ordered by pid. A process whose parent is not in the table (PID
 * 1, pid 2 for kernel threads, or a parent outside our PID namespace, which the kernel shows as
 * ppid 0) is a root.
 */
export function buildTree(procs: readonly ProcessInfo[]): TreeNode[] {
  const nodes = new Map<number, TreeNode>();
  for (const p of [...procs].sort((a, b) => a.pid - b.pid)) nodes.set(p.pid, { proc: p, children: [] });
  const roots: TreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.proc.ppid !== node.proc.pid ? nodes.get(node.proc.ppid) : undefined;
    (parent ? parent.children : roots).push(node);
  }
  // A table read while pids were reused can hold a parent cycle, which no root reaches; each
  // such cycle is drawn from its lowest pid so that no process is left out.
  const reached = new Set<number>();
  const mark = (n: TreeNode): void => {
    if (reached.has(n.proc.pid)) return;
    reached.add(n.proc.pid);
    n.children.forEach(mark);
  };
  roots.forEach(mark);
  for (const node of nodes.values()) {
    if (reached.has(node.proc.pid)) continue;
    roots.push(node);
    mark(node);
  }
  return roots;
}

export interface TreeLine {
  readonly node: TreeNode;
  readonly depth: number;
  /** drawn before the command, e.g. `     \_ ` */
  readonly prefix: string;
  /** drawn before the lines under the command, so the branches below stay connected */
  readonly continuation: string;
}

/** Depth-first, as `ps -ef --forest` draws it. */
export function flattenTree(roots: readonly TreeNode[]): TreeLine[] {
  const out: TreeLine[] = [];
  // Guards against a table read mid-change that would make a cycle; pids are unique per read.
  const seen = new Set<number>();
  const walk = (node: TreeNode, depth: number, inherited: string, last: boolean): void => {
    if (seen.has(node.proc.pid)) return;
    seen.add(node.proc.pid);
    const prefix = depth === 0 ? '' : `${inherited} \\_ `;
    const continuation = depth === 0 ? '' : `${inherited}${last ? '    ' : ' |  '}`;
    out.push({ node, depth, prefix, continuation });
    node.children.forEach((c, i) => walk(c, depth + 1, continuation, i === node.children.length - 1));
  };
  for (const r of roots) walk(r, 0, '', true);
  return out;
}

/** Shell-style quoting only where needed, so `sh -c 'sleep 30; echo x'` reads back as typed. */
function quoteArg(arg: string): string {
  const printable = arg.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (printable !== '' && /^[\w@%+=:,./~-]+$/.test(printable)) return printable;
  return `'${printable.replace(/'/g, `'\\''`)}'`;
}

/** The command line; `[comm]` where there is none (kernel threads, zombies), as ps does. */
export function commandText(p: ProcessInfo): string {
  const base = p.argv.length ? p.argv.map(quoteArg).join(' ') : `[${p.comm}]`;
  return isZombie(p) ? `${base} <defunct>` : base;
}

/** `[[dd-]hh:]mm:ss`, the shape of ps's ELAPSED column. */
export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.floor(seconds);
  const two = (n: number) => String(n).padStart(2, '0');
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const mmss = `${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
  if (days) return `${days}-${two(hours)}:${mmss}`;
  return hours ? `${two(hours)}:${mmss}` : mmss;
}

function shortNames(signals: Set<number>): string {
  const names = signalNames(signals).map((n) => n.replace(/^SIG/, ''));
  return names.length ? names.join(',') : '-';
}

/** `caught: TERM,INT,USR1  ignored: PIPE  blocked: -`, and `pending: …` only when there is one. */
export function signalSummary(p: ProcessInfo): string {
  const s = p.signals;
  const parts = [`caught: ${shortNames(s.caught)}`, `ignored: ${shortNames(s.ignored)}`, `blocked: ${shortNames(s.blocked)}`];
  if (s.pending.size) parts.push(`pending: ${shortNames(s.pending)}`);
  return parts.join('  ');
}

export function renderText(procs: readonly ProcessInfo[]): string {
  const lines = flattenTree(buildTree(procs));
  const rows = lines.map((l) => {
    const p = l.node.proc;
    return [String(p.pid), String(p.ppid), p.state, formatAge(p.ageSeconds), formatBytes(p.rssBytes, 'short')];
  });
  const header = ['PID', 'PPID', 'S', 'AGE', 'RSS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  // Numbers right-aligned as in ps; the state letter left.
  const cells = (r: string[]) => r.map((c, i) => (i === 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
  const indent = ' '.repeat(widths.reduce((a, b) => a + b + 1, 0));
  const out = [`${cells(header)} COMMAND`];
  lines.forEach((l, i) => {
    const p = l.node.proc;
    out.push(`${cells(rows[i])} ${l.prefix}${commandText(p)}`);
    // A zombie has released its handlers and cannot take a signal, and a kernel thread ignores
    // all of them by construction: their sets would only be noise.
    if (isZombie(p) || p.kernelThread) return;
    const branch = l.node.children.length ? ' |  ' : '    ';
    out.push(`${indent}${l.continuation}${branch}${signalSummary(p)}`);
  });
  const zombies = lines.map((l) => l.node.proc).filter(isZombie);
  if (zombies.length) {
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const who = zombies.map((z) => `${z.pid} ${z.comm} (parent ${z.ppid} ${byPid.get(z.ppid)?.comm ?? '?'})`);
    out.push(`zombies: ${zombies.length}: ${who.join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

/** One object per process in tree order; `ppid` rebuilds the tree. */
export interface PsJson {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  zombie: boolean;
  comm: string;
  argv: string[];
  command: string;
  ageSeconds: number | null;
  rssBytes: number;
  threads: number;
  kernelThread: boolean;
  caught: string[];
  ignored: string[];
  blocked: string[];
  pending: string[];
}

export function toJson(procs: readonly ProcessInfo[]): PsJson[] {
  return flattenTree(buildTree(procs)).map(({ node: { proc: p } }) => ({
    pid: p.pid,
    ppid: p.ppid,
    pgid: p.pgrp,
    state: p.state,
    zombie: isZombie(p),
    comm: p.comm,
    argv: p.argv,
    command: commandText(p),
    ageSeconds: Number.isFinite(p.ageSeconds) ? Math.round(p.ageSeconds * 100) / 100 : null,
    rssBytes: p.rssBytes,
    threads: p.threads,
    kernelThread: p.kernelThread,
    caught: signalNames(p.signals.caught),
    ignored: signalNames(p.signals.ignored),
    blocked: signalNames(p.signals.blocked),
    pending: signalNames(p.signals.pending),
  }));
}

/** Every process under `procRoot` that could be read; ones that exit meanwhile are left out. */
export function readProcessTable(procRoot: string, clock: Clock = readClock(procRoot)): ProcessInfo[] | undefined {
  const pids = listPids(procRoot);
  if (!pids) return undefined;
  const out: ProcessInfo[] = [];
  for (const pid of pids) {
    const p = readProcess(procRoot, pid, clock);
    if (p) out.push(p);
  }
  return out;
}

/**
 * `args` are the words after `ps`. `out` receives stdout text verbatim (newlines included), `err`
 * one-line errors for stderr. Returns the exit code; main exits with it.
 */
export function psMain(args: string[], out: (s: string) => void, err: (s: string) => void): number {
  let values: Record<string, unknown>;
  try {
    const parsed = parseSubcommand(args, PS_OPTIONS);
    if (parsed.positionals.length) throw new UsageError(`unknown argument '${parsed.positionals[0]}'`);
    values = parsed.values;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const unknown = /^Unknown option '([^']*)'/.exec(e.message);
    err(`hainit ps: ${unknown ? `unknown argument '${unknown[1]}'` : e.message.replace(/^Option '--proc <value>' argument missing$/, '--proc needs a directory')} (${PS_USAGE})\n`);
    return EXIT_USAGE;
  }
  if (values.help) {
    out(`${PS_USAGE}\nThe process tree from /proc: pid, ppid, state (Z = zombie), age, RSS, command line,\nand the signals each process catches, ignores and blocks. Reads only.\n`);
    return EXIT_OK;
  }
  const json = values.json === true;
  const dir = values.proc as string | undefined;
  if (dir === '') {
    err(`hainit ps: --proc needs a directory (${PS_USAGE})\n`);
    return EXIT_USAGE;
  }
  const procRoot = dir === undefined ? '/proc' : dir.replace(/\/+$/, '') || '/';
  const procs = readProcessTable(procRoot);
  if (!procs) {
    err(`hainit ps: cannot list ${procRoot}: is proc mounted there?\n`);
    return EXIT_USAGE;
  }
  out(json ? `${JSON.stringify(toJson(procs), null, 2)}\n` : renderText(procs));
  return EXIT_OK;
}
