import { closeSync, constants, existsSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { UsageError } from '../exit-codes';

/** A reaped process, as the reaper hands it on (decoded from struct hainit_reaped: src/reaper/record.ts). */
export interface ReapedStatus {
  readonly pid: number;
  /** exit code, or null when killed by a signal */
  readonly code: number | null;
  readonly signal: number | null;
  readonly core: boolean;
  /** command name, when it was named (see Reaper); '' otherwise */
  readonly comm: string;
  /** how long it lived, when it was named and its start time could be read */
  readonly livedMs: number | undefined;
}

/** The system calls hainit needs that Node does not offer. Negative results are -errno. */
export interface NativeAddon {
  spawn(
    /** a Buffer is taken byte for byte (see app-env.ts) */
    path: string | Buffer,
    argv: readonly (string | Buffer)[],
    stdio: readonly [number, number, number],
    keepFds: readonly number[],
    foreground: boolean,
    newProcessGroup: boolean,
    /** "KEY=value" for the child; hainit's own environment when left out */
    env?: readonly (string | Buffer)[],
  ): number;
  /** reaps into `records` (struct hainit_reaped, src/reaper/record.ts) as many as fit; how many.
   * The first `named` are read from /proc (name, lifetime) before they are reaped. */
  reap(named: number, records: Buffer): number;
  /** installs the handlers; `onRecords` gets buffers of whole records (see signals/router.ts); 0 or -errno */
  signalsInstall(onRecords: (records: Buffer) => void): number;
  /** the records still in the pipe, read now (before exit); with settleMs, after waiting up to that long for handlers still writing theirs */
  signalsRead(settleMs?: number): Buffer;
  signalsTarget(target: number): void;
  signalsRewrite(from: number, to: number): void;
  signalsMode(signal: number, mode: number): void;
  signalsDropped(): number;
  /** signals the system would not let hainit catch (EINVAL: valgrind keeps one for itself) */
  signalsSkipped(): number[];
  /** _exit(2): no Node teardown (flush the log queue first: log/output.ts) */
  exitNow(code: number): never;
  /** send(2) with MSG_DONTWAIT|MSG_NOSIGNAL from buffer[offset..]: bytes sent, or -errno */
  sendNoWait(fd: number, buffer: Buffer, offset: number): number;
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
  /** [read, write], close-on-exec, or -errno */
  pipe(): [number, number] | number;
  /** SO_RCVBUF on a socket (a listening one passes it on to what it accepts); 0 or -errno */
  receiveBuffer(fd: number, bytes: number): number;
  /** TCP_DEFER_ACCEPT on a listening socket (0 turns it off); 0 or -errno */
  deferAccept(fd: number, seconds: number): number;
  /** the probe endpoint's waiting room (src/health/server.ts atCap): its size and the idle deadline
   * of what it holds; 0 or -errno */
  roomInit(max: number, idleMs: number, jitterMs: number): number;
  /** accepts the connections waiting when called (the accept queue's length then, at most 8192, for
   * at most 10 ms; fewer once `maxReady` have a complete request head): [reset, parked, fd...],
   * the fds with a head; the others are parked (reset: those the full room let go to make room) */
  triage(listenFd: number, maxReady: number): number[];
  /** 1: `fd` has a complete request head; 0: a duplicate of it is in the room (close it; a full room
   * resets the one it held the longest); -1: neither */
  roomAdopt(fd: number): number;
  /** [reset at their deadline (only with `deadlines` 1), still in the room, reset to make room for
   * adopted ones, fd...]: the fds whose request head arrived */
  roomCheck(deadlines: number): number[];
  /** [peer, count, ...]: the peers ("ADDRESS/BITS": an IPv4 address, 127.0.0.0/8, an IPv6 /64)
   * holding at least `min` of the waiting room, most first, at most 16 */
  roomPeers(min: number): Array<string | number>;
  /** the kernel drops SYNs from these peers on `listenFd`; from those written "~ADDRESS/BITS" only
   * while its accept queue is over half full (an empty list: from none); 0 or -errno */
  peerDrop(listenFd: number, peers: readonly string[]): number;
  /** [connections waiting in a listening socket's accept queue, its length], or -errno */
  acceptQueue(listenFd: number): [number, number] | number;
  /** [dropping now (0/1), times it began, ms it lasted in all] */
  peerDropState(): [number, number, number];
  /** The signal mask and ignored set dist/hainit was started with, which its children get too;
   * null without the binary's entry stub (native/entry/stub.c), when children get none. */
  startSignalState(): { blocked: number[]; ignored: number[] } | null;
  /** /proc/self/cmdline as it is, one Buffer an entry; null without /proc */
  rawArgv(): Buffer[] | null;
  /** /proc/self/environ as it is, as latin1 (a character a byte), a NUL after each entry; null without /proc */
  rawEnviron(): string | null;
}

export const SignalMode = { drop: 0, forward: 1, notify: 2 } as const;

let addon: NativeAddon | undefined;

/** Where the addon was loaded from, for `-v` (main.ts) and the tests. */
export let addonSource = 'the package';

/** Loaded as early as possible: the snapshot of inherited descriptors is taken at load time. */
export function native(): NativeAddon {
  if (!addon) {
    try {
      addon = isSingleExecutable() ? loadEmbedded() : loadFromPackage();
    } catch (e) {
      // whatever went wrong on the way: one line, 125 (never a stack trace or minified source)
      if (e instanceof UsageError) throw e;
      return cannotLoad(`${firstLine(e)}`);
    }
  }
  return addon;
}

/**
 * npm install: node-gyp-build's choice, build/Release/hainit.node (built from source at install)
 * before the package's prebuild for this platform, prebuilds/linux-ARCH/hainit.glibc.node.
 * Those two are looked for directly: loading node-gyp-build costs start-up 6-9 M instructions,
 * 7-10% of `node -e 0` on Node 24 (node:os, package.json through the module loader; callgrind).
 * Anything else (musl, node-gyp-build's environment overrides, no file) goes through it.
 */
function loadFromPackage(): NativeAddon {
  // lib/src/native/index.js -> the package root. process.dlopen, not require: the module
  // loader's resolution (realpath, package scope, module paths) showed up in start-up.
  const root = `${__dirname}/../../..`;
  const env = process.env;
  const direct = [`${root}/build/Release/hainit.node`];
  if (!env.LIBC && !env.PREBUILDS_ONLY && !env.HAINIT_PREBUILD && !env.npm_config_arch && !existsSync('/etc/alpine-release')) {
    direct.push(`${root}/prebuilds/linux-${process.arch}/hainit.glibc.node`);
  }
  let file = direct.find((f) => existsSync(f));
  try {
    if (file === undefined) file = (require('node-gyp-build') as { path(dir: string): string }).path(root);
    return dlopen(file);
  } catch (e) {
    return cannotLoad(`${file === undefined ? normalize(root) : normalize(file)}: ${firstLine(e)} (reinstall: npm rebuild hainit)`);
  }
}

/** The name of the addon, as an SEA asset (scripts/build-binary.mjs) and beside the binary. */
export const ADDON_ASSET = 'hainit.node';

/** Where the embedded addon may be written when the user named no place, in order of preference. */
export const EXTRACT_CANDIDATES: readonly string[] = ['/dev/shm', '/tmp', '/run', '/var/tmp'];

/** The name the entry stub gives its memfd (native/entry/stub.c), as /proc/self/fd shows it. */
export const MEMFD_LINK = '/memfd:hainit.node (deleted)';

interface Sea {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer | string;
}

export function isSingleExecutable(): boolean {
  // bin/hainit and the code-cache training run say so before the bundle runs: loading node:sea
  // only to hear "no" cost every start-up of the npm form (README "Choices", start-up).
  if ((globalThis as { __hainitFromPackage?: boolean }).__hainitFromPackage === true) return false;
  try {
    // node:sea exists from Node 20; isSea() is false when run by a plain `node`.
    return (require('node:sea') as Sea).isSea();
  } catch {
    return false;
  }
}

/**
 * dist/hainit carries the addon twice: as the ELF note the entry stub copies into a sealed memfd
 * before Node starts, and as an SEA asset for when that cannot be used.
 *
 * 1. The memfd (/proc/self/fd/N): no name in any directory, sealed against writes, so nothing
 *    another process does can change what is loaded. This is the normal case.
 * 2. Only where the kernel forbids executable memfds (vm.memfd_noexec=2) or dlopen of one fails:
 *    hainit.node beside the binary, if the user put one there, or the asset written to
 *    HAINIT_TMPDIR or the first usable candidate. Either must live where only root or hainit's
 *    own user can change it (safeReason): a directory others can write is refused, since another
 *    user there could put their own file in its place between the write and dlopen. The asset
 *    is written to an unnamed O_TMPFILE and loaded through /proc/self/fd/N where the filesystem
 *    has O_TMPFILE; else to an O_EXCL file, unlinked right after dlopen. Nothing is left behind,
 *    not even on ENOSPC.
 * Any failure: one line, 125.
 *
 * The addon's load takes the snapshot of inherited descriptors (native/addon.c); every
 * descriptor opened here is closed right after, and the addon drops a closed or reused one.
 */
function loadEmbedded(): NativeAddon {
  const tried: string[] = [];
  const memfd = stubMemfd();
  if (memfd !== undefined) {
    try {
      addonSource = 'the sealed memfd of the entry stub';
      return dlopen(`/proc/self/fd/${memfd}`);
    } catch (e) {
      tried.push(`sealed memfd: ${firstLine(e)}`);
    } finally {
      closeSync(memfd);
    }
  } else {
    tried.push(`no sealed memfd (${memfdAbsentReason()})`);
  }

  const beside = join(dirname(process.execPath), ADDON_ASSET);
  if (existsSync(beside)) {
    const unsafe = safeReason(beside, true);
    if (unsafe) return cannotLoad(`refusing ${beside}: ${unsafe}`);
    try {
      addonSource = beside;
      return dlopen(beside);
    } catch (e) {
      return cannotLoad(`${beside}: ${firstLine(e)}`);
    }
  }

  // Read here, not in config/: the addon must be loaded before anything else runs.
  const requested = process.env.HAINIT_TMPDIR;
  const dirs = requested !== undefined ? [requested] : EXTRACT_CANDIDATES;
  const bytes = new Uint8Array((require('node:sea') as Sea).getRawAsset(ADDON_ASSET) as ArrayBuffer);
  for (const dir of dirs) {
    const got = loadFromDirectory(dir, bytes);
    if (typeof got !== 'string') return got;
    tried.push(`${dir}: ${got}`);
  }
  return cannotLoad(`${tried.join('; ')}. ${HOW_TO_FIX}`);
}

const HOW_TO_FIX =
  'Allow executable memfds (sysctl vm.memfd_noexec=0 or 1), or COPY hainit.node beside the binary, ' +
  'or give HAINIT_TMPDIR a directory that only root or this user can write and that is not mounted noexec';

/** The entry stub's memfd, found by its name among hainit's descriptors. */
function stubMemfd(): number | undefined {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === MEMFD_LINK) return Number(fd);
    } catch {
      // the directory's own descriptor, already closed
    }
  }
  return undefined;
}

function memfdAbsentReason(): string {
  if (!existsSync('/proc/self/fd')) return '/proc is not mounted';
  try {
    const v = readFileSync('/proc/sys/vm/memfd_noexec', 'utf8').trim();
    if (v === '2') return 'the kernel forbids executable memfds: vm.memfd_noexec=2';
  } catch {
    // kernels before 6.3 have no such setting
  }
  return 'memfd_create failed';
}

/** The asset, loaded from `dir`; or why not, as a short phrase. */
function loadFromDirectory(dir: string, bytes: Uint8Array): NativeAddon | string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (e) {
    return errnoCode(e);
  }
  const unsafe = safeReason(real, false);
  if (unsafe) return unsafe;

  if (existsSync('/proc/self/fd')) {
    let fd: number | undefined;
    try {
      fd = openSync(real, O_TMPFILE | constants.O_RDWR, 0o700);
    } catch (e) {
      const code = errnoCode(e);
      // the filesystem has no O_TMPFILE (old kernels say EISDIR): a named file instead
      if (code !== 'EOPNOTSUPP' && code !== 'EISDIR' && code !== 'EINVAL') return code;
    }
    if (fd !== undefined) {
      try {
        writeAll(fd, bytes);
        addonSource = `an unnamed file in ${real}`;
        return dlopen(`/proc/self/fd/${fd}`);
      } catch (e) {
        return why(e, real);
      } finally {
        closeSync(fd); // the last reference to an unnamed file: its space is freed here
      }
    }
  }

  const file = `${real}/.hainit-${process.pid}-${Date.now().toString(36)}.node`;
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o500);
  } catch (e) {
    return errnoCode(e);
  }
  try {
    try {
      writeAll(fd, bytes);
    } finally {
      closeSync(fd);
    }
    addonSource = `${file}, unlinked after loading`;
    return dlopen(file);
  } catch (e) {
    return why(e, real);
  } finally {
    try {
      unlinkSync(file);
    } catch {
      /* already gone */
    }
  }
}

/** open(2)'s O_TMPFILE (__O_TMPFILE | O_DIRECTORY; O_DIRECTORY differs between architectures). */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? firstLine(e);
}

function why(e: unknown, dir: string): string {
  const err = e as NodeJS.ErrnoException;
  if (err?.syscall !== undefined && err.code !== undefined) return err.code; // open, write: ENOSPC...
  return noexecReason(dir) ?? firstLine(e); // dlopen's own message
}

/**
 * Why `file` (a directory, or with `isFile` a file) could be changed by someone other than root
 * and hainit's own user; undefined when it cannot. Each directory from / down must belong to one
 * of them and be writable by nobody else unless it is sticky (then others cannot rename or
 * remove entries they do not own); the file too must be theirs and not group/other writable.
 */
export function safeReason(file: string, isFile: boolean, uid: number = process.geteuid?.() ?? 0): string | undefined {
  let real: string;
  try {
    real = realpathSync(file);
  } catch (e) {
    return errnoCode(e);
  }
  const parts = real.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const p = '/' + parts.slice(0, i).join('/');
    const last = i === parts.length;
    const st = lstatSync(p);
    if (st.uid !== 0 && st.uid !== uid) return `${p} belongs to uid ${st.uid}`;
    if (last && isFile) {
      if (!st.isFile()) return `${p} is not a regular file`;
      if (st.mode & 0o022) return `${p} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`;
      continue;
    }
    if (st.mode & 0o022 && !(st.mode & S_ISVTX)) {
      return `${p} is writable by others without the sticky bit (mode ${(st.mode & 0o7777).toString(8)})`;
    }
  }
  return undefined;
}

/** <sys/stat.h>: the sticky bit. */
const S_ISVTX = 0o1000;

/** <dlfcn.h> on Linux (node:os has it too, but loading node:os costs start-up 0.25 ms). */
const RTLD_NOW = 2;

function dlopen(file: string): NativeAddon {
  const module = { exports: {} as unknown };
  process.dlopen(module, file, RTLD_NOW);
  return module.exports as NativeAddon;
}

/** "mounted noexec at M" when DIR lives on a noexec mount (a chroot may not show it: undefined). */
function noexecReason(dir: string): string | undefined {
  const { points, noexec } = readMountinfo();
  const mount = mountPointOf(dir, points);
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

/** Exit 125 (hainit's own error), one line saying what failed and what the image needs. */
/** One line for main.ts to say before it exits 125. */
function cannotLoad(what: string): never {
  throw new UsageError(`cannot load the native addon: ${what}`);
}
