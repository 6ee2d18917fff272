/**
 * hainit's life, top to bottom: parse, configure signals and reaping, bind the probe endpoint,
 * start the child, then react (forward, reap, shut down) until the child's exit code is known.
 */
import { Config, Invocation } from './config/config';
import { helpText } from './config/options';
import { parseInvocation } from './config/parse';
import { UsageError } from './config/values';
import { Logger, writeAll } from './log/logger';
import { internalError, step } from './log/internal-error';
import { exitFlushTime, guardProcessStderr, outputFor } from './log/output';
import { NativeAddon, addonSource, native } from './native';
import { environmentForTheApp, rawCommand } from './native/app-env';
import { NAMES_PER_SECOND, Reaper } from './reaper/reaper';
import { realClock } from './runtime/clock';
import { signalName } from './signals/names';
import { SignalRouter } from './signals/router';
import { EXIT_OK, EXIT_USAGE } from './exit-codes';
import { Supervisor } from './supervisor/supervisor';
import { Health, healthWanted, startHealth } from './health';
// Imported, not required on first use: a require() of a module makes esbuild wrap it and every
// module it imports in a lazy initialiser, which cost start-up more (0.8 M instructions, README
// "Choices", start-up) than these two modules' top levels.
import { psMain } from './forensics/ps';
import { probeMain } from './commands/probe';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const VERSION: string = require('../../package.json').version;

async function main(argv: readonly string[]): Promise<void> {
  // Subcommands are recognised only as the very first word (`hainit -- ps` supervises `ps`).
  if (argv[0] === 'ps' || argv[0] === 'probe') return subcommand(argv[0], argv.slice(1));

  // Loaded before anything opens a descriptor: it records which ones hainit inherited.
  const addon = usage(() => native());
  if (addon === undefined) return exit(EXIT_USAGE);
  outputFor(2).use({ sendNoWait: addon.sendNoWait });
  guardProcessStderr();
  const appEnv = usage(() => environmentForTheApp(addon));
  if (appEnv === undefined) return exit(EXIT_USAGE, addon);
  // the settings are read from the same entries (HAINIT_* reaches the application unchanged):
  // a plain object, where process.env asks the C library for every name
  const invocation = readInvocation(argv, appEnv);
  if (invocation === undefined) return exit(EXIT_USAGE, addon);
  // writeSync: process.stdout would load the stream and tty modules for one line (~8 ms)
  if (invocation.kind === 'help' || invocation.kind === 'version') {
    writeAll(1, invocation.kind === 'help' ? helpText(VERSION) : `hainit version ${VERSION}\n`);
    return exit(EXIT_OK, addon);
  }
  const { config } = invocation;
  const log = new Logger(config.logLevel, config.logFormat);
  for (const w of invocation.warnings) log.warn(w);
  keepSupervisingOnBugs(log);
  // Set by the single binary's loader (scripts/sea-main.cjs): a rejected cache only costs time.
  const codeCache = (globalThis as { __hainitCodeCache?: string }).__hainitCodeCache;
  if (codeCache !== undefined) log.debug(`start-up code cache ${codeCache}`);
  if (log.enabled('debug')) {
    log.debug(`native addon loaded from ${addonSource}`);
    logStartSignalState(log, addon);
  }

  const router = new SignalRouter(addon);
  router.install(config.rewrites);
  const skipped = addon.signalsSkipped();
  if (skipped.length > 0) log.warn(`the system does not let hainit catch ${skipped.map(signalName).join(' ')}: not forwarded`);
  configureReaping(addon, config, log);
  if (config.pdeathSignal !== undefined) {
    const rc = addon.pdeathSignal(config.pdeathSignal);
    if (rc < 0) log.warn(`cannot set the parent-death signal ${signalName(config.pdeathSignal)}`, { errno: -rc });
  }

  // A line per orphan (-v, -w) names every one; otherwise a storm's orphans past the budget
  // are counted, not named (NAMES_PER_SECOND), and nothing listens: such an orphan costs no object.
  const reapLevel = config.warnOnReap ? 'warn' : 'debug';
  const lineEach = log.enabled(reapLevel);
  const reaper = new Reaper(addon, { namesPerSecond: lineEach ? Infinity : NAMES_PER_SECOND });
  if (lineEach) {
    reaper.on('orphan', (s) => {
      const status = s.signal !== null ? `killed by ${signalName(s.signal)}` : `exit ${s.code}`;
      log.write(reapLevel, 'reaped orphan', { pid: s.pid, comm: s.comm || undefined, status, lived: s.livedMs === undefined ? undefined : `${s.livedMs}ms` });
    });
  }
  router.on('childExited', () => reaper.reapNow());

  // The command's own bytes: Node's process.argv has U+FFFD for every byte that is not UTF-8.
  const command = rawCommand(addon, config.command);
  const supervisor = new Supervisor({ config, log, addon, router, reaper, clock: realClock, env: appEnv, rawCommand: command });
  // Bound before the child starts: a busy port is hainit's error (125), not a surprise later.
  if (healthWanted(config, log)) {
    const health: Health = await orExit125(log, addon, () =>
      startHealth({ config, log, lifecycle: supervisor, reaper, commands: { addon, reaper, log, env: appEnv }, catchUp: () => router.catchUp() }),
    );
    health.on('startupTimeout', (message) => supervisor.stopWithError(message, EXIT_USAGE));
  }

  // Never rejects: once the child's code is known, nothing below keeps hainit from exiting with it.
  const code = await supervisor.run();
  // The way out. Each step is bookkeeping: one that fails is logged (`step`) and the next runs.
  step(log, 'the last signal records', () => {
    router.drain(200);
    // Forwarding never depends on the records; only the counts in logs and /metrics do.
    const lost = router.dropped();
    if (lost > 0) log.warn(`${lost} signal record(s) dropped (the pipe to hainit's loop was full): signal counts in the logs and /metrics are low`);
  });
  step(log, 'the last reaping', () => reaper.reapNow());
  // One line at exit makes an orphan leak visible at a glance (`chrome ×30, sh ×7`).
  step(log, 'the orphan summary', () => {
    if (reaper.orphansReaped > 0) log.info(`reaped ${reaper.orphansReaped} orphan(s): ${reaper.summary() || 'names unknown'}`);
  });
  return exit(code, addon);
}

/**
 * `hainit ps` and `hainit probe`: each returns its exit code, having written at most one line to
 * stderr (the failure, or the bad argument named, with 125), and leaves through exit() like hainit.
 */
async function subcommand(name: 'ps' | 'probe', args: string[]): Promise<never> {
  const err = (s: string) => outputFor(2).write(s);
  if (name === 'ps') {
    // A stream, so a slow reader gets the whole table (the pipe may be non-blocking); `hainit ps |
    // head` must not die of EPIPE; exit waits until the stream has handed everything to the kernel.
    const stdout = process.stdout.on('error', () => undefined);
    const code = psMain(args, (s) => stdout.write(s), err);
    await new Promise((resolve) => stdout.write('', resolve));
    return exit(code);
  }
  // exit() does not wait for a name lookup still running in libuv's pool (a dead DNS server): a
  // Docker HEALTHCHECK is not kept alive past --timeout.
  return exit(await probeMain(args, (s) => writeAll(1, s), err));
}

/** Bad input: one line on stderr naming the value (the caller exits 125). */
function readInvocation(argv: readonly string[], env: NodeJS.ProcessEnv): Invocation | undefined {
  return usage(() => parseInvocation(argv, env));
}

/** f's value, or undefined once a UsageError has been said in one line (the caller exits 125). */
function usage<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    new Logger('error', 'text').error(e.message);
    return undefined;
  }
}

async function orExit125<T>(log: Logger, addon: NativeAddon, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    log.error(e.message);
    return exit(EXIT_USAGE, addon);
  }
}

/**
 * hainit's one way out, with the exit code decided (the Supervisor's run(), or 125 for bad input):
 * the log lines saying why are written first (a slow reader gets EXIT_FLUSH_MS, none once the grace
 * period is over; where stderr is written from libuv's pool the write completes on the event
 * loop), then _exit(2): no Node teardown.
 */
async function exit(code: number, addon?: NativeAddon): Promise<never> {
  try {
    await outputFor(2).flush(exitFlushTime());
  } catch {
    // lines unwritten are lost either way; the exit code is not
  }
  // The code-cache training run (scripts/train-code-cache.cjs) must see the exit to write its cache.
  const trainingExit = (globalThis as { __hainitTrainingExit?: (code: number) => never }).__hainitTrainingExit;
  if (trainingExit) trainingExit(code);
  // without the addon (it could not be loaded), Node's own exit
  return addon ? addon.exitNow(code) : process.exit(code);
}

/** As PID 1 the kernel keeps only processes hainit can reap; elsewhere, become a subreaper. */
function configureReaping(addon: NativeAddon, config: Config, log: Logger): void {
  if (process.pid === 1) return;
  const want = config.subreaper ?? true;
  const rc = addon.subreaper(want ? 1 : 0);
  if (want && rc < 0) log.warn('cannot become a child subreaper: orphans will not be reaped', { errno: -rc });
  if (!want) {
    log.warn('hainit is not PID 1 and not a subreaper (--no-subreaper): zombie reaping will not work for orphans');
  }
}

/**
 * hainit never dies before its child: a bug in hainit is logged and supervision goes on. Not after
 * it either: the way out (Supervisor.run, the steps after it, exit()) catches its own failures, so
 * once the child's code is known hainit exits with it (README "Reliability").
 */
function keepSupervisingOnBugs(log: Logger): void {
  process.on('uncaughtException', (e) => log.error(`internal error (supervision continues): ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => log.error(`internal error (supervision continues): ${(e as Error)?.stack ?? e}`));
}

void main(process.argv.slice(2)).catch(beforeTheChild);

/**
 * main() failed: a bug before supervisor.run(), where the child is started (the way out after it
 * catches its own failures). A PID 1 with nothing to supervise must not stay: one line and 125.
 */
function beforeTheChild(e: unknown): Promise<never> {
  internalError(new Logger('error', 'text'), 'hainit\'s start', e);
  let addon: NativeAddon | undefined;
  try {
    addon = native();
  } catch {
    // not loaded: Node's own exit
  }
  return exit(EXIT_USAGE, addon);
}

/** What children get of the signal state hainit was started with (README "Signals"). */
function logStartSignalState(log: Logger, addon: NativeAddon): void {
  const state = addon.startSignalState();
  const list = (signals: number[]) => signals.map(signalName).join(' ') || 'none';
  if (state) log.debug(`started with signals blocked: ${list(state.blocked)}; ignored: ${list(state.ignored)}; children get the same`);
  else log.debug('the signal state hainit was started with is unknown (no entry stub: run by node); children get an empty mask and default actions');
}
