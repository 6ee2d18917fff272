import { readdirSync, readFileSync } from 'node:fs';
import { signalName } from '../signals/names';

/**
 * Reading one process out of a /proc tree. Every function takes the proc root explicitly
 * (`/proc`, a chroot's proc, or a fake directory in a test) and only reads: `hainit ps` and the
 * early warnings must never change what they look at.
 *
 * Processes come and go while /proc is walked: any file may vanish between two reads, so every
 * read here returns undefined instead of throwing, and callers skip what they could not read.
 */

export function readText(path: string): string | undefined {
  try {
    // latin1: command lines are bytes, not necessarily UTF-8, and must not make the read fail.
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] | undefined {
  try {
    return readdirSync(path);
  } catch {
    return undefined;
  }
}

/** Every process (thread-group) id under `procRoot`; threads are not listed by readdir. */
export function listPids(procRoot: string): number[] | undefined {
  const names = listDir(procRoot);
  if (!names) return undefined;
  return names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

export interface StatFields {
  readonly pid: number;
  readonly comm: string;
  /** one letter, as in proc(5): R S D Z T t X I … */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  /** clock ticks after boot */
  readonly startTicks: number;
  readonly rssPages: number;
  /** utime + stime + cutime + cstime: its own CPU and that of the children it reaped */
  readonly cpuTicks: number;
  /** PF_KTHREAD in the flags field */
  readonly kernelThread: boolean;
}

const PF_KTHREAD = 0x00200000;

/**
 * /proc/PID/stat. The command name sits in parentheses and may itself hold spaces and `)`, so the
 * fields after it are counted from the last `)`. Field numbers as in proc(5).
 */
export function parseStat(text: string): StatFields | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).trim().split(/\s+/);
  const field = (n: number) => Number(f[n - 3]);
  const stat = {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: f[0] ?? '?',
    ppid: field(4),
    pgrp: field(5),
    startTicks: field(22),
    rssPages: field(24),
    cpuTicks: field(14) + field(15) + field(16) + field(17),
    kernelThread: (field(9) & PF_KTHREAD) !== 0,
  };
  return Number.isInteger(stat.pid) && Number.isInteger(stat.ppid) ? stat : undefined;
}

/** The `Key:\tvalue` lines of /proc/PID/status. */
export function parseStatus(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

/**
 * A kernel signal mask as printed in /proc/PID/status (hex, bit N-1 = signal N) to the signal
 * numbers it holds, ascending. BigInt because the mask is 64 bits wide (128 on MIPS).
 */
export function decodeSignalMask(hex: string): number[] {
  const text = hex.trim();
  if (!/^[0-9a-fA-F]+$/.test(text)) return [];
  let mask = BigInt(`0x${text}`);
  const out: number[] = [];
  for (let sig = 1; mask !== 0n; sig++, mask >>= 1n) if (mask & 1n) out.push(sig);
  return out;
}

/** `SIGTERM`, `SIGRTMIN+3`, `SIGRTMAX-1`, `SIG33` (glibc's own real-time signals have no name). */
export function signalNames(signals: Iterable<number>): string[] {
  return [...signals].sort((a, b) => a - b).map(signalName);
}

export interface SignalSets {
  readonly caught: Set<number>;
  readonly ignored: Set<number>;
  readonly blocked: Set<number>;
  /** raised but not yet delivered, for the process or any of its threads */
  readonly pending: Set<number>;
}

/**
 * The signal sets of a process. Dispositions (caught, ignored) are shared by all its threads, but
 * masks are per thread and the kernel delivers a process-directed signal to any thread that does
 * not block it: a signal is blocked for the process only when every thread blocks it. Runtimes
 * block signals in their helper threads (Node's libuv, the JVM), so the leader's mask alone would
 * both miss and invent blocked signals.
 */
export function readSignalSetsAt(procRoot: string, pid: number): SignalSets | undefined {
  const statusText = readText(`${procRoot}/${pid}/status`);
  if (statusText === undefined) return undefined;
  const status = parseStatus(statusText);
  const set = (key: string) => new Set(decodeSignalMask(status.get(key) ?? ''));
  const pending = new Set([...set('SigPnd'), ...set('ShdPnd')]);
  let blocked: Set<number> | undefined;
  for (const tid of listDir(`${procRoot}/${pid}/task`) ?? []) {
    const t = readText(`${procRoot}/${pid}/task/${tid}/status`);
    if (t === undefined) continue;
    const ts = parseStatus(t);
    // An exited thread can no longer take a signal, so its mask does not count.
    if ((ts.get('State') ?? '').startsWith('Z')) continue;
    const mask = new Set(decodeSignalMask(ts.get('SigBlk') ?? ''));
    for (const sig of decodeSignalMask(ts.get('SigPnd') ?? '')) pending.add(sig);
    blocked = blocked === undefined ? mask : new Set([...blocked].filter((s) => mask.has(s)));
  }
  return { caught: set('SigCgt'), ignored: set('SigIgn'), blocked: blocked ?? set('SigBlk'), pending };
}

/**
 * The argument vector from /proc/PID/cmdline: NUL-separated, usually NUL-terminated. Empty for
 * kernel threads and zombies. A process may rewrite its own argv into one space-separated string
 * (nginx, postgres); that string is then one element, which is as much as can be known.
 */
export function readArgv(procRoot: string, pid: number): string[] {
  const raw = readText(`${procRoot}/${pid}/cmdline`) ?? '';
  if (raw === '') return [];
  const parts = raw.split('\0');
  // Trailing empties are the NUL padding left when a process shortens its title in place
  // (process.title, setproctitle); ps drops them too. A real trailing '' argument is lost.
  while (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export interface Clock {
  /** seconds since boot, as /proc/uptime says */
  readonly uptimeSeconds: number;
  readonly clockTicks: number;
  readonly pageSize: number;
}

const AT_PAGESZ = 6;
const AT_CLKTCK = 17;

const ARCH_64 = ['x64', 'arm64', 'ppc64', 'riscv64', 'loong64', 's390x', 'mips64el', 'mips64'];

/**
 * AT_PAGESZ and AT_CLKTCK from an auxiliary vector (pairs of native words), so ticks and pages
 * are converted without `getconf`. Missing entries keep Linux's usual 100 Hz and 4 KiB.
 */
export function parseAuxv(
  buf: Buffer | undefined,
  layout = { wordBytes: ARCH_64.includes(process.arch) ? 8 : 4, littleEndian: new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 },
): { clockTicks: number; pageSize: number } {
  let clockTicks = 100;
  let pageSize = 4096;
  const w = layout.wordBytes;
  const word = (off: number): number => {
    if (!buf) return 0;
    if (w === 8) return Number(layout.littleEndian ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off));
    return layout.littleEndian ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
  };
  for (let off = 0; buf && off + 2 * w <= buf.length; off += 2 * w) {
    const type = word(off);
    const value = word(off + w);
    if (type === 0) break;
    if (type === AT_PAGESZ && value > 0) pageSize = value;
    if (type === AT_CLKTCK && value > 0) clockTicks = value;
  }
  return { clockTicks, pageSize };
}

/** Uptime from `procRoot`, tick rate and page size from our own auxiliary vector: both are the
 * kernel's, so they hold for every process it lists, in any PID namespace. */
export function readClock(procRoot: string): Clock {
  let auxv: Buffer | undefined;
  try {
    auxv = readFileSync(`${procRoot}/self/auxv`);
  } catch {
    try {
      auxv = readFileSync('/proc/self/auxv');
    } catch {
      auxv = undefined;
    }
  }
  const uptime = Number((readText(`${procRoot}/uptime`) ?? '').split(/\s+/)[0]);
  return { uptimeSeconds: Number.isFinite(uptime) ? uptime : NaN, ...parseAuxv(auxv) };
}

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly state: string;
  readonly comm: string;
  /** empty for kernel threads and zombies */
  readonly argv: string[];
  /** seconds since the process started; NaN when the clock could not be read */
  readonly ageSeconds: number;
  readonly rssBytes: number;
  readonly threads: number;
  /** kernel threads ignore every signal by construction, so their sets say nothing */
  readonly kernelThread: boolean;
  readonly signals: SignalSets;
}

export function isZombie(p: { state: string }): boolean {
  return p.state === 'Z';
}

/** One process, or undefined when it is gone (or `pid` is not one). */
export function readProcess(procRoot: string, pid: number, clock: Clock): ProcessInfo | undefined {
  const stat = parseStat(readText(`${procRoot}/${pid}/stat`) ?? '');
  const statusText = readText(`${procRoot}/${pid}/status`);
  const signals = readSignalSetsAt(procRoot, pid);
  if (!stat || statusText === undefined || !signals) return undefined;
  const status = parseStatus(statusText);
  // VmRSS is in kB (KiB); kernel threads and zombies have none, and neither holds memory.
  const vmRss = /^(\d+)\s*kB$/.exec(status.get('VmRSS') ?? '');
  const statmResident = Number((readText(`${procRoot}/${pid}/statm`) ?? '').split(' ')[1]);
  const rssBytes = vmRss
    ? Number(vmRss[1]) * 1024
    : Number.isFinite(statmResident) && !isZombie(stat)
      ? statmResident * clock.pageSize
      : 0;
  const age = clock.uptimeSeconds - stat.startTicks / clock.clockTicks;
  return {
    pid: stat.pid,
    ppid: stat.ppid,
    pgrp: stat.pgrp,
    state: stat.state,
    comm: stat.comm,
    argv: readArgv(procRoot, pid),
    ageSeconds: Number.isFinite(age) ? Math.max(0, age) : NaN,
    rssBytes,
    threads: Number(status.get('Threads') ?? 1) || 1,
    kernelThread: stat.kernelThread,
    signals,
  };
}

/**
 * Direct children of `pid`. The kernel's per-thread children lists cost one read per thread;
 * kernels without CONFIG_PROC_CHILDREN (and fake trees) fall back to one scan of every stat.
 */
export function childrenOf(procRoot: string, pid: number): number[] {
  const tids = listDir(`${procRoot}/${pid}/task`);
  if (tids && tids.length && readText(`${procRoot}/${pid}/task/${tids[0]}/children`) !== undefined) {
    const out = new Set<number>();
    for (const tid of tids) {
      for (const word of (readText(`${procRoot}/${pid}/task/${tid}/children`) ?? '').trim().split(/\s+/)) {
        if (/^\d+$/.test(word)) out.add(Number(word));
      }
    }
    return [...out].sort((a, b) => a - b);
  }
  const out: number[] = [];
  for (const other of listPids(procRoot) ?? []) {
    const s = parseStat(readText(`${procRoot}/${other}/stat`) ?? '');
    if (s && s.ppid === pid && s.pid !== pid) out.push(s.pid);
  }
  return out;
}
