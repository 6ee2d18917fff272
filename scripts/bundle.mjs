#!/usr/bin/env node
// hainit in one file, with a V8 code cache trained on the Node that will run it.
//
//   node scripts/bundle.mjs [--node PATH]...
//        lib/hainit.js, and lib/hainit-VERSION.cache for bin/hainit trained on this Node (and on
//        each Node named: the bench trains Node 24 and Node 20), with lib/hainit-VERSION_FLAGS.cache
//        for the launcher's flags where that Node has them. npm run build, npm test and
//        npm run bench run it after tsc.
//   build-binary.mjs imports bundle() for dist/hainit, trained on the embedded Node 24.
//
// Why: start-up is most of what an init costs. Node compiles each function the first time it
// runs; a cache made after a training run (`hainit -- sh -c 'kill $$'`) holds every function start-up
// needs, where Node's own caches hold only the top level. One file also saves the 36 module
// lookups. Measured with callgrind on Node 24: 137 M instructions for `-- true` from lib/src,
// 104 M from the trained bundle, against 87 M for `node -e 0`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

/**
 * What the training run supervises: a child that ends by a signal, which hainit reports in one
 * log line, so that the cache also holds the logger (a warning at start, every `docker stop`'s
 * lines): without it, the first line a run writes compiled the logger as it went, 0.7 M
 * instructions on Node 24; `-- true` alone logs nothing. The install script trains the same way.
 */
export const TRAINING_COMMAND = ['sh', '-c', 'kill $$'];

/** The code cache of JS after `hainit -- sh -c 'kill $$'` on nodeBinary, written to CACHE; false,
 * with a warning, if the training run failed. V8 takes a cache only under the flags it was made with:
 * nodeFlags are the ones hainit will run with. For another architecture's Node, `emulator` runs
 * it (qemu-aarch64-static ...) and `addonRoot` holds build/Release/hainit.node built for it. */
export function train(nodeBinary, js, cache, nodeFlags = [], { emulator = [], addonRoot = root } = {}) {
  rmSync(cache, { force: true });
  const [cmd, ...pre] = [...emulator, nodeBinary];
  const r = spawnSync(cmd, [...pre, ...nodeFlags, path.join(root, 'scripts', 'train-code-cache.cjs'), js, cache, addonRoot, '--', ...TRAINING_COMMAND], { cwd: root, stdio: 'ignore', timeout: emulator.length ? 300_000 : 30_000 });
  // the run exits 143 (its child's SIGTERM, passed on); what matters is the cache it wrote
  if (!existsSync(cache)) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    console.warn(`bundle: no code cache for ${nodeBinary} (the training run failed: ${why}); hainit works, only starts slower`);
  }
  return existsSync(cache);
}

/**
 * Writes OUT/hainit.js: the bundle, wrapped as Node wraps a module.
 *
 * Bundled from the TypeScript sources (src/main.ts), not from tsc's CommonJS in lib/src: as ES
 * modules, esbuild hoists them into one scope, so start-up runs no module wrappers, no `exports.x`
 * stores and no `(0, m.f)()` lookups. hainit's own modules are imported, not require()d: one
 * require() makes esbuild wrap that module and all it imports in lazy initialisers, which cost
 * start-up more than their top levels (node:http and node:net load on first use, runtime/lazy.ts).
 * `minify` minifies
 * whitespace and syntax but keeps identifiers, so stack traces keep hainit's names without
 * esbuild's keepNames, which renames every function again at start-up (a defineProperty each,
 * 245 of them). Counted with callgrind (main thread, `node --hash-seed=1`, so counts repeat; the
 * cache trained under the same flag), `node bin/hainit -- true` on Node 22: 107.4 M instructions
 * from lib/src with keepNames, 106.0 M from src/ (startup-count.js and README "Choices").
 */
export async function bundle({ out, minify, target }) {
  const entry = path.join(root, 'src', 'main.ts');
  if (!existsSync(entry)) throw new Error(`${path.relative(root, entry)} is missing: the bundle is made in a checkout`);
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const esbuild = require('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    tsconfig: path.join(root, 'tsconfig.json'),
    bundle: true,
    platform: 'node',
    target,
    format: 'cjs',
    write: false,
    minifyWhitespace: minify,
    minifySyntax: minify,
    legalComments: 'none',
    logLevel: 'warning',
    // the addon is required by a computed path (src/native/index.ts), at run time
    logOverride: { 'unsupported-require-call': 'silent' },
    plugins: [{
      // the version is inlined instead of the whole package.json
      name: 'version-only',
      setup(b) {
        b.onResolve({ filter: /package\.json$/ }, () => ({ path: 'package.json', namespace: 'version-only' }));
        b.onLoad({ filter: /.*/, namespace: 'version-only' }, () => ({ contents: JSON.stringify({ version: pkg.version }), loader: 'json' }));
      },
    }],
  });
  const js = path.join(out, 'hainit.js');
  // bin/hainit reads it as latin1 (a copy, no UTF-8 decoding): esbuild writes ASCII (charset
  // 'ascii', its default, escapes the rest), and this keeps it so.
  const nonAscii = /[^\x00-\x7f]/.exec(result.outputFiles[0].text);
  if (nonAscii) throw new Error(`bundle.mjs: the bundle must be ASCII, found ${JSON.stringify(nonAscii[0])}`);
  writeFileSync(js, `(function (exports, require, module, __filename, __dirname) {${requireOnce(result.outputFiles[0].text)}\n})`);
  return js;
}

/**
 * esbuild gives each module that imports node:fs its own `var import_node_fsN = require("node:fs")`:
 * ten of them, each a trip through Node's module loader at start-up. The later ones become the
 * first one's value (a builtin module is one object).
 */
export function requireOnce(text) {
  // Sound only while every such line runs at the top level, in file order: none of esbuild's lazy
  // module initialisers (__esm), which would run their requires later than the text says.
  if (text.includes('__esm(')) throw new Error('bundle.mjs: a module is initialised lazily (__esm): its requires cannot be shared');
  const first = new Map();
  return text.replace(/\b(import_node_\w+?)=require\("(node:[\w/]+)"\)/g, (all, name, id) => {
    const seen = first.get(id);
    if (seen === undefined) {
      first.set(id, name);
      return all;
    }
    return `${name}=${seen}`;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const nodes = [process.execPath];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--node' && args[i + 1]) nodes.push(args[++i]);
    else throw new Error(`bundle.mjs: unknown argument ${JSON.stringify(args[i])} (usage: bundle.mjs [--node PATH]...)`);
  }
  const lib = path.join(root, 'lib');
  // Every Node that may run it must parse it: the oldest one's syntax, Node 20.
  // Minified as in the binary: fewer bytes to read and turn into a string at every start.
  const js = await bundle({ out: lib, minify: true, target: 'node20' });
  // Every old cache goes: V8 checks a cache against the source's length only, so a cache left
  // from another bundle of the same length would be taken.
  for (const f of readdirSync(lib)) if (/^hainit-v[\d.]+(_.*)?\.cache$/.test(f)) rmSync(path.join(lib, f));
  const flags = launcherFlags();
  for (const node of new Set(nodes)) {
    if (!existsSync(node)) {
      console.warn(`bundle: ${node} does not exist: no code cache for it`);
      continue;
    }
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    train(node, js, path.join(lib, cacheName(version, [])));
    // and the launcher's, for a Node that can run it (--disable-sigusr1: Node >= 22.14)
    try {
      execFileSync(node, [...flags, '-e', '0'], { stdio: 'ignore' });
    } catch {
      continue;
    }
    train(node, js, path.join(lib, cacheName(version, flags)), flags);
  }
}

/** The Node flags of bin/hainit's launcher (its `exec node FLAGS "$0" "$@"` line). */
export function launcherFlags() {
  return require('./scripts/fit-launcher.cjs').execLine(readFileSync(path.join(root, 'bin', 'hainit'), 'utf8')).flags;
}

/** The name bin/hainit gives the code cache of Node VERSION run with EXEC_ARGV (the same rule). */
export function cacheName(version, execArgv) {
  const flags = execArgv.join(' ').replace(/[^\w.=-]+/g, '_').slice(0, 120);
  return `hainit-${version}${flags === '' ? '' : `_${flags}`}.cache`;
}
