/**
 * `hainit ps` on a fake /proc: mask decoding, stat parsing, the tree, the text and JSON shapes,
 * and the argument handling of psMain (README "Command line": subcommands).
 */
import { strict as assert } from 'node:assert';
import { decodeSignalMask, readArgv, readProcess, readSignalSetsAt, signalNames } from '../../src/forensics/process';
import { buildTree, flattenTree, formatAge, psMain, readProcessTable, renderText, toJson } from '../../src/forensics/ps';
import { formatBytes } from '../../src/units';
import { fakeProc, FakeProcess, maskOf } from '../../support/forensics';

const CLOCK = { uptimeSeconds: 1000, clockTicks: 100, pageSize: 4096 };

function run(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = psMain(args, (s) => (out += s), (s) => (err += s));
  return { code, out, err };
}

describe('forensics: signal masks', () => {
  it('decodes a /proc hex mask bit by bit: bit N-1 is signal N', () => {
    assert.deepEqual(decodeSignalMask('0000000000000000'), []);
    assert.deepEqual(decodeSignalMask('0000000000000001'), [1]);
    // Python's defaults: SIGPIPE (13) and SIGXFSZ (25) ignored.
    assert.deepEqual(decodeSignalMask('0000000001001000'), [13, 25]);
    assert.deepEqual(decodeSignalMask('0000000000004202'), [2, 10, 15]);
    assert.deepEqual(decodeSignalMask('8000000000000000'), [64]);
    const allButKillStop = decodeSignalMask('fffffffffffbfeff');
    assert.equal(allButKillStop.length, 62);
    assert.ok(!allButKillStop.includes(9) && !allButKillStop.includes(19));
    assert.deepEqual(decodeSignalMask('zz'), [], 'garbage decodes to nothing, not to a throw');
  });

  it('names real-time signals relative to SIGRTMIN (34) and SIGRTMAX, and glibc-reserved 32/33 by number', () => {
    // bits 0, 14, 31 | 32, 33, 36, 48, 62, 63
    assert.deepEqual(signalNames(decodeSignalMask('c001001380004001')), [
      'SIGHUP',
      'SIGTERM',
      'SIG32',
      'SIG33',
      'SIGRTMIN',
      'SIGRTMIN+3',
      'SIGRTMIN+15',
      'SIGRTMAX-1',
      'SIGRTMAX',
    ]);
  });

  it('reads MIPS-width (128-bit) masks without losing the high signals', () => {
    assert.deepEqual(decodeSignalMask('1'.padEnd(32, '0')), [125]);
  });
});

describe('forensics: reading one process', () => {
  it('reads age, RSS, argv and signal sets; blocked is what every live thread blocks', () => {
    const fake = fakeProc([
      {
        pid: 7,
        ppid: 1,
        comm: 'node',
        argv: ['node', 'server.js', 'a b'],
        start: 90_000, // 900 s after boot, uptime 1000 s: 100 s old
        rssKiB: 2048,
        sigCgt: maskOf(1, 2, 15, 34 + 3),
        sigIgn: maskOf(13),
        // The leader blocks USR1 and TERM, a helper thread only USR1: TERM can still be delivered.
        sigBlk: [maskOf(10, 15), maskOf(10, 28)],
        sigPnd: maskOf(10),
      },
    ]);
    try {
      const p = readProcess(fake.root, 7, CLOCK);
      assert.ok(p);
      assert.equal(p.ageSeconds, 100);
      assert.equal(p.rssBytes, 2048 * 1024);
      assert.deepEqual(p.argv, ['node', 'server.js', 'a b']);
      assert.equal(p.threads, 2);
      assert.deepEqual([...p.signals.caught], [1, 2, 15, 37]);
      assert.deepEqual([...p.signals.ignored], [13]);
      assert.deepEqual([...p.signals.blocked], [10], 'TERM is blocked by one thread only, so the process is not blocking it');
      assert.deepEqual([...p.signals.pending], [10]);
      assert.equal(readProcess(fake.root, 8, CLOCK), undefined, 'a process that is gone is undefined, not a throw');
      assert.equal(readSignalSetsAt(fake.root, 8), undefined);
    } finally {
      fake.cleanup();
    }
  });

  it('drops the NUL padding a process leaves after shortening its title, keeps empty arguments inside', () => {
    const fake = fakeProc([{ pid: 5, ppid: 1, comm: 'npm', argv: ['x', '', 'y', '', '', ''] }]);
    try {
      assert.deepEqual(readArgv(fake.root, 5), ['x', '', 'y']);
    } finally {
      fake.cleanup();
    }
  });
});

// hainit (1) -> sh (7) -> [sleep 8, zombie 9]; python (10) whose parent is outside the table.
const TREE: FakeProcess[] = [
  { pid: 1, ppid: 0, comm: 'node', argv: ['/hainit', '--', 'sh', '-c', 'sleep 30; true'], rssKiB: 40_000, start: 1000, sigCgt: maskOf(1, 2, 15), sigIgn: maskOf(13) },
  { pid: 7, ppid: 1, comm: 'sh', argv: ['sh', '-c', 'sleep 30; true'], rssKiB: 900, start: 1100 },
  { pid: 8, ppid: 7, comm: 'sleep', argv: ['sleep', '30'], rssKiB: 700, start: 1200, sigBlk: [maskOf(10)] },
  { pid: 9, ppid: 7, comm: 'leaky', state: 'Z', start: 1300 },
  { pid: 10, ppid: 3, comm: 'python3', argv: ['python3', 'x.py'], rssKiB: 9000, start: 1400, sigIgn: maskOf(15, 13), sigCgt: maskOf(34 + 3) },
  { pid: 2, ppid: 0, comm: 'kthreadd', kernelThread: true, sigIgn: 'fffffffffffffeff' },
];

describe('forensics: the tree', () => {
  it('puts children under their parents, by pid; a process whose parent is not listed is a root', () => {
    const fake = fakeProc(TREE);
    try {
      const procs = readProcessTable(fake.root, CLOCK);
      assert.ok(procs);
      const shape = (nodes: ReturnType<typeof buildTree>): unknown => nodes.map((n) => [n.proc.pid, shape(n.children)]);
      assert.deepEqual(shape(buildTree(procs)), [
        [1, [[7, [[8, []], [9, []]]]]],
        [2, []],
        [10, []],
      ]);
      assert.deepEqual(
        flattenTree(buildTree(procs)).map((l) => [l.node.proc.pid, l.depth, l.prefix]),
        [
          [1, 0, ''],
          [7, 1, ' \\_ '],
          [8, 2, '     \\_ '],
          [9, 2, '     \\_ '],
          [2, 0, ''],
          [10, 0, ''],
        ],
      );
    } finally {
      fake.cleanup();
    }
  });

  it('shows every process of a parent cycle (a table read while pids were reused) once, without looping', () => {
    const procs = [
      { pid: 4, ppid: 5 },
      { pid: 5, ppid: 4 },
    ].map((p) => ({ ...p, pgrp: p.pid, state: 'S', comm: 'x', argv: [], ageSeconds: 0, rssBytes: 0, threads: 1, kernelThread: false, signals: { caught: new Set<number>(), ignored: new Set<number>(), blocked: new Set<number>(), pending: new Set<number>() } }));
    assert.deepEqual(
      flattenTree(buildTree(procs)).map((l) => [l.node.proc.pid, l.depth]),
      [
        [4, 0],
        [5, 1],
      ],
      'each process once, the cycle drawn from its lowest pid',
    );
  });

  it('renders a forest with the zombie marked and decoded signal sets under each live process', () => {
    const fake = fakeProc(TREE);
    try {
      const text = renderText(readProcessTable(fake.root, CLOCK) ?? []);
      const lines = text.split('\n');
      assert.match(lines[0], /^PID\s+PPID S\s+AGE\s+RSS COMMAND$/);
      assert.match(text, /^\s*1\s+0 S 16:30 39\.1Mi \/hainit -- sh -c 'sleep 30; true'$/m);
      assert.match(text, /^\s+\|  caught: HUP,INT,TERM  ignored: PIPE  blocked: -$/m);
      assert.match(text, /^\s*8\s+7 S 16:28\s+700Ki\s{6}\\_ sleep 30$/m);
      assert.match(text, /caught: -  ignored: -  blocked: USR1$/m);
      assert.match(text, /^\s*9\s+7 Z 16:27\s+0\s+\\_ \[leaky\] <defunct>$/m);
      assert.match(text, /caught: RTMIN\+3  ignored: PIPE,TERM  blocked: -$/m);
      assert.match(text, /^zombies: 1: 9 leaky \(parent 7 sh\)$/m);
      const zombieLine = lines.findIndex((l) => l.includes('<defunct>'));
      assert.doesNotMatch(lines[zombieLine + 1], /caught:/, 'a zombie has no signal line');
      const kthread = lines.findIndex((l) => l.includes('[kthreadd]'));
      assert.doesNotMatch(lines[kthread + 1], /caught:/, 'a kernel thread has no signal line');
    } finally {
      fake.cleanup();
    }
  });

  it('formats ages as ps does and sizes in binary units', () => {
    assert.equal(formatAge(5), '00:05');
    assert.equal(formatAge(3725), '01:02:05');
    assert.equal(formatAge(2 * 86400 + 3725), '2-01:02:05');
    assert.equal(formatAge(NaN), '?');
    assert.equal(formatBytes(0, 'short'), '0');
    assert.equal(formatBytes(1536, 'short'), '1.5Ki');
    assert.equal(formatBytes(300 * 1024 * 1024, 'short'), '300Mi');
    // the same sizes as the memory watchdog's messages write them
    assert.equal(formatBytes(300 * 1024 * 1024, 'log'), '300.0 MiB');
    assert.equal(formatBytes(1.5 * 2 ** 30, 'log'), '1.50 GiB');
  });
});

describe('forensics: psMain', () => {
  it('--json prints an array of objects in tree order, numeric fields as numbers, signals as name arrays', () => {
    const fake = fakeProc(TREE);
    try {
      const r = run(['--json', '--proc', fake.root]);
      assert.equal(r.code, 0);
      assert.equal(r.err, '');
      const rows = JSON.parse(r.out) as ReturnType<typeof toJson>;
      assert.deepEqual(
        rows.map((x) => x.pid),
        [1, 7, 8, 9, 2, 10],
      );
      const sh = rows[1];
      assert.deepEqual(Object.keys(sh).sort(), [
        'ageSeconds',
        'argv',
        'blocked',
        'caught',
        'comm',
        'command',
        'ignored',
        'kernelThread',
        'pending',
        'pgid',
        'pid',
        'ppid',
        'rssBytes',
        'state',
        'threads',
        'zombie',
      ]);
      for (const k of ['pid', 'ppid', 'pgid', 'ageSeconds', 'rssBytes', 'threads'] as const) assert.equal(typeof sh[k], 'number', k);
      const zombie = rows.find((x) => x.pid === 9);
      assert.ok(zombie);
      assert.equal(zombie.state, 'Z');
      assert.equal(zombie.zombie, true);
      assert.equal(zombie.command, '[leaky] <defunct>');
      assert.deepEqual(zombie.argv, []);
      const py = rows.find((x) => x.pid === 10);
      assert.ok(py);
      assert.deepEqual(py.ignored, ['SIGPIPE', 'SIGTERM']);
      assert.deepEqual(py.caught, ['SIGRTMIN+3']);
      assert.equal(py.ageSeconds, 986);
      assert.deepEqual(rows.find((x) => x.pid === 8)?.blocked, ['SIGUSR1']);
    } finally {
      fake.cleanup();
    }
  });

  it('accepts --proc=DIR, and gives 125 with the bad argument named for anything else', () => {
    const fake = fakeProc(TREE);
    try {
      assert.equal(run([`--proc=${fake.root}`]).code, 0);
      const bad = run(['--jsn']);
      assert.equal(bad.code, 125);
      assert.equal(bad.out, '');
      assert.match(bad.err, /^hainit ps: unknown argument '--jsn' \(usage: hainit ps \[--json\] \[--proc DIR\]\)\n$/);
      assert.equal(run(['--proc']).code, 125);
      const missing = run(['--proc', `${fake.root}/nope`]);
      assert.equal(missing.code, 125);
      assert.match(missing.err, /cannot list .*nope/);
      const help = run(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.out, /^usage: hainit ps/);
    } finally {
      fake.cleanup();
    }
  });
});
