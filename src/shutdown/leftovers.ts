import { isZombie, readStat, realProcFs } from '../proc/procfs';
import { descendantsOf } from '../proc/tree';

/**
 * Every live descendant of `root` but the ones in `exclude` (hook commands running now; their
 * own children still count). As PID 1 that is every process in the namespace; as a subreaper,
 * everything hainit started or inherited through orphaning. Zombies are the reaper's.
 */
export function descendants(root: number, exclude: ReadonlySet<number> = new Set()): number[] {
  return descendantsOf(realProcFs, root).filter((pid) => !exclude.has(pid) && alive(pid));
}

/** A process gone meanwhile is no leftover either. */
function alive(pid: number): boolean {
  const s = readStat(pid);
  return s !== undefined && !isZombie(s);
}
