import { readFileSync, readdirSync } from 'node:fs';

/**
 * hainit's one reader of /proc: the files it reads, the stat line, and the `Key: value` status
 * lines. Everything here only reads.
 *
 * Processes come and go while /proc is walked: any file may vanish between two reads, so every
 * read returns undefined instead of throwing, and callers skip what they could not read.
 */

/** The slice of the file system /proc readers use, injected so that they run on a fake table in tests. */
export interface ProcFs {
  /** file text, or undefined when it cannot be read (process gone, file missing) */
  read(path: string): string | undefined;
  list(path: string): string[] | undefined;
}

export const realProcFs: ProcFs = {
  read: readText,
  list(path) {
    try {
      return readdirSync(path);
    } catch {
      return undefined;
    }
  },
};

export function readText(path: string): string | undefined {
  try {
    // latin1: command lines are bytes, not necessarily UTF-8, and must not make the read fail.
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

/** Every process (thread-group) id under `procRoot`, ascending; threads are not listed by readdir. */
export function listPids(procRoot = '/proc', proc: ProcFs = realProcFs): number[] | undefined {
  const names = proc.list(procRoot);
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

/** The stat of `pid`, or undefined when it is gone. */
export function readStat(pid: number, procRoot = '/proc', proc: ProcFs = realProcFs): StatFields | undefined {
  return parseStat(proc.read(`${procRoot}/${pid}/stat`) ?? '');
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

export function isZombie(p: { state: string }): boolean {
  return p.state === 'Z';
}
