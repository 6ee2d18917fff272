'use strict';
// Fits bin/hainit's exec line to the Node that installs the package (run by the install script,
// with that Node: the `node` the launcher will exec, first on PATH).
//
//   node scripts/fit-launcher.cjs     takes --max-semi-space-size=4 out of the exec line where
//                                     this Node counts it in its code-cache check (Node 22)
//
// --max-semi-space-size=4 bounds V8's young generation (README, Choices). Node 24 leaves it out
// of the hash V8 checks every code cache against; Node 22 counts it, and then rejects the code
// cache of its own built-in modules at every start: +9% start-up, on top of a young generation
// that Node 22 already keeps at 32 MB where Node 24 lets it grow to 128 MB. Whether a flag is in
// the hash is asked of V8 itself (`v8.cachedDataVersionTag()` is that hash with V8's version and
// CPU features), not guessed from version numbers. Where install scripts do not run, the launcher
// keeps the flag: a bounded heap is worth more than 9% of start-up.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const FLAG = '--max-semi-space-size=4';
const EXEC_LINE = /^':' \/\/; exec node ((?:--[\w=.-]+ )*)"\$0" "\$@"$/m;

/** bin/hainit's line `exec node FLAGS "$0" "$@"`: where it starts in `text`, and its Node flags
 * (scripts/bundle.mjs trains a cache for them; the count bench counts the sh lines before it). */
function execLine(text) {
  const m = EXEC_LINE.exec(text);
  if (!m) throw new Error('bin/hainit has no line `exec node FLAGS "$0" "$@"`');
  return { index: m.index, flags: m[1].trim().split(' ') };
}

/** Whether `node` gives code caches the same check with FLAG as without it (asked of two runs of it,
 * without NODE_OPTIONS, as the launcher runs it: a FLAG given there would hide the difference). */
function flagIsFree(node = process.execPath) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const tag = (flags) => execFileSync(node, [...flags, '-p', "require('node:v8').cachedDataVersionTag()"], { encoding: 'utf8', env }).trim();
  return tag([FLAG]) === tag([]);
}

/** The launcher's text with FLAG taken out of its exec line (unchanged if it is not there). */
function withoutFlag(text) {
  return text.replace(EXEC_LINE, (line) => line.replace(` ${FLAG} `, ' '));
}

function main() {
  const root = path.join(__dirname, '..');
  // a checkout keeps its launcher as committed (the bench and the tests fit it themselves)
  if (fs.existsSync(path.join(root, 'src', 'main.ts')) || flagIsFree()) return;
  const launcher = path.join(root, 'bin', 'hainit');
  const text = fs.readFileSync(launcher, 'utf8');
  const fitted = withoutFlag(text);
  if (fitted === text) return;
  // a whole file or none: sh reads the launcher as it runs, and another install may be running it
  const tmp = `${launcher}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, fitted);
  fs.chmodSync(tmp, fs.statSync(launcher).mode & 0o7777);
  fs.renameSync(tmp, launcher);
}

module.exports = { FLAG, execLine, flagIsFree, withoutFlag };
if (require.main === module) main();
