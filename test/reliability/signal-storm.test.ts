import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PYTHON, fixture, startHainit } from '../../support/pid1';
import { compileC, freePort, get, percentile, round, rssKb, until } from '../../support/load';

/** RLIMIT_SIGPENDING of this process (the test, hainit and the child all run as this user). */
function sigpendingLimit(): number {
  const m = /^Max pending signals\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? 1 << 20 : Number(m[1]);
}

export interface StormResult {
  sent: Record<string, number>;
  eagain: number;
  after: number;
  ms: number;
}

/** Runs test/fixtures/sigstorm.c against `pid`; resolves with its JSON report. */
export function runStorm(pid: number, rt: number, std: number, after: number): Promise<StormResult> {
  const exe = compileC(fixture('sigstorm.c'));
  return new Promise((resolve, reject) => {
    const p = spawn(exe, [String(pid), String(rt), String(std), String(after)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sigstorm exited ${code}: ${err}`));
      resolve(JSON.parse(out) as StormResult);
    });
  });
}

const RTS = ['34', '35', '36', '37', '38', '39', '40', '41', '64'];
const STDS = ['1', '3', '10', '12', '13', '14', '23', '26', '27', '28', '29', '30'];

describe('reliability: signal storm against hainit as PID 1', function () {
  this.timeout(60_000);

  // Found with this test (issue 7): with an empty sa_mask the native handlers nest, one frame per
  // distinct pending signal, and ~20 kinds at once (12 standard + 9 real-time here) overflow the
  // 64 KiB stack of the signal thread: hainit dies of SIGSEGV (unshare exits 139). Mixed storms
  // of a few thousand signals were enough. Fixed: native/signals.c blocks the other signals during
  // the handler (sigfillset(&sa.sa_mask)).
  it('tens of thousands of mixed signals: every real-time one arrives, each standard kind at least once, probes answer, RSS flat, a TERM in the middle still shuts down', async () => {
    // Real-time signals queue, and each pending one counts against RLIMIT_SIGPENDING (per user,
    // shared by hainit's queue and the child's). Bounded far below the limit, none can be refused
    // on the way from hainit to the child, so the count must be exact.
    const rt = 2 * Math.min(4_000, Math.floor(sigpendingLimit() / 16));
    const std = 60_000;
    const after = 10_000;
    const port = await freePort();
    const h = startHainit(
      ['--health-listen', `127.0.0.1:${port}`, '--shutdown-delay', '1s', '--grace-period', '20s', '--', PYTHON, fixture('stormecho.py')],
      { timeoutMs: 45_000 },
    );
    await h.waitForOutput(/ready pid=/);
    await until('the probe endpoint', async () => (await get(port, '/livez')).status === 200);
    const pid = await h.hostPid();
    // warm up the request path and the signal path, then take the baseline: a second storm of
    // the same size must not leave hainit bigger than the first one did
    for (let i = 0; i < 200; i++) await get(port, '/livez');
    const warm = await runStorm(pid, rt / 2, std, -1);
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = rssKb(pid);

    let storming = true;
    let rssMax = rssBefore;
    const probes: number[] = [];
    const statuses = new Map<number, number>();
    const prober = (async () => {
      while (storming) {
        const a = await get(port, '/livez', 5000);
        probes.push(a.ms);
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        try {
          rssMax = Math.max(rssMax, rssKb(pid));
        } catch {
          // exited
        }
      }
    })();
    // readiness flips at the TERM; /livez stays 200 through the shutdown delay
    const main = await runStorm(pid, rt / 2, std, after);
    storming = false;
    await prober.catch(() => undefined);
    const r = await h.exited;
    const storm = { ...main, sent: { ...main.sent } };
    for (const [s, n] of Object.entries(warm.sent)) storm.sent[s] = (storm.sent[s] ?? 0) + n;

    const m = /\{"counts":\s*(\{[^}]*\})\}/.exec(r.stdout);
    assert.ok(m, `the child printed no counts\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const got = JSON.parse(m[1]) as Record<string, number>;
    const sentRt = RTS.reduce((n, s) => n + (storm.sent[s] ?? 0), 0);
    const gotRt = RTS.reduce((n, s) => n + (got[s] ?? 0), 0);
    console.log(
      `      storm: two of ${std} standard + ${rt / 2} real-time (${warm.ms} ms, ${main.ms} ms), TERM and ${main.after} more` +
        ` (EAGAIN retries ${warm.eagain + main.eagain}); child took ${gotRt} real-time, ${STDS.reduce((n, s) => n + (got[s] ?? 0), 0)} standard;` +
        ` ${probes.length} probes during it, p50 ${round(percentile(probes, 50))} ms, p99 ${round(percentile(probes, 99))} ms, max ${round(Math.max(...probes))} ms;` +
        ` RSS ${rssBefore} kB after the first, at most ${rssMax} kB during the second`,
    );

    // every real-time signal, per signal
    for (const s of RTS) assert.equal(got[s] ?? 0, storm.sent[s] ?? 0, `real-time signal ${s}: sent ${storm.sent[s]}, child took ${got[s]}`);
    assert.equal(sentRt, rt);
    // at least one of each coalescing kind
    for (const s of STDS) assert.ok((got[s] ?? 0) >= 1, `signal ${s} never reached the child (sent ${storm.sent[s]})`);
    // the TERM in the middle: forwarded after the delay, the child's exit code passed on
    assert.equal(got['15'], 1, 'the child got SIGTERM exactly once');
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /shutdown: SIGTERM/);
    assert.match(r.stderr, /shutdown: done in \d+ ms, exit code 7/);
    // responsive: every probe during the storm answered (the client gives up after 5 s) with 200
    assert.ok(probes.length >= 3, `only ${probes.length} probes answered during the storm`);
    assert.deepEqual([...statuses.keys()], [200], `probe statuses during the storm: ${JSON.stringify([...statuses])}`);
    // memory flat: nothing kept per signal
    assert.ok(rssMax - rssBefore < 8 * 1024, `RSS grew from ${rssBefore} to ${rssMax} kB during the second storm`);
    assert.doesNotMatch(r.stderr, /internal error|Error:/);
  });
});
