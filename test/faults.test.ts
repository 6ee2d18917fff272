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

const EXIT_FAULTS = path.resolve(__dirname, '../../test/fixtures/exit-faults.js');

/**
 * A fault on hainit's way out, in the real addon's hands (test/fixtures/exit-faults.js, preloaded
 * into `node bin/hainit`; nothing in hainit knows of it), with hainit as PID 1. Before the fix each
 * of these left hainit running after its child, not even ended by SIGTERM: it only logged
 * "internal error (supervision continues)".
 */
describe('a fault on the way out: hainit still exits, with the child\'s code', function () {
  this.timeout(40_000);

  const withFault = (fault: string) => cleanEnv({ NODE_OPTIONS: `--require ${EXIT_FAULTS}`, EXIT_FAULT: fault });

  /** hainit's result; a SIGTERM from outside if it is still there after `ms` (the old code ignored it too). */
  async function resultOrTerm(h: ReturnType<typeof startHainit>, ms: number) {
    const t = setTimeout(() => void h.signal('TERM').catch(() => undefined), ms);
    const r = await h.exited;
    clearTimeout(t);
    return r;
  }

  it('the leftover cleanup cannot signal the leftover (kill throws): exit 3, the step named once', async () => {
    const h = startHainit(['--', 'sh', '-c', 'sleep 1000 & sleep 0.3; exit 3'], { env: withFault('kill'), timeoutMs: 15_000 });
    const r = await resultOrTerm(h, 5000);
    assert.equal(r.timedOut, false, `hainit never exited, not even on SIGTERM:\n${r.stderr}`);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.match(/internal error in the leftover cleanup \(hainit carries on\): Error: injected fault: kill/g)?.length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /supervision continues/);
  });

  it('SIGTERM, the drain command cannot be started (spawn throws): the child still gets its stop signal, and hainit exits with its code', async () => {
    const h = startHainit(['--pre-stop', 'true', '--pre-stop-timeout', '2s', '--grace-period', '6s', '--', PYTHON, fixture('sigecho.py'), '--exit-on', '15'], {
      env: withFault('hook-spawn'), timeoutMs: 20_000,
    });
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    const r = await h.exited;
    assert.match(r.stdout, /got 15/, `the stop signal never reached the child:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /internal error in pre-stop\[1\] \(hainit carries on\): Error: injected fault: spawn/);
  });

  it('the supervision fails before the child is started: 125 and the step named, not a PID 1 with nothing to do', async () => {
    const h = startHainit(['--', 'sh', '-c', 'echo started; exit 7'], { env: withFault('fds'), timeoutMs: 15_000 });
    const r = await resultOrTerm(h, 5000);
    assert.equal(r.timedOut, false, `hainit never exited, not even on SIGTERM:\n${r.stderr}`);
    assert.equal(r.code, 125, r.stderr);
    assert.doesNotMatch(r.stdout, /started/);
    assert.match(r.stderr, /internal error in the supervision \(hainit carries on\): Error: injected fault: inheritedFds/);
  });

  it('the last reaping after the child\'s exit throws: exit 7', async () => {
    const h = startHainit(['--', 'sh', '-c', 'sleep 0.3; exit 7'], { env: withFault('reap-after'), timeoutMs: 15_000 });
    const r = await resultOrTerm(h, 5000);
    assert.equal(r.timedOut, false, `hainit never exited, not even on SIGTERM:\n${r.stderr}`);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /internal error in the last (reaping|signal records) \(hainit carries on\): Error: injected fault: reap/);
  });
});
