import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HAINIT, PYTHON, fixture, runHainit } from '../support/pid1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('options end to end', function () {
  this.timeout(30_000);

  it('-p: hainit gets the parent-death signal when its parent dies, and forwards it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-pdeath-'));
    const out = path.join(dir, 'out');
    const pidfile = path.join(dir, 'pid');
    try {
      // sh starts hainit in the background, waits until it runs, then exits: hainit's parent is gone.
      const sh = spawn('sh', ['-c', `"$0" "$1" -p USR1 -- "$2" "$3" > "$4" 2>&1 & echo $! > "$5"; sleep 1.5`,
        process.execPath, HAINIT, PYTHON, fixture('sigecho.py'), out, pidfile], { stdio: 'ignore' });
      await new Promise((r) => sh.on('exit', r));
      const t0 = Date.now();
      while (!(existsSync(out) && /got 10/.test(readFileSync(out, 'utf8')))) {
        assert.ok(Date.now() - t0 < 5000, `no SIGUSR1 reached the child:\n${existsSync(out) ? readFileSync(out, 'utf8') : ''}`);
        await sleep(100);
      }
    } finally {
      const pid = Number(existsSync(pidfile) ? readFileSync(pidfile, 'utf8') : 0);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        await sleep(500);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--log-format json: every line hainit writes is one JSON object with time, level and msg', async () => {
    const r = await runHainit(['--log-format', 'json', '-vv', '--', 'sh', '-c', '(sleep 0.1 &); sleep 0.3; exit 3']);
    assert.equal(r.code, 3);
    const lines = r.stderr.trimEnd().split('\n');
    assert.ok(lines.length >= 3, r.stderr);
    for (const line of lines) {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof o.time, 'string');
      assert.match(String(o.level), /^(error|warn|info|debug|trace)$/);
      assert.equal(typeof o.msg, 'string');
    }
    assert.ok(lines.some((l) => JSON.parse(l).msg === 'reaped orphan'), r.stderr);
  });

  it('--post-start-timeout: a post-start command that hangs stops the child and exits 125', async () => {
    const r = await runHainit(['--post-start', 'sleep 30', '--post-start-timeout', '500ms', '--', PYTHON, fixture('graceful.py')]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /post-start timed out after 500 ms/);
    assert.match(r.stdout, /got SIG 15 /);
    // cut at its timeout: waiting for the hook's `sleep 30` would have run into the run's 20 s limit
    assert.equal(r.timedOut, false);
  });
});
