/**
 * Zombie reaping (README "Signals"); matches tini's run_inner_tests.py (orphans reaped
 * with and without being PID 1, -w, the "not PID 1 and not a subreaper" warning) and dumb-init's
 * test-zombies.
 */
import { strict as assert } from 'node:assert';
import { NAMES_PER_SECOND } from '../src/reaper/reaper';
import { freePort, get } from '../support/load';
import { cleanEnv, fixture, PYTHON, runHainit, startHainit } from '../support/pid1';

const ORPHANS = fixture('orphans.py');

interface OrphanReport {
  orphans: number;
  adopted: number;
  zombies: number;
  alive: number;
  ms: number;
  nszombies: number;
}

function report(stdout: string): OrphanReport {
  const m = stdout.match(/^orphans=(\d+) adopted=(\d+) zombies=(\d+) alive=(\d+) ms=(\d+) nszombies=(\d+)$/m);
  assert.ok(m, `orphans.py printed no report: ${stdout}`);
  const [orphans, adopted, zombies, alive, ms, nszombies] = m.slice(1).map(Number);
  return { orphans, adopted, zombies, alive, ms, nszombies };
}

const REAP_LINE = /^hainit: (\w+)\s+reaped orphan pid=(\d+) comm=(\S+) status="?exit 0"?( lived=\d+ms)?$/;

/** Without -v/-w the only line is the summary at exit, which counts the orphans by name (issue 8).
 * Up to NAMES_PER_SECOND released at once are all named; past that, a storm, the first ones (and
 * the few the budget refills with while they are reaped) are, and the rest are counted. */
function quietButTheSummary(stderr: string, orphans: number): void {
  const lines = stderr.split('\n').filter((l) => l !== '');
  const summary = lines.filter((l) => /^hainit: INFO\s+reaped \d+ orphan/.test(l));
  assert.deepEqual(lines.filter((l) => !summary.includes(l)), [], 'nothing but the summary');
  if (orphans === 0) return assert.equal(summary.length, 0);
  assert.equal(summary.length, 1, stderr);
  if (orphans <= NAMES_PER_SECOND) return assert.match(summary[0], new RegExp(`reaped ${orphans} orphan\\(s\\): python3 ×${orphans}$`));
  const m = new RegExp(`reaped ${orphans} orphan\\(s\\): python3 ×(\\d+), and (\\d+) more not named: reaped in a storm$`).exec(summary[0]);
  assert.ok(m, summary[0]);
  const [named, unnamed] = [Number(m[1]), Number(m[2])];
  assert.equal(named + unnamed, orphans, summary[0]);
  assert.ok(named >= NAMES_PER_SECOND && unnamed > 0, summary[0]);
}

describe('reaping', function () {
  this.timeout(60_000);

  it('as PID 1: 300 double-forked orphans leave no zombie, and stderr stays quiet', async () => {
    const r = await runHainit([PYTHON, ORPHANS, '300']);
    assert.equal(r.code, 0, r.stderr);
    const rep = report(r.stdout);
    assert.equal(rep.orphans, 300);
    assert.equal(rep.adopted, 300, 'every orphan was adopted by hainit (PID 1)');
    assert.equal(rep.zombies, 0, 'zombies left among the orphans');
    assert.equal(rep.alive, 0);
    assert.equal(rep.nszombies, 0, 'zombies anywhere in the PID namespace');
    // Generous bound for a loaded machine; the point is that reaping is driven by SIGCHLD.
    assert.ok(rep.ms < 3000, `reaping took ${rep.ms} ms`);
    quietButTheSummary(r.stderr, 300);
  });

  it('not PID 1: hainit is a child subreaper by default and reaps the same 300 orphans', async () => {
    const r = await runHainit([PYTHON, ORPHANS, '300'], { asPid1: false });
    assert.equal(r.code, 0, r.stderr);
    const rep = report(r.stdout);
    assert.equal(rep.adopted, 300, 'orphans were adopted by hainit, the subreaper (not by the host init)');
    assert.equal(rep.zombies, 0);
    assert.equal(rep.alive, 0);
    assert.ok(rep.ms < 3000, `reaping took ${rep.ms} ms`);
    quietButTheSummary(r.stderr, 300);
  });

  it('not PID 1: -s and HAINIT_SUBREAPER=1 also make it a subreaper, silently', async () => {
    for (const [args, env] of [[['-s'], {}], [['--subreaper'], {}], [[], { HAINIT_SUBREAPER: '1' }]] as const) {
      const r = await runHainit([...args, PYTHON, ORPHANS, '20'], { asPid1: false, env: cleanEnv(env) });
      assert.equal(r.code, 0, r.stderr);
      const rep = report(r.stdout);
      assert.equal(rep.adopted, 20, `${args} ${JSON.stringify(env)}`);
      assert.equal(rep.zombies + rep.alive, 0);
      quietButTheSummary(r.stderr, 20);
    }
  });

  it('not PID 1 with --no-subreaper: one warning, once', async () => {
    const r = await runHainit(['--no-subreaper', 'sh', '-c', 'exit 0'], { asPid1: false });
    assert.equal(r.code, 0);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `exactly one line on stderr:\n${r.stderr}`);
    assert.match(lines[0], /WARN/);
    assert.match(lines[0], /subreaper/);
    assert.equal(r.stdout, '');
  });

  it('not PID 1 with HAINIT_SUBREAPER=0: the same single warning', async () => {
    const r = await runHainit(['true'], { asPid1: false, env: cleanEnv({ HAINIT_SUBREAPER: '0' }) });
    assert.equal(r.code, 0);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /WARN.*subreaper/);
  });

  it('as PID 1, --no-subreaper changes nothing and warns nothing', async () => {
    const r = await runHainit(['--no-subreaper', PYTHON, ORPHANS, '20']);
    assert.equal(r.code, 0, r.stderr);
    const rep = report(r.stdout);
    assert.equal(rep.zombies + rep.alive + rep.nszombies, 0);
    quietButTheSummary(r.stderr, 20);
  });

  it('-w logs every orphan reaped, once each, at WARN', async () => {
    const r = await runHainit(['-w', PYTHON, ORPHANS, '7']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(report(r.stdout).zombies, 0);
    const lines = r.stderr.trimEnd().split('\n').filter((l) => !/reaped \d+ orphan\(s\)/.test(l));
    assert.equal(lines.length, 7, `one line per orphan:\n${r.stderr}`);
    const pids = new Set<string>();
    for (const line of lines) {
      const m = line.match(REAP_LINE);
      assert.ok(m, `unexpected line: ${line}`);
      assert.equal(m[1], 'WARN');
      assert.equal(m[3], 'python3');
      pids.add(m[2]);
    }
    assert.equal(pids.size, 7, 'seven different pids');
  });

  it('-w names every orphan of a storm: the naming budget holds only without a line per orphan', async () => {
    const r = await runHainit(['-w', PYTHON, ORPHANS, '300']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(report(r.stdout).zombies, 0);
    const lines = r.stderr.trimEnd().split('\n').filter((l) => /reaped orphan/.test(l));
    assert.equal(lines.length, 300, r.stderr);
    for (const l of lines) assert.equal(l.match(REAP_LINE)?.[3], 'python3', l);
    assert.match(r.stderr, /INFO\s+reaped 300 orphan\(s\): python3 ×300$/m);
  });

  it('/metrics counts the orphans of a storm reaped without their names', async () => {
    const port = await freePort();
    const h = startHainit(['--health-listen', `127.0.0.1:${port}`, '--', 'sh', '-c', `${PYTHON} ${ORPHANS} 300; exec sleep 30`]);
    await h.waitForOutput(/^orphans=/m, 20_000);
    const metrics = (await get(port, '/metrics')).body;
    const reaped = Number(/^hainit_orphans_reaped_total (\d+)$/m.exec(metrics)?.[1]);
    const unnamed = Number(/^hainit_orphans_unnamed_total (\d+)$/m.exec(metrics)?.[1]);
    // orphans.py's own child (the middle process of each double fork) is sh's, not an orphan
    assert.equal(reaped, 300, metrics);
    assert.ok(unnamed > 0 && reaped - unnamed >= NAMES_PER_SECOND, `unnamed ${unnamed} of ${reaped}`);
    await h.signal('TERM');
    const r = await h.exited;
    // the summary says the same (an orphan or so more may be reaped after the scrape)
    const m = /reaped (\d+) orphan\(s\): python3 ×(\d+), and (\d+) more not named: reaped in a storm$/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(Number(m[2]) + Number(m[3]), Number(m[1]), m[0]);
    assert.ok(Number(m[3]) >= unnamed && Number(m[2]) >= reaped - unnamed, m[0]);
  });

  it('HAINIT_WARN_ON_REAP=1 is the same as -w', async () => {
    const r = await runHainit([PYTHON, ORPHANS, '3'], { env: cleanEnv({ HAINIT_WARN_ON_REAP: '1' }) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').filter((l) => /WARN\s+reaped orphan/.test(l)).length, 3, r.stderr);
  });

  it('-v logs reaped orphans (at debug), with pid, comm and status', async () => {
    const r = await runHainit(['-v', PYTHON, ORPHANS, '3']);
    assert.equal(r.code, 0, r.stderr);
    const reaped = r.stderr.split('\n').filter((l) => /reaped orphan/.test(l));
    assert.equal(reaped.length, 3, r.stderr);
    for (const l of reaped) assert.match(l, REAP_LINE);
    assert.ok(!reaped.some((l) => /WARN/.test(l)), 'not at WARN without -w');
  });

  it('the child\'s exit code survives a leftover process it left behind', async () => {
    // sh starts a background subshell and exits 5; the subshell is adopted by hainit. Whatever
    // hainit does with leftovers (wait, TERM), the exit code stays the child's and it does not hang.
    const r = await runHainit(['-w', 'sh', '-c', '(sleep 0.2; exit 0) & exit 5']);
    assert.equal(r.code, 5, r.stderr);
    assert.ok(r.ms < 15_000);
  });
});
