/**
 * hainit's life, top to bottom: parse, configure signals and reaping, start the child,
 * then react (forward, reap, shut down) until the child's exit code is known.
 */
import { isatty } from 'node:tty';
import { Config, Invocation } from './config/config';
import { helpText } from './config/options';
import { parseInvocation } from './config/parse';
import { UsageError } from './config/values';
import { Logger } from './log/logger';
import { NativeAddon, native } from './native';
import { Reaper } from './reaper/reaper';
import { signalName } from './signals/names';
import { SignalRouter } from './signals/router';
import { realClock } from './shutdown/clock';
import { EXIT_USAGE } from './supervisor/exit-codes';
import { Supervisor } from './supervisor/supervisor';
import { Health, startHealth } from './health';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const VERSION: string = require('../../package.json').version;

async function main(): Promise<void> {
  // Loaded before anything opens a descriptor: it records which ones hainit inherited.
  const addon = native();
  const invocation = readInvocation();
  if (invocation.kind === 'help') return void process.stdout.write(helpText(VERSION));
  if (invocation.kind === 'version') return void process.stdout.write(`hainit version ${VERSION}\n`);
  const { config } = invocation;
  const log = new Logger(config.logLevel, config.logFormat);
  for (const w of invocation.warnings) log.warn(w);
  keepSupervisingOnBugs(log);

  const router = new SignalRouter(addon);
  router.install(config.rewrites);
  configureReaping(addon, config, log);
  if (config.pdeathSignal !== undefined) {
    const rc = addon.pdeathSignal(config.pdeathSignal);
    if (rc < 0) log.warn(`cannot set the parent-death signal ${signalName(config.pdeathSignal)}`, { errno: -rc });
  }

  const reaper = new Reaper(addon, config.warnOnReap || log.enabled('debug'));
  reaper.on('orphan', (s) => {
    const status = s.signal !== null ? `killed by ${signalName(s.signal)}` : `exit ${s.code}`;
    log.write(config.warnOnReap ? 'warn' : 'debug', 'reaped orphan', { pid: s.pid, comm: s.comm || undefined, status });
  });
  router.on('childExited', () => reaper.reapNow());

  let supervisor: Supervisor;
  try {
    supervisor = new Supervisor({ config, log, addon, router, reaper, clock: realClock, env: process.env, stdinIsTty: isatty(0) });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    log.error(e.message);
    process.exit(EXIT_USAGE);
  }
  let health: Health;
  try {
    // Bound before the child starts: a busy port is hainit's error (125), not a surprise later.
    health = await startHealth({ config, log, lifecycle: supervisor, reaper, commands: { addon, reaper, log, env: process.env } });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    log.error(e.message);
    process.exit(EXIT_USAGE);
  }
  health.on('startupTimeout', (message) => supervisor.stopWithError(message, EXIT_USAGE));

  void supervisor.run().then((code) => {
    reaper.reapNow();
    if (reaper.orphansReaped > 0) log.debug(`orphans reaped: ${reaper.orphansReaped}`, { by: reaper.summary() || undefined });
    process.exit(code);
  });
}

/** Bad input: one line on stderr naming the value, exit 125. */
function readInvocation(): Invocation {
  try {
    return parseInvocation(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    new Logger('error', 'text').error(e.message);
    process.exit(EXIT_USAGE);
  }
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

/** hainit never dies before its child: a bug in hainit is logged and supervision goes on. */
function keepSupervisingOnBugs(log: Logger): void {
  process.on('uncaughtException', (e) => log.error(`internal error (supervision continues): ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => log.error(`internal error (supervision continues): ${(e as Error)?.stack ?? e}`));
}

void main();
