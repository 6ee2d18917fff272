import { readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { isZombie, parseStat, readText } from '../proc/procfs';
import { childrenOf } from '../proc/tree';
import { signalName } from '../signals/names';
import { decodeSignalMask, readArgv, readSignalSetsAt } from './process';

/**
 * The early warnings of issue 8, read from the child's /proc entries a short time after it
 * started: will the stop signal reach and stop it? All pure over `procRoot`, and read-only.
 */

export interface SignalDispositions {
  readonly caught: Set<number>;
  readonly ignored: Set<number>;
  /** blocked by every thread, so the kernel has nowhere to deliver it */
  readonly blocked: Set<number>;
}

/** Undefined when the process is gone or its status cannot be read. */
export function readSignalSets(pid: number, procRoot = '/proc'): SignalDispositions | undefined {
  const s = readSignalSetsAt(procRoot, pid);
  return s && { caught: s.caught, ignored: s.ignored, blocked: s.blocked };
}

/**
 * Signals the process reads through a signalfd. Such programs block the signal in every thread
 * on purpose and take it from the descriptor, so "blocked" alone is not a fault. (sigwait
 * users need no such care: while a thread waits, the kernel removes the awaited signals from
 * its blocked mask, and that is what /proc shows.)
 */
export function signalfdSignals(pid: number, procRoot = '/proc'): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`${procRoot}/${pid}/fdinfo`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    const mask = /^sigmask:\s*([0-9a-fA-F]+)$/m.exec(readText(`${procRoot}/${pid}/fdinfo/${fd}`) ?? '');
    if (mask) for (const sig of decodeSignalMask(mask[1])) out.add(sig);
  }
  return out;
}

/** Signals whose default action is to do nothing (signal(7)): an app that does not catch
 * one of them as its stop signal simply carries on. */
const DEFAULT_IGNORED = new Set([17 /* CHLD */, 18 /* CONT */, 23 /* URG */, 28 /* WINCH */]);

const CONSEQUENCE = 'it will be killed after the grace period; see --stop-signal / --rewrite';

/**
 * Why `stopSignal` will not stop `pid`, one line per reason; empty when it will (or when the
 * process is gone or a zombie, since then there is nothing left to warn about).
 */
export function stopSignalWarnings(pid: number, stopSignal: number, procRoot = '/proc'): string[] {
  const stat = parseStat(readText(`${procRoot}/${pid}/stat`) ?? '');
  if (!stat || isZombie(stat)) return [];
  const sets = readSignalSets(pid, procRoot);
  if (!sets) return [];
  const name = signalName(stopSignal);
  const out: string[] = [];
  if (sets.ignored.has(stopSignal)) out.push(`the app ignores ${name}: ${CONSEQUENCE}`);
  else if (sets.blocked.has(stopSignal) && blockedForGood(pid, stopSignal, procRoot) && !signalfdSignals(pid, procRoot).has(stopSignal)) {
    // A blocked signal stays pending: the app gets it only if it unblocks it in time.
    out.push(`the app blocks ${name}: ${CONSEQUENCE}`);
  } else if (DEFAULT_IGNORED.has(stopSignal) && !sets.caught.has(stopSignal)) {
    out.push(`the app does not handle ${name}, whose default action is to do nothing: ${CONSEQUENCE}`);
  }
  return out;
}

/**
 * Blocking is often momentary: dash, for one, waits for its command with every signal blocked
 * but inside sigsuspend(), so a read between two waits sees SIGTERM "blocked". Only a signal
 * still blocked on every read over ~100 ms is worth a warning.
 */
function blockedForGood(pid: number, signal: number, procRoot: string): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 4; i++) {
    Atomics.wait(pause, 0, 0, 30);
    if (!readSignalSets(pid, procRoot)?.blocked.has(signal)) return false;
  }
  return true;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh', 'busybox']);

/**
 * Is `pid` a shell? comm alone misses the most common case: for a `#!/bin/sh` script run
 * directly (`ENTRYPOINT ["/entrypoint.sh"]`) the kernel names the process after the script, but
 * puts the interpreter first in argv and in /proc/PID/exe.
 */
export function shellName(pid: number, procRoot = '/proc'): string | undefined {
  const stat = parseStat(readText(`${procRoot}/${pid}/stat`) ?? '');
  if (!stat) return undefined;
  if (SHELLS.has(stat.comm)) return stat.comm;
  const argv0 = readArgv(procRoot, pid)[0];
  if (argv0 !== undefined && SHELLS.has(basename(argv0))) return basename(argv0);
  try {
    // Needs ptrace access to the process, which its parent running as the same user has.
    const exe = basename(readlinkSync(`${procRoot}/${pid}/exe`));
    if (SHELLS.has(exe)) return exe;
  } catch {
    // not ours to read, or gone: the other two clues were all there was
  }
  return undefined;
}

export interface ShellWarningOptions {
  /** hainit signals the child's whole process group (-g): children that stayed in the
   * shell's group get the signal too, so only those that left it are a problem. */
  readonly signalGroup?: boolean;
}

/**
 * A warning when `pid` is a shell that is still alive with children of its own: the shell did
 * not `exec` them, so a signal sent to the shell stops there (a non-interactive shell neither
 * forwards signals nor, with a trap, dies of them before its foreground command returns).
 * E.g. `sh -c 'sleep 100; echo done'`.
 */
export function shellWarning(pid: number, procRoot = '/proc', options: ShellWarningOptions = {}): string | undefined {
  const shell = shellName(pid, procRoot);
  if (!shell) return undefined;
  const self = parseStat(readText(`${procRoot}/${pid}/stat`) ?? '');
  if (!self || isZombie(self)) return undefined;
  const children = childrenOf(procRoot, pid)
    .map((c) => parseStat(readText(`${procRoot}/${c}/stat`) ?? ''))
    .filter((c): c is NonNullable<typeof c> => c !== undefined && !isZombie(c))
    .filter((c) => !(options.signalGroup && c.pgrp === self.pgrp));
  if (!children.length) return undefined;
  const names = children.map((c) => `${c.comm} (pid ${c.pid})`).join(', ');
  const target = children.length > 1 ? 'them' : children[0].comm;
  const fix = options.signalGroup ? 'start the long-running command with `exec`' : 'start the long-running command with `exec`, or use -g/--signal-group';
  return `the app is a shell (${shell}, pid ${pid}) running ${names} without exec: signals sent to the shell do not reach ${target}; ${fix}`;
}

/** Every early warning for the main child, in the order a reader should act on them. */
export function startupWarnings(pid: number, stopSignal: number, procRoot = '/proc', options: ShellWarningOptions = {}): string[] {
  const shell = shellWarning(pid, procRoot, options);
  return [...stopSignalWarnings(pid, stopSignal, procRoot), ...(shell ? [shell] : [])];
}
