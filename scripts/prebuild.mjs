#!/usr/bin/env node
// The npm package's prebuilt addons: prebuilds/linux-x64/hainit.glibc.node and
// prebuilds/linux-arm64/hainit.glibc.node, which node-gyp-build loads at run time (src/native).
//
//   npm run prebuilds [-- --arch x64|arm64]...     (npm pack runs it: "prepack")
//
// With them `npm install hainit` needs no compiler on linux-x64 and linux-arm64 (glibc); anywhere
// else the install script ("node-gyp-build") builds from source as before. One N-API build serves
// every Node with N-API 8 (native/addon.c), so there is one file per architecture.
//
// prebuildify builds in a staging copy (dist/prebuild-ARCH), not in the checkout: it runs
// `node-gyp rebuild` and moves the result away, which would take build/Release/hainit.node
// (the addon the tests, the training run and build-binary use) with it.
// Offline: the Node headers come from /usr/include/node when they are there (Debian's nodejs-dev
// and Node's own installs have them), as for `npm install`; N-API's headers do not depend on
// the Node version beyond the N-API version. arm64 is cross-compiled with aarch64-linux-gnu-gcc
// (Debian's gcc-aarch64-linux-gnu).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

/** Per target architecture: the compiler environment, and the strip that reads its objects. */
const CROSS = {
  x64: { host: 'x64', env: {}, strip: 'strip' },
  arm64: {
    host: 'arm64',
    // the addon is C only: gcc links it too (no g++-aarch64-linux-gnu needed)
    env: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-gcc', LINK: 'aarch64-linux-gnu-gcc', AR: 'aarch64-linux-gnu-ar' },
    strip: 'aarch64-linux-gnu-strip',
  },
};

export function prebuild(arch) {
  const cross = CROSS[arch];
  if (!cross) throw new Error(`prebuild: no recipe for --arch ${arch} (known: ${Object.keys(CROSS).join(', ')})`);
  const native = arch === process.arch ? {} : cross.env;
  const cc = native.CC ?? 'cc';
  try {
    execFileSync(cc, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`prebuild: ${cc} is missing: the ${arch} addon needs it (Debian: apt-get install ${arch === 'arm64' ? 'gcc-aarch64-linux-gnu' : 'gcc make'})`);
  }
  const stage = path.join(root, 'dist', `prebuild-${arch}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  cpSync(path.join(root, 'binding.gyp'), path.join(stage, 'binding.gyp'));
  cpSync(path.join(root, 'native'), path.join(stage, 'native'), { recursive: true });
  const out = path.join(root, 'prebuilds', `linux-${arch}`);
  rmSync(out, { recursive: true, force: true });
  const env = { ...process.env, ...native };
  if (existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  // npm puts its own node-gyp on PATH for scripts; run directly, find it beside npm.
  env.PREBUILD_NODE_GYP = process.env.npm_config_node_gyp ?? npmNodeGyp();
  execFileSync(process.execPath, [
    require.resolve('prebuildify/bin.js'),
    '--napi', '--strip', '--tag-libc', '--name', 'hainit', '--arch', arch, '--platform', 'linux', '--libc', 'glibc',
    '--strip-bin', native.CC ? cross.strip : 'strip',
    '--cwd', stage, '--out', root,
  ], { cwd: stage, env, stdio: 'pipe' });
  rmSync(stage, { recursive: true, force: true });
  const files = readdirSync(out);
  if (files.length !== 1) throw new Error(`prebuild: expected one addon in ${out}, found ${files.join(', ') || 'none'}`);
  return path.join(out, files[0]);
}

function npmNodeGyp() {
  const npm = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  const gyp = path.join(npm, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(gyp)) throw new Error('prebuild: cannot find node-gyp (run it as `npm run prebuilds`)');
  return gyp;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const archs = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--arch' && args[i + 1]) archs.push(args[++i]);
    else throw new Error(`prebuild.mjs: unknown argument ${JSON.stringify(args[i])} (usage: prebuild.mjs [--arch x64|arm64]...)`);
  }
  for (const arch of archs.length ? archs : ['x64', 'arm64']) {
    const file = prebuild(arch);
    const kind = execFileSync('file', ['-b', file], { encoding: 'utf8' }).trim().split(',').slice(0, 2).join(',');
    console.log(`prebuild: ${path.relative(root, file)} (${kind})`);
  }
}
