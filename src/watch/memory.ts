/**
 * The memory watchdog: act before the kernel's OOM killer does. The OOM killer (and Kubernetes
 * after it) sends SIGKILL, so the application gets no chance to finish its requests; hainit starts
 * the graceful sequence (or a graceful restart) while there is still room.
 *
 * Memory is read from /proc and the cgroup files directly, not through pidusage: pidusage runs
 * `getconf` through /bin/sh on first use (no shell in distroless images, and a fork of a 50 MB
 * process when memory is already short) and, with `maxage: 0`, leaks a descriptor per sample.
 * The page size comes from the auxiliary vector (proc/system.ts), so nothing is ever spawned.
 */
import { CancelController } from '../runtime/cancel';
import type { SizeLimit } from '../config/values';
import { Logger } from '../log/logger';
import { ProcFs, realProcFs } from '../proc/procfs';
import { SystemConstants, systemConstants } from '../proc/system';
import { treeUsage } from '../proc/tree';
import { Clock } from '../runtime/clock';
import { formatBytes } from '../units';

/** Samples in a row over the limit before hainit acts: one spike (a GC, a big request) is not a leak. */
export const SAMPLES_TO_ACT = 3;

export interface MemoryReading {
  /** the figure compared with the limit */
  readonly usedBytes: number;
  /** the limit in bytes now; undefined when a percentage has no cgroup limit to be a share of */
  readonly limitBytes: number | undefined;
  readonly source: 'tree' | 'cgroup';
  /** percentage mode: the cgroup's own limit */
  readonly cgroupLimitBytes?: number;
}

/** One measurement; undefined when it cannot be taken (files gone). */
export type MemorySampler = () => MemoryReading | undefined;

/** How the user wrote the limit, in the log's words: `450.0 MiB`, `90% (450.0 MiB of the 500.0 MiB limit)`. */
export function describeLimit(limit: SizeLimit, r?: MemoryReading): string {
  if (limit.kind === 'bytes') return formatBytes(limit.bytes, 'log');
  if (r?.limitBytes === undefined || r.cgroupLimitBytes === undefined) return `${limit.percent}%`;
  return `${limit.percent}% (${formatBytes(r.limitBytes, 'log')} of the ${formatBytes(r.cgroupLimitBytes, 'log')} cgroup limit)`;
}

// ---- the process tree ---------------------------------------------------------------------

/**
 * The resident memory of every process under `root` (hainit): the child, what it started, and
 * orphans not yet reaped. RSS counts pages shared between forked workers once per process, so a
 * preforking server reads high; that errs on the side of acting early, and PSS
 * (/proc/PID/smaps_rollup) would cost a page-table walk per process per sample.
 */
export function treeSampler(limitBytes: number, proc: ProcFs = realProcFs, root = process.pid, sys?: SystemConstants): MemorySampler {
  let constants = sys;
  return () => {
    constants ??= systemConstants();
    return { usedBytes: treeUsage(proc, root, constants).rssBytes, limitBytes, source: 'tree' };
  };
}

// ---- the cgroup ---------------------------------------------------------------------------

export interface CgroupMemory {
  readonly version: 1 | 2;
  /** the directory with the memory files of hainit's cgroup */
  readonly dir: string;
  /** where the hierarchy is mounted: the limit is looked for from `dir` up to here */
  readonly mount: string;
}

/** The kernel's "no limit": PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages). */
const UNLIMITED = 2 ** 62;

/**
 * hainit's memory cgroup, from /proc/self/cgroup and the hierarchy mounted at `cgroupRoot`
 * (v2 unified at the root; v1 under `memory/`). Without a cgroup namespace, /proc/self/cgroup
 * shows the host's path (`/docker/ID`) while the container sees its own cgroup mounted at the
 * root, so leading path components are dropped until a directory with the memory files exists.
 */
export function findCgroupMemory(fs: ProcFs = realProcFs, cgroupRoot = '/sys/fs/cgroup', selfCgroup = fs.read('/proc/self/cgroup')): CgroupMemory | undefined {
  const lines = (selfCgroup ?? '').split('\n').map((l) => l.split(':'));
  const v2Path = lines.find((f) => f.length >= 3 && f[0] === '0' && f[1] === '')?.slice(2).join(':');
  const v1Path = lines.find((f) => f.length >= 3 && f[1].split(',').includes('memory'))?.slice(2).join(':');
  const search = (mount: string, path: string, file: string, version: 1 | 2): CgroupMemory | undefined => {
    const parts = path.split('/').filter((p) => p !== '');
    for (let i = 0; i <= parts.length; i++) {
      const dir = [mount, ...parts.slice(i)].join('/');
      if (fs.read(`${dir}/${file}`) !== undefined) return { version, dir, mount };
    }
    return undefined;
  };
  if (v2Path !== undefined && fs.read(`${cgroupRoot}/cgroup.controllers`) !== undefined) {
    const found = search(cgroupRoot, v2Path, 'memory.current', 2);
    if (found) return found;
  }
  if (v1Path !== undefined) return search(`${cgroupRoot}/memory`, v1Path, 'memory.usage_in_bytes', 1);
  return undefined;
}

export interface CgroupUsage {
  /** usage minus inactive file cache: the kubelet's "working set", what eviction and OOM are about */
  readonly workingSetBytes: number;
  readonly usageBytes: number;
  /** the tightest limit from this cgroup up; undefined: none */
  readonly limitBytes: number | undefined;
}

function number(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'max') return Infinity;
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? n : undefined;
}

function statField(stat: string | undefined, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(stat ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * Usage against the limit. Page cache counts in memory.current but the kernel reclaims it before
 * any OOM kill, so the working set (usage - inactive_file, as the kubelet computes it) is what is
 * compared: an application that merely reads big files is not restarted.
 */
export function readCgroupMemory(cg: CgroupMemory, fs: ProcFs = realProcFs): CgroupUsage | undefined {
  let usage: number | undefined;
  let inactive: number | undefined;
  let limit = Infinity;
  if (cg.version === 2) {
    usage = number(fs.read(`${cg.dir}/memory.current`));
    inactive = statField(fs.read(`${cg.dir}/memory.stat`), 'inactive_file');
    // A parent's memory.max binds its children too: the effective limit is the smallest on the way up.
    for (let dir = cg.dir; dir.length >= cg.mount.length; dir = dir.slice(0, dir.lastIndexOf('/'))) {
      limit = Math.min(limit, number(fs.read(`${dir}/memory.max`)) ?? Infinity);
      if (dir === cg.mount) break;
    }
  } else {
    usage = number(fs.read(`${cg.dir}/memory.usage_in_bytes`));
    const stat = fs.read(`${cg.dir}/memory.stat`);
    inactive = statField(stat, 'total_inactive_file');
    limit = Math.min(number(fs.read(`${cg.dir}/memory.limit_in_bytes`)) ?? Infinity, statField(stat, 'hierarchical_memory_limit') ?? Infinity);
  }
  if (usage === undefined) return undefined;
  return {
    usageBytes: usage,
    workingSetBytes: Math.max(0, usage - (inactive ?? 0)),
    limitBytes: limit >= UNLIMITED ? undefined : limit,
  };
}

/** `percent` of the cgroup's limit, re-read at every sample (the limit may be resized in place). */
export function cgroupSampler(percent: number, cg: CgroupMemory, fs: ProcFs = realProcFs): MemorySampler {
  return () => {
    const u = readCgroupMemory(cg, fs);
    if (!u) return undefined;
    const limitBytes = u.limitBytes === undefined ? undefined : Math.floor((u.limitBytes * percent) / 100);
    return { usedBytes: u.workingSetBytes, limitBytes, source: 'cgroup', cgroupLimitBytes: u.limitBytes };
  };
}

export interface SamplerOptions {
  readonly proc?: ProcFs;
  /** whose descendants make up the tree; default hainit itself */
  readonly root?: number;
  /** where cgroup hierarchies are mounted; tests pass a fake directory */
  readonly cgroupRoot?: string;
  readonly selfCgroup?: string;
}

/** The sampler for `--max-memory`, or a reason there can be none (a percentage without a cgroup). */
export function samplerFor(limit: SizeLimit, o: SamplerOptions = {}): MemorySampler | string {
  const proc = o.proc ?? realProcFs;
  if (limit.kind === 'bytes') return treeSampler(limit.bytes, proc, o.root ?? process.pid);
  const root = o.cgroupRoot ?? '/sys/fs/cgroup';
  const cg = findCgroupMemory(proc, root, o.selfCgroup ?? proc.read('/proc/self/cgroup'));
  if (!cg) return `--max-memory ${limit.percent}%: no memory cgroup found under ${root}: the memory watchdog is off`;
  return cgroupSampler(limit.percent, cg, proc);
}

// ---- the watchdog -------------------------------------------------------------------------

/** What /metrics and the `memory` check read. */
export interface MemoryStatus {
  readonly limit: SizeLimit;
  readonly last: MemoryReading | undefined;
  /** samples in a row over the limit */
  readonly overFor: number;
  /** it acted for the current child */
  readonly tripped: boolean;
  /** graceful shutdowns and restarts it started */
  readonly actions: { readonly shutdown: number; readonly restart: number };
}

/**
 * Samples every `intervalMs` while started, and calls `onExceeded` once, after `samplesNeeded`
 * samples in a row over the limit; then it stays tripped (and idle) until started again for the
 * next child. `record()` is the whole decision, so it is tested sample by sample.
 */
export class MemoryWatchdog implements MemoryStatus {
  last: MemoryReading | undefined;
  overFor = 0;
  tripped = false;
  readonly actions = { shutdown: 0, restart: 0 };
  private stopper: CancelController | undefined;
  private warnedNoLimit = false;

  constructor(
    readonly limit: SizeLimit,
    private readonly sampler: MemorySampler,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly onExceeded: (reading: MemoryReading, samples: number) => void,
    private readonly samplesNeeded = SAMPLES_TO_ACT,
  ) {}

  /** One sample; true when this one trips the watchdog. */
  record(r: MemoryReading | undefined): boolean {
    if (this.tripped) return false;
    if (r) this.last = r;
    if (r && r.limitBytes === undefined && !this.warnedNoLimit) {
      this.warnedNoLimit = true;
      this.log.warn(`--max-memory ${describeLimit(this.limit)}: the cgroup has no memory limit to take a share of: nothing to act on until it has one`);
    }
    // A failed read neither counts nor breaks the run: the tree may be between two processes.
    if (!r) return false;
    const over = r.limitBytes !== undefined && r.usedBytes > r.limitBytes;
    this.overFor = over ? this.overFor + 1 : 0;
    if (over && this.overFor === 1) {
      this.log.debug(`memory ${formatBytes(r.usedBytes, 'log')} over --max-memory ${describeLimit(this.limit, r)}: sample 1 of ${this.samplesNeeded}`);
    }
    if (this.overFor < this.samplesNeeded) return false;
    this.tripped = true;
    return true;
  }

  /** The figure for the log line that explains an action. */
  describe(r: MemoryReading, samples: number): string {
    const what = r.source === 'cgroup' ? 'cgroup memory (working set)' : 'memory (process tree RSS)';
    return `${what} ${formatBytes(r.usedBytes, 'log')} over --max-memory ${describeLimit(this.limit, r)} for ${samples} samples`;
  }

  /** Watches a (new) child from now on. */
  start(): void {
    this.stop();
    this.overFor = 0;
    this.tripped = false;
    const stopper = (this.stopper = new CancelController());
    void this.loop(stopper);
  }

  stop(): void {
    this.stopper?.abort();
    this.stopper = undefined;
  }

  private async loop(stopper: CancelController): Promise<void> {
    for (;;) {
      await this.clock.sleep(this.intervalMs, stopper.signal);
      if (stopper.signal.aborted) return;
      let r: MemoryReading | undefined;
      try {
        r = this.sampler();
      } catch (e) {
        this.log.debug(`memory sample failed: ${(e as Error).message}`);
      }
      if (this.record(r)) {
        this.stop();
        this.onExceeded(r as MemoryReading, this.overFor);
        return;
      }
    }
  }
}
