import { readFileSync, readdirSync } from 'node:fs';

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
    for (const child of childrenOf(pid)) {
      if (seen.has(child)) continue;
      seen.add(child);
      queue.push(child);
      if (!exclude.has(child) && !isZombie(child)) out.push(child);
    }
  }
  return out;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const p of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (p) out.push(Number(p));
    } catch {
      /* the task ended meanwhile */
    }
  }
  return out;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return true;
  }
}
