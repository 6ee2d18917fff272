import { existsSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../log/logger';
import { EXIT_USAGE } from '../exit-codes';

/** The system calls hainit needs that Node does not offer. Negative results are -errno. */
export interface NativeAddon {
  spawn(
    path: string,
    argv: readonly string[],
    stdio: readonly [number, number, number],
    keepFds: readonly number[],
    foreground: boolean,
    newProcessGroup: boolean,
    /** "KEY=value" for the child; hainit's own environment when left out */
    env?: readonly string[],
  ): number;
  /** reaps into `records` (struct hainit_reaped, src/reaper/record.ts) as many as fit; how many */
  reap(wantDetails: boolean, records: Buffer): number;
  /** installs the handlers; `onRecords` gets buffers of whole records (see signals/router.ts); 0 or -errno */
  signalsInstall(onRecords: (records: Buffer) => void): number;
  /** the records still in the pipe, read now (before exit) */
  signalsRead(): Buffer;
  signalsTarget(target: number): void;
  signalsRewrite(from: number, to: number): void;
  signalsMode(signal: number, mode: number): void;
  signalsDropped(): number;
  /** signals the system would not let hainit catch (EINVAL: valgrind keeps one for itself) */
  signalsSkipped(): number[];
  /** _exit(2): no Node teardown (hainit writes its logs synchronously: nothing is pending) */
  exitNow(code: number): never;
  /** signal records written to the pipe so far (never wraps in practice: a double counts to 2^53) */
  signalsWritten(): number;
  kill(pid: number, signal: number): number;
  /** the signal that stopped child `pid` since the last call (each stop is reported once), 0 when
   * it has not stopped, -errno; never reaps: an exit stays for `reap` */
  childStopped(pid: number): number;
  /** stops hainit itself with SIGTSTP/SIGTTIN/SIGTTOU's default action; returns 0 once continued
   * (at once when the kernel discards it: hainit's process group is orphaned), or -errno */
  stopSelf(signal: number): number;
  /** 0: 1 when hainit's process group holds the foreground of the terminal on fd 0, else 0;
   * a pgid: hand the foreground to it, only when hainit's group holds it (1), else 0; -errno
   * (ENOTTY: no terminal) */
  terminalForeground(pgid: number): number;
  /** 1/0 to set, -1 to query; returns the current state or -errno */
  subreaper(on: number): number;
  pdeathSignal(signal: number): number;
  inheritedFds(): number[];
  /** execve with fds 0-2 and `keepFds` left open; returns -errno only on failure */
  exec(path: string, argv: readonly string[], env: readonly string[], keepFds: readonly number[]): number;
  /** [read, write], close-on-exec, or -errno */
  pipe(): [number, number] | number;
  /** The signal mask and ignored set dist/hainit was started with, which its children get too;
   * null without the binary's entry stub (native/entry-stub.S), when children get none. */
  startSignalState(): { blocked: number[]; ignored: number[] } | null;
}

export const SignalMode = { drop: 0, forward: 1, notify: 2 } as const;

let addon: NativeAddon | undefined;

/** Loaded as early as possible: the snapshot of inherited descriptors is taken at load time. */
export function native(): NativeAddon {
  if (!addon) addon = isSingleExecutable() ? loadEmbedded() : loadFromPackage();
  return addon;
}

/** npm install: node-gyp built the addon beside the compiled sources. */
function loadFromPackage(): NativeAddon {
  // lib/src/native/index.js -> build/Release/hainit.node. process.dlopen, not require: the
  // module loader's resolution (realpath, package scope, module paths) showed up in start-up.
  return dlopen(`${__dirname}/../../../build/Release/hainit.node`);
}

/** The name of the addon, as an SEA asset (scripts/build-binary.mjs) and beside the binary. */
export const ADDON_ASSET = 'hainit.node';

/** Where the embedded addon may be written when the user named no place, in order of preference. */
export const EXTRACT_CANDIDATES: readonly string[] = ['/dev/shm', '/tmp', '/run', '/var/tmp'];

interface Sea {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer | string;
}

export function isSingleExecutable(): boolean {
  try {
    // node:sea exists from Node 20; isSea() is false when run by a plain `node`.
    return (require('node:sea') as Sea).isSea();
  } catch {
    return false;
  }
}

/**
 * dist/hainit (a Node single executable application) carries the addon as an asset, but dlopen
 * needs a file. A copy beside the binary wins (the user put it there on purpose); otherwise the
 * asset is written to HAINIT_TMPDIR or the first candidate that is writable and allows exec,
 * loaded, and unlinked at once: the mapping outlives the name, so nothing is left behind.
 *
 * The addon's load takes the snapshot of inherited descriptors (native/addon.c), so every
 * descriptor opened here is closed again before dlopen: writeFileSync and readFileSync close theirs.
 */
function loadEmbedded(): NativeAddon {
  const beside = path.join(path.dirname(process.execPath), ADDON_ASSET);
  if (existsSync(beside)) return dlopen(beside);

  // Read here, not in config/: the addon must be loaded before anything else runs.
  const requested = process.env.HAINIT_TMPDIR;
  const dirs = requested ? [requested] : EXTRACT_CANDIDATES;
  const tried: string[] = [];
  const bytes = new Uint8Array((require('node:sea') as Sea).getRawAsset(ADDON_ASSET) as ArrayBuffer);
  // Tried straight away: reading mountinfo first would cost every start 0.3 ms to explain a
  // failure that, when it happens, is explained afterwards.
  for (const dir of dirs) {
    const file = path.join(dir, `.hainit-${process.pid}-${Date.now().toString(36)}.node`);
    try {
      writeFileSync(file, bytes, { mode: 0o500, flag: 'wx' });
    } catch (e) {
      tried.push(`${dir} (${(e as NodeJS.ErrnoException).code ?? e})`);
      continue;
    }
    try {
      return dlopen(file);
    } catch (e) {
      tried.push(`${dir} (${noexecReason(dir) ?? firstLine(e)})`);
    } finally {
      try { unlinkSync(file); } catch { /* already gone: nothing to clean */ }
    }
  }
  return cannotLoad(requested, tried);
}

/** <dlfcn.h> on Linux (node:os has it too, but loading node:os costs start-up 0.25 ms). */
const RTLD_NOW = 2;

function dlopen(file: string): NativeAddon {
  const module = { exports: {} as unknown };
  process.dlopen(module, file, RTLD_NOW);
  return module.exports as NativeAddon;
}

/** "mounted noexec at M" when DIR lives on a noexec mount (a chroot may not show it: undefined). */
function noexecReason(dir: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return undefined;
  }
  const { points, noexec } = readMountinfo();
  const mount = mountPointOf(real, points);
  return mount !== undefined && noexec.includes(mount) ? `mounted noexec at ${mount}` : undefined;
}

/** The mount point a path lives on: the longest mount point that is a prefix of it. */
export function mountPointOf(file: string, points: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const p of points) {
    const inside = file === p || file.startsWith(p.endsWith('/') ? p : p + '/');
    if (inside && (best === undefined || p.length > best.length)) best = p;
  }
  return best;
}

/** Mount points whose latest mount has noexec (/proc/self/mountinfo: field 5 is the point, 6 the options). */
export function parseNoexec(mountinfo: string): { points: string[]; noexec: string[] } {
  const latest = new Map<string, boolean>();
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const point = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    latest.delete(point); // a later mount on the same point hides the earlier one
    latest.set(point, f[5].split(',').includes('noexec'));
  }
  const points = [...latest.keys()];
  return { points, noexec: points.filter((p) => latest.get(p)) };
}

let mountinfo: { points: string[]; noexec: string[] } | undefined;
function readMountinfo(): { points: string[]; noexec: string[] } {
  if (!mountinfo) {
    try {
      mountinfo = parseNoexec(readFileSync('/proc/self/mountinfo', 'utf8'));
    } catch {
      mountinfo = { points: [], noexec: [] }; // no /proc: dlopen's own failure will tell
    }
  }
  return mountinfo;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

/** Exit 125 (hainit's own error) saying exactly what the image needs. */
function cannotLoad(requested: string | undefined, tried: readonly string[]): never {
  const where = requested ? `HAINIT_TMPDIR=${requested} is not usable` : 'no writable, exec-capable directory';
  const beside = path.join(path.dirname(process.execPath), ADDON_ASSET);
  new Logger('error', 'text').error(
    `cannot load the embedded native addon: ${where} (tried ${tried.join(', ')}): ` +
      'mount a tmpfs without noexec at /tmp (docker run --tmpfs /tmp:exec, or a Kubernetes emptyDir at /tmp), ' +
      `set HAINIT_TMPDIR to a writable directory that allows exec, or COPY hainit.node beside the binary as ${beside}`,
  );
  process.exit(EXIT_USAGE);
}
