/**
 * `hainit ps` where there is nothing but node and hainit (issue 8: "run in a chroot that has no
 * ps and no shell"). The chroot is assembled with bind mounts in a private mount namespace: the
 * node binary, the libraries ldd names, the repository at /app, and the host's /proc, so the
 * fixture started here is visible from inside. Needs root and unshare; skipped otherwise.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { PsJson } from '../../src/forensics/ps';
import { killStarted, startFixture } from '../../support/forensics';

const REPO = path.resolve(__dirname, '../../..');

/** Runs `node ARGS...` chrooted into a root holding only node, its libraries, /app and /proc. */
function inChroot(root: string, nodeArgs: string[]): { status: number | null; stdout: string; stderr: string } {
  const node = process.execPath;
  const libs = [...spawnSync('ldd', [node], { encoding: 'utf8' }).stdout.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const bind = (src: string, dst: string) => `mkdir -p ${q(path.dirname(dst))} && touch ${q(dst)} && mount --bind ${q(src)} ${q(dst)}`;
  const script = [
    'set -e',
    bind(node, `${root}/node`),
    ...libs.map((l) => bind(l, `${root}${l}`)),
    `mkdir -p ${q(`${root}/app`)} ${q(`${root}/proc`)}`,
    `mount --rbind ${q(REPO)} ${q(`${root}/app`)}`,
    `mount --rbind /proc ${q(`${root}/proc`)}`,
    `exec chroot ${q(root)} /node ${nodeArgs.map(q).join(' ')}`,
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('forensics: hainit ps in a chroot without ps or a shell', function () {
  this.timeout(30_000);
  let root: string;
  let parent: number;
  let zombie: number;

  before(async function () {
    if (process.getuid?.() !== 0 || spawnSync('unshare', ['--mount', 'true']).status !== 0) this.skip();
    root = mkdtempSync(path.join(tmpdir(), 'hainit-chroot-'));
    [parent, zombie] = (await startFixture('tree')).pids;
  });
  after(() => {
    killStarted();
    // The mounts lived in the namespace of the unshare process and went with it.
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('the chroot really has no shell and no ps', () => {
    const r = inChroot(root, ['-e', "const fs=require('fs');console.log(['/bin/sh','/bin/ps','/usr/bin/ps','/bin/busybox'].filter(p=>fs.existsSync(p)).join())"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '');
  });

  it('psMain reads the tree through the chroot\'s /proc: the zombie marked, the sets decoded', () => {
    const r = inChroot(root, [
      '-e',
      "process.exitCode=require('/app/lib/src/forensics/ps.js').psMain(['--json','--proc','/proc'],s=>process.stdout.write(s))",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as PsJson[];
    const p = rows.find((x) => x.pid === parent);
    const z = rows.find((x) => x.pid === zombie);
    assert.ok(p && z, 'fixture and zombie listed');
    assert.ok(p.ignored.includes('SIGTERM') && p.caught.includes('SIGHUP'));
    assert.deepEqual(p.blocked, ['SIGUSR1']);
    assert.equal(z.state, 'Z');
    assert.equal(z.ppid, parent);
  });

  it('the real CLI: `hainit ps --help`, `hainit ps` and `hainit ps --json`', () => {
    const help = inChroot(root, ['/app/bin/hainit', 'ps', '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: hainit ps/);
    const json = inChroot(root, ['/app/bin/hainit', 'ps', '--json']);
    assert.equal(json.status, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as PsJson[];
    assert.equal(rows.find((x) => x.pid === zombie)?.state, 'Z');
    assert.deepEqual(rows.find((x) => x.pid === parent)?.blocked, ['SIGUSR1']);
    const text = inChroot(root, ['/app/bin/hainit', 'ps']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^\\s*${zombie}\\s+${parent} Z .*<defunct>$`, 'm'));
    assert.match(text.stdout, /blocked: USR1$/m);
    const bad = inChroot(root, ['/app/bin/hainit', 'ps', '--bogus']);
    assert.equal(bad.status, 125);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /'--bogus'/);
  });
});
