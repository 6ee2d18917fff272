/**
 * `hainit ps` and `hainit probe` through the real CLI (README "Exit codes"): they leave through
 * main's one exit like hainit itself; a bad argument is one line on stderr naming it, nothing on
 * stdout, exit 125; --help is 0; the table reaches a slow reader whole and a reader that stops
 * early costs nothing.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { assertUsageError, hainitCommand, runHainit } from '../support/pid1';

describe('subcommands: hainit ps and hainit probe', function () {
  this.timeout(60_000);

  const bad: [string[], string][] = [
    [['ps', '--jsn'], '--jsn'],
    [['ps', 'extra'], 'extra'],
    [['ps', '--proc'], '--proc'],
    [['ps', '--proc', '/nonexistent-proc'], '/nonexistent-proc'],
    [['probe'], 'no URL'],
    [['probe', 'http://127.0.0.1:9/', 'extra'], 'extra'],
    [['probe', '--bogus', 'http://127.0.0.1:9/'], '--bogus'],
    [['probe', '--timeout', 'soon', 'http://127.0.0.1:9/'], 'soon'],
    [['probe', 'ftp://127.0.0.1/'], 'ftp://127.0.0.1/'],
  ];
  for (const [args, value] of bad) {
    it(`hainit ${args.join(' ')}: 125, one line naming ${value}`, async () => {
      assertUsageError(await runHainit(args, { asPid1: false }), value);
    });
  }

  it('--help: the usage on stdout, exit 0', async () => {
    for (const sub of ['ps', 'probe']) {
      const r = await runHainit([sub, '--help'], { asPid1: false });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: hainit ${sub}`));
      assert.equal(r.stderr, '');
    }
  });

  it('probe: 1 and one line when the check fails', async () => {
    const r = await runHainit(['probe', '--timeout', '2s', 'tcp://127.0.0.1:9'], { asPid1: false });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, 'hainit probe: tcp://127.0.0.1:9 failed\n');
  });

  it('ps: a slow reader gets the whole table (valid JSON), a reader that stops early gets exit 0', () => {
    const [node, ...args] = hainitCommand(['ps', '--json'], false);
    const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
    const line = [node, ...args].map(quote).join(' ');
    // the reader sleeps before reading: hainit's writes fill the pipe and wait
    const slow = spawnSync('sh', ['-c', `${line} | (sleep 1; cat)`], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(slow.status, 0, slow.stderr);
    const rows = JSON.parse(slow.stdout) as { pid: number }[];
    assert.ok(rows.some((r) => r.pid === process.pid), 'the test process is in the table');
    const early = spawnSync('bash', ['-c', `${line} | head -c 10 >/dev/null; exit \${PIPESTATUS[0]}`], { encoding: 'utf8' });
    assert.equal(early.status, 0, early.stderr);
    assert.equal(early.stderr, '');
  });
});
