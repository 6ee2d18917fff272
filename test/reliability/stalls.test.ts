/**
 * Issue 14: nothing may starve or stall hainit's shutdown and probes. Each case runs for real
 * against hainit as PID 1 and asserts what the kubelet or Docker would see.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PYTHON, cleanEnv, fixture, startHainit } from '../helpers/pid1';
import { freePort, get, until } from './lib';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reliability: durations past 2^31-1 ms', function () {
  this.timeout(60_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'hainit-long-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('--grace-period 600h and --check-interval 600h are honoured: no SIGKILL after SIGTERM, one check run, no TimeoutOverflowWarning', async () => {
    const runs = path.join(dir, 'runs');
    const port = await freePort();
    const h = startHainit([
      '--grace-period', '600h', '--check-interval', '600h', '--health-listen', `127.0.0.1:${port}`,
      '--live-exec', `sh -c 'echo run >> ${runs}'`, '--', PYTHON, fixture('graceful.py'),
    ], { env: cleanEnv({ IGNORE: 'TERM' }) });
    await h.waitForOutput(/ready/);
    await until('the first liveness run', () => readFileSync(runs, 'utf8').length > 0);
    await sleep(1500);
    const checkRuns = readFileSync(runs, 'utf8').trim().split('\n').length;
    await h.signal('TERM');
    await sleep(2000);
    const alive = (await get(port, '/livez')).status;
    const stderr = h.stderr;
    const r = await h.kill();
    console.log(`      liveness runs in 1.5 s at --check-interval 600h: ${checkRuns}; /livez 2 s after SIGTERM: ${alive}; hainit ended by the test's SIGKILL: ${r.signal}`);
    assert.equal(checkRuns, 1, 'the check ran more than once in 1.5 s at --check-interval 600h');
    assert.equal(alive, 200, 'hainit (and its probe endpoint) gone 2 s after SIGTERM with --grace-period 600h');
    assert.doesNotMatch(stderr, /SIGKILL|grace period .* is over/, stderr);
    assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
  });

  it('--startup-timeout 600h does not fire at once', async () => {
    const closed = await freePort();
    const h = startHainit(['--startup-timeout', '600h', '--ready-tcp', `127.0.0.1:${closed}`, '--', PYTHON, fixture('graceful.py')]);
    await h.waitForOutput(/ready/);
    await sleep(2000);
    const early = h.stderr;
    await h.signal('TERM');
    const r = await h.exited;
    assert.doesNotMatch(early, /startup-timeout/, early);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
  });
});

describe('reliability: signals after the stop signal', function () {
  this.timeout(30_000);

  it('a SIGINT 0.5 s after SIGTERM reaches the child (after --rewrite), as under tini: an app that quits on the second signal quits at once', async () => {
    const h = startHainit(['--grace-period', '10s', '-r', 'INT:QUIT', '--', PYTHON, fixture('sigecho.py'), '--exit-on', '3']);
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    await h.waitForOutput(/got 15/);
    await sleep(500);
    const t0 = Date.now();
    await h.signal('INT');
    const r = await h.exited;
    const after = Date.now() - t0;
    console.log(`      SIGTERM, then SIGINT 0.5 s later: the child saw ${JSON.stringify(r.stdout.match(/got \d+/g))}; hainit exited ${r.code} ${after} ms after the SIGINT`);
    assert.deepEqual(r.stdout.match(/got \d+/g), ['got 15', 'got 3']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(after < 3000, `hainit exited ${after} ms after the second signal (grace period 10 s)`);
  });

  it('with -g the further signals reach the whole process group', async () => {
    const h = startHainit(['-g', '--grace-period', '10s', '--', 'sh', '-c', `trap '' TERM INT; ${PYTHON} ${fixture('sigecho.py')} --exit-on 2`]);
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    await h.waitForOutput(/got 15/);
    await h.signal('INT');
    const r = await h.exited;
    assert.deepEqual(r.stdout.match(/got \d+/g), ['got 15', 'got 2']);
    assert.ok(r.ms < 8000, `${r.ms} ms`);
  });
});
