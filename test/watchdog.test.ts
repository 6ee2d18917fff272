import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort } from '../support/load';
import { cleanEnv, fixture, runHainit, sleep, startHainit, waitUntil } from '../support/pid1';

const MiB = 2 ** 20;

function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error(`${p}: no answer`)));
  });
}


/** `start <ms>` lines of crash.py: when each child started. */
function starts(stdout: string): number[] {
  return [...stdout.matchAll(/^start (\d+)$/gm)].map((m) => Number(m[1]));
}

/** A real memory cgroup with `limit` bytes, v2 where the machine delegates the controller, else v1. */
function makeMemoryCgroup(limit: number): { procs: string; version: 1 | 2; remove: () => void } | undefined {
  const name = `hainit-test-${process.pid}-${Date.now()}`;
  try {
    const v2 = '/sys/fs/cgroup';
    if (/\bmemory\b/.test(readFileSync(`${v2}/cgroup.subtree_control`, 'utf8'))) {
      const dir = `${v2}/${name}`;
      mkdirSync(dir);
      writeFileSync(`${dir}/memory.max`, String(limit));
      return { procs: `${dir}/cgroup.procs`, version: 2, remove: () => rmdirSync(dir) };
    }
  } catch {
    // not v2 with the memory controller delegated here
  }
  try {
    const dir = `/sys/fs/cgroup/memory/${name}`;
    if (!existsSync('/sys/fs/cgroup/memory/memory.usage_in_bytes')) return undefined;
    mkdirSync(dir);
    writeFileSync(`${dir}/memory.limit_in_bytes`, String(limit));
    return { procs: `${dir}/cgroup.procs`, version: 1, remove: () => rmdirSync(dir) };
  } catch {
    return undefined;
  }
}

/** Runs the rest of the command line inside the cgroup whose cgroup.procs is `procs`. */
const enterCgroup = (procs: string) => ['sh', '-c', 'echo $$ > "$0" && exec "$@"', procs];

describe('memory watchdog, hainit as PID 1', function () {
  this.timeout(30_000);

  it('a child growing past --max-memory gets its stop signal (not SIGKILL) and the log names the figure', async () => {
    const r = await runHainit(['--max-memory', '60Mi', '--memory-interval', '200ms', '--', 'python3', fixture('grow.py')], {
      env: cleanEnv({ EXIT: '7', TARGET: '150' }),
    });
    assert.match(r.stderr, /memory \(process tree RSS\) \d+\.\d MiB over --max-memory 60\.0 MiB for 3 samples: graceful shutdown/);
    const figure = Number(/RSS\) (\d+\.\d) MiB/.exec(r.stderr)![1]);
    assert.ok(figure > 60, `measured ${figure} MiB`);
    assert.match(r.stdout, /^got SIG 15 rss \d+$/m, 'the child received SIGTERM');
    assert.equal(r.code, 7, 'hainit exits with the code the child chose after its stop signal, not 137');
    assert.doesNotMatch(r.stderr, /SIGKILL/);
  });

  it('with --restart, a memory action is a graceful restart; when the budget is spent, a graceful shutdown; /metrics counts both', async () => {
    const port = await freePort();
    const h = startHainit([
      '--health-listen', `127.0.0.1:${port}`, '--max-memory', '60Mi', '--memory-interval', '200ms',
      '--restart', 'on-failure', '--max-restarts', '1', '--restart-delay', '100ms', '--', 'python3', fixture('grow.py'),
    ], { env: cleanEnv({ EXIT: '0', WAIT: '1.5', TARGET: '150' }) });
    await h.waitForOutput(/graceful restart/, 15_000, 'stderr');
    await waitUntil(() => (h.stdout.match(/^ready$/gm) ?? []).length === 2, 10_000, () => h.stdout);
    const metrics = (await get(port, '/metrics')).body;
    assert.match(metrics, /^hainit_child_restarts_total 1$/m);
    assert.match(metrics, /^hainit_memory_watchdog_actions_total\{action="restart"\} 1$/m);
    assert.match(metrics, /^hainit_memory_watchdog_limit_bytes 62914560$/m);
    const r = await h.exited;
    assert.match(r.stderr, /over --max-memory 60\.0 MiB for 3 samples: graceful restart/);
    assert.match(r.stderr, /over --max-memory 60\.0 MiB for 3 samples: graceful shutdown \(no restart: restart budget spent/);
    assert.equal((r.stdout.match(/^got SIG 15/gm) ?? []).length, 2, 'both children got SIGTERM');
    // A clean exit after a memory stop is still the child's code: 0.
    assert.equal(r.code, 0);
  });

  it('a shutdown signal while the child is being stopped for a memory restart makes that stop the shutdown', async () => {
    const h = startHainit([
      '--max-memory', '60Mi', '--memory-interval', '200ms', '--shutdown-delay', '3s',
      '--restart', 'always', '--restart-delay', '100ms', '--', 'python3', fixture('grow.py'),
    ], { env: cleanEnv({ EXIT: '0', TARGET: '150' }) });
    await h.waitForOutput(/graceful restart/, 10_000, 'stderr');
    await h.signal('TERM');
    const r = await h.exited;
    assert.match(r.stderr, /already being stopped for a restart: it will not be restarted/);
    assert.equal((r.stdout.match(/^ready$/gm) ?? []).length, 1, 'no second child');
    assert.match(r.stdout, /^got SIG 15/m);
    assert.equal(r.code, 0);
  });

  it('a percentage reads a real cgroup: usage against the cgroup limit', async function () {
    const cg = makeMemoryCgroup(256 * MiB);
    if (!cg) this.skip();
    try {
      const r = await runHainit(['--max-memory', '50%', '--memory-interval', '200ms', '--', 'python3', fixture('grow.py')], {
        env: cleanEnv({ EXIT: '5', TARGET: '200' }),
        prefix: enterCgroup(cg!.procs),
      });
      assert.match(r.stderr, /cgroup memory \(working set\) \d+\.\d MiB over --max-memory 50% \(128\.0 MiB of the 256\.0 MiB cgroup limit\) for 3 samples: graceful shutdown/, `cgroup v${cg!.version}: ${r.stderr}`);
      assert.match(r.stdout, /^got SIG 15/m);
      assert.equal(r.code, 5);
    } finally {
      await sleep(50);
      cg!.remove();
    }
  });

  it('a percentage against a fake cgroup root (bind-mounted over /sys/fs/cgroup): the test sets the usage', async function () {
    const root = mkdtempSync(path.join(tmpdir(), 'hainit-fakecg-'));
    // Both layouts: v2 at the root, v1 under memory/ (hainit picks whichever /proc/self/cgroup names).
    const files: Record<string, string> = {
      'cgroup.controllers': 'cpu memory\n', 'memory.current': String(10 * MiB), 'memory.max': String(100 * MiB), 'memory.stat': 'inactive_file 0\n',
      'memory/memory.usage_in_bytes': String(10 * MiB), 'memory/memory.limit_in_bytes': String(100 * MiB), 'memory/memory.stat': 'total_inactive_file 0\n',
    };
    mkdirSync(path.join(root, 'memory'));
    for (const [f, t] of Object.entries(files)) writeFileSync(path.join(root, f), t);
    const canMount = spawnSync('unshare', ['--mount', '--propagation', 'private', 'mount', '--bind', root, '/sys/fs/cgroup']).status === 0;
    if (!canMount) {
      rmSync(root, { recursive: true, force: true });
      this.skip();
    }
    try {
      const h = startHainit(['--max-memory', '80%', '--memory-interval', '100ms', '--', 'python3', fixture('graceful.py')], {
        env: cleanEnv({ EXIT: '0' }),
        prefix: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /sys/fs/cgroup && exec "$@"', root],
      });
      await h.waitForOutput(/ready/);
      await sleep(600);
      assert.doesNotMatch(h.stderr, /graceful/, 'under the limit: nothing happens');
      // 90 MiB of a 100 MiB limit is over 80%.
      for (const f of ['memory.current', 'memory/memory.usage_in_bytes']) writeFileSync(path.join(root, f), String(90 * MiB));
      const r = await h.exited;
      assert.match(r.stderr, /cgroup memory \(working set\) 90\.0 MiB over --max-memory 80% \(80\.0 MiB of the 100\.0 MiB cgroup limit\) for 3 samples: graceful shutdown/);
      assert.match(r.stdout, /got SIG 15/);
      assert.equal(r.code, 0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('restart policy, hainit as PID 1', function () {
  this.timeout(30_000);

  it('on-failure: restarts with the doubling delay, then exits with the child\'s code when the budget is spent', async () => {
    const r = await runHainit(['--restart', 'on-failure', '--max-restarts', '3', '--restart-delay', '200ms', '--', 'python3', fixture('crash.py')]);
    const t = starts(r.stdout);
    assert.equal(t.length, 4, r.stdout + r.stderr);
    const gaps = t.slice(1).map((x, i) => x - t[i]);
    // The delays double (hainit says which it chose) and each is waited out; how much longer a gap
    // is depends on how fast python3 starts on a loaded machine, so it is not bounded above.
    [200, 400, 800].forEach((delay, i) => assert.ok(gaps[i] >= delay, `gap ${i + 1}: ${gaps[i]} ms for a delay of ${delay} ms`));
    assert.match(r.stderr, /exited with code 3 after \d+ ms: restart 1 of 3 in 200 ms/);
    assert.match(r.stderr, /restart 2 of 3 in 400 ms/);
    assert.match(r.stderr, /restart 3 of 3 in 800 ms/);
    assert.match(r.stderr, /not restarted \(restart budget spent: 3 restart\(s\)/);
    assert.equal(r.code, 3);
  });

  it('on-failure leaves a clean exit alone; always restarts it', async () => {
    const clean = await runHainit(['--restart', 'on-failure', '--restart-delay', '100ms', '--', 'python3', fixture('crash.py')], { env: cleanEnv({ EXIT: '0' }) });
    assert.equal(starts(clean.stdout).length, 1);
    assert.equal(clean.code, 0);
    const always = await runHainit(['--restart', 'always', '--max-restarts', '2', '--restart-delay', '100ms', '--', 'python3', fixture('crash.py')], { env: cleanEnv({ EXIT: '0' }) });
    assert.equal(starts(always.stdout).length, 3, always.stderr);
    assert.match(always.stderr, /exited with code 0 after \d+ ms: restart 1 of 2/);
    assert.equal(always.code, 0);
  });

  it('readiness fails and liveness passes while restarting; /metrics shows the phase and the count', async () => {
    const port = await freePort();
    const h = startHainit(['--health-listen', `127.0.0.1:${port}`, '--restart', 'on-failure', '--max-restarts', '1', '--restart-delay', '1500ms', '--', 'python3', fixture('crash.py')], {
      env: cleanEnv({ RUN: '1' }),
    });
    await h.waitForOutput(/^start /m);
    let ready = await get(port, '/readyz');
    for (let i = 0; ready.status !== 200 && i < 20; i++) ready = await (sleep(50).then(() => get(port, '/readyz')));
    assert.equal(ready.status, 200, 'ready while the first child runs');
    await h.waitForOutput(/restart 1 of 1 in 1500 ms/, 5000, 'stderr');
    const readyz = await get(port, '/readyz?verbose');
    assert.equal(readyz.status, 503);
    assert.match(readyz.body, /\[-\]restart failed/);
    assert.match(readyz.body, /\[\+\]child ok/);
    assert.equal((await get(port, '/livez')).status, 200, 'liveness passes while restarting');
    const metrics = (await get(port, '/metrics')).body;
    assert.match(metrics, /^hainit_phase\{phase="restarting"\} 1$/m);
    assert.match(metrics, /^hainit_child_restarts_total 1$/m);
    await waitUntil(() => starts(h.stdout).length === 2, 5000, () => h.stdout);
    let again = await get(port, '/readyz');
    for (let i = 0; again.status !== 200 && i < 10; i++) again = await (sleep(50).then(() => get(port, '/readyz')));
    assert.equal(again.status, 200, 'ready again once the new child runs');
    const r = await h.exited;
    assert.equal(r.code, 3);
  });

  it('a shutdown signal during the restart delay exits at once with the child\'s last code', async () => {
    const h = startHainit(['--restart', 'always', '--restart-delay', '60s', '--', 'python3', fixture('crash.py')], { env: cleanEnv({ EXIT: '4' }) });
    await h.waitForOutput(/restart 1 of 5 in 60000 ms/, 5000, 'stderr');
    await h.signal('TERM');
    const r = await h.exited;
    // The signal ended the delay (hainit says so, and no second child started); waiting out the
    // 60 s delay would have outlasted the run's 20 s limit.
    assert.equal(r.timedOut, false, r.stderr);
    assert.match(r.stderr, /shutdown during the restart delay: exiting with the child's last code 4/);
    assert.equal(starts(r.stdout).length, 1);
    assert.equal(r.code, 4);
  });

  it('a shutdown signal stops a running child for good: no restart after it', async () => {
    const h = startHainit(['--restart', 'always', '--restart-delay', '100ms', '--', 'python3', fixture('crash.py')], { env: cleanEnv({ RUN: '30', EXIT: '0' }) });
    await h.waitForOutput(/^start /m);
    await sleep(200);
    await h.signal('TERM');
    const r = await h.exited;
    assert.match(r.stdout, /got SIG 15/);
    assert.equal(starts(r.stdout).length, 1);
    assert.equal(r.code, 0);
  });
});
