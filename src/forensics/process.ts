import { isZombie, parseStat, parseStatus, readText, realProcFs } from '../proc/procfs';
import { SystemConstants, systemConstants, uptimeSeconds } from '../proc/system';
import { signalName } from '../signals/names';

/**
 * One process as `hainit ps` and the early warnings show it: its argv, age, memory and signal
 * sets, read with the /proc library (src/proc). Every function takes the proc root explicitly
 * (`/proc`, a chroot's proc, or a fake directory in a test) and only reads: they must never
 * change what they look at.
 */

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
  for (const tid of realProcFs.list(`${procRoot}/${pid}/task`) ?? []) {
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

export interface Clock extends SystemConstants {
  /** seconds since boot, as /proc/uptime says */
  readonly uptimeSeconds: number;
}

/** Uptime from `procRoot`, tick rate and page size from our own auxiliary vector: both are the
 * kernel's, so they hold for every process it lists, in any PID namespace. */
export function readClock(procRoot: string): Clock {
  return { uptimeSeconds: uptimeSeconds(procRoot), ...systemConstants() };
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
