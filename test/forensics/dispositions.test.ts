/**
 * The early warnings of issue 8: a stop signal the app ignores or blocks, and a shell that keeps
 * a long-running child it did not exec. Fake /proc for the edge cases, real processes for the
 * kernel's view.
 */
import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readSignalSets, shellWarning, startupWarnings, stopSignalWarnings } from '../../src/forensics/dispositions';
import { childrenOf } from '../../src/proc/tree';
import { fakeProc, killStarted, maskOf, startFixture, startProcess, waitUntil } from '../../support/forensics';

const HUP = 1;
const USR1 = 10;
const TERM = 15;
const QUIT = 3;
const WINCH = 28;

describe('forensics: stop-signal warnings on a fake /proc', () => {
  const fake = fakeProc([
    { pid: 10, ppid: 1, comm: 'ignorer', sigIgn: maskOf(TERM) },
    { pid: 11, ppid: 1, comm: 'blocker', sigBlk: [maskOf(TERM), maskOf(TERM)] },
    { pid: 12, ppid: 1, comm: 'halfblock', sigBlk: [maskOf(TERM), maskOf(USR1)] },
    { pid: 13, ppid: 1, comm: 'sigfd', sigBlk: [maskOf(TERM, QUIT)], signalfds: { '5': maskOf(TERM) } },
    { pid: 14, ppid: 1, comm: 'handler', sigCgt: maskOf(TERM, WINCH) },
    { pid: 15, ppid: 1, comm: 'dead', state: 'Z', sigIgn: maskOf(TERM) },
    { pid: 16, ppid: 1, comm: 'plain' },
  ]);
  after(() => fake.cleanup());

  it('warns when the stop signal is ignored, in the words of the issue', () => {
    assert.deepEqual(stopSignalWarnings(10, TERM, fake.root), [
      'the app ignores SIGTERM: it will be killed after the grace period; see --stop-signal / --rewrite',
    ]);
    assert.deepEqual(stopSignalWarnings(10, QUIT, fake.root), [], 'only the stop signal matters');
  });

  it('warns when every thread blocks it, not when one thread can still take it', () => {
    assert.deepEqual(stopSignalWarnings(11, TERM, fake.root), [
      'the app blocks SIGTERM: it will be killed after the grace period; see --stop-signal / --rewrite',
    ]);
    assert.deepEqual(stopSignalWarnings(12, TERM, fake.root), []);
  });

  it('does not warn about a blocked signal the app reads from a signalfd', () => {
    assert.deepEqual(stopSignalWarnings(13, TERM, fake.root), []);
    assert.equal(stopSignalWarnings(13, QUIT, fake.root).length, 1, 'QUIT is blocked and read by no signalfd');
  });

  it('warns about a stop signal whose default action is to do nothing, unless the app catches it', () => {
    assert.match(stopSignalWarnings(16, WINCH, fake.root).join(), /does not handle SIGWINCH/);
    assert.deepEqual(stopSignalWarnings(14, WINCH, fake.root), []);
    assert.deepEqual(stopSignalWarnings(16, TERM, fake.root), [], 'default TERM terminates: fine');
  });

  it('says nothing about a zombie or a process that is gone', () => {
    assert.deepEqual(stopSignalWarnings(15, TERM, fake.root), []);
    assert.deepEqual(stopSignalWarnings(99, TERM, fake.root), []);
    assert.equal(readSignalSets(99, fake.root), undefined);
  });
});

describe('forensics: shell warnings on a fake /proc', () => {
  it('warns for a shell with a live child, not for a shell alone or with only a zombie', () => {
    for (const childrenFiles of [true, false]) {
      const fake = fakeProc([
        { pid: 20, ppid: 1, comm: 'sh', argv: ['/bin/sh', '-c', 'sleep 100; echo done'], childrenFiles },
        { pid: 21, ppid: 20, comm: 'sleep', argv: ['sleep', '100'], childrenFiles },
        { pid: 30, ppid: 1, comm: 'bash', argv: ['bash'], childrenFiles },
        { pid: 40, ppid: 1, comm: 'dash', childrenFiles },
        { pid: 41, ppid: 40, comm: 'gone', state: 'Z', childrenFiles },
        // `ENTRYPOINT ["/entrypoint.sh"]`: named after the script, but the kernel put the interpreter in argv.
        { pid: 50, ppid: 1, comm: 'entrypoint.sh', argv: ['/bin/sh', '/entrypoint.sh'], childrenFiles },
        { pid: 51, ppid: 50, comm: 'nginx', argv: ['nginx'], pgrp: 50, childrenFiles },
        { pid: 60, ppid: 1, comm: 'node', argv: ['node', 'x.js'], childrenFiles },
        { pid: 61, ppid: 60, comm: 'worker', childrenFiles },
      ]);
      try {
        assert.deepEqual(childrenOf(fake.root, 20), [21], `children found ${childrenFiles ? 'from children files' : 'by scanning'}`);
        assert.equal(
          shellWarning(20, fake.root),
          'the app is a shell (sh, pid 20) running sleep (pid 21) without exec: signals sent to the shell do not reach sleep; ' +
            'start the long-running command with `exec`, or use -g/--signal-group',
        );
        assert.equal(shellWarning(30, fake.root), undefined, 'a shell with no children');
        assert.equal(shellWarning(40, fake.root), undefined, 'a zombie child is not running anything');
        assert.match(shellWarning(50, fake.root) ?? '', /a shell \(sh, pid 50\) running nginx \(pid 51\)/);
        assert.equal(shellWarning(50, fake.root, { signalGroup: true }), undefined, 'with -g the child in the shell\'s group gets the signal');
        assert.equal(shellWarning(60, fake.root), undefined, 'not a shell');
      } finally {
        fake.cleanup();
      }
    }
  });
});

/** The shell has forked and the child has exec'd sleep (until then the child has the shell's name). */
function runsSleep(shell: number): boolean {
  return childrenOf('/proc', shell).some((c) => {
    try {
      return /\(sleep\)/.test(readFileSync(`/proc/${c}/stat`, 'latin1'));
    } catch {
      return false;
    }
  });
}

describe('forensics: warnings on real processes', function () {
  this.timeout(30_000);
  after(killStarted);

  it('reads the dispositions a real python set: TERM ignored, USR1 blocked, HUP caught', async () => {
    const { pids } = await startFixture('tree');
    const sets = readSignalSets(pids[0]);
    assert.ok(sets);
    assert.ok(sets.ignored.has(TERM) && sets.blocked.has(USR1) && sets.caught.has(HUP));
    assert.ok(!sets.blocked.has(TERM));
  });

  it('warns for an app that ignores SIGTERM', async () => {
    const { pids } = await startFixture('ignore-term');
    assert.deepEqual(stopSignalWarnings(pids[0], TERM), [
      'the app ignores SIGTERM: it will be killed after the grace period; see --stop-signal / --rewrite',
    ]);
  });

  it('warns for an app that blocks SIGTERM', async () => {
    const { pids } = await startFixture('block-term');
    assert.match(stopSignalWarnings(pids[0], TERM).join('\n'), /^the app blocks SIGTERM: /);
  });

  it('does not warn for an app that handles SIGTERM, nor for one that leaves it at its default', async () => {
    const handler = await startFixture('handle-term');
    assert.deepEqual(startupWarnings(handler.pids[0], TERM), []);
    const plain = await startFixture('plain');
    assert.deepEqual(startupWarnings(plain.pids[0], TERM), []);
  });

  it("warns for `sh -c 'sleep 30; echo x'`, and not for `sh -c 'exec sleep 30'`", async () => {
    const sh = startProcess('sh', ['-c', 'sleep 30; echo x']);
    const pid = sh.pid as number;
    await waitUntil(() => runsSleep(pid), 5000, 'the shell to start sleep');
    assert.match(shellWarning(pid) ?? '', new RegExp(`^the app is a shell \\((sh|dash|bash|busybox), pid ${pid}\\) running sleep \\(pid \\d+\\) without exec: .*reach sleep`));
    assert.equal(startupWarnings(pid, TERM).length, 1);

    const exec = startProcess('sh', ['-c', 'exec sleep 30']);
    const epid = exec.pid as number;
    await waitUntil(() => /\(sleep\)/.test(readFileSync(`/proc/${epid}/stat`, 'latin1')), 5000, 'sh to exec sleep');
    assert.equal(shellWarning(epid), undefined);
  });

  it('recognises a #! script run directly, which the kernel names after the script, as a shell', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-entry-'));
    try {
      const script = path.join(dir, 'entrypoint');
      writeFileSync(script, '#!/bin/sh\nsleep 30\necho done\n');
      chmodSync(script, 0o755);
      const p = startProcess(script, []);
      const pid = p.pid as number;
      await waitUntil(() => runsSleep(pid), 5000, 'the script to start sleep');
      assert.match(readFileSync(`/proc/${pid}/stat`, 'latin1'), /\(entrypoint\)/, 'comm is the script name');
      assert.match(shellWarning(pid) ?? '', /running sleep/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
