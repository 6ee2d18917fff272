import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ProcFs, parseStat } from '../../src/proc/procfs';
import { nativeLayout, parseAuxv, uptimeSeconds } from '../../src/proc/system';
import { childrenOf, descendantsOf, treeUsage } from '../../src/proc/tree';

describe('proc: stat lines', () => {
  it('parses stat lines whose command holds spaces and parentheses', () => {
    const s = parseStat(stat(10, 'my app) (x', 'S', 1, [300, 50, 20, 10], 2_000));
    assert.ok(s);
    assert.deepEqual({ pid: s.pid, state: s.state, ppid: s.ppid, cpuTicks: s.cpuTicks, rssPages: s.rssPages }, { pid: 10, state: 'S', ppid: 1, cpuTicks: 380, rssPages: 2_000 });
    assert.equal(parseStat('garbage'), undefined);
  });

  it('parses stat fields after the last ")", whatever the command name holds', () => {
    const s = parseStat('42 (a) b (c) S 7 42 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 99 0\n');
    assert.ok(s);
    assert.equal(s.comm, 'a) b (c');
    assert.equal(s.state, 'S');
    assert.equal(s.ppid, 7);
    assert.equal(s.startTicks, 12345);
    assert.equal(s.rssPages, 99);
    assert.equal(s.kernelThread, false);
    assert.equal(parseStat('garbage'), undefined);
  });

});

describe('proc: system constants', () => {
  it('takes AT_CLKTCK and AT_PAGESZ from an auxiliary vector, and keeps 100 Hz / 4 KiB without one', () => {
    const buf = Buffer.alloc(16 * 4);
    buf.writeBigUInt64LE(6n, 0);
    buf.writeBigUInt64LE(65536n, 8);
    buf.writeBigUInt64LE(17n, 16);
    buf.writeBigUInt64LE(250n, 24);
    assert.deepEqual(parseAuxv(buf, { wordBytes: 8, littleEndian: true }), { clockTicks: 250, pageSize: 65536 });
    assert.deepEqual(parseAuxv(undefined), { clockTicks: 100, pageSize: 4096 });
  });

  it('reads 32-bit and big-endian vectors too, and knows the word size of every 64-bit Node architecture', () => {
    const be32 = Buffer.alloc(8 * 3);
    be32.writeUInt32BE(17, 0);
    be32.writeUInt32BE(1000, 4);
    be32.writeUInt32BE(6, 8);
    be32.writeUInt32BE(16384, 12);
    assert.deepEqual(parseAuxv(be32, { wordBytes: 4, littleEndian: false }), { clockTicks: 1000, pageSize: 16384 });
    for (const arch of ['x64', 'arm64', 'ppc64', 'riscv64', 'loong64', 's390x']) assert.equal(nativeLayout(arch).wordBytes, 8, arch);
    for (const arch of ['arm', 'ia32', 'mipsel']) assert.equal(nativeLayout(arch).wordBytes, 4, arch);
  });

  it('reads seconds since boot from uptime, NaN when there is none', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-uptime-'));
    try {
      assert.ok(Number.isNaN(uptimeSeconds(dir)));
      writeFileSync(path.join(dir, 'uptime'), '12345.67 54321.00\n');
      assert.equal(uptimeSeconds(dir), 12345.67);
      assert.ok(uptimeSeconds() > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A /proc/PID/stat line: fields as in proc(5), only the ones read are meaningful. */
function stat(pid: number, comm: string, state: string, ppid: number, cpu: [number, number, number, number], rssPages: number): string {
  const f = new Array(52 - 2).fill('0');
  f[0] = state;
  f[1] = String(ppid);
  [f[11], f[12], f[13], f[14]] = cpu.map(String);
  f[21] = String(rssPages);
  return `${pid} (${comm}) ${f.join(' ')}\n`;
}

/** hainit (1) → app (10) → worker (11, 12 a zombie); 20 an orphan hainit adopted; 30 elsewhere. */
function fakeProc(withChildrenFiles: boolean): ProcFs {
  const files = new Map<string, string>([
    ['/proc/1/stat', stat(1, 'node', 'S', 0, [500, 100, 0, 0], 10_000)],
    ['/proc/10/stat', stat(10, 'my app) (x', 'S', 1, [300, 50, 20, 10], 2_000)],
    ['/proc/11/stat', stat(11, 'worker', 'R', 10, [100, 0, 0, 0], 1_000)],
    ['/proc/12/stat', stat(12, 'dead', 'Z', 10, [7, 0, 0, 0], 0)],
    ['/proc/20/stat', stat(20, 'orphan', 'S', 1, [20, 0, 0, 0], 500)],
    ['/proc/30/stat', stat(30, 'other', 'S', 0, [999, 0, 0, 0], 9_999)],
  ]);
  const tasks = new Map<string, string[]>([['/proc/1/task', ['1', '2']], ['/proc/10/task', ['10']], ['/proc/11/task', ['11']], ['/proc/20/task', ['20']]]);
  if (withChildrenFiles) {
    files.set('/proc/1/task/1/children', '10 ');
    files.set('/proc/1/task/2/children', '20 ');
    files.set('/proc/10/task/10/children', '11 12 ');
    files.set('/proc/11/task/11/children', '');
    files.set('/proc/20/task/20/children', '');
  }
  return {
    read: (p) => files.get(p),
    list: (p) => (p === '/proc' ? ['1', '10', '11', '12', '20', '30', 'self', 'net'] : tasks.get(p)),
  };
}

describe('proc: the process tree', () => {
  it('walks the children lists of every thread, and falls back to a scan without them', () => {
    assert.deepEqual(descendantsOf(fakeProc(true), 1).sort((a, b) => a - b), [10, 11, 12, 20]);
    assert.deepEqual(descendantsOf(fakeProc(false), 1).sort((a, b) => a - b), [10, 11, 12, 20]);
    assert.deepEqual(descendantsOf(fakeProc(true), 10).sort((a, b) => a - b), [11, 12]);
  });

  it('sums RSS and CPU of live descendants with the system page size and clock ticks', () => {
    const u = treeUsage(fakeProc(true), 1, { clockTicks: 100, pageSize: 4096 });
    assert.deepEqual(u, { processes: 3, rssBytes: (2_000 + 1_000 + 500) * 4096, cpuSeconds: (380 + 100 + 20) / 100 });
  });

  it('gives the direct children, ascending, from the lists or from a scan', () => {
    for (const lists of [true, false]) {
      const proc = fakeProc(lists);
      assert.deepEqual(childrenOf('/proc', 1, proc), [10, 20], `lists: ${lists}`);
      assert.deepEqual(childrenOf('/proc', 10, proc), [11, 12], `lists: ${lists}`);
      assert.deepEqual(childrenOf('/proc', 11, proc), [], `lists: ${lists}`);
    }
  });
});
