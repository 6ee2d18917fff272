/**
 * musl (Alpine): the npm form builds its addon from source there (the prebuilds are glibc's; README,
 * "Platforms"). No musl Node can be had here (npm has none, and nodejs.org's unofficial builds are
 * out of reach), so the addon cannot be loaded on musl in CI. What can be checked is what the build
 * on Alpine depends on: every C file of binding.gyp compiles against musl's headers (musl-gcc, Debian's
 * musl-tools), and the linked addon needs nothing from the C library that musl's libc.so lacks; the
 * rest it takes from Node (N-API, libuv).
 */
import * as assert from 'node:assert/strict';
import { SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { REPO } from '../support/binary';

const MUSL_LIBC = '/usr/lib/x86_64-linux-musl/libc.so';
/** What the addon takes from the process it is loaded into (Node), or the toolchain's weak hooks. */
const FROM_NODE = /^(napi_|node_api_|uv_)|^(_ITM_deregisterTMCloneTable|_ITM_registerTMCloneTable|__gmon_start__)$/;

/** The dynamic symbols of FILE (nm -D), undefined or defined. */
function symbols(file: string, which: '--undefined-only' | '--defined-only'): string[] {
  const r = spawnSync('nm', ['-D', which, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nm ${file}: ${r.stderr}`);
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/).pop()!).filter(Boolean).map((s) => s.replace(/@.*/, ''));
}

describe('musl: the addon builds against musl (what `npm install` does on Alpine)', function () {
  this.timeout(120_000);
  let dir: string;
  let addon: string;

  before(function () {
    if (spawnSync('musl-gcc', ['--version']).status !== 0) {
      console.log('      skipped: musl-gcc is missing (Debian: apt-get install musl-tools; .ci/run installs it)');
      this.skip();
    }
    // Node's headers: those of the Node running the test, else Debian's (node-gyp would fetch the same ones)
    const include = [path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node'), '/usr/include/node'].find((d) => existsSync(path.join(d, 'node_api.h')));
    if (!include) {
      console.log('      skipped: no node_api.h beside this Node or in /usr/include/node');
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'hainit-musl-'));
    const gyp = JSON.parse(readFileSync(path.join(REPO, 'binding.gyp'), 'utf8'));
    const target = gyp.targets[0];
    const objects: string[] = [];
    for (const src of target.sources as string[]) {
      const o = path.join(dir, `${path.basename(src, '.c')}.o`);
      const r: SpawnSyncReturns<string> = spawnSync('musl-gcc', [...target.cflags, '-Werror', '-fPIC', '-I', include!, '-c', path.join(REPO, src), '-o', o], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${src} does not compile against musl:\n${r.stderr}`);
      objects.push(o);
    }
    addon = path.join(dir, 'hainit.node');
    const l = spawnSync('musl-gcc', ['-shared', '-o', addon, ...objects], { encoding: 'utf8' });
    assert.equal(l.status, 0, `linking against musl:\n${l.stderr}`);
  });

  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('needs nothing from the C library that musl lacks', () => {
    const musl = new Set(symbols(MUSL_LIBC, '--defined-only'));
    const needed = symbols(addon, '--undefined-only').filter((s) => !FROM_NODE.test(s));
    assert.ok(needed.includes('epoll_wait') && needed.includes('waitid'), `the addon's libc symbols were not read: ${needed.join(' ')}`);
    const missing = needed.filter((s) => !musl.has(s));
    assert.deepEqual(missing, [], `symbols musl's libc does not have: ${missing.join(' ')}`);
  });
});
