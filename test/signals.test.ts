/**
 * Signal forwarding and rewriting (README "Command line" and "Signals"); matches
 * dumb-init's "signals 1-31 echoed by the child" and rewrite tests and tini's -g and
 * "TERM/USR1/USR2 -> 143/138/140" tests.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { childrenOf, cleanEnv, fixture, procStatus, PYTHON, Running, sleep, startHainit, waitUntil } from '../support/pid1';

const SIGECHO = fixture('sigecho.py');
const SIGWINCH = 28;

/** Every "got N" line the child printed, in order. */
function got(h: Running): number[] {
  return [...h.stdout.matchAll(/^got (\d+)$/gm)].map((m) => Number(m[1]));
}

/** Starts sigecho.py under hainit and waits until it is ready (hainit's handlers are installed by then). */
async function startEcho(args: string[], opts: Parameters<typeof startHainit>[1] = {}): Promise<Running> {
  const h = startHainit([...args, PYTHON, SIGECHO], opts);
  await h.waitForOutput(/^ready /m, 15_000);
  return h;
}

/** Sends `sig` and waits until the child reported one more signal than before. */
async function sendAndWait(h: Running, sig: string | number): Promise<void> {
  const before = got(h).length;
  await h.signal(sig);
  await waitUntil(() => got(h).length > before, 5000, () => `the child reported nothing after ${sig}; got ${got(h)}\nstderr: ${h.stderr}`);
}

/** Sends SIGWINCH as a marker and waits for it: whatever was forwarded before it has arrived. */
async function marker(h: Running): Promise<void> {
  await h.signal(SIGWINCH);
  await waitUntil(() => got(h).includes(SIGWINCH), 5000, () => `marker WINCH never arrived; got ${got(h)}\nstderr: ${h.stderr}`);
}

// 1..31 without KILL(9), CHLD(17), STOP(19); INT(2) and TERM(15) begin the shutdown and are tested
// on their own below. Then real-time ones, SIGRTMIN (34) to SIGRTMAX (64).
const ORDINARY = [1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31];
const REALTIME = [34, 35, 40, 50, 63, 64];

describe('signals', function () {
  this.timeout(30_000);

  for (const asPid1 of [true, false]) {
    it(`forwards every catchable signal (1-31 but KILL/STOP/CHLD, and real-time ones) to the child${asPid1 ? ' as PID 1' : ' when not PID 1'}`, async () => {
      const h = await startEcho([], { asPid1 });
      for (const s of [...ORDINARY, ...REALTIME]) await sendAndWait(h, s);
      assert.deepEqual(got(h), [...ORDINARY, ...REALTIME], 'each signal reached the child once, as itself');
      assert.equal(h.stderr, '', 'forwarding logs nothing at the default level');
      const r = await h.kill();
      assert.ok(!r.timedOut);
    });
  }

  it('forwards signals sent by name to the child by its pid: the same signal twice arrives twice', async () => {
    const h = await startEcho([]);
    await sendAndWait(h, 'USR1');
    await sendAndWait(h, 'USR1');
    await sendAndWait(h, 40);
    await sendAndWait(h, 40);
    assert.deepEqual(got(h), [10, 10, 40, 40]);
  });

  it('real-time signals are queued, not coalesced: 100 x RT 40 arrive 100 times', async () => {
    const h = await startEcho([]);
    const pid = await h.hostPid();
    for (let i = 0; i < 100; i++) process.kill(pid, 40);
    await waitUntil(() => got(h).length >= 100, 10_000, () => `got ${got(h).length} of 100`);
    await marker(h);
    assert.equal(got(h).filter((s) => s === 40).length, 100);
    assert.equal(h.stderr, '');
  });

  it('USR1 never opens Node\'s inspector: it is forwarded and nothing else happens', async () => {
    const h = await startEcho([]);
    await sendAndWait(h, 'USR1');
    await sleep(300);
    assert.doesNotMatch(h.stderr, /Debugger|inspector|ws:\/\//i);
    const tcp = readFileSync('/proc/net/tcp', 'utf8') + readFileSync('/proc/net/tcp6', 'utf8');
    assert.doesNotMatch(tcp, /:2405 [0-9A-F:]+ 0A /, 'nothing listens on 9229');
  });

  it('TSTP to hainit stops the child (hainit keeps running and waiting), CONT resumes it', async () => {
    const h = startHainit(['sh', '-c', 'echo ready; exec sleep 100']);
    await h.waitForOutput(/ready/, 15_000);
    await sleep(200);
    const hainit = await h.hostPid();
    const [child] = childrenOf(hainit);
    assert.ok(child, 'hainit has its child');
    const state = (pid: number): string => procStatus(pid).get('State')!.charAt(0);
    await h.signal('TSTP');
    await waitUntil(() => state(child) === 'T', 5000, () => `child state ${state(child)}`);
    await sleep(200);
    assert.notEqual(state(hainit), 'T', 'hainit itself never stops');
    assert.equal(h.proc.exitCode, null, 'a stopped child is not an exited one');
    await h.signal('CONT');
    await waitUntil(() => state(child) !== 'T', 5000, () => `child state ${state(child)}`);
    await h.signal('USR2');
    const r = await h.exited;
    assert.equal(r.code, 140, r.stderr);
  });

  for (const [name, num] of [['TERM', 15], ['INT', 2]] as const) {
    it(`SIG${name} reaches the child (which exits 0 on it, so hainit exits 0)`, async () => {
      const h = startHainit([PYTHON, SIGECHO, '--exit-on', String(num)]);
      await h.waitForOutput(/^ready /m, 15_000);
      await h.signal(name);
      const r = await h.exited;
      assert.deepEqual(got(h), [num]);
      assert.equal(r.code, 0, r.stderr);
      // no grace period spent: the child's own exit ended the shutdown, nothing was SIGKILLed
      assert.doesNotMatch(r.stderr, /SIGKILL/);
      assert.match(r.stderr, /shutdown: done in \d+ ms, exit code 0/);
    });
  }

  for (const [name, code] of [['TERM', 143], ['USR1', 138], ['USR2', 140], ['HUP', 129]] as const) {
    it(`SIG${name} to hainit kills a child with default handlers: exit ${code} (tini)`, async () => {
      const h = startHainit(['sh', '-c', 'echo ready; exec sleep 100']);
      await h.waitForOutput(/ready/, 15_000);
      await sleep(100); // let sh exec sleep; either one dies of the signal
      await h.signal(name);
      const r = await h.exited;
      assert.equal(r.code, code, r.stderr);
      // the child died of the signal itself: no SIGKILL at the grace period (30 s, past the run's 20 s limit)
      assert.doesNotMatch(r.stderr, /SIGKILL/);
      assert.equal(r.timedOut, false);
    });
  }

  describe('--rewrite', () => {
    it('-r USR1:USR2: the child sees USR2, never USR1', async () => {
      const h = await startEcho(['-r', 'USR1:USR2']);
      await sendAndWait(h, 'USR1');
      await marker(h);
      assert.deepEqual(got(h), [12, SIGWINCH]);
    });

    it('a swap: -r USR1:USR2 -r USR2:USR1', async () => {
      const h = await startEcho(['-r', 'USR1:USR2', '-r', 'USR2:USR1']);
      await sendAndWait(h, 'USR1');
      await sendAndWait(h, 'USR2');
      await marker(h);
      assert.deepEqual(got(h), [12, 10, SIGWINCH]);
    });

    it('-r HUP:0 drops HUP: the child never sees it, but sees the next signal', async () => {
      const h = await startEcho(['-r', 'HUP:0']);
      await h.signal('HUP');
      await h.signal('HUP');
      await marker(h);
      await sendAndWait(h, 'USR1');
      assert.deepEqual(got(h), [SIGWINCH, 10]);
    });

    it('accepts SIGNAME, NAME, numbers and RTMIN+N: -r SIGUSR1:12 -r 1:SIGQUIT -r RTMIN+6:RTMIN', async () => {
      const h = await startEcho(['-r', 'SIGUSR1:12', '-r', '1:SIGQUIT', '--rewrite', 'RTMIN+6:RTMIN']);
      await sendAndWait(h, 'USR1');
      await sendAndWait(h, 'HUP');
      await sendAndWait(h, 40);
      assert.deepEqual(got(h), [12, 3, 34]);
    });

    it('-r TERM:0 drops TERM entirely (no shutdown, child not told)', async () => {
      const h = await startEcho(['-r', 'TERM:0']);
      await h.signal('TERM');
      await marker(h);
      await sleep(300);
      assert.deepEqual(got(h), [SIGWINCH]);
      assert.equal(h.proc.exitCode, null, 'hainit is still running');
    });

    it('-r TERM:USR1: the child sees USR1 for a TERM', async () => {
      const h = await startEcho(['-r', 'TERM:USR1']);
      await sendAndWait(h, 'TERM');
      assert.deepEqual(got(h), [10]);
    });

    it('HAINIT_REWRITE takes one rewrite per line', async () => {
      const h = await startEcho([], { env: cleanEnv({ HAINIT_REWRITE: 'USR1:USR2\nHUP:0\n' }) });
      await h.signal('HUP');
      await sendAndWait(h, 'USR1');
      await marker(h);
      assert.deepEqual(got(h), [12, SIGWINCH]);
    });

    it('flags win over the environment: -r USR1:USR2 beats HAINIT_REWRITE=USR1:HUP', async () => {
      const h = await startEcho(['-r', 'USR1:USR2'], { env: cleanEnv({ HAINIT_REWRITE: 'USR1:HUP' }) });
      await sendAndWait(h, 'USR1');
      await marker(h);
      assert.deepEqual(got(h), [12, SIGWINCH]);
    });
  });

  describe('-g / --signal-group', () => {
    // sh (the child, process group leader) starts sigecho in the background, in its own group.
    // sh traps USR1 and says so; sigecho says "got 10" only when the signal reached the group.
    const SCRIPT = `trap 'echo sh-got-USR1' USR1; ${PYTHON} ${SIGECHO} & wait; wait; wait`;

    async function run(args: string[], env?: NodeJS.ProcessEnv): Promise<Running> {
      const h = startHainit([...args, 'sh', '-c', SCRIPT], env ? { env } : {});
      await h.waitForOutput(/^ready pid=(\d+) pgid=(\d+)$/m, 15_000);
      await h.signal('USR1');
      await h.waitForOutput(/^sh-got-USR1$/m, 5000);
      return h;
    }

    it('without -g only the child gets the signal, not a grandchild in its group', async () => {
      const h = await run([]);
      await sleep(500);
      assert.deepEqual(got(h), [], 'the grandchild saw nothing');
    });

    it('with -g the grandchild in the child\'s process group gets it too', async () => {
      const h = await run(['-g']);
      await waitUntil(() => got(h).includes(10), 5000, () => `grandchild never got USR1: ${h.stdout}`);
      const m = h.stdout.match(/^ready pid=(\d+) pgid=(\d+)$/m)!;
      assert.notEqual(m[1], m[2], 'the grandchild is not a group leader: it is in the child\'s group');
    });

    it('HAINIT_SIGNAL_GROUP=1 is the same as -g', async () => {
      const h = await run([], cleanEnv({ HAINIT_SIGNAL_GROUP: '1' }));
      await waitUntil(() => got(h).includes(10), 5000, () => `grandchild never got USR1: ${h.stdout}`);
    });

    it('flags win: -c beats HAINIT_SIGNAL_GROUP=1', async () => {
      const h = await run(['-c'], cleanEnv({ HAINIT_SIGNAL_GROUP: '1' }));
      await sleep(500);
      assert.deepEqual(got(h), []);
    });

    it('-c (single child) keeps signals to the child alone, as the default', async () => {
      const h = await run(['-c']);
      await sleep(500);
      assert.deepEqual(got(h), []);
    });
  });
});
