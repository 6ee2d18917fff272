import { readFileSync, readdirSync } from 'node:fs';

/** The slice of /proc the metrics read, injected so the tree walk is tested on a fake table. */
export interface ProcFs {
  /** file text, or undefined when it cannot be read (process gone, file missing) */
  read(path: string): string | undefined;
  list(path: string): string[] | undefined;
}

export const realProcFs: ProcFs = {
  read(path) {
    try {
      return readFileSync(path, 'latin1');
    } catch {
      return undefined;
    }
  },
  list(path) {
    try {
      return readdirSync(path);
    } catch {
      return undefined;
    }
  },
};

export interface ProcStat {
  readonly pid: number;
  readonly state: string;
  readonly ppid: number;
  /** utime + stime + cutime + cstime: its own CPU and that of the children it reaped */
  readonly cpuTicks: number;
  readonly rssPages: number;
}

/** /proc/PID/stat. The command name is in parentheses and may itself hold spaces and `)`, so
 * fields are counted from the last `)`. Field numbers as in proc(5). */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): field N is f[N - 3].
  const num = (n: number) => Number(f[n - 3]);
  const pid = Number(text.slice(0, open).trim());
  const stat = { pid, state: f[0], ppid: num(4), cpuTicks: num(14) + num(15) + num(16) + num(17), rssPages: num(24) };
  return Number.isFinite(stat.cpuTicks) && Number.isFinite(stat.rssPages) ? stat : undefined;
}

/**
 * Every descendant of `root`. Uses the kernel's children lists (/proc/PID/task/TID/children),
 * which cost one read per process; kernels without CONFIG_PROC_CHILDREN fall back to one scan
 * of all of /proc.
 */
export function descendantsOf(proc: ProcFs, root: number): number[] {
  if (proc.read(`/proc/${root}/task/${root}/children`) === undefined) return descendantsByScan(proc, root);
  const out: number[] = [];
  const seen = new Set<number>([root]);
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift() as number;
    for (const tid of proc.list(`/proc/${pid}/task`) ?? []) {
      for (const word of (proc.read(`/proc/${pid}/task/${tid}/children`) ?? '').split(' ')) {
        const child = Number(word);
        if (!word || !Number.isInteger(child) || seen.has(child)) continue;
        seen.add(child);
        queue.push(child);
        out.push(child);
      }
    }
  }
  return out;
}

function descendantsByScan(proc: ProcFs, root: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const name of proc.list('/proc') ?? []) {
    if (!/^\d+$/.test(name)) continue;
    const s = parseStat(proc.read(`/proc/${name}/stat`) ?? '');
    if (!s) continue;
    const siblings = byParent.get(s.ppid) ?? [];
    siblings.push(s.pid);
    byParent.set(s.ppid, siblings);
  }
  const out: number[] = [];
  const queue = [root];
  const seen = new Set<number>([root]);
  while (queue.length) {
    for (const child of byParent.get(queue.shift() as number) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      queue.push(child);
      out.push(child);
    }
  }
  return out;
}

export interface TreeUsage {
  readonly processes: number;
  readonly rssBytes: number;
  readonly cpuSeconds: number;
}

export interface SystemConstants {
  readonly clockTicks: number;
  readonly pageSize: number;
}

/** Memory (RSS) and CPU of every live descendant of `root`; zombies hold neither. */
export function treeUsage(proc: ProcFs, root: number, sys: SystemConstants): TreeUsage {
  let processes = 0;
  let rssPages = 0;
  let ticks = 0;
  for (const pid of descendantsOf(proc, root)) {
    const s = parseStat(proc.read(`/proc/${pid}/stat`) ?? '');
    if (!s || s.state === 'Z' || s.state === 'X') continue;
    processes++;
    rssPages += s.rssPages;
    ticks += s.cpuTicks;
  }
  return { processes, rssBytes: rssPages * sys.pageSize, cpuSeconds: ticks / sys.clockTicks };
}

const AT_PAGESZ = 6;
const AT_CLKTCK = 17;

/** AT_PAGESZ and AT_CLKTCK from an auxiliary vector (64-bit little-endian pairs), so /proc
 * numbers are converted without running `getconf`. Missing entries keep the x86_64 values. */
export function parseAuxv(buf: Buffer): SystemConstants {
  let clockTicks = 100;
  let pageSize = 4096;
  for (let off = 0; off + 16 <= buf.length; off += 16) {
    const type = Number(buf.readBigUInt64LE(off));
    const value = Number(buf.readBigUInt64LE(off + 8));
    if (type === 0) break;
    if (type === AT_PAGESZ && value > 0) pageSize = value;
    if (type === AT_CLKTCK && value > 0) clockTicks = value;
  }
  return { clockTicks, pageSize };
}

export function systemConstants(): SystemConstants {
  // The layout parsed is the 64-bit little-endian one; elsewhere keep the common values.
  if (!['x64', 'arm64', 'riscv64', 'loong64'].includes(process.arch)) return { clockTicks: 100, pageSize: 4096 };
  try {
    return parseAuxv(readFileSync('/proc/self/auxv'));
  } catch {
    return { clockTicks: 100, pageSize: 4096 };
  }
}
