import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { PYTHON, cleanEnv, fixture, hainitCommand, killTree, runHainit } from '../../support/pid1';

interface Captured {
  code: number | null;
  out: { bytes: number; sha: string; tail: string };
  err: { bytes: number; sha: string; tail: string };
  ms: number;
  /** what came on fd 3 */
  fd3: string;
}

/** Runs hainit as PID 1 and hashes its stdout and stderr as they come (no 200 MB strings). */
function capture(args: string[], timeoutMs: number): Promise<Captured> {
  const [cmd, ...rest] = hainitCommand(args);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, rest, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let fd3 = '';
    (p.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
    (p.stdio[3] as NodeJS.ReadableStream).on('data', (d: string) => (fd3 += d));
    const timer = setTimeout(() => killTree(p.pid!), timeoutMs);
    const streams = { out: p.stdout!, err: p.stderr! };
    const res: Partial<Captured> = {};
    for (const [k, s] of Object.entries(streams) as Array<['out' | 'err', NodeJS.ReadableStream]>) {
      const h = createHash('sha256');
      let bytes = 0;
      let tail = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        h.update(d);
        bytes += d.length;
        tail = Buffer.concat([tail, d]).subarray(-4096);
      });
      s.on('end', () => (res[k] = { bytes, sha: h.digest('hex'), tail: tail.toString('latin1') }));
    }
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ...(res as Captured), code, ms: Date.now() - t0, fd3 });
    });
  });
}

describe('reliability: nothing lost on the way through hainit', function () {
  this.timeout(60_000);

  it('200 MiB on stdout and 20 MiB on stderr pass through byte-exact, with the last words written just before exit', async () => {
    // --log-level error: hainit has nothing to say, so stderr is the child's alone and can be
    // hashed; the child reports its own hashes on fd 3, which hainit passes through untouched
    const r = await capture(['--log-level', 'error', '--', PYTHON, fixture('volume.py'), '200', '20'], 50_000);
    const m = /^volume: out=(\d+) ([0-9a-f]{64}) err=(\d+) ([0-9a-f]{64})\n$/.exec(r.fd3);
    assert.ok(m, `no summary from the child on fd 3: ${r.fd3}; stderr ends with: ${r.err.tail.slice(-300)}`);
    console.log(`      ${r.out.bytes} bytes on stdout, ${r.err.bytes} on stderr through hainit in ${r.ms} ms`);
    assert.equal(r.code, 5);
    assert.equal(r.out.bytes, Number(m[1]), 'stdout length');
    assert.equal(r.out.sha, m[2], 'stdout differs from what the child wrote');
    assert.equal(r.err.bytes, Number(m[3]), 'stderr length');
    assert.equal(r.err.sha, m[4], 'stderr differs from what the child wrote');
    assert.ok(r.out.tail.endsWith('\nlast words on stdout\n'));
    assert.ok(r.err.tail.endsWith('\nlast words on stderr\n'));
  });

  it('hainit writes nothing to stdout, even tracing signals, reaps and a shutdown', async () => {
    const r = await runHainit(['-vv', '--shutdown-delay', '100ms', '--', 'sh', '-c', "trap '' USR1; sleep 0.05 & kill -USR1 1; sleep 0.3; exit 3"], { timeoutMs: 15_000 });
    assert.equal(r.stdout, '', 'hainit wrote to stdout');
    assert.match(r.stderr, /hainit: /, 'hainit logged on stderr');
    assert.equal(r.code, 3, r.stderr);
  });
});
