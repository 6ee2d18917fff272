/**
 * Runs hainit the way the integration tests need it: as PID 1 of a fresh PID namespace
 * (`unshare --pid --fork --kill-child --mount-proc`, the default) or as a plain child of the test.
 *
 *   const h = startHainit(['-r', 'USR1:USR2', 'python3', fixture('sigecho.py')]);
 *   await h.waitForOutput(/ready/);
 *   await h.signal('USR1');
 *   await h.waitForOutput(/got 12/);
 *   const r = await h.stop();
 *
 * Every process started here is tracked; `cleanupAll()` (registered as a root `afterEach` hook
 * when this module is loaded by mocha) SIGKILLs whatever is left, the whole tree, so no test
 * leaves a process behind. Each run also has a hard time limit (`timeoutMs`, default 20 s).
 *
 * Note on signals to a PID 1: the kernel drops a signal sent from outside the namespace to its
 * init while init has the default disposition, i.e. before Node has started and hainit installed
 * its handlers. Send signals only after the child said it is ready (`waitForOutput`).
 */
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseStatus, realProcFs } from '../src/proc/procfs';
import { childrenOf as procChildrenOf, descendantsOf as procDescendantsOf } from '../src/proc/tree';

export const HAINIT = path.resolve(__dirname, '../../bin/hainit');
export const FIXTURES = path.resolve(__dirname, '../../test/fixtures');

/**
 * The real python3 executable (not a version-manager shim, which would change the environment
 * and cost a shell start every time). The fixtures need python3: it can catch real-time signals.
 */
export const PYTHON: string = (() => {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : 'python3';
})();

/** Absolute path of a file in test/fixtures. */
export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export interface HainitOptions {
  /** the environment of hainit; default: the test's own, without any HAINIT_* variable */
  env?: NodeJS.ProcessEnv;
  /** written to hainit's stdin, which is then closed; without it stdin is /dev/null */
  stdin?: string;
  /** default true: PID 1 of a new PID namespace (unshare); false: a plain child of the test */
  asPid1?: boolean;
  /** descriptors from 3 on, as in child_process.spawn's stdio array (index 0 = fd 3) */
  stdio?: Array<'pipe' | 'ignore' | 'inherit' | number | null | undefined>;
  cwd?: string;
  /** hard limit: after it the whole tree is SIGKILLed and `exited` resolves with timedOut */
  timeoutMs?: number;
  /** a command line that runs first and then execs the rest (e.g. to enter a cgroup) */
  prefix?: readonly string[];
}

export interface HainitResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** from spawn to exit */
  ms: number;
  timedOut: boolean;
}

/**
 * hainit's own account of a shutdown, read from its log lines (README "The shutdown sequence"):
 * each step in hainit's milliseconds since the shutdown began. What a test reads here is what
 * hainit did and when by its own clock, so a loaded machine (python3 starting slowly, a signal
 * delivered late, the test's own timers) does not move the figures. Absent: the step never came.
 */
export interface ShutdownLog {
  /** "shutdown: delay over after N ms" */
  delayOverMs?: number;
  /** "shutdown: sending SIGX to the child after N ms" */
  stopSignal?: string;
  stopSignalMs?: number;
  /** "the child did not exit within the grace period: SIGKILL to K process(es) after N ms" */
  sigkillMs?: number;
  /** "shutdown: done in N ms, exit code C" */
  doneMs?: number;
  code?: number;
}

export function shutdownLog(stderr: string): ShutdownLog {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) : undefined;
  };
  const stop = /shutdown: sending (SIG\w+) to the child after (\d+) ms/.exec(stderr);
  const done = /shutdown: done in (\d+) ms, exit code (\d+)/.exec(stderr);
  return {
    delayOverMs: num(/shutdown: delay over after (\d+) ms/),
    stopSignal: stop?.[1],
    stopSignalMs: stop ? Number(stop[2]) : undefined,
    sigkillMs: num(/within the grace period: SIGKILL to \d+ process\(es\) after (\d+) ms/),
    doneMs: done ? Number(done[1]) : undefined,
    code: done ? Number(done[2]) : undefined,
  };
}

/** hainit's log lines under --log-format json, each with its own time (ms since the epoch, hainit's clock). */
export function jsonLog(stderr: string): { ms: number; msg: string; [field: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      const o = JSON.parse(l) as { time: string; msg: string };
      return { ...o, ms: Date.parse(o.time) };
    });
}

/** Each pattern matches `text` after where the one before it matched: the order things happened in. */
export function assertInOrder(text: string, patterns: readonly RegExp[]): void {
  let from = 0;
  for (const re of patterns) {
    const m = new RegExp(re.source, re.flags.replace('g', '')).exec(text.slice(from));
    assert.ok(m, `${re} after ${JSON.stringify(text.slice(Math.max(0, from - 80), from))}, in:\n${text}`);
    from += m.index + m[0].length;
  }
}

/** hainit's own usage error: 125, nothing on stdout, one line on stderr that names `value`. */
export function assertUsageError(r: HainitResult, value: string): void {
  assert.equal(r.code, 125, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
  assert.ok(lines[0].includes(value), `stderr names ${JSON.stringify(value)}: ${r.stderr}`);
}

export interface Running {
  readonly proc: ChildProcess;
  /** hainit's pid as the host sees it (for unshare: the child of the unshare process) */
  hostPid(): Promise<number>;
  /** sends a signal (name like 'USR1'/'SIGUSR1' or number) to hainit */
  signal(sig: string | number): Promise<void>;
  readonly stdout: string;
  readonly stderr: string;
  /** resolves with the first match in stdout (or stderr) appearing from now or earlier */
  waitForOutput(re: RegExp, timeoutMs?: number, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  readonly exited: Promise<HainitResult>;
  /** SIGKILLs hainit and everything below it; resolves with the result */
  kill(): Promise<HainitResult>;
}

const live = new Set<Running>();

/** Environment without any HAINIT_* setting the test runner may have. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HAINIT_')) env[k] = v;
  return { ...env, ...extra };
}

/** The command line that starts hainit with `args`. */
export function hainitCommand(args: readonly string[], asPid1 = true): string[] {
  const node = [process.execPath, HAINIT, ...args];
  return asPid1 ? ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', '--', ...node] : node;
}

export function startHainit(args: readonly string[], opts: HainitOptions = {}): Running {
  const asPid1 = opts.asPid1 ?? true;
  const [cmd, ...cmdArgs] = [...(opts.prefix ?? []), ...hainitCommand(args, asPid1)];
  const started = Date.now();
  const proc = spawn(cmd, cmdArgs, {
    env: opts.env ?? cleanEnv(),
    cwd: opts.cwd,
    stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...(opts.stdio ?? [])],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const changed = (): void => {
    for (const l of [...listeners]) l();
  };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; changed(); });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; changed(); });
  if (opts.stdin !== undefined) {
    proc.stdin!.on('error', () => undefined);
    proc.stdin!.end(opts.stdin);
  }

  let timedOut = false;
  let done = false;
  const exited = new Promise<HainitResult>((resolve) => {
    let code: number | null = null;
    let signal: string | null = null;
    proc.on('exit', (c, s) => { code = c; signal = s; });
    proc.on('error', (e) => { stderr += `\n[spawn error] ${e.message}`; });
    // 'close': the process exited and its stdout/stderr reached EOF (everything read).
    proc.on('close', (c, s) => {
      done = true;
      clearTimeout(timer);
      live.delete(running);
      changed();
      resolve({ code: code ?? c, signal: signal ?? s, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });

  const knownPid = async (): Promise<number> => {
    if (!asPid1) return proc.pid!;
    const outer = proc.pid!;
    const t0 = Date.now();
    for (;;) {
      const kids = childrenOf(outer);
      if (kids.length) return kids[0];
      if (done || Date.now() - t0 > 10_000) throw new Error(`hainit under unshare (pid ${outer}) never appeared`);
      await sleep(5);
    }
  };
  let hostPidPromise: Promise<number> | undefined;

  const running: Running = {
    proc,
    hostPid: () => (hostPidPromise ??= knownPid()),
    async signal(sig) {
      const pid = await running.hostPid();
      process.kill(pid, typeof sig === 'number' ? sig : (sig.startsWith('SIG') ? sig : `SIG${sig}`) as NodeJS.Signals);
    },
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    waitForOutput(re, timeoutMs = 10_000, stream = 'stdout') {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = (stream === 'stdout' ? stdout : stderr).match(re);
          if (m) return finish(() => resolve(m));
          if (done) return finish(() => reject(new Error(`hainit exited before ${stream} matched ${re}\nstdout: ${stdout}\nstderr: ${stderr}`)));
        };
        const t = setTimeout(() => finish(() => reject(new Error(`timeout (${timeoutMs} ms) waiting for ${re} on ${stream}\nstdout: ${stdout}\nstderr: ${stderr}`))), timeoutMs);
        const finish = (f: () => void): void => {
          clearTimeout(t);
          listeners.delete(check);
          f();
        };
        listeners.add(check);
        check();
      });
    },
    exited,
    async kill() {
      killTree(proc.pid!);
      return exited;
    },
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(proc.pid!);
  }, opts.timeoutMs ?? 20_000);
  live.add(running);
  return running;
}

/** Starts hainit and resolves when it has exited (and its output is complete). */
export function runHainit(args: readonly string[], opts: HainitOptions = {}): Promise<HainitResult> {
  return startHainit(args, opts).exited;
}

/** SIGKILLs every process still running that this module started, with all descendants. */
export async function cleanupAll(): Promise<void> {
  const all = [...live];
  for (const r of all) killTree(r.proc.pid!);
  await Promise.all(all.map((r) => Promise.race([r.exited, sleep(5000)])));
}

/** Polls `cond` every 10 ms until it is true; throws `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timeout (${timeoutMs} ms): ${what()}`);
    await sleep(10);
  }
}

/** Runs `fn` over `items`, at most `limit` at a time; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Direct children of a process, from /proc (every thread's list). */
export function childrenOf(pid: number): number[] {
  return procChildrenOf('/proc', pid);
}

/** pid and all its descendants, parents first. */
export function descendantsOf(pid: number): number[] {
  return [pid, ...procDescendantsOf(realProcFs, pid)];
}

/** Stops the whole tree first (so nothing forks past us), then SIGKILLs it. */
export function killTree(pid: number): void {
  const send = (p: number, s: NodeJS.Signals): void => {
    try {
      process.kill(p, s);
    } catch {
      // gone already
    }
  };
  let tree = descendantsOf(pid);
  for (let round = 0; round < 3; round++) {
    for (const p of tree) send(p, 'SIGSTOP');
    const again = descendantsOf(pid);
    const grew = again.some((p) => !tree.includes(p));
    tree = [...new Set([...tree, ...again])];
    if (!grew) break;
  }
  for (const p of tree) send(p, 'SIGKILL');
}

/** Fields of /proc/PID/status as a map ("SigIgn" -> "0000000000001000"). */
export function procStatus(pid: number | 'self'): Map<string, string> {
  return parseStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

// ---- terminals --------------------------------------------------------------------------------

export type PtyStep = ['expect', string] | ['send', string] | ['sleep', number];

export interface PtyResult {
  /** the command's exit code (hainit's, or unshare's, which passes it through); null on a signal or timeout */
  code: number | null;
  signal: number | null;
  /** everything the terminal showed */
  output: string;
  /** the driver gave up (an expect did not match in time) */
  failed: string | null;
}

/**
 * Runs hainit on a new pseudo-terminal (test/fixtures/ptydrive.py: the command is the session
 * leader with the terminal as stdin/stdout/stderr) and plays `steps` against it.
 */
export function ptyHainit(args: readonly string[], steps: PtyStep[], opts: { asPid1?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<PtyResult> {
  return ptyRun(hainitCommand(args, opts.asPid1 ?? true), steps, opts);
}

/** Runs any command (an interactive shell that then starts hainit) on a new pseudo-terminal, as ptyHainit. */
export async function ptyRun(argv: readonly string[], steps: PtyStep[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<PtyResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const proc = spawn(PYTHON, [fixture('ptydrive.py'), JSON.stringify(steps), String(timeoutMs / 1000), ...argv], {
    env: opts.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => { output += d; });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const timer = setTimeout(() => killTree(proc.pid!), timeoutMs + 5000);
  await new Promise<void>((resolve) => proc.on('close', () => resolve()));
  clearTimeout(timer);
  const m = output.match(/\nPTYDRIVE exit=(\S+) signal=(\S+)\n$/);
  const failed = output.match(/\nPTYDRIVE (timeout[^\n]*)/);
  return {
    code: m && m[1] !== '-' ? Number(m[1]) : null,
    signal: m && m[2] !== '-' ? Number(m[2]) : null,
    output: output + (err ? `\n[driver stderr] ${err}` : ''),
    failed: failed ? failed[1] : m ? null : 'driver ended without a result',
  };
}

// Registered once, at load time, on the root suite: every test file that uses this helper
// gets its leftovers killed after each test, even when the test forgot or failed midway.
if (typeof afterEach === 'function') afterEach(cleanupAll);
