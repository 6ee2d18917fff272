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
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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
  const listed = spawnSync('dpkg-query', ['-L', ...BUILD_PACKAGES], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.split('\n');
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
      builderRoot(path.join(stage, 'build'));
      const ca = process.env.NODE_EXTRA_CA_CERTS && existsSync(process.env.NODE_EXTRA_CA_CERTS) ? process.env.NODE_EXTRA_CA_CERTS : CA_BUNDLE;
      importRoot(e, path.join(stage, 'build'), 'e2e/build-base:1', [`ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/root NODE_EXTRA_CA_CERTS=${ca}`]);
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

  afterEach(() => {
    const ids = e?.docker(['ps', '-aq']).stdout.toString().split('\n').filter(Boolean) ?? [];
    if (ids.length) e.docker(['rm', '-f', ...ids]);
  });

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
    const t0 = Date.now();
    assert.equal(await waitInspect(e, id, '{{.State.Health.Status}}', ['unhealthy'], 4500), 'unhealthy', 'during the 5 s shutdown delay');
    await new Promise((r) => stopping.on('close', r));
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

  it('leaves no build cache behind once pruned', () => {
    e.ok(['builder', 'prune', '-af']);
    const du = e.ok(['system', 'df', '--format', '{{.Type}} {{.Size}}']);
    assert.match(du, /Build Cache 0B/, du);
  });
});


