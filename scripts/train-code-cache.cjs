'use strict';
// build-binary's training run: node train-code-cache.cjs WRAPPED_BUNDLE CACHE_OUT ROOT -- ARGS...
// (ROOT holds build/Release/hainit.node, the addon for this Node's architecture)
// Compiles the wrapped bundle exactly as scripts/sea-main.cjs will, runs hainit with ARGS as
// a plain Node program (the addon from build/Release), and when hainit calls process.exit,
// writes V8's code cache: by then it holds every function the run compiled.
const { readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { Script } = require('node:vm');

const [bundle, out, root] = process.argv.slice(2, 5);
const script = new Script(readFileSync(bundle, 'latin1'), { filename: 'hainit.js' });
// as bin/hainit: the addon comes from ROOT's build/Release, not from an SEA asset
globalThis.__hainitFromPackage = true;
// hainit leaves with _exit(2) (the addon's exitNow), except through this hook when it is set.
globalThis.__hainitTrainingExit = (code) => {
  writeFileSync(out, script.createCachedData());
  process.exit(code);
};
// hainit reads its own arguments from process.argv.slice(2)
process.argv.splice(2, 3);
const mod = { exports: {} };
// lib/src/native is where loadFromPackage expects to be: it finds ../../../build/Release/hainit.node
script.runInThisContext()(mod.exports, require, mod, bundle, path.join(root, 'lib', 'src', 'native'));
