/**
 * Issue 14: nothing may starve or stall hainit's shutdown and probes. Each case runs for real
 * against hainit as PID 1 and asserts what the kubelet or Docker would see.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Server, Socket, createServer } from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { HAINIT, PYTHON, assertInOrder, cleanEnv, fixture, jsonLog, shutdownLog, startHainit } from '../../support/pid1';
import { MAX_LINE_CHARS } from '../../src/supervisor/command';
import { freePort, get, round, statusKb, until } from '../../support/load';

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
    // The child quit on the forwarded signal and that ended the shutdown: hainit killed nothing
    // and was done before the grace period's kill point (9 s of 10 s), by its own clock.
    assertInOrder(r.stderr, [/shutdown: SIGINT from .* forwarded as SIGQUIT to the child/, /child exited with code 0/, /shutdown: done in \d+ ms, exit code 0/]);
    assert.doesNotMatch(r.stderr, /SIGKILL/);
    const done = shutdownLog(r.stderr).doneMs;
    assert.ok(done !== undefined && done < 9000, `shutdown done in ${done} ms`);
  });

  it('with -g the further signals reach the whole process group', async () => {
    const h = startHainit(['-g', '--grace-period', '10s', '--', 'sh', '-c', `trap '' TERM INT; ${PYTHON} ${fixture('sigecho.py')} --exit-on 2`]);
    await h.waitForOutput(/ready/);
    await h.signal('TERM');
    await h.waitForOutput(/got 15/);
    await h.signal('INT');
    const r = await h.exited;
    assert.deepEqual(r.stdout.match(/got \d+/g), ['got 15', 'got 2']);
    // the group's python quit on it: no SIGKILL at the grace period's kill point was needed
    assert.doesNotMatch(r.stderr, /SIGKILL/);
    const done = shutdownLog(r.stderr).doneMs;
    assert.ok(done !== undefined && done < 9000, `shutdown done in ${done} ms`);
  });
});

/** Servers that answer as slowly as a broken dependency can. */
class Dribblers {
  private readonly servers: Server[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sockets: Socket[] = [];

  /** Sends `text` one byte every `everyMs`, then keeps the connection open. */
  async slow(text: string, everyMs: number): Promise<number> {
    return this.listen((c) => {
      let i = 0;
      const t = setInterval(() => (i < text.length ? c.write(text[i++]) : undefined), everyMs);
      this.timers.push(t);
    });
  }

  /** Full headers at once, then a body that never ends. */
  async endless(): Promise<number> {
    return this.listen((c) => {
      c.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
      const t = setInterval(() => c.write('400\r\n' + 'x'.repeat(1024) + '\r\n'), 5);
      this.timers.push(t);
    });
  }

  private async listen(onConnection: (c: Socket) => void): Promise<number> {
    const port = await freePort();
    const s = createServer((c) => {
      this.sockets.push(c);
      c.on('error', () => undefined);
      c.resume();
      onConnection(c);
    });
    this.servers.push(s);
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
    return port;
  }

  /** connections the server has seen that are still open */
  open(): number {
    return this.sockets.filter((c) => !c.destroyed).length;
  }

  close(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
    for (const c of this.sockets.splice(0)) c.destroy();
    for (const s of this.servers.splice(0)) s.close();
  }
}

const DRIBBLED_HEADERS = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: ' + 'y'.repeat(200) + '\r\n\r\n';

describe('reliability: every network wait has an absolute deadline', function () {
  this.timeout(60_000);
  const d = new Dribblers();
  afterEach(() => d.close());

  it('--wait-for against headers sent one byte every 0.5 s: --wait-timeout 3s fires (125) by about 3 s', async () => {
    const port = await d.slow(DRIBBLED_HEADERS, 500);
    const r = await startHainit(['--log-format', 'json', '-v', '--wait-for', `http://127.0.0.1:${port}/`, '--wait-timeout', '3s', '--', 'echo', 'started'], { timeoutMs: 30_000 }).exited;
    // The deadline is the contract, so it is timed: by hainit's own clock, from its first line to
    // the one giving up, so that Node's start-up on a loaded machine is not counted. The headers
    // dribble for 100 s: a deadline that each byte pushed back would never fire.
    const lines = jsonLog(r.stderr);
    const gaveUp = lines.find((l) => /never came within 3000 ms/.test(l.msg));
    const tookMs = gaveUp ? gaveUp.ms - lines[0].ms : NaN;
    console.log(`      dribbling dependency, --wait-timeout 3s: exit ${r.code} ${tookMs} ms into hainit's run (${r.ms} ms from spawn)`);
    assert.equal(r.code, 125, r.stderr);
    assert.ok(tookMs >= 2900 && tookMs < 3000 + 1500, `hainit gave up ${tookMs} ms into its run`);
    assert.doesNotMatch(r.stdout, /started/);
  });

  it('SIGTERM during --wait-for ends hainit at once with 143, mid-attempt', async () => {
    const port = await d.slow(DRIBBLED_HEADERS, 500);
    const h = startHainit(['--log-format', 'json', '--wait-for', `http://127.0.0.1:${port}/`, '--wait-timeout', '60s', '--', 'echo', 'started'], { timeoutMs: 30_000 });
    await until('the first attempt', () => d.open() > 0);
    await sleep(700);
    await h.signal('TERM');
    const r = await h.exited;
    // Mid-attempt: hainit's own lines, on its clock, from the signal to giving up, are far
    // shorter than what is left of the attempt (2 s each, 0.7 s in): the attempt was cancelled,
    // not waited out.
    const lines = jsonLog(r.stderr);
    const got = lines.find((l) => /^shutdown: SIGTERM from/.test(l.msg));
    const gave = lines.find((l) => /^shutdown during --wait-for: the child never started: exiting with 143$/.test(l.msg));
    assert.ok(got && gave, r.stderr);
    console.log(`      SIGTERM during a dribbling --wait-for: exit ${r.code} ${gave.ms - got.ms} ms after hainit got the signal`);
    assert.equal(r.code, 143, r.stderr);
    assert.ok(gave.ms - got.ms < 1000, `hainit gave up ${gave.ms - got.ms} ms after it got SIGTERM`);
    assert.doesNotMatch(r.stdout, /started/);
  });

  it('hainit probe --timeout 2s: an endless body is not read (exit 0 at once), dribbled headers fail by 2 s (exit 1)', async () => {
    const endless = await d.endless();
    const slow = await d.slow(DRIBBLED_HEADERS, 500);
    const run = (port: number) => startHainit(['probe', `http://127.0.0.1:${port}/`, '--timeout', '2s'], { asPid1: false, timeoutMs: 20_000 }).exited;
    const [a, b] = await Promise.all([run(endless), run(slow)]);
    console.log(`      hainit probe --timeout 2s: endless body exit ${a.code} after ${a.ms} ms; dribbled headers exit ${b.code} after ${b.ms} ms`);
    // An endless body can only end by the timeout, which is a failure (1): 0 means the answer was
    // taken from the headers and the body was not read.
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 1, b.stderr);
    // --timeout bounds the whole check (README), so that time is asserted: not before it, and by
    // it plus hainit's start-up (loosely: the machine may be loaded). The headers dribble for 100
    // s, so a deadline that each byte pushed back would run into the run's 20 s limit.
    assert.ok(b.ms >= 1900 && b.ms < 2000 + 4000, `dribbled headers: ${b.ms} ms`);
  });

  it('an HTTP readiness check against dribbled headers fails on --check-timeout; probes stay fast', async () => {
    const slow = await d.slow(DRIBBLED_HEADERS, 500);
    const port = await freePort();
    const h = startHainit(['-vv', '--health-listen', `127.0.0.1:${port}`, '--ready-http', `http://127.0.0.1:${slow}/`, '--check-timeout', '1s',
      '--check-interval', '1s', '--failure-threshold', '1', '--', PYTHON, fixture('graceful.py')]);
    await h.waitForOutput(/ready/);
    await until('the check to fail on its timeout', () => /check ready-http: failed: timed out after 1000 ms/.test(h.stderr), 10_000);
    const a = await get(port, '/readyz', 1000);
    assert.equal(a.status, 503);
    assert.ok(d.open() <= 2, `${d.open()} connections to the dribbling server still open`);
    await h.signal('TERM');
    assert.equal((await h.exited).code, 0);
  });
});

describe('reliability: hook output of any size', function () {
  this.timeout(90_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'hainit-hook-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('--post-start writing 40 MB without a newline: probes stay fast, RSS stays bounded, the line is logged in marked pieces of MAX_LINE_CHARS', async () => {
    const log = path.join(dir, 'stderr');
    const port = await freePort();
    const h = startHainit([
      '--health-listen', `127.0.0.1:${port}`, '--post-start', "sh -c 'head -c 40000000 /dev/zero | tr \"\\0\" x; echo; echo done'",
      '--', PYTHON, fixture('graceful.py'),
    ], { prefix: ['sh', '-c', `exec "$@" 2>${log}`, 'sh'], timeoutMs: 80_000 });
    await h.waitForOutput(/ready/);
    const pid = await h.hostPid();
    const lat: number[] = [];
    let peakKb = 0;
    const t0 = Date.now();
    while (!/post-start: done/.test(readFileSync(log, 'utf8').slice(-4096)) && Date.now() - t0 < 60_000) {
      const a = await get(port, '/livez', 5000);
      assert.equal(a.status, 200);
      lat.push(a.ms);
      peakKb = Math.max(peakKb, statusKb(pid, 'VmHWM'));
      await sleep(20);
    }
    peakKb = Math.max(peakKb, statusKb(pid, 'VmHWM'));
    await h.signal('TERM');
    const r = await h.exited;
    const text = readFileSync(log, 'utf8');
    const pieces = text.split('\n').filter((l) => l.includes('post-start: x'));
    const xs = pieces.reduce((n, l) => n + (/post-start: (x*)/.exec(l)?.[1].length ?? 0), 0);
    console.log(`      40 MB in one line from --post-start: ${pieces.length} pieces, /livez max ${round(Math.max(...lat))} ms over ${lat.length} probes, hainit peak RSS ${Math.round(peakKb / 1024)} MB, ${Date.now() - t0} ms`);
    assert.equal(r.code, 0, text.slice(-2000));
    assert.equal(xs, 40_000_000, 'every byte of the hook output was logged');
    assert.ok(pieces.every((l) => new RegExp(`post-start: x{1,${MAX_LINE_CHARS}}( continued=true)?$`).test(l)), `a piece longer than ${MAX_LINE_CHARS} characters`);
    assert.equal(pieces.filter((l) => !l.endsWith(' continued=true')).length, 1, 'exactly the last piece is not marked continued');
    assert.ok(peakKb < 150 * 1024, `hainit peak RSS ${peakKb} kB`);
    // a probe's answer time is the kubelet's contract (its timeoutSeconds, 1 s)
    assert.ok(Math.max(...lat) < 1000, `/livez took up to ${Math.max(...lat)} ms while the hook wrote`);
  });
});

describe('reliability: a log reader that never reads', function () {
  this.timeout(60_000);

  interface Stuck { code: number; exited: boolean; term_to_exit_ms: number; full_at: number; hainit_lines: string[] }
  /** hainit as PID 1 (as `uid` when given) under stuck-stderr.py; its result line and stdout */
  async function stuck(kind: 'pipe' | 'socket', args: string[], uid?: number): Promise<{ result: Stuck; stdout: string }> {
    const node = uid === undefined ? [process.execPath] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', process.execPath];
    const cmd = ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', '--', ...node, HAINIT, ...args];
    const r = await runCommand([PYTHON, fixture('stuck-stderr.py'), kind, ...cmd], 45_000);
    const m = /^RESULT (.*)$/m.exec(r.stdout);
    assert.ok(m, `no result: ${r.stdout} ${r.stderr}`);
    return { result: JSON.parse(m[1]) as Stuck, stdout: r.stdout };
  }

  // The app fills the shared stderr and ignores SIGTERM: hainit logs the shutdown (-v: more lines),
  // must SIGKILL the app about a second before the grace period and exit by it.
  const APP = ['sh', '-c', "trap '' TERM; echo app-started; while :; do echo app-spam >&2; done"];
  for (const [kind, uid, what] of [['pipe', undefined, 'a pipe'], ['socket', undefined, 'a socket'], ['pipe', 65534, "a pipe hainit cannot reopen (hainit runs as uid 65534: libuv's pool)"]] as const) {
    it(`stderr is ${what} nobody reads, full: after SIGTERM hainit still exits by --grace-period 3s`, async () => {
      const { result, stdout } = await stuck(kind, ['-v', '--grace-period', '3s', '--', ...APP], uid);
      console.log(`      ${kind}${uid ? ` as uid ${uid}` : ''}: ${result.full_at} bytes unread; hainit exited ${result.code} ${result.term_to_exit_ms} ms after SIGTERM`);
      assert.ok(result.exited, `hainit still running ${result.term_to_exit_ms} ms after SIGTERM`);
      assert.equal(result.code, 137);
      // Timed on purpose: exiting by the grace period whatever the log reader does is the contract,
      // and hainit's own lines cannot be read here (nobody reads its stderr: that is the test).
      assert.ok(result.term_to_exit_ms <= 3500, `hainit exited ${result.term_to_exit_ms} ms after SIGTERM (grace period 3 s)`);
      assert.match(stdout, /^app-started$/m, "the app's own stdout");
    });
  }
});

/** Runs a command to its end; stdout and stderr as text. */
function runCommand(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('reliability: log lines dropped while stderr is not read', function () {
  this.timeout(60_000);

  it("are counted in /metrics and in one line once the reader reads again; the app's own stderr loses nothing", async () => {
    const port = await freePort();
    const app = `import sys, time
for i in range(300):
    sys.stderr.write(f"app-line-{i}\\n"); sys.stderr.flush()
print("app-done", flush=True)
time.sleep(1000)`;
    const h = startHainit([
      '--health-listen', `127.0.0.1:${port}`,
      '--post-start', "sh -c 'head -c 4000000 /dev/zero | tr \"\\0\" x'",
      '--', PYTHON, '-c', app,
    ]);
    h.proc.stderr!.pause();
    const metric = async () => Number(/^hainit_log_lines_dropped_total (\d+)$/m.exec((await get(port, '/metrics')).body)?.[1]);
    await until('/metrics to count dropped lines', async () => (await metric()) > 0, 20_000);
    // still answering while its stderr is stuck; the phase turns `running` once the hook has
    // finished and its output has been read: no more drops after that
    await until('the hook to finish', async () => /^hainit_phase\{phase="running"\} 1$/m.test((await get(port, '/metrics')).body), 20_000);
    const before = await metric();
    h.proc.stderr!.resume();
    await h.waitForOutput(/(\d+) log line\(s\) dropped: stderr was not being read/, 10_000, 'stderr');
    await h.waitForOutput(/app-done/);
    const reported = Number(/(\d+) log line\(s\) dropped/.exec(h.stderr)![1]);
    await until('app-line-299', () => /app-line-299\n/.test(h.stderr));
    await h.signal('TERM');
    const r = await h.exited;
    const appLines = r.stderr.split('\n').filter((l) => l.startsWith('app-line-'));
    const pieces = r.stderr.split('\n').filter((l) => l.includes('post-start: x')).length;
    console.log(`      ${before} hook lines dropped (metric), ${reported} reported in the log line, ${pieces} logged; app stderr lines ${appLines.length}/300`);
    assert.equal(reported, before, 'the log line and /metrics agree');
    assert.equal(pieces + before, Math.ceil(4_000_000 / MAX_LINE_CHARS), 'every piece was either logged or counted as dropped');
    assert.deepEqual(appLines, Array.from({ length: 300 }, (_, i) => `app-line-${i}`));
    assert.equal(r.code, 143, r.stderr.slice(-500));
  });
});

describe('reliability: values that cannot work are refused at start-up', function () {
  this.timeout(30_000);

  for (const [args, says] of [
    [['--stop-signal', 'STOP'], /--stop-signal: SIGSTOP cannot stop the child/],
    [['-r', 'KILL:TERM'], /--rewrite: SIGKILL cannot be caught/],
    [['-r', 'TERM:STOP'], /would make SIGSTOP the stop signal/],
    [['--pre-stop', '"x'], /--pre-stop: ""x" does not parse: a double quote is never closed/],
    [['--ready-exec', "sh -c 'exit 0"], /--ready-exec: .* does not parse: a single quote is never closed/],
    [['--grace-period', '99999999999999h'], /--grace-period: duration "99999999999999h" is too long/],
  ] as const) {
    it(`${args.join(' ')}: 125 naming the value, the application never starts`, async () => {
      const r = await startHainit([...args, '--', 'echo', 'started']).exited;
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, says);
      assert.equal(r.stdout, '');
    });
  }
});
