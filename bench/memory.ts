/**
 * The memory watchdog's sampling cost (issue 6): CPU per sample of `--max-memory` for a process
 * tree of 100 processes (a python root, 9 children, 10 grandchildren each), read the way hainit
 * reads it (src/watch/memory.ts: /proc children lists and /proc/PID/stat, no spawn), and of the
 * cgroup reading used for a percentage. Prints numbers; asserts nothing.
 *
 *   npx tsc -p . && node lib/bench/memory.js [samples]
 */
import { spawn } from 'node:child_process';
import { realProcFs } from '../src/proc/procfs';
import { descendantsOf } from '../src/proc/tree';
import { MemorySampler, findCgroupMemory, cgroupSampler, treeSampler } from '../src/watch/memory';

const TREE = `
import os, signal, sys, time
def hold():
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    while True: time.sleep(60)
for i in range(9):
    if os.fork() == 0:
        for j in range(10):
            if os.fork() == 0: hold()
        hold()
print("up", flush=True)
hold()
`;

function measure(name: string, sampler: MemorySampler, samples: number): void {
  for (let i = 0; i < 20; i++) sampler();
  const wall: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < samples; i++) {
    const t0 = process.hrtime.bigint();
    sampler();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  const cpu = process.cpuUsage(cpu0);
  wall.sort((a, b) => a - b);
  const perSample = (cpu.user + cpu.system) / samples;
  const r = sampler();
  console.log(
    `${name.padEnd(34)} cpu/sample ${perSample.toFixed(0).padStart(5)} µs (user ${(cpu.user / samples).toFixed(0)}, sys ${(cpu.system / samples).toFixed(0)})` +
      `  wall median ${wall[Math.floor(samples / 2)].toFixed(0)} µs, p99 ${wall[Math.floor(samples * 0.99)].toFixed(0)} µs` +
      `  = ${((perSample / 2_000_000) * 100).toFixed(3)}% of one CPU at the 2 s interval  (reads ${r ? (r.usedBytes / 2 ** 20).toFixed(1) : '?'} MiB)`,
  );
}

async function main(): Promise<void> {
  const samples = Number(process.argv[2] ?? 500);
  // Its own process group, so one kill ends all 100 at the end.
  const tree = spawn('python3', ['-c', TREE], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  await new Promise<void>((resolve) => tree.stdout.once('data', () => resolve()));
  try {
    const countTree = () => descendantsOf(realProcFs, process.pid).length;
    // The grandchildren are forked after "up": wait until all 100 exist.
    let count = countTree();
    for (let i = 0; i < 200 && count < 100; i++, count = countTree()) await new Promise((r) => setTimeout(r, 25));
    console.log(`memory watchdog sampling cost, ${samples} samples, a tree of ${count} processes under this process (node ${process.version})`);
    measure(`process tree RSS (${count} processes)`, treeSampler(450 * 2 ** 20), samples);
    const cg = findCgroupMemory();
    if (cg) measure(`cgroup v${cg.version} working set (percentage)`, cgroupSampler(90, cg), samples);
    else console.log('cgroup: no memory cgroup here');
  } finally {
    process.kill(-tree.pid!, 'SIGTERM');
  }
}

void main();
