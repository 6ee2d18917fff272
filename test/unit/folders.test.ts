import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
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
