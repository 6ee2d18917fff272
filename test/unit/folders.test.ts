import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** Folders of src/ depend one way: no folder reaches itself through imports. */
const ALLOWED: string[] = [];

describe('src folders', () => {
  it('import each other in no loop but the one still allowed', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'folder-deps.mjs')], { encoding: 'utf8' });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const m = /^folders in a loop: (.*)$/.exec(last);
    assert.ok(m, r.stdout + r.stderr);
    const loops = m[1] === 'none' ? [] : m[1].split('; ');
    assert.deepEqual(loops.filter((l) => !ALLOWED.includes(l)), [], `run node scripts/folder-deps.mjs --files to see the imports:\n${r.stdout}`);
  });
});

/** The relative imports of every .ts file under `dir` that land in one of `forbidden` (top-level folders). */
function importsInto(dir: string, forbidden: string[]): string[] {
  const found: string[] = [];
  for (const rel of readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts')) continue;
    const file = path.join(ROOT, dir, rel);
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from\s+|^import\s+|require\(\s*|import\(\s*)'(\.{1,2}\/[^']+)'/gm)) {
      const top = path.relative(ROOT, path.resolve(path.dirname(file), m[1])).split(path.sep)[0];
      if (forbidden.includes(top)) found.push(`${dir}/${rel}: ${m[1]}`);
    }
  }
  return found;
}

describe('shared helpers', () => {
  it('live in support/: bench/ and support/ import nothing from test/, support/ nothing from bench/', () => {
    assert.deepEqual([...importsInto('bench', ['test']), ...importsInto('support', ['test', 'bench'])], []);
  });
});
