import { strict as assert } from 'node:assert';
import { Check } from '../../src/health/checks';
import { renderMetrics } from '../../src/health/metrics';
import { ProcFs, parseStat } from '../../src/proc/procfs';
import { parseAuxv } from '../../src/proc/system';
import { descendantsOf, treeUsage } from '../../src/proc/tree';
import { FakeLifecycle } from './fakes';

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

describe('health: /proc process tree', () => {
  it('parses stat lines whose command holds spaces and parentheses', () => {
    const s = parseStat(stat(10, 'my app) (x', 'S', 1, [300, 50, 20, 10], 2_000));
    assert.ok(s);
    assert.deepEqual({ pid: s.pid, state: s.state, ppid: s.ppid, cpuTicks: s.cpuTicks, rssPages: s.rssPages }, { pid: 10, state: 'S', ppid: 1, cpuTicks: 380, rssPages: 2_000 });
    assert.equal(parseStat('garbage'), undefined);
  });

  it('walks the children lists of every thread, and falls back to a scan without them', () => {
    assert.deepEqual(descendantsOf(fakeProc(true), 1).sort((a, b) => a - b), [10, 11, 12, 20]);
    assert.deepEqual(descendantsOf(fakeProc(false), 1).sort((a, b) => a - b), [10, 11, 12, 20]);
    assert.deepEqual(descendantsOf(fakeProc(true), 10).sort((a, b) => a - b), [11, 12]);
  });

  it('sums RSS and CPU of live descendants with the system page size and clock ticks', () => {
    const u = treeUsage(fakeProc(true), 1, { clockTicks: 100, pageSize: 4096 });
    assert.deepEqual(u, { processes: 3, rssBytes: (2_000 + 1_000 + 500) * 4096, cpuSeconds: (380 + 100 + 20) / 100 });
  });

  it('reads AT_PAGESZ and AT_CLKTCK from an auxiliary vector', () => {
    const b = Buffer.alloc(16 * 4);
    const put = (i: number, type: number, value: number) => {
      b.writeBigUInt64LE(BigInt(type), i * 16);
      b.writeBigUInt64LE(BigInt(value), i * 16 + 8);
    };
    put(0, 6, 65536);
    put(1, 17, 250);
    put(2, 0, 0);
    put(3, 6, 1);
    assert.deepEqual(parseAuxv(b), { clockTicks: 250, pageSize: 65536 });
    assert.deepEqual(parseAuxv(Buffer.alloc(0)), { clockTicks: 100, pageSize: 4096 });
  });
});

describe('health: /metrics', () => {
  const check = (name: string, ok: boolean, ms?: number): Check => ({
    name, kinds: ['ready'], origin: ms === undefined ? 'hainit' : 'application',
    state: () => ({ ok, reason: ok ? undefined : 'secret reason', lastDurationMs: ms, observedAt: 0 }),
  });

  it('renders every family in Prometheus text format', () => {
    const life = new FakeLifecycle();
    life.enter('running');
    life.enter('draining');
    life.restarts = 2;
    life.signalsReceived.set(15, 1);
    life.signalsReceived.set(1, 3);
    life.signalsForwarded.set(1, 3);
    const text = renderMetrics({
      lifecycle: life,
      orphansReaped: () => 7,
      checks: [check('child', true), check('ready-http', false, 1500)],
      startupPassed: () => true,
      usage: () => ({ processes: 3, rssBytes: 1024, cpuSeconds: 1.5 }),
    });
    const lines = text.split('\n');
    for (const expected of [
      'hainit_child_up 1',
      'hainit_child_restarts_total 2',
      'hainit_phase{phase="running"} 0',
      'hainit_phase{phase="draining"} 1',
      'hainit_startup_passed 1',
      'hainit_signals_received_total{signal="SIGHUP"} 3',
      'hainit_signals_received_total{signal="SIGTERM"} 1',
      'hainit_signals_forwarded_total{signal="SIGHUP"} 3',
      'hainit_orphans_reaped_total 7',
      'hainit_check_up{check="child"} 1',
      'hainit_check_up{check="ready-http"} 0',
      'hainit_check_duration_seconds{check="ready-http"} 1.5',
      'hainit_child_processes 3',
      'hainit_child_memory_rss_bytes 1024',
      'hainit_child_cpu_seconds_total 1.5',
      '# TYPE hainit_orphans_reaped_total counter',
      '# TYPE hainit_child_up gauge',
    ]) assert.ok(lines.includes(expected), `missing ${expected}\n${text}`);
    assert.ok(!text.includes('secret reason'), 'reasons stay in the log');
    assert.ok(!lines.some((l) => l.startsWith('hainit_check_duration_seconds{check="child"}')), 'built-ins have no duration');
    // Every sample line belongs to a family declared before it.
    const declared = new Set<string>();
    for (const l of lines) {
      const m = /^# TYPE (\S+) (gauge|counter)$/.exec(l);
      if (m) declared.add(m[1]);
      else if (l && !l.startsWith('#')) assert.ok(declared.has(l.split(/[{ ]/)[0]), l);
    }
  });

  it('child down once exited; no usage families when /proc cannot tell', () => {
    const life = new FakeLifecycle();
    life.enter('running');
    life.enter('exited');
    const text = renderMetrics({ lifecycle: life, orphansReaped: () => 0, checks: [], startupPassed: () => false, usage: () => undefined });
    assert.match(text, /^hainit_child_up 0$/m);
    assert.doesNotMatch(text, /hainit_child_memory/);
  });
});
