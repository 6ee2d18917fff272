import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { PYTHON, cleanEnv, fixture, startHainit } from '../support/pid1';

const INJECT = path.resolve(__dirname, '../../test/fixtures/inject-faults.js');

describe('internal faults: hainit never dies before its child', function () {
  this.timeout(30_000);

  it('logs a thrown exception and a rejected promise, keeps forwarding, and completes the shutdown', async () => {
    const h = startHainit(['--shutdown-delay', '300ms', '--', PYTHON, fixture('sigecho.py'), '--exit-on', '15'], {
      env: cleanEnv({ NODE_OPTIONS: `--require ${INJECT}` }),
    });
    await h.waitForOutput(/ready/);
    await h.waitForOutput(/injected fault: unhandled rejection/, 5000, 'stderr');
    assert.match(h.stderr, /internal error \(supervision continues\): Error: injected fault: uncaught exception/);
    await h.signal('USR1');
    await h.waitForOutput(/got 10/);
    await h.signal('TERM');
    const r = await h.exited;
    assert.match(r.stdout, /got 15/);
    assert.match(r.stderr, /shutdown: done in \d+ ms/);
    assert.equal(r.code, 0, r.stderr);
  });
});
