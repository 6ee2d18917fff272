/**
 * `hainit ps` on the real /proc, against a fixture with known dispositions and a zombie child
 * (issue 8: "lists a fixture's tree with a zombie marked and the right decoded signal sets").
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { psMain, PsJson } from '../../src/forensics/ps';
import { killStarted, startFixture, waitUntil } from '../../support/forensics';

function ps(args: string[]): { code: number; out: string } {
  let out = '';
  const code = psMain(args, (s) => (out += s), (s) => assert.fail(`unexpected stderr: ${s}`));
  return { code, out };
}

function isZombieNow(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\)/s, ''));
  } catch {
    return false;
  }
}

describe('forensics: hainit ps on a live process tree', function () {
  this.timeout(30_000);
  let parent: number;
  let zombie: number;

  before(async () => {
    const f = await startFixture('tree');
    [parent, zombie] = f.pids;
    await waitUntil(() => isZombieNow(zombie), 5000, `child ${zombie} to become a zombie`);
  });
  after(killStarted);

  it('--json lists the fixture under the test process, its unreaped child as a zombie, and the decoded sets', () => {
    const r = ps(['--json']);
    assert.equal(r.code, 0);
    const rows = JSON.parse(r.out) as PsJson[];
    const me = rows.findIndex((x) => x.pid === process.pid);
    const p = rows.findIndex((x) => x.pid === parent);
    const z = rows.findIndex((x) => x.pid === zombie);
    assert.ok(me >= 0 && p >= 0 && z >= 0, 'the test process, the fixture and its zombie are all listed');
    assert.ok(me < p && p < z, 'tree order: parents before their children');

    const fixture = rows[p];
    assert.equal(fixture.ppid, process.pid);
    assert.equal(fixture.zombie, false);
    assert.match(fixture.command, /python.* .*dispositions\.py tree$/);
    assert.ok(fixture.ignored.includes('SIGTERM'), `ignored: ${fixture.ignored}`);
    assert.ok(!fixture.caught.includes('SIGTERM'));
    assert.deepEqual(fixture.blocked, ['SIGUSR1']);
    assert.ok(fixture.caught.includes('SIGHUP') && fixture.caught.includes('SIGRTMIN+3'), `caught: ${fixture.caught}`);
    // Python's own choices, which the sets must show as they are.
    assert.ok(fixture.caught.includes('SIGINT') && fixture.ignored.includes('SIGPIPE'));
    assert.ok(fixture.rssBytes > 1024 * 1024, `a live python holds memory: ${fixture.rssBytes}`);
    assert.ok(fixture.ageSeconds !== null && fixture.ageSeconds >= 0 && fixture.ageSeconds < 60, `age ${fixture.ageSeconds}`);

    const dead = rows[z];
    assert.equal(dead.state, 'Z');
    assert.equal(dead.zombie, true);
    assert.equal(dead.ppid, parent);
    assert.deepEqual(dead.argv, []);
    assert.match(dead.command, /^\[python3?[^\]]*\] <defunct>$/);
    assert.equal(dead.rssBytes, 0);
  });

  it('text output draws the zombie under the fixture and names it in the summary', () => {
    const r = ps([]);
    assert.equal(r.code, 0);
    const lines = r.out.split('\n');
    const p = lines.findIndex((l) => new RegExp(`^\\s*${parent}\\s+${process.pid} S `).test(l));
    assert.ok(p > 0, r.out);
    assert.match(lines[p + 1], /caught: [A-Z0-9+,]*HUP[A-Z0-9+,]*RTMIN\+3\S*  ignored: \S*TERM\S*  blocked: USR1$/);
    const z = lines.findIndex((l) => new RegExp(`^\\s*${zombie}\\s+${parent} Z `).test(l));
    assert.ok(z > p, 'the zombie comes after its parent');
    assert.match(lines[z], /\\_ \[python3?[^\]]*\] <defunct>$/);
    // the child's branch is drawn one level deeper than its parent's
    assert.ok(lines[z].indexOf('\\_') > lines[p].indexOf('\\_'));
    assert.match(r.out, new RegExp(`^zombies: \\d+: .*${zombie} python3?\\S* \\(parent ${parent} python3?\\S*\\)`, 'm'));
  });

  it('changes nothing: the zombie is still there, unreaped, after ps ran', () => {
    ps(['--json']);
    assert.ok(isZombieNow(zombie));
  });
});
