import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseInvocation } from '../../src/config/parse';
import { UsageError, parseSize } from '../../src/config/values';
import { memoryCheck } from '../../src/health/checks';
import { renderMetrics } from '../../src/health/metrics';
import { ProcFs, realProcFs } from '../../src/proc/procfs';
import { Logger } from '../../src/log/logger';
import {
  MemoryReading, MemoryWatchdog, cgroupSampler, findCgroupMemory, readCgroupMemory, samplerFor, treeSampler,
} from '../../src/watch/memory';
import { FakeLifecycle } from '../health/fakes';
import { FakeClock } from './fake-clock';

const quiet = new Logger('error', 'text');
const MiB = 2 ** 20;

describe('sizes (--max-memory)', () => {
  it('reads Kubernetes quantities, bytes and percentages', () => {
    assert.deepEqual(parseSize('450Mi', 'x'), { kind: 'bytes', bytes: 450 * MiB });
    assert.deepEqual(parseSize('1Gi', 'x'), { kind: 'bytes', bytes: 2 ** 30 });
    assert.deepEqual(parseSize('1.5Gi', 'x'), { kind: 'bytes', bytes: 1.5 * 2 ** 30 });
    assert.deepEqual(parseSize('512M', 'x'), { kind: 'bytes', bytes: 512e6 });
    assert.deepEqual(parseSize('64k', 'x'), { kind: 'bytes', bytes: 64_000 });
    assert.deepEqual(parseSize(' 1048576 ', 'x'), { kind: 'bytes', bytes: 1048576 });
    assert.deepEqual(parseSize('90%', 'x'), { kind: 'percent', percent: 90 });
    assert.deepEqual(parseSize('12.5%', 'x'), { kind: 'percent', percent: 12.5 });
  });

  it('refuses what is not a size, naming the value', () => {
    for (const bad of ['', 'lots', '450MB', '1gi', '-5Mi', '0', '0%', '101%', '90 %', 'Mi']) {
      assert.throws(() => parseSize(bad, '--max-memory'), (e: Error) => e instanceof UsageError && e.message.includes(`"${bad}"`) && e.message.includes('--max-memory'), bad);
    }
  });

  it('the watchdog and restart options, by flag and by environment', () => {
    const inv = parseInvocation(['--max-memory', '90%', '--restart', 'on-failure', '--restart-delay', '200ms', 'app'], { HAINIT_MAX_RESTARTS: '2' });
    assert.equal(inv.kind, 'run');
    const c = (inv as Extract<typeof inv, { kind: 'run' }>).config;
    assert.deepEqual(c.maxMemory, { kind: 'percent', percent: 90 });
    assert.equal(c.restart, 'on-failure');
    assert.equal(c.maxRestarts, 2);
    assert.equal(c.restartDelayMs, 200);
    assert.equal(c.restartWindowMs, 60_000);
    assert.equal(c.memoryIntervalMs, 2_000);
    const d = (parseInvocation(['app'], {}) as Extract<typeof inv, { kind: 'run' }>).config;
    assert.deepEqual([d.maxMemory, d.restart, d.maxRestarts, d.restartDelayMs], [undefined, 'never', 5, 1000]);
    assert.throws(() => parseInvocation(['--restart', 'unless-stopped', 'app'], {}), /unknown restart policy "unless-stopped"/);
    assert.throws(() => parseInvocation(['app'], { HAINIT_MAX_MEMORY: '2 apples' }), /HAINIT_MAX_MEMORY: invalid size/);
  });
});

/** A fake cgroup hierarchy on disk, as the kernel lays it out. */
function fakeCgroups(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'hainit-cgroup-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return root;
}

describe('cgroup memory', () => {
  const roots: string[] = [];
  after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));
  const make = (files: Record<string, string>) => {
    const r = fakeCgroups(files);
    roots.push(r);
    return r;
  };

  it('v2: finds its cgroup, takes the tightest memory.max on the way up, subtracts inactive file cache', () => {
    const root = make({
      'cgroup.controllers': 'cpu memory pids\n',
      'kubepods/memory.max': '1073741824\n',
      'kubepods/pod1/memory.max': 'max\n',
      'kubepods/pod1/app/memory.max': 'max\n',
      'kubepods/pod1/app/memory.current': String(600 * MiB),
      'kubepods/pod1/app/memory.stat': `anon 1000\nfile 2000\ninactive_file ${100 * MiB}\nactive_file 5\n`,
    });
    const cg = findCgroupMemory(realProcFs, root, '0::/kubepods/pod1/app\n');
    assert.deepEqual(cg, { version: 2, dir: `${root}/kubepods/pod1/app`, mount: root });
    assert.deepEqual(readCgroupMemory(cg!), { usageBytes: 600 * MiB, workingSetBytes: 500 * MiB, limitBytes: 2 ** 30 });
    const r = cgroupSampler(50, cg!)()!;
    assert.deepEqual(r, { usedBytes: 500 * MiB, limitBytes: 512 * MiB, source: 'cgroup', cgroupLimitBytes: 2 ** 30 });
  });

  it('v2 with a cgroup namespace: /proc/self/cgroup says "/", the files are at the root', () => {
    const root = make({ 'cgroup.controllers': 'memory\n', 'memory.current': '100', 'memory.max': '400', 'memory.stat': 'inactive_file 0\n' });
    const cg = findCgroupMemory(realProcFs, root, '0::/\n')!;
    assert.equal(cg.dir, root);
    assert.deepEqual(cgroupSampler(90, cg)(), { usedBytes: 100, limitBytes: 360, source: 'cgroup', cgroupLimitBytes: 400 });
  });

  it('v1: the memory line of /proc/self/cgroup; a host path (docker without cgroupns) falls back to the mounted cgroup', () => {
    const stat = `cache 10\ntotal_inactive_file ${20 * MiB}\nhierarchical_memory_limit ${256 * MiB}\n`;
    const root = make({
      'memory/memory.usage_in_bytes': String(220 * MiB),
      'memory/memory.limit_in_bytes': '9223372036854771712\n',
      'memory/memory.stat': stat,
    });
    const self = '12:pids:/docker/abc\n4:cpu,memory:/docker/abc\n0::/\n';
    const cg = findCgroupMemory(realProcFs, root, self)!;
    assert.deepEqual(cg, { version: 1, dir: `${root}/memory`, mount: `${root}/memory` });
    // The limit is the parent's (hierarchical_memory_limit), the own one being "unlimited".
    assert.deepEqual(readCgroupMemory(cg), { usageBytes: 220 * MiB, workingSetBytes: 200 * MiB, limitBytes: 256 * MiB });
  });

  it('no limit anywhere: a percentage has nothing to act on, and says so once', () => {
    const root = make({ 'cgroup.controllers': 'memory\n', 'memory.current': '100', 'memory.max': 'max\n', 'memory.stat': '' });
    const r = (samplerFor({ kind: 'percent', percent: 90 }, { cgroupRoot: root, selfCgroup: '0::/\n' }) as () => MemoryReading)();
    assert.equal(r.limitBytes, undefined);
    const lines: string[] = [];
    const log = new Logger('warn', 'text');
    (log as unknown as { write: (l: string, m: string) => void }).write = (_l, m) => lines.push(m);
    const w = new MemoryWatchdog({ kind: 'percent', percent: 90 }, () => r, new FakeClock(), log, 1000, () => undefined);
    for (let i = 0; i < 5; i++) assert.equal(w.record(r), false);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /no memory limit/);
  });

  it('no memory cgroup at all: the sampler is a reason, not a crash', () => {
    const root = make({ 'cpu/cpu.shares': '1024' });
    const s = samplerFor({ kind: 'percent', percent: 90 }, { cgroupRoot: root, selfCgroup: '3:cpu:/\n' });
    assert.equal(typeof s, 'string');
    assert.match(s as string, /no memory cgroup found/);
  });
});

describe('process tree memory', () => {
  it('sums the RSS of every live descendant of hainit, zombies excluded', () => {
    const stat = (pid: number, ppid: number, state: string, rss: number) =>
      `${pid} (a b) c) ${state} ${ppid} 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 1000 ${rss} 0`;
    const files: Record<string, string> = {
      '/proc/1/task/1/children': '10 11',
      '/proc/10/task/10/children': '12',
      '/proc/10/task/13/children': '14',
      '/proc/1/stat': stat(1, 0, 'S', 999_999),
      '/proc/10/stat': stat(10, 1, 'S', 100),
      '/proc/11/stat': stat(11, 1, 'Z', 0),
      '/proc/12/stat': stat(12, 10, 'R', 50),
      '/proc/14/stat': stat(14, 10, 'S', 25),
    };
    const tasks: Record<string, string[]> = { '/proc/1/task': ['1'], '/proc/10/task': ['10', '13'] };
    const proc: ProcFs = { read: (p) => files[p], list: (p) => tasks[p] ?? (p.startsWith('/proc/') ? [] : undefined) };
    const r = treeSampler(1000 * 4096, proc, 1, { pageSize: 4096, clockTicks: 100 })()!;
    assert.deepEqual(r, { usedBytes: 175 * 4096, limitBytes: 1000 * 4096, source: 'tree' });
  });
});

describe('memory watchdog (consecutive samples)', () => {
  const limit = { kind: 'bytes', bytes: 450 * MiB } as const;
  const at = (mib: number): MemoryReading => ({ usedBytes: mib * MiB, limitBytes: 450 * MiB, source: 'tree' });

  it('acts only after 3 samples in a row over the limit; one under starts the count over', () => {
    const w = new MemoryWatchdog(limit, () => undefined, new FakeClock(), quiet, 2000, () => undefined);
    const seen = [500, 500, 400, 500, 500, undefined, 451, 500].map((m) => w.record(m === undefined ? undefined : at(m)));
    // A failed read (undefined) neither counts nor breaks the run.
    assert.deepEqual(seen, [false, false, false, false, false, false, true, false]);
    assert.equal(w.tripped, true);
    assert.equal(w.describe(at(512.3), 3), 'memory (process tree RSS) 512.3 MiB over --max-memory 450.0 MiB for 3 samples');
  });

  it('exactly at the limit is not over it', () => {
    const w = new MemoryWatchdog(limit, () => undefined, new FakeClock(), quiet, 2000, () => undefined);
    for (let i = 0; i < 10; i++) assert.equal(w.record(at(450)), false);
  });

  it('samples on the interval, calls the action once, and starts afresh for the next child', async () => {
    const clock = new FakeClock();
    const script = [100, 500, 500, 500, 500, 500];
    const calls: Array<[number, number, number]> = [];
    const w = new MemoryWatchdog(limit, () => at(script.shift() ?? 100), clock, quiet, 2000, (r, n) => calls.push([clock.now(), r.usedBytes / MiB, n]));
    w.start();
    await clock.runUntil(20_000);
    assert.deepEqual(calls, [[8000, 500, 3]]);
    assert.equal(script.length, 2, 'no sampling once it acted');
    script.push(500);
    w.start();
    assert.equal(w.tripped, false);
    await clock.runUntil(26_000);
    assert.deepEqual(calls.map((c) => c[0]), [8000, 26000]);
    w.stop();
  });

  it('the memory check fails once it acted, and /metrics shows the figures', () => {
    const clock = new FakeClock();
    const w = new MemoryWatchdog(limit, () => undefined, clock, quiet, 2000, () => undefined);
    const check = memoryCheck(w, clock);
    w.record(at(500));
    assert.equal(check.state().ok, true, 'one sample over does not fail it');
    w.record(at(500));
    w.record(at(512));
    assert.equal(check.state().ok, false);
    assert.equal(check.state().reason, '512.0 MiB over --max-memory 450.0 MiB for 3 samples');
    w.actions.restart++;
    const life = Object.assign(new FakeLifecycle(), { memory: w });
    const text = renderMetrics({ lifecycle: life, orphansReaped: () => 0, checks: [check], startupPassed: () => true, usage: () => undefined });
    assert.match(text, new RegExp(`^hainit_memory_watchdog_usage_bytes ${512 * MiB}$`, 'm'));
    assert.match(text, new RegExp(`^hainit_memory_watchdog_limit_bytes ${450 * MiB}$`, 'm'));
    assert.match(text, /^hainit_memory_watchdog_samples_over 3$/m);
    assert.match(text, /^hainit_memory_watchdog_actions_total\{action="restart"\} 1$/m);
    assert.match(text, /^hainit_check_up\{check="memory"\} 0$/m);
  });
});
