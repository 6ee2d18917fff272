import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const script = path.resolve(__dirname, '../../examples/nginx/run.sh');

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('a real server: nginx under hainit as PID 1 with --stop-signal QUIT', function () {
  this.timeout(30_000);
  before(function () {
    // .ci/run installs nginx-light; on a developer machine without it this is reported as pending.
    if (!have('nginx') || !have('curl')) this.skip();
  });

  it('finishes an in-flight slow download during shutdown and exits 0', () => {
    const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 25_000 });
    const out = r.stdout + r.stderr;
    assert.equal(r.status, 0, out);
    assert.match(out, /sending SIGQUIT to the child after \d+ ms/);
    assert.match(out, /download: HTTP 200, 3000000 bytes/);
    assert.match(out, /demo: hainit exited with 0/);
    assert.match(out, /the download is complete and intact/);
  });
});
