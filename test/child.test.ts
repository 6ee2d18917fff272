/**
 * What the child starts with (README "Signals"): default dispositions and an empty
 * mask, its own process group, the cwd and environment hainit was given, fds 0-2 and the
 * descriptors hainit inherited, and none of hainit's own.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanEnv, fixture, PYTHON, runHainit } from '../support/pid1';

const PROCINFO = fixture('procinfo.py');

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  tpgid: number;
  cwd: string;
  env: Record<string, string>;
  fds: Record<string, string>;
}

function info(stdout: string): ProcInfo {
  try {
    return JSON.parse(stdout.trim().split('\n').pop() as string) as ProcInfo;
  } catch {
    throw new Error(`procinfo.py printed no JSON: ${stdout}`);
  }
}

function statusField(status: string, name: string): string {
  const m = status.match(new RegExp(`^${name}:\\s*(\\S+)$`, 'm'));
  assert.ok(m, `no ${name} in\n${status}`);
  return m[1];
}

/** procinfo.py run directly by the test (no hainit) with the same stdio: the baseline. */
function baseline(stdio: Array<'pipe' | 'ignore' | number>): Promise<ProcInfo> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [PROCINFO], { stdio: stdio as never });
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    p.on('error', reject);
    p.on('close', () => resolve(info(out)));
  });
}

/** The child's descriptors, hainit started through `prefix` (which sets up what it inherits). */
async function childFds(asPid1: boolean, prefix: string[]): Promise<Record<string, string>> {
  const r = await runHainit([PYTHON, PROCINFO], { asPid1, prefix, stdin: '' });
  assert.equal(r.code, 0, r.stderr);
  return info(r.stdout).fds;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('the child process', function () {
  this.timeout(30_000);

  for (const asPid1 of [true, false]) {
    const where = asPid1 ? 'as PID 1' : 'not PID 1';

    it(`${where}: starts with no signal ignored or blocked and no handler (SigIgn = SigBlk = SigCgt = 0)`, async () => {
      // cat is hainit's direct child and changes nothing about signals before reading its status.
      // Node itself ignores SIGPIPE and hainit catches every signal: none of that may leak.
      const r = await runHainit(['cat', '/proc/self/status'], { asPid1 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statusField(r.stdout, 'SigIgn'), '0000000000000000', 'ignored signals');
      assert.equal(statusField(r.stdout, 'SigBlk'), '0000000000000000', 'blocked signals');
      assert.equal(statusField(r.stdout, 'SigCgt'), '0000000000000000', 'caught signals');
    });

    it(`${where}: runs in its own process group`, async () => {
      const r = await runHainit([PYTHON, PROCINFO], { asPid1 });
      assert.equal(r.code, 0, r.stderr);
      const i = info(r.stdout);
      assert.equal(i.pgid, i.pid, 'process group leader');
      if (asPid1) assert.equal(i.ppid, 1, 'hainit is its parent and PID 1');
    });
  }

  it('keeps the working directory hainit was started in', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hainit-cwd-'));
    try {
      for (const asPid1 of [true, false]) {
        const r = await runHainit([PYTHON, PROCINFO], { cwd: dir, asPid1 });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(info(r.stdout).cwd, realpathSync(dir));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gets exactly the environment hainit was given (HAINIT_* included, nothing added)', async () => {
    const env = cleanEnv({
      HAINIT_TEST_MARK: 'a b=c\nsecond line',
      HAINIT_REMAP_EXIT: '3:4',
      EMPTY_VALUE: '',
      NODE_OPTIONS: '',
    });
    for (const asPid1 of [true, false]) {
      const r = await runHainit([PYTHON, PROCINFO], { env, asPid1 });
      assert.equal(r.code, 0, r.stderr);
      const expected = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
      assert.deepEqual(info(r.stdout).env, expected);
    }
  });

  // native/addon.c snapshot_inherited() takes the descriptors open when the addon loads, less
  // Node's own (anon inodes, pipes open at both ends, the NODE_EXTRA_CA_CERTS file); at spawn one
  // passes only if it is still the same file, so a number Node freed and hainit reused (the health
  // endpoint's socket, below) never leaks.
  it('has fds 0-2 and the descriptors hainit inherited (fd 5 -> a file), and none of hainit\'s own', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hainit-fd-'));
    const file = path.join(dir, 'inherited.txt');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    try {
      const stdio: Array<'pipe' | 'ignore' | number> = ['pipe', 'pipe', 'pipe', 'ignore', 'ignore', fd];
      // What a process started with this stdio has without hainit in between: 0, 1, 2, 5 and
      // whatever the test runner itself leaks to its children without close-on-exec.
      const base = await baseline(stdio);
      assert.equal(base.fds['5'], file, 'baseline sees the file on fd 5');
      for (const asPid1 of [true, false]) {
        const r = await runHainit([PYTHON, PROCINFO], { asPid1, stdio: ['ignore', 'ignore', fd], stdin: '' });
        assert.equal(r.code, 0, r.stderr);
        const fds = info(r.stdout).fds;
        assert.equal(fds['5'], file, 'fd 5 passed through to the child');
        for (const n of ['0', '1', '2']) assert.ok(n in fds, `fd ${n} open`);
        const own = Object.entries(fds).filter(([, t]) => /anon_inode|eventpoll|eventfd|signalfd|timerfd/.test(t));
        assert.deepEqual(own, [], 'no epoll/eventfd/... of hainit\'s');
        assert.deepEqual(Object.keys(fds).sort(), Object.keys(base.fds).sort(), `the same fds as without hainit: ${JSON.stringify(fds)}`);
      }
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes on an inherited pipe end (fd 6): only a pipe open at both ends is taken for Node\'s own', async () => {
    // the read end on fd 6, the write end close-on-exec (Python's default): what a shell's
    // `cmd 6< <(producer)` gives
    const prefix = [PYTHON, '-c', 'import os, sys; r, w = os.pipe(); os.dup2(r, 6); os.execvp(sys.argv[1], sys.argv[1:])'];
    for (const asPid1 of [true, false]) {
      const fds = await childFds(asPid1, prefix);
      assert.match(fds['6'] ?? 'closed', /^pipe:\[\d+\]$/, `fd 6 passed through to the child: ${JSON.stringify(fds)}`);
      assert.equal(Object.values(fds).filter((t) => t === fds['6']).length, 1, 'one end of that pipe, not both');
    }
  });

  it('leaves out Node\'s own pipes when inherited descriptors stand between their two ends', async () => {
    // Inherited files on every even number from 4 to 40, the odd ones free: each pipe Node makes
    // at start-up takes two odd numbers around an inherited one (pipe2 takes the lowest free).
    const prefix = [PYTHON, '-c', [
      'import os, sys',
      'null = os.open("/dev/null", os.O_RDONLY)',
      'for n in range(4, 41, 2): os.dup2(null, n)',
      'for n in range(3, 41, 2): os.closerange(n, n + 1)',
      'os.execvp(sys.argv[1], sys.argv[1:])',
    ].join('\n')];
    const even = Array.from({ length: 19 }, (_, i) => String(4 + 2 * i));
    for (const asPid1 of [true, false]) {
      const fds = await childFds(asPid1, prefix);
      for (const n of even) assert.equal(fds[n], '/dev/null', `fd ${n} passed through: ${JSON.stringify(fds)}`);
      const odd = Object.keys(fds).filter((n) => Number(n) > 2 && Number(n) < 41 && Number(n) % 2 === 1);
      assert.deepEqual(odd, [], `no descriptor of hainit's own between the inherited ones: ${JSON.stringify(fds)}`);
    }
  });

  it('does not get the health endpoint\'s listening socket (--health-listen)', async () => {
    const port = await freePort();
    const base = await baseline(['pipe', 'pipe', 'pipe']);
    const r = await runHainit(['--health-listen', `127.0.0.1:${port}`, PYTHON, PROCINFO], { stdin: '' });
    assert.equal(r.code, 0, r.stderr);
    const fds = info(r.stdout).fds;
    assert.deepEqual(Object.entries(fds).filter(([n, t]) => Number(n) > 2 && /socket:|anon_inode/.test(t) && !Object.values(base.fds).includes(t)), []);
    assert.deepEqual(Object.keys(fds).sort(), Object.keys(base.fds).sort(), JSON.stringify(fds));
  });

  it('gets stdout and stderr of hainit as they are (its output reaches the caller unchanged)', async () => {
    const r = await runHainit(['sh', '-c', 'printf out; printf err >&2']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'out');
    assert.equal(r.stderr, 'err');
  });
});
