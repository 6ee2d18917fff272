/**
 * hainit where users meet it: `ENTRYPOINT ["/hainit", "--"]` in an image run by a real Docker
 * engine (support/docker.ts starts its own dockerd). Where it compares, the same app also runs
 * under `docker run --init` (Debian's docker-init is tini) and the two results are printed side by
 * side; the assertions are the documented behaviour (README: Exit codes, The shutdown sequence).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { REPO } from '../../support/binary';
import { assertInOrder } from '../../support/pid1';
import { Engine, Images, NONET, buildFrom, images, needEngine, waitInspect } from '../../support/docker';

/** the probe endpoint of the image's HEALTHCHECK, and readiness = the example app's port */
const PROBES = ['-e', 'HAINIT_HEALTH_LISTEN=127.0.0.1:8558', '-e', 'HAINIT_READY_TCP=8080'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the container's logs match RE; the logs (stdout + stderr). */
async function waitLogs(e: Engine, id: string, re: RegExp, timeoutMs = 15_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = e.docker(['logs', id]);
    const text = r.stdout.toString() + r.stderr.toString();
    if (re.test(text)) return text;
    if (Date.now() > until) throw new Error(`logs of ${id} never matched ${re}:\n${text}`);
    await sleep(50);
  }
}

/** `docker stop -t T ID`: its wall time in ms, and the container's exit code. */
function stop(e: Engine, id: string, t: number): { ms: number; code: number } {
  const t0 = process.hrtime.bigint();
  e.ok(['stop', '-t', String(t), id], { timeoutMs: (t + 30) * 1000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, code: Number(e.ok(['inspect', '-f', '{{.State.ExitCode}}', id]).trim()) };
}

describe('e2e: Docker, ENTRYPOINT ["/hainit", "--"]', function () {
  this.timeout(120_000);
  this.slow(20_000);
  let e: Engine;
  let img: Images;
  const hc = 'e2e/hainit-hc:1';

  before(function () {
    this.timeout(300_000);
    e = needEngine(this);
    img = images(e);
    buildFrom(e, `FROM ${img.hainit}\nHEALTHCHECK --interval=300ms --timeout=2s --retries=1 CMD ["/hainit", "probe", "http://127.0.0.1:8558/readyz"]\n`, hc);
  });

  afterEach(() => {
    if (!e) return;
    const ids = e.docker(['ps', '-aq']).stdout.toString().split('\n').filter(Boolean);
    if (ids.length) e.docker(['rm', '-f', ...ids]);
  });

  it('exits with the child\'s code, 128+N for a signal, 126/127 for a command that cannot run, 125 for a bad option; as tini does where tini defines them', () => {
    const cases: Array<[string, string[], number]> = [
      ['exit 7', ['sh', '-c', 'exit 7'], 7],
      ['killed by SIGKILL', ['sh', '-c', 'kill -KILL $$'], 137],
      ['killed by SIGTERM', ['sh', '-c', 'kill -TERM $$'], 143],
      ['killed by SIGUSR2', ['sh', '-c', 'kill -USR2 $$'], 128 + 12],
      ['not found', ['/no/such/command'], 127],
      ['not executable', ['/etc/passwd'], 126],
    ];
    const rows: string[] = [];
    for (const [what, cmd, want] of cases) {
      const h = e.docker(['run', '--rm', ...NONET, img.hainit, ...cmd]);
      const t = e.docker(['run', '--rm', '--init', ...NONET, img.plain, ...cmd]);
      rows.push(`${what}: hainit ${h.status}, --init ${t.status}`);
      assert.equal(h.status, want, `${what}: ${h.stderr}`);
      if (want < 126) assert.equal(t.status, want, `tini, ${what}`);
      if (want > 128) assert.equal(t.status, want, `tini, ${what}`);
    }
    // the image's ENTRYPOINT ends with "--": an option reaches hainit through --entrypoint (or HAINIT_*)
    const bad = e.docker(['run', '--rm', ...NONET, '--entrypoint', '/hainit', img.hainit, '--grace-period', 'banana', '--', 'true']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr.toString(), /banana/);
    const badEnv = e.docker(['run', '--rm', ...NONET, '-e', 'HAINIT_GRACE_PERIOD=banana', img.hainit, 'true']);
    assert.equal(badEnv.status, 125);
    rows.push('bad option: hainit 125');
    console.log(`      ${rows.join('; ')}`);
  });

  it('docker stop: an app that exits on TERM stops at once; one that ignores TERM is killed at --grace-period, long before docker stop -t 10 (tini waits for Docker\'s SIGKILL)', async () => {
    const results: string[] = [];
    const run = async (mode: string, init: boolean) => {
      const args = init
        ? ['run', '-d', '--init', ...NONET, img.plain, 'node', '/fixtures/app.js', mode]
        : ['run', '-d', ...NONET, '-e', 'HAINIT_GRACE_PERIOD=3s', img.hainit, 'node', '/fixtures/app.js', mode];
      const id = e.ok(args).trim();
      await waitLogs(e, id, /ready/);
      const r = stop(e, id, 10);
      results.push(`${mode} ${init ? '--init' : 'hainit'}: ${r.ms.toFixed(0)} ms exit ${r.code}`);
      const logs = e.docker(['logs', id]);
      return { ...r, logs: logs.stdout.toString() + logs.stderr.toString() };
    };
    const hExit = await run('exit-on-term', false);
    const tExit = await run('exit-on-term', true);
    const hIgnore = await run('ignore-term', false);
    const tIgnore = await run('ignore-term', true);
    console.log(`      docker stop -t 10: ${results.join('; ')}`);
    assert.equal(hExit.code, 0);
    assert.equal(tExit.code, 0);
    // the app exits on TERM: its exit ended the shutdown, no wait for the grace period (hainit's own lines)
    assert.doesNotMatch(hExit.logs, /SIGKILL/);
    assertInOrder(hExit.logs, [/shutdown: SIGTERM from/, /shutdown: done in \d+ ms, exit code 0/]);
    // hainit's grace period (3 s; SIGKILL at three quarters of it for grace periods under 4 s)
    // ends the container before Docker's 10 s: the 137 is hainit's (it says so, and was alive to
    // say it), not Docker's SIGKILL. Before Docker's SIGKILL is the contract, so it is also timed.
    assert.equal(hIgnore.code, 137);
    assertInOrder(hIgnore.logs, [/did not exit within the grace period: SIGKILL/, /shutdown: done in \d+ ms, exit code 137/]);
    assert.ok(hIgnore.ms >= 2000 && hIgnore.ms < 9500, `${hIgnore.ms} ms`);
    assert.equal(tIgnore.code, 137);
    assert.ok(tIgnore.ms >= 9500, `tini: Docker's SIGKILL at 10 s, ${tIgnore.ms} ms`);
  });

  it('docker kill -s USR1 reaches the app and leaves it running; docker kill (SIGKILL) ends the container with 137', async () => {
    for (const init of [false, true]) {
      const id = e.ok(init ? ['run', '-d', '--init', ...NONET, img.plain, 'node', '/fixtures/app.js'] : ['run', '-d', ...NONET, img.hainit, 'node', '/fixtures/app.js']).trim();
      await waitLogs(e, id, /ready/);
      e.ok(['kill', '-s', 'USR1', id]);
      await waitLogs(e, id, /got SIGUSR1/, 5000);
      assert.equal(e.ok(['inspect', '-f', '{{.State.Running}}', id]).trim(), 'true');
      e.ok(['kill', id]);
      assert.equal(await waitInspect(e, id, '{{.State.Status}}', ['exited'], 10_000), 'exited');
      assert.equal(e.ok(['inspect', '-f', '{{.State.ExitCode}}', id]).trim(), '137');
    }
  });

  it('reaps orphans: no zombie is left, where node as PID 1 (no init) leaves them all', async () => {
    const zombies = async (args: string[]) => {
      const id = e.ok(['run', '-d', ...NONET, ...args, 'node', '/fixtures/orphans.js', '20']).trim();
      await waitLogs(e, id, /spawned/);
      await sleep(1500); // the grandchildren exit after 0.3 s
      const ps = e.ok(['exec', id, 'ps', '-o', 'stat,comm']);
      return ps.split('\n').filter((l) => /^\s*Z/.test(l)).length;
    };
    const none = await zombies([img.plain]);
    const withHainit = await zombies([img.hainit]);
    const withTini = await zombies(['--init', img.plain]);
    console.log(`      zombies after 20 orphans exited: node as PID 1 ${none}, hainit ${withHainit}, --init ${withTini}`);
    assert.equal(none, 20, 'the test can fail: without an init the orphans stay zombies');
    assert.equal(withHainit, 0);
    assert.equal(withTini, 0);
  });

  it('HEALTHCHECK through `hainit probe`: healthy when ready, unhealthy when never ready, unhealthy during the shutdown delay', async () => {
    // the image's ENTRYPOINT ends with "--": hainit's options come as HAINIT_* variables, as in Dockerfile.example
    const good = e.ok(['run', '-d', ...NONET, ...PROBES, '-e', 'HAINIT_SHUTDOWN_DELAY=4s', hc, 'node', '/app/server.js']).trim();
    const never = e.ok(['run', '-d', ...NONET, '-e', 'HAINIT_HEALTH_LISTEN=127.0.0.1:8558', '-e', 'HAINIT_READY_TCP=8081', hc, 'node', '/app/server.js']).trim();
    assert.equal(await waitInspect(e, good, '{{.State.Health.Status}}', ['healthy'], 20_000), 'healthy');
    assert.equal(await waitInspect(e, never, '{{.State.Health.Status}}', ['unhealthy'], 20_000), 'unhealthy');
    const probeLog = e.ok(['inspect', '-f', '{{range .State.Health.Log}}{{.ExitCode}} {{end}}', never]);
    assert.match(probeLog, /\b1\b/, 'hainit probe exits 1 on a failing /readyz');

    const stopping = e.spawn(['stop', '-t', '20', good]);
    const t0 = Date.now();
    const during = await waitInspect(e, good, '{{.State.Health.Status}}', ['unhealthy'], 3500);
    const at = Date.now() - t0;
    assert.equal(during, 'unhealthy', 'Docker sees the container unhealthy during the 4 s shutdown delay');
    assert.equal(e.ok(['inspect', '-f', '{{.State.Running}}', good]).trim(), 'true', 'still running: the delay is not over');
    await new Promise((r) => stopping.on('close', r));
    const total = Date.now() - t0;
    assert.equal(e.ok(['inspect', '-f', '{{.State.ExitCode}}', good]).trim(), '0');
    assert.match(e.ok(['logs', good]), /app: drained, bye/);
    console.log(`      unhealthy ${at} ms after docker stop; exited 0 after ${total} ms (shutdown delay 4 s)`);
    assert.ok(total >= 3500, 'the app got TERM only after the delay');
  });

  it('docker logs: binary output on stdout and stderr, byte for byte (the local log driver; json-file as with --init)', () => {
    const want = spawnSync(process.execPath, [path.join(REPO, 'test', 'fixtures', 'docker', 'bytes.js')]);
    for (const driver of ['local', 'json-file']) {
      const logs: Record<string, Buffer[]> = {};
      for (const [name, args] of [['hainit', [img.hainit]], ['--init', ['--init', img.plain]]] as const) {
        const id = e.ok(['run', '-d', ...NONET, '--log-driver', driver, ...args, 'node', '/fixtures/bytes.js']).trim();
        assert.equal(waitInspectSync(e, id), 'exited');
        const r = e.docker(['logs', id]);
        logs[name] = [r.stdout, r.stderr];
      }
      if (driver === 'local') {
        assert.ok(logs.hainit[0].equals(want.stdout), `stdout through hainit, ${logs.hainit[0].length} bytes against ${want.stdout.length}`);
        assert.ok(logs.hainit[1].equals(want.stderr), 'stderr through hainit');
      }
      // json-file stores text, not bytes (invalid UTF-8 becomes U+FFFD): what tini gets, hainit gets.
      assert.ok(logs.hainit[0].equals(logs['--init'][0]) && logs.hainit[1].equals(logs['--init'][1]), `${driver}: hainit and --init give the same logs`);
    }
  });

  it('docker restart: a graceful stop (the app drains) and a fresh start, in the same container', async () => {
    const id = e.ok(['run', '-d', ...NONET, '-e', 'HAINIT_SHUTDOWN_DELAY=1s', img.hainit, 'node', '/app/server.js']).trim();
    await waitLogs(e, id, /listening/);
    const started = e.ok(['inspect', '-f', '{{.State.StartedAt}}', id]).trim();
    const t0 = Date.now();
    e.ok(['restart', '-t', '10', id]);
    const ms = Date.now() - t0;
    const logs = await waitLogs(e, id, /listening[\s\S]*listening/);
    assert.equal((logs.match(/app: drained, bye/g) ?? []).length, 1, logs);
    assert.notEqual(e.ok(['inspect', '-f', '{{.State.StartedAt}}', id]).trim(), started);
    // before docker's SIGKILL: hainit itself finished the shutdown (killed, it could not have said so)
    assert.match(logs, /shutdown: done in \d+ ms, exit code 0/);
    assert.doesNotMatch(logs, /SIGKILL/);
    console.log(`      docker restart -t 10 with a 1 s shutdown delay: ${ms} ms`);
  });

  it('docker run -t: Ctrl-C on the terminal reaches the app (foreground process group), exit 130 as with --init', function () {
    if (spawnSync('python3', ['-c', 'import pty']).status !== 0) this.skip();
    const drive = (args: string[]) => {
      const steps = JSON.stringify([['expect', 'ready'], ['sleep', 0.3], ['send', '\u0003']]);
      const r = spawnSync('python3', [path.join(REPO, 'test', 'fixtures', 'ptydrive.py'), steps, '30', '/usr/bin/docker', 'run', '-t', '-i', '--rm', ...NONET, ...args, 'node', '/fixtures/app.js'], { env: e.env, encoding: 'utf8', timeout: 60_000 });
      return r.stdout;
    };
    const h = drive([img.hainit]);
    const t = drive(['--init', img.plain]);
    assert.match(h, /PTYDRIVE exit=130 /, h);
    assert.match(t, /PTYDRIVE exit=130 /, t);
  });

  it('as a non-root user on a read-only root: healthy, then a clean stop', async () => {
    const id = e.ok(['run', '-d', ...NONET, '--user', '65532:65532', '--read-only', ...PROBES, hc, 'node', '/app/server.js']).trim();
    assert.equal(await waitInspect(e, id, '{{.State.Health.Status}}', ['healthy'], 20_000), 'healthy', e.ok(['logs', id]));
    const ps = e.ok(['top', id, '-o', 'uid,pid,comm']);
    assert.ok(ps.split('\n').slice(1).filter(Boolean).every((l) => l.trim().startsWith('65532')), ps);
    const r = stop(e, id, 10);
    assert.equal(r.code, 0);
    assert.match(e.ok(['logs', id]), /app: drained, bye/);
  });

  it('the one-file image: only /hainit (and the C library), --read-only, no tmpfs, --cap-drop ALL, no-new-privileges', function () {
    const r = e.docker(['run', '--rm', ...NONET, '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', img.oneFile, '/hainit', '--version']);
    const err = r.stderr.toString();
    if (r.status === 125 && /addon/i.test(err)) {
      // Known failure: the embedded addon must be written to a writable, exec-capable directory,
      // and this image has none (/dev/shm is noexec in Docker). Issue 13 loads it from a memfd.
      console.log(`      EXPECTED FAILURE until issue 13 lands (addon from a memfd): exit 125, ${err.trim().split('\n')[0]}`);
      this.skip();
    }
    assert.equal(r.status, 0, err);
    assert.match(r.stdout.toString(), /\d+\.\d+\.\d+/);
    // the image's only program, run by hainit as its child: its failure comes back as the exit code
    const probe = e.docker(['run', '--rm', ...NONET, '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', img.oneFile, '/hainit', 'probe', 'http://127.0.0.1:9/']);
    assert.equal(probe.status, 1, probe.stderr.toString());
  });
});

function waitInspectSync(e: Engine, id: string): string {
  const until = Date.now() + 20_000;
  let v = '';
  while (Date.now() < until) {
    v = e.ok(['inspect', '-f', '{{.State.Status}}', id]).trim();
    if (v === 'exited') break;
    spawnSync('sleep', ['0.1']);
  }
  return v;
}
