import { readFileSync, readdirSync } from 'node:fs';
// One parser of /proc/PID/stat and of the auxiliary vector for the whole of hainit.
import { parseAuxv, parseStat } from '../forensics/proc';

export { parseAuxv, parseStat };

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

/**
 * Every descendant of `root`. Uses the kernel's children lists (/proc/PID/task/TID/children),
 * which cost one read per process; kernels without CONFIG_PROC_CHILDREN fall back to one scan
 * of all of /proc.
 */
export function descendantsOf(proc: ProcFs, root: number): number[] {
  const rootChildren = proc.read(`/proc/${root}/task/${root}/children`);
  if (rootChildren === undefined) return descendantsByScan(proc, root);
  const out: number[] = [];
  const seen = new Set<number>([root]);
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift() as number;
    // hainit's own children all hang off its main thread: it forks there (the native spawn) and
    // the kernel re-parents orphans to the thread group's leader. Its other threads (V8, libuv,
    // the signal thread) fork nothing, so their lists need no reading on every exit.
    const tids = pid === root && root === process.pid ? [String(root)] : proc.list(`/proc/${pid}/task`) ?? [];
    for (const tid of tids) {
      const list = pid === root && tid === String(root) ? rootChildren : proc.read(`/proc/${pid}/task/${tid}/children`);
      for (const word of (list ?? '').split(' ')) {
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

export function systemConstants(): SystemConstants {
  // The layout parsed is the 64-bit little-endian one; elsewhere keep the common values.
  if (!['x64', 'arm64', 'riscv64', 'loong64'].includes(process.arch)) return { clockTicks: 100, pageSize: 4096 };
  try {
    return parseAuxv(readFileSync('/proc/self/auxv'));
  } catch {
    return { clockTicks: 100, pageSize: 4096 };
  }
}
