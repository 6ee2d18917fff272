import { ProcFs, isZombie, listPids, parseStat, realProcFs } from './procfs';
import { SystemConstants } from './system';

/**
 * Who is whose child. The kernel keeps a children list per thread (/proc/PID/task/TID/children),
 * one read each; kernels without CONFIG_PROC_CHILDREN, and fake trees, fall back to one scan of
 * every stat in the table.
 */

/** Direct children of `pid`, ascending. */
export function childrenOf(procRoot: string, pid: number, proc: ProcFs = realProcFs): number[] {
  const listed = fromChildrenLists(proc, procRoot, pid, false);
  const out = listed ?? byParent(proc, procRoot).get(pid) ?? [];
  return [...new Set(out)].sort((a, b) => a - b);
}

/** Every descendant of `root`, nearest first. */
export function descendantsOf(proc: ProcFs, root: number, procRoot = '/proc'): number[] {
  // hainit's own children all hang off its main thread: it forks there (the native spawn) and
  // the kernel re-parents orphans to the thread group's leader. Its other threads (V8, libuv,
  // the signal thread) fork nothing, so their lists need no reading on every exit.
  const self = root === process.pid && procRoot === '/proc';
  const rootChildren = fromChildrenLists(proc, procRoot, root, self);
  const parents = rootChildren === undefined ? byParent(proc, procRoot) : undefined;
  const out: number[] = [];
  const seen = new Set<number>([root]);
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift() as number;
    const children = parents ? parents.get(pid) : pid === root ? rootChildren : fromChildrenLists(proc, procRoot, pid, false);
    for (const child of children ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      queue.push(child);
      out.push(child);
    }
  }
  return out;
}

/** The kernel's lists for `pid`, in its order; undefined when there is none to read (no
 * CONFIG_PROC_CHILDREN, a fake tree, the process gone). */
function fromChildrenLists(proc: ProcFs, procRoot: string, pid: number, mainThreadOnly: boolean): number[] | undefined {
  const tids = mainThreadOnly ? [String(pid)] : proc.list(`${procRoot}/${pid}/task`);
  let found = false;
  const out: number[] = [];
  for (const tid of tids ?? []) {
    const text = proc.read(`${procRoot}/${pid}/task/${tid}/children`);
    if (text === undefined) continue;
    found = true;
    for (const word of text.split(' ')) if (/^\d+$/.test(word)) out.push(Number(word));
  }
  return found ? out : undefined;
}

/** parent -> children, from one scan of every stat. */
function byParent(proc: ProcFs, procRoot: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const pid of listPids(procRoot, proc) ?? []) {
    const s = parseStat(proc.read(`${procRoot}/${pid}/stat`) ?? '');
    if (!s || s.pid === s.ppid) continue;
    const siblings = out.get(s.ppid) ?? [];
    siblings.push(s.pid);
    out.set(s.ppid, siblings);
  }
  return out;
}

export interface TreeUsage {
  readonly processes: number;
  readonly rssBytes: number;
  readonly cpuSeconds: number;
}

/** Memory (RSS) and CPU of every live descendant of `root`; zombies hold neither. */
export function treeUsage(proc: ProcFs, root: number, sys: SystemConstants): TreeUsage {
  let processes = 0;
  let rssPages = 0;
  let ticks = 0;
  for (const pid of descendantsOf(proc, root)) {
    const s = parseStat(proc.read(`/proc/${pid}/stat`) ?? '');
    if (!s || isZombie(s) || s.state === 'X') continue;
    processes++;
    rssPages += s.rssPages;
    ticks += s.cpuTicks;
  }
  return { processes, rssBytes: rssPages * sys.pageSize, cpuSeconds: ticks / sys.clockTicks };
}
