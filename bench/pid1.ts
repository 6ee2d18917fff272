/**
 * Measurements with each init as a real PID 1 (`unshare --pid --fork --mount-proc INIT -- ...`),
 * observed from the host: the host's /proc shows the namespace's processes under host pids.
 *
 * 2b. RSS of the init while it supervises `sleep 30`.
 * 3.  Reaping 2000 orphans: end to end (release -> none left), and 2000 ready zombies
 *     (init SIGSTOPped while they exit, then SIGCONT -> none left).
 * 4.  Signal forwarding latency (kill(init, SIGUSR1) -> the child's handler runs).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DIST_HAINIT, Init, LineReader, NodeFlavour, ROOT, UNSHARE, childrenOf, finish, memoryOf, monoNs, procStat, quantile, median, sleep, sleepSync, waitFor, zombiesOf } from './util';

/** Host pid of the namespace's PID 1: the only child of `unshare --fork`. */
async function initPidOf(unsharePid: number): Promise<number> {
  return waitFor('the init to start', () => childrenOf(unsharePid)[0]);
}

// ---------------------------------------------------------------- 2b. RSS supervising sleep

export interface SteadyResult {
  readonly name: string;
  /** the subject this one is compared with (its own bare node), if any */
  readonly ref?: string;
  /** medians over rounds, kB */
  readonly mem: Record<string, number>;
  /** min and max VmRSS over rounds, kB */
  readonly vmRssMin: number;
  readonly vmRssMax: number;
}

export interface SteadySubject extends Init {
  readonly ref?: string;
  readonly hainit?: boolean;
}

export const spawnOnlyName = (f: NodeFlavour): string => `node (spawn only) (${f.label})`;

/**
 * Per node flavour, the floor for any Node init (a Node PID 1 that only spawns the child) and
 * `node bin/hainit` on the same binary; dist/hainit against Node 24's floor; then the C inits.
 */
export function steadySubjects(list: Init[], flavours: NodeFlavour[], dist?: NodeFlavour): SteadySubject[] {
  const out: SteadySubject[] = flavours.map((f) => ({
    name: spawnOnlyName(f),
    argv: (c) => [f.node, '-e', `require("child_process").spawn(${JSON.stringify(c[0])}, ${JSON.stringify(c.slice(1))}, { stdio: "inherit" })`],
  }));
  for (const f of flavours) out.push({ name: `${f.label} bin/hainit`, argv: (c) => [f.node, path.join(ROOT, 'bin', 'hainit'), '--', ...c], ref: spawnOnlyName(f), hainit: true });
  if (dist && fs.existsSync(DIST_HAINIT)) out.push({ name: 'dist/hainit', argv: (c) => [DIST_HAINIT, '--', ...c], ref: spawnOnlyName(dist), hainit: true });
  for (const i of list) if (i.name !== 'hainit') out.push(i);
  return out;
}

export async function measureSteadyRss(subjects: SteadySubject[], rounds: number, settleMs: number): Promise<SteadyResult[]> {
  const samples = subjects.map(() => [] as Record<string, number>[]);
  for (let k = 0; k < rounds; k++) {
    for (let i = 0; i < subjects.length; i++) {
      const cp = spawn(UNSHARE[0], [...UNSHARE.slice(1), ...subjects[i].argv(['sleep', '30'])], { stdio: 'ignore' });
      const init = await initPidOf(cp.pid!);
      await waitFor('sleep to start', () => childrenOf(init).find((c) => procStat(c)?.comm === 'sleep'));
      await sleep(settleMs);
      samples[i].push(memoryOf(init));
      process.kill(init, 'SIGKILL');
      await finish(cp, [init]);
    }
  }
  return subjects.map((s, i) => {
    const mem: Record<string, number> = {};
    for (const key of Object.keys(samples[i][0] ?? {})) mem[key] = median(samples[i].map((m) => m[key]));
    const vm = samples[i].map((m) => m.VmRSS);
    return { name: s.name, ref: s.ref, mem, vmRssMin: Math.min(...vm), vmRssMax: Math.max(...vm) };
  });
}

// ---------------------------------------------------------------- 3. reaping

export interface ReapSubject {
  readonly name: string;
  /** argv under unshare; the factory reads commands on stdin */
  readonly argv: string[];
  /** the factory is PID 1 itself (no init in between) */
  readonly selfReap: boolean;
}

export function reapSubjects(list: Init[], factory: string, n: number): ReapSubject[] {
  return [
    { name: 'none (factory is PID 1, waitpid loop)', argv: [factory, String(n), '--self-reap'], selfReap: true },
    ...list.map((i) => ({ name: i.name, argv: i.argv([factory, String(n)]), selfReap: false })),
  ];
}

export interface ReapRound {
  /** release -> no orphan left (exited and reaped), ms */
  readonly endToEndMs?: number;
  /** SIGCONT of a stopped init with N zombies waiting -> none left, ms */
  readonly zombiesMs?: number;
  /** the CPU time the init's main thread ran meanwhile (schedstat: user and kernel), ms; unlike
   * zombiesMs it does not grow with the machine's load */
  readonly zombiesCpuMs?: number;
}

/**
 * One round in a fresh namespace. mode 'e2e': release the blocked orphans and poll until the
 * init has no child left but the factory. mode 'zombies': SIGSTOP the init, release, wait
 * until all N are zombies, SIGCONT, poll until none is left.
 */
/** Nanoseconds the main thread of `pid` has run on a CPU (the first field of schedstat). */
function runNs(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').split(' ')[0]);
}

export async function reapRound(s: ReapSubject, n: number, mode: 'e2e' | 'zombies', pollUs: number): Promise<ReapRound> {
  const cp = spawn(UNSHARE[0], [...UNSHARE.slice(1), ...s.argv], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = new LineReader(cp.stdout!);
  let init = 0;
  try {
    init = await initPidOf(cp.pid!);
    const factory = s.selfReap ? 0 : await waitFor('the factory to start', () => childrenOf(init)[0]);
    const orphans = (): number => childrenOf(init).filter((p) => p !== factory).length;
    cp.stdin!.write('c');
    const ready = await lines.next(120000);
    if (ready !== 'ready') throw new Error(`factory said ${ready}`);
    const before = orphans();
    if (before !== n) throw new Error(`${s.name}: expected ${n} orphans under the init, found ${before}`);

    let result: ReapRound;
    const deadline = Date.now() + 60000;
    const pollUntilNone = (): bigint => {
      // Synchronous on purpose: nothing else runs in this process while timing.
      while (orphans() > 0) {
        if (Date.now() > deadline) throw new Error(`${s.name}: orphans still there after 60 s`);
        sleepSync(pollUs / 1000);
      }
      return monoNs();
    };
    if (mode === 'e2e') {
      // libuv writes to a pipe at once when it can: the factory sees 'r' while we poll.
      cp.stdin!.write('r');
      const end = pollUntilNone();
      const released = await lines.next();
      const m = /^released (\d+)$/.exec(released);
      if (!m) throw new Error(`factory said ${released}`);
      result = { endToEndMs: Number(end - BigInt(m[1])) / 1e6 };
    } else {
      process.kill(init, 'SIGSTOP');
      await waitFor('the init to stop', () => (procStat(init)?.state === 'T' ? true : undefined));
      cp.stdin!.write('r');
      await lines.next();
      await waitFor('all orphans to be zombies', () => {
        const kids = childrenOf(init).filter((p) => p !== factory);
        return kids.length === n && kids.every((p) => procStat(p)?.state === 'Z') ? true : undefined;
      }, 60000, 20);
      const cpu0 = runNs(init);
      const start = monoNs();
      process.kill(init, 'SIGCONT');
      const end = pollUntilNone();
      result = { zombiesMs: Number(end - start) / 1e6, zombiesCpuMs: (runNs(init) - cpu0) / 1e6 };
    }
    // Cross-check with a full scan of /proc, as the brief defines "no zombie remains".
    const left = zombiesOf(init);
    if (left !== 0) throw new Error(`${s.name}: ${left} zombies still under the init`);
    cp.stdin!.end('q');
    await finish(cp, [init]);
    return result;
  } catch (e) {
    if (init) {
      try {
        process.kill(init, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await finish(cp, [], 1000);
    throw e;
  }
}

// ---------------------------------------------------------------- 4. signal forwarding

export interface SignalResult {
  readonly name: string;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  readonly count: number;
}

export function measureSignals(siglat: string, subject: Init, count: number, gapUs: number, direct: boolean, name: string): SignalResult {
  const argv = [String(count), String(gapUs), direct ? 'direct' : 'init', '--', ...UNSHARE, ...subject.argv([siglat, 'child'])];
  const res = spawnSync(siglat, ['send', ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  const lat = res.stdout.split('\n').filter(Boolean).map((l) => Number(l) / 1000);
  if (res.status !== 0 || lat.length !== count) {
    throw new Error(`siglat for ${name} failed (${res.status}): ${res.stderr.trim()}`);
  }
  return { name, p50Us: quantile(lat, 0.5), p99Us: quantile(lat, 0.99), maxUs: Math.max(...lat), count };
}
