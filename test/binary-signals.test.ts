/**
 * README "Signals": the child gets the signal mask and ignored set hainit was started with, not Node's.
 * Node resets both before any of hainit's code runs; dist/hainit's entry stub
 * (native/entry/stub.c) keeps them first. tini passes them on the same way; a `nohup hainit …`
 * or a shell's `trap '' HUP` depends on it.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { BINARY, REPO, needBinary } from '../support/binary';
import { PYTHON } from '../support/pid1';

const LAUNCH = path.join(REPO, 'test', 'fixtures', 'sigstate.py');
// What sigstate.py sets, as /proc/PID/status shows it (bit N-1 for signal N).
const BLOCKED = '0000008008004000'; // TERM 15, WINCH 28, 40
const IGNORED = 'a000001000000801'; // HUP 1, USR2 12, 37, 62, 64

function childStatus(prefix: string[], env: NodeJS.ProcessEnv = {}): { fields: Map<string, string>; stderr: string } {
  const r = spawnSync(PYTHON, [LAUNCH, ...prefix, BINARY, '-v', '--', 'cat', '/proc/self/status'], {
    encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 20_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const fields = new Map(r.stdout.split('\n').map((l) => l.split(':\t') as [string, string]));
  return { fields, stderr: r.stderr };
}

describe('dist/hainit passes on the signal state it was started with', function () {
  this.timeout(60_000);
  before(function () {
    needBinary(this);
  });

  const cases: [string, string[], NodeJS.ProcessEnv][] = [
    ['not PID 1', [], {}],
    ['as PID 1', ['unshare', '--pid', '--fork', '--mount-proc'], {}],
    // NODE_DEBUG: the entry stub moves it out of environ too (native/entry/stub.c); the state survives.
    ['with NODE_DEBUG set (moved out of environ by the stub)', [], { NODE_DEBUG: 'hainit-test' }],
  ];
  for (const [where, prefix, env] of cases) {
    it(`${where}: the child's blocked and ignored signals are those hainit was given, and nothing is caught`, () => {
      const { fields, stderr } = childStatus(prefix, env);
      assert.equal(fields.get('SigBlk'), BLOCKED, `blocked signals\n${stderr}`);
      assert.equal(fields.get('SigIgn'), IGNORED, `ignored signals (SIGPIPE must not leak from Node)\n${stderr}`);
      assert.equal(fields.get('SigCgt'), '0000000000000000', 'caught signals');
      assert.match(stderr, /started with signals blocked: SIGTERM SIGWINCH SIGRTMIN\+6; ignored: SIGHUP SIGUSR2 SIGRTMIN\+3 SIGRTMAX-2 SIGRTMAX;/);
    });
  }

  it('still takes and forwards a signal it was started with blocked (SIGTERM)', () => {
    // hainit's own mask is Node's; only its children get the one it was given. (dash unblocks
    // every signal when it starts, so this child dies of the TERM.)
    const r = spawnSync(PYTHON, [LAUNCH, BINARY, '--', 'sh', '-c', 'kill -TERM $PPID; sleep 5'], {
      encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000,
    });
    assert.match(r.stderr, /shutdown: sending SIGTERM to the child/, r.stderr);
    assert.equal(r.status, 128 + 15, r.stderr);
  });
});
