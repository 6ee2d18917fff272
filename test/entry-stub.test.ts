/**
 * The entry stub alone (native/entry/), in front of a small C program instead of Node: quick to
 * build, and it runs on aarch64 too (qemu-aarch64-static, the cross compiler's sysroot), which
 * the 100 MB dist/hainit cannot here. The program (test/fixtures/stub-probe.c) gets the addon
 * note the same way: postject injects it as HAINIT_ADDON, scripts/patch-entry.mjs puts the stub
 * in front of its entry point.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { REPO } from '../support/binary';

const ARCHES = [
  { arch: 'x86_64', cc: 'cc', run: [] as string[] },
  { arch: 'aarch64', cc: 'aarch64-linux-gnu-gcc', run: ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'] },
];
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

for (const { arch, cc, run } of ARCHES) {
  describe(`the entry stub on ${arch}`, function () {
    this.timeout(120_000);
    let dir = '';
    let probe = '';
    before(function () {
      const need = [cc, ...run.slice(0, 1)].find((t) => !has(t));
      const postject = path.join(REPO, 'node_modules', 'postject', 'dist', 'cli.js');
      if (need || !existsSync(postject) || (run.length > 0 && !existsSync('/usr/aarch64-linux-gnu/lib'))) {
        console.log(`      skipped: ${need ?? 'postject or the aarch64 sysroot'} is not installed`);
        this.skip();
      }
      dir = mkdtempSync(path.join(tmpdir(), `hainit-stub-${arch}-`));
      probe = path.join(dir, 'probe');
      execFileSync(cc, ['-O1', '-o', probe, path.join(REPO, 'test', 'fixtures', 'stub-probe.c')]);
      writeFileSync(path.join(dir, 'addon'), 'the addon bytes');
      execFileSync(process.execPath, [postject, probe, 'HAINIT_ADDON', path.join(dir, 'addon')], { stdio: 'ignore' });
      const script = `
        import { buildStub } from ${JSON.stringify(path.join(REPO, 'scripts', 'entry-stub.mjs'))};
        import { patchEntry } from ${JSON.stringify(path.join(REPO, 'scripts', 'patch-entry.mjs'))};
        const stub = buildStub({ arch: ${JSON.stringify(arch)}, work: ${JSON.stringify(dir)} });
        patchEntry(${JSON.stringify(probe)}, stub.code, stub.jump);`;
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const start = (env: Record<string, string>) => {
      const [cmd, ...args] = [...run, probe];
      const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n');
    };

    it("moves NODE_*, UV_* and OPENSSL_CONF out of the C library's environ, keeping the rest in order", () => {
      const lines = start({ A: '1', NODE_OPTIONS: '--require x', B: '2', UV_THREADPOOL_SIZE: '64', OPENSSL_CONF: '/c', NODE_DEBUG: 'net', C: '3' });
      const seen = lines.filter((l) => l.startsWith('environ '));
      // qemu-user hands the guest its environment in reverse: the order is checked natively only
      assert.deepEqual(run.length > 0 ? seen.sort() : seen, ['environ A=1', 'environ B=2', 'environ C=3']);
      assert.ok(lines.includes('getenv NODE_OPTIONS (unset)'));
    });

    it('puts the note into a sealed, close-on-exec memfd that refuses writes', () => {
      const lines = start({});
      assert.ok(lines.includes('fuse 1'), 'postject injected the note');
      // F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
      assert.ok(lines.includes('memfd seals=15 cloexec=1 bytes=15 content=the addon bytes'), lines.join('\n'));
      assert.ok(lines.includes('memfd write=refused'));
    });

    it('leaves the signal-state marker for the addon', () => {
      assert.ok(start({}).includes('marker 6861696e69000001'));
    });
  });
}
