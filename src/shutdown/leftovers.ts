import { childrenOf, isZombie, parseStat, readText } from '../forensics/proc';

/**
 * Every descendant of `root`, from the kernel's children lists (/proc/PID/task/TID/children).
 * As PID 1 that is every process in the namespace; as a subreaper, everything hainit started
 * or inherited through orphaning. Zombies are skipped: the reaper collects those.
 */
export function descendants(root: number, exclude: ReadonlySet<number> = new Set()): number[] {
  const out: number[] = [];
  const queue = [root];
  const seen = new Set<number>([root]);
  while (queue.length) {
    const pid = queue.shift() as number;
    for (const child of childrenOf('/proc', pid)) {
      if (seen.has(child)) continue;
      seen.add(child);
      queue.push(child);
      if (!exclude.has(child) && alive(child)) out.push(child);
    }
  }
  return out;
}

/** Zombies are the reaper's; a process gone meanwhile is no leftover either. */
function alive(pid: number): boolean {
  const s = parseStat(readText(`/proc/${pid}/stat`) ?? '');
  return s !== undefined && !isZombie(s);
}
