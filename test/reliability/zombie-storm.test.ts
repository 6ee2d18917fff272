import { strict as assert } from 'node:assert';
import { fixture, startHainit } from '../../support/pid1';
import { compileC, freePort, get, namespaceProcesses, percentile, round, rssKb, until } from '../../support/load';

describe('reliability: zombie storm against hainit as PID 1', function () {
  this.timeout(90_000);

  it('20,000 orphans in waves while probes are served: none left, the exec check and the child keep their statuses, RSS back near its baseline', async () => {
    const exe = compileC(fixture('orphanstorm.c'));
    const port = await freePort();
    // The readiness check is a command hainit spawns itself, every 200 ms, with a failure
    // threshold of 1: one exit status taken by the orphan reaping (instead of reaching the check's
    // watcher) would time the check out and fail /readyz.
    const h = startHainit(
      [
        '--health-listen', `127.0.0.1:${port}`, '--ready-exec', 'true', '--check-interval', '200ms', '--check-timeout', '10s',
        '--failure-threshold', '1', '--', exe, '20000', '400',
      ],
      { timeoutMs: 75_000 },
    );
    const pid = await h.hostPid();
    await until('readiness', async () => (await get(port, '/readyz')).status === 200);
    for (let i = 0; i < 100; i++) await get(port, '/metrics');
    const rssBaseline = rssKb(pid);

    const probes: number[] = [];
    const bad: string[] = [];
    let storming = true;
    let rssMax = rssBaseline;
    const prober = (async () => {
      while (storming) {
        for (const p of ['/livez', '/readyz']) {
          const a = await get(port, p, 10_000).catch((e: Error) => ({ status: 0, body: e.message, ms: 0 }));
          probes.push(a.ms);
          if (a.status !== 200) bad.push(`${p} ${a.status} ${a.body.trim()}`);
        }
        rssMax = Math.max(rssMax, rssKb(pid));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // the child storms only on USR1 (forwarded by hainit), so the probes are going before it starts
    await h.waitForOutput(/waiting for USR1/, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    await h.signal('USR1');
    const done = await h.waitForOutput(/done orphans=(\d+) zombies=(-?\d+) ms=(\d+)/, 60_000);
    storming = false;
    await prober;
    // no zombie left in the namespace, seen from outside too
    const left = namespaceProcesses(pid).filter((p) => p.state === 'Z');
    const metrics = (await get(port, '/metrics')).body;
    const reaped = Number(/^hainit_orphans_reaped_total (\d+)/m.exec(metrics)?.[1]);
    await new Promise((r) => setTimeout(r, 1000));
    const rssAfter = rssKb(pid);
    await h.signal('TERM');
    const r = await h.exited;
    console.log(
      `      ${done[1]} orphans in ${done[3]} ms; ${probes.length} probes during it, p50 ${round(percentile(probes, 50))} ms,` +
        ` p99 ${round(percentile(probes, 99))} ms; reaped ${reaped}; RSS ${rssBaseline} kB -> at most ${rssMax} kB -> ${rssAfter} kB a second later`,
    );

    assert.equal(Number(done[1]), 20_000);
    assert.equal(Number(done[2]), 0, 'zombies left in the namespace (seen by the child)');
    assert.deepEqual(left, [], 'zombies left in the namespace (seen from the host)');
    // the wave parents are the child's own children (it reaps them); every grandchild was hainit's
    assert.ok(reaped >= 20_000, `hainit_orphans_reaped_total ${reaped}`);
    assert.deepEqual(bad, [], 'probes that did not answer 200 during the storm');
    assert.ok(probes.length >= 10, `only ${probes.length} probes during the storm`);
    assert.equal(r.code, 42, `the child's exit code; stderr: ${r.stderr}`);
    assert.ok(rssAfter - rssBaseline < 12 * 1024, `RSS ${rssBaseline} kB before, ${rssAfter} kB after`);
  });
});
