import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { BINARY, needBinary } from '../support/binary';

describe('dist/hainit and the Node variables meant for the application', function () {
  this.timeout(60_000);
  before(function () {
    needBinary(this);
  });

  it('is not changed by NODE_DEBUG, NODE_V8_COVERAGE, NODE_EXTRA_CA_CERTS or NODE_OPTIONS, and passes them all on', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-nodeenv-'));
    const file = path.join(dir, 'inherited.txt');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    try {
      const coverage = path.join(dir, 'coverage');
      const appEnv = {
        NODE_DEBUG: 'module,net,http',
        NODE_V8_COVERAGE: coverage,
        NODE_EXTRA_CA_CERTS: '/nonexistent/extra-ca.pem',
        NODE_OPTIONS: '--require /nonexistent/preload.js',
      };
      const r = spawnSync(BINARY, ['--', 'sh', '-c', 'env; readlink /proc/self/fd/3'], {
        env: { PATH: process.env.PATH, ...appEnv },
        stdio: ['ignore', 'pipe', 'pipe', fd],
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', 'hainit itself printed nothing: no NODE_DEBUG lines, no CA warning');
      assert.ok(!existsSync(coverage) || readdirSync(coverage).length === 0, 'hainit wrote no coverage files');
      for (const [k, v] of Object.entries(appEnv)) assert.ok(r.stdout.split('\n').includes(`${k}=${v}`), `the app got ${k}`);
      assert.doesNotMatch(r.stdout, /HAINIT_APP_/, 'no carrier variable in the app\'s environment');
      assert.ok(r.stdout.trimEnd().endsWith(file), 'an inherited descriptor reaches the app');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts without a re-exec for NODE_EXTRA_CA_CERTS, NODE_COMPILE_CACHE and UV_THREADPOOL_SIZE, keeps libuv off the last, and passes them on', () => {
    const appEnv = { NODE_EXTRA_CA_CERTS: '/etc/hostname', NODE_COMPILE_CACHE: '/nonexistent/cache', UV_THREADPOOL_SIZE: '64' };
    // /proc/PID/environ is the environment hainit's image was executed with: once, as given (the
    // entry stub moves entries out of environ without touching the strings). The http check on "localhost" makes hainit resolve a name,
    // which starts libuv's threadpool: 64 threads if hainit read UV_THREADPOOL_SIZE.
    const script = 'sleep 1.5; tr "\\0" "\\n" < /proc/$PPID/environ | sed "s/^/hainit:/"; echo "threads:$(ls /proc/$PPID/task | wc -l)"; env';
    const r = spawnSync(BINARY, ['--ready-http', 'http://localhost:1/', '--check-interval', '200ms', '--', 'sh', '-c', script], {
      env: { PATH: process.env.PATH, ...appEnv },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('hainit:NODE_EXTRA_CA_CERTS=/etc/hostname'), `hainit was started once, as given:\n${r.stdout}`);
    assert.ok(!lines.some((l) => l.startsWith('hainit:HAINIT_APP_')), 'no re-exec, no carrier');
    const threads = Number(/^threads:\s*(\d+)/m.exec(r.stdout)?.[1]);
    assert.ok(threads > 0 && threads < 40, `hainit runs ${threads} threads: it did not take UV_THREADPOOL_SIZE=64`);
    for (const [k, v] of Object.entries(appEnv)) assert.ok(lines.includes(`${k}=${v}`), `the app got ${k}`);
  });
});
