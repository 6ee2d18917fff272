import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../..');
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('the npm package', function () {
  this.timeout(180_000);

  it('ships what runs and nothing else: no tests, no TypeScript sources, no bench', () => {
    const [pack] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], REPO)) as { files: { path: string }[] }[];
    const files = pack.files.map((f) => f.path).sort();
    for (const needed of ['bin/hainit', 'binding.gyp', 'lib/src/main.js', 'native/addon.c', 'native/hainit.h', 'package.json', 'README.md']) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    const stray = files.filter((f) => /^(test|src|bench|lib\/test|lib\/bench|examples|scripts|dist|build)\//.test(f) || f.endsWith('.ts'));
    assert.deepEqual(stray, []);
  });

  it('installs from its tarball (the addon builds on install) and runs', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-pack-'));
    try {
      const tarball = npm(['pack', '--pack-destination', dir, '--ignore-scripts'], REPO).trim().split('\n').pop()!;
      writeFileSync(path.join(dir, 'package.json'), '{"name":"consumer","version":"1.0.0","private":true}\n');
      npm(['install', '--no-audit', '--no-fund', path.join(dir, tarball)], dir);
      const r = spawnSync(path.join(dir, 'node_modules', '.bin', 'hainit'), ['--', 'sh', '-c', 'exit 7'], { encoding: 'utf8' });
      assert.equal(r.status, 7, r.stderr);
      const v = spawnSync(path.join(dir, 'node_modules', '.bin', 'hainit'), ['--version'], { encoding: 'utf8' });
      assert.match(v.stdout, /^hainit version \d+\.\d+\.\d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
