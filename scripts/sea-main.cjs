'use strict';
// The main script of dist/hainit (scripts/build-binary.mjs). It runs hainit's bundle from the
// 'hainit.js' asset with the V8 code cache in 'hainit.cache', which build-binary made after a
// training run (scripts/bundle.mjs, TRAINING_COMMAND): every function that start-up runs comes compiled, where
// the SEA's own code cache (useCodeCache) holds only what V8 compiles eagerly, the top level.
// A cache V8 rejects (another V8, other flags) only costs time: the code compiles as usual.
const sea = require('node:sea');
const { Script } = require('node:vm');

const source = sea.getAsset('hainit.js', 'utf8');
let cachedData;
try {
  cachedData = new Uint8Array(sea.getRawAsset('hainit.cache'));
} catch {
  // built without a cache: compiled as it runs
}
const script = new Script(source, { filename: 'hainit.js', cachedData });
globalThis.__hainitCodeCache = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted';
script.runInThisContext()(module.exports, require, module, __filename, __dirname);
