import { existsSync } from 'node:fs';
import { CheckTarget, CommandLine, Config, Invocation, ListenAddress, LogFormat, LogLevel, RestartMode } from './config';
import { splitCommandLine } from './command-line';
import { OptionSpec, envName, environmentOnly, options, takesValue } from './options';
import {
  UsageError, parseBoolean, parseDuration, parseHostPort, parseHttpUrl, parseInteger, parseOwnSignal, parseRemapExit, parseRewrite, parseSize, parseWaitTarget,
  parseStopSignal,
} from './values';

type Raw = string | string[] | boolean | boolean[] | undefined;

let byName: { long: Map<string, OptionSpec>; short: Map<string, OptionSpec> } | undefined;
/** The options by long and by short name, made when first asked for (options()). */
function optionsByName(): { long: Map<string, OptionSpec>; short: Map<string, OptionSpec> } {
  return (byName ??= {
    long: new Map(options().map((o) => [o.name, o])),
    short: new Map(options().filter((o) => o.short).map((o) => [o.short as string, o])),
  });
}

/** Option parsing stops at the first word that is not an option (tini needs `--`; we do not). */
function splitAtCommand(argv: readonly string[]): { options: string[]; command: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return { options: argv.slice(0, i), command: argv.slice(i + 1) };
    if (a.startsWith('--')) {
      const o = optionsByName().long.get(a.slice(2));
      if (o && takesValue(o)) i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const o = optionsByName().short.get(a[j]);
        if (o && takesValue(o)) {
          if (j === a.length - 1) i++;
          break;
        }
      }
      continue;
    }
    return { options: argv.slice(0, i), command: argv.slice(i) };
  }
  return { options: [...argv], command: [] };
}

function parseFlags(args: string[]): Record<string, Raw> {
  // `hainit -- app`, configured by HAINIT_* or not at all: node:util's parser costs start-up 0.5 ms
  if (args.length === 0) return {};
  return parseTable(args, options(), false).values;
}

/**
 * A subcommand's words (`hainit ps`, `hainit probe`) through its own option table (options.ts):
 * the same parser, messages and `--name=value` forms as hainit's own options.
 */
export function parseSubcommand(args: readonly string[], table: readonly OptionSpec[]): { values: Record<string, Raw>; positionals: string[] } {
  return parseTable([...args], table, true);
}

function parseTable(args: string[], table: readonly OptionSpec[], allowPositionals: boolean): { values: Record<string, Raw>; positionals: string[] } {
  const { parseArgs } = require('node:util') as typeof import('node:util');
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  const byShortHere = new Map(table.filter((o) => o.short).map((o) => [o.short as string, o]));
  for (const o of table) {
    options[o.name] = {
      type: takesValue(o) ? 'string' : 'boolean',
      ...(o.short ? { short: o.short } : {}),
      ...(o.kind === 'list' || o.kind === 'count' ? { multiple: true } : {}),
    };
  }
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals, allowNegative: !allowPositionals });
    return { values: values as Record<string, Raw>, positionals };
  } catch (e) {
    const message = String((e as Error).message);
    // node:util's own text spans three lines and speaks of positionals; say it in one, our way.
    const option = /^Option '(-[^' ]+)/.exec(message)?.[1];
    if (option && /ambiguous/.test(message)) {
      const value = args[args.indexOf(option) + 1] ?? '';
      const long = option.startsWith('--') ? option : `--${byShortHere.get(option.slice(1))?.name ?? option.slice(1)}`;
      throw new UsageError(`${option}: the value "${value}" starts with a dash; write it as ${long}=${value}`);
    }
    throw new UsageError(message.split('\n')[0].replace(/\. To specify a positional.*$/s, ''));
  }
}

/** One option's value: the flag if given, else HAINIT_<NAME>, else undefined. */
class Source {
  /** env holds only the HAINIT_* variables (hainitVariables), read once: start-up looks up every
   * option. */
  constructor(private readonly flags: Record<string, Raw>, private readonly env: ReadonlyMap<string, string>) {}

  /** HAINIT_<NAME> of option `name`, when it is set. */
  private fromEnv(name: string): { text: string; what: string } | undefined {
    // most containers set none: then no option's variable name need be made
    if (this.env.size === 0) return undefined;
    const what = envName({ name });
    const text = this.env.get(what);
    return text === undefined ? undefined : { text, what };
  }
  value(name: string): { text: string; what: string } | undefined {
    const f = this.flags[name];
    if (typeof f === 'string') return { text: f, what: `--${name}` };
    return this.fromEnv(name);
  }
  list(name: string): { items: string[]; what: string } {
    const f = this.flags[name];
    if (Array.isArray(f) && f.length) return { items: f as string[], what: `--${name}` };
    const e = this.fromEnv(name);
    // `what` names where the items came from; with none, no message can name it
    if (e === undefined) return { items: [], what: `--${name}` };
    return { items: e.text.split('\n').map((l) => l.trim()).filter((l) => l !== ''), what: e.what };
  }
  flag(name: string): boolean | undefined {
    const f = this.flags[name];
    if (typeof f === 'boolean') return f;
    const e = this.fromEnv(name);
    return e === undefined ? undefined : parseBoolean(e.text, e.what);
  }
  count(name: string): number {
    const f = this.flags[name];
    if (Array.isArray(f)) return (f as boolean[]).reduce((n, on) => (on ? n + 1 : 0), 0);
    const e = this.fromEnv(name);
    if (e === undefined) return 0;
    if (/^\s*\d+\s*$/.test(e.text)) return parseInteger(e.text, e.what, 0, 9);
    return parseBoolean(e.text, e.what) ? 1 : 0;
  }
  flagGiven(name: string): boolean {
    return this.flags[name] !== undefined;
  }
}

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

function duration(src: Source, name: string, fallbackMs: number): number {
  const v = src.value(name);
  return v ? parseDuration(v.text, v.what) : fallbackMs;
}

function optionalSignal(src: Source, name: string, parse: (text: string, what: string) => number): number | undefined {
  const v = src.value(name);
  return v ? parse(v.text, v.what) : undefined;
}

function signalGroup(src: Source): boolean {
  if (src.flagGiven('signal-group') && src.flagGiven('single-child')) {
    throw new UsageError('--signal-group and --single-child contradict each other: give one');
  }
  if (src.flagGiven('signal-group')) return src.flag('signal-group') === true;
  if (src.flagGiven('single-child')) return src.flag('single-child') === false;
  const group = src.flag('signal-group');
  const single = src.flag('single-child');
  if (group && single) throw new UsageError('HAINIT_SIGNAL_GROUP and HAINIT_SINGLE_CHILD contradict each other: set one');
  return group === true || single === false;
}

function logLevel(src: Source, fallback: LogLevel): LogLevel {
  const v = src.value('log-level');
  let level = fallback;
  if (v) {
    const l = v.text.trim().toLowerCase() as LogLevel;
    if (!LEVELS.includes(l)) throw new UsageError(`${v.what}: unknown log level "${v.text}" (use ${LEVELS.join(', ')})`);
    level = l;
  }
  // -v/-vv only ever raise the level: `--log-level error` alone stays error
  const verbosity = src.count('verbose');
  if (verbosity === 0) return level;
  const fromVerbose: LogLevel = verbosity >= 2 ? 'trace' : 'debug';
  return LEVELS.indexOf(fromVerbose) > LEVELS.indexOf(level) ? fromVerbose : level;
}

function logFormat(src: Source, fallback: LogFormat): LogFormat {
  const v = src.value('log-format');
  if (!v) return fallback;
  const f = v.text.trim().toLowerCase();
  if (f !== 'text' && f !== 'json') throw new UsageError(`${v.what}: unknown log format "${v.text}" (use text or json)`);
  return f;
}

/** A duration that must be more than zero (a 0 s check interval would spin). */
function positiveDuration(src: Source, name: string, fallbackMs: number): number {
  const v = src.value(name);
  if (!v) return fallbackMs;
  const ms = parseDuration(v.text, v.what);
  if (ms <= 0) throw new UsageError(`${v.what}: "${v.text}" must be more than 0`);
  return ms;
}

function integer(src: Source, name: string, fallback: number, min: number, max: number): number {
  const v = src.value(name);
  return v ? parseInteger(v.text, v.what, min, max) : fallback;
}

function maxMemory(src: Source) {
  const v = src.value('max-memory');
  if (!v || /^\s*(off|)\s*$/i.test(v.text)) return undefined;
  return parseSize(v.text, v.what);
}

function healthListen(src: Source): ListenAddress | undefined {
  const v = src.value('health-listen');
  if (!v || /^\s*(off|)\s*$/i.test(v.text)) return undefined;
  return parseHostPort(v.text, v.what, '0.0.0.0');
}

/** --ready-http/--ready-tcp/--ready-exec (or live-), in that order; names follow the same order. */
function checkTargets(src: Source, prefix: 'ready' | 'live', shell: () => boolean): CheckTarget[] {
  const out: CheckTarget[] = [];
  const http = src.list(`${prefix}-http`);
  for (const text of http.items) out.push({ type: 'http', text, url: parseHttpUrl(text, http.what) });
  const tcp = src.list(`${prefix}-tcp`);
  for (const text of tcp.items) out.push({ type: 'tcp', text, ...parseHostPort(text, tcp.what, '127.0.0.1') });
  const exec = src.list(`${prefix}-exec`);
  for (const text of exec.items) {
    if (text.trim() === '') throw new UsageError(`${exec.what}: empty command`);
    out.push({ type: 'exec', text, argv: splitCommandLine(text, `${exec.what} "${text}"`, shell, exec.what) });
  }
  return out;
}

const RESTART_MODES: readonly RestartMode[] = ['never', 'on-failure', 'always'];

function restartMode(src: Source, fallback: RestartMode): RestartMode {
  const v = src.value('restart');
  if (!v) return fallback;
  const m = v.text.trim().toLowerCase() as RestartMode;
  // docker's spelling `no` and `unless-stopped` are not accepted: they would suggest docker semantics.
  if (!RESTART_MODES.includes(m)) throw new UsageError(`${v.what}: unknown restart policy "${v.text}" (use ${RESTART_MODES.join(', ')})`);
  return m;
}

/** The HAINIT_* variables, read from env once. */
function hainitVariables(env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of Object.keys(env)) {
    if (!k.startsWith('HAINIT_')) continue;
    const v = env[k];
    if (v !== undefined) out.set(k, v);
  }
  return out;
}

function unknownEnvironment(env: ReadonlyMap<string, string>): string[] {
  if (env.size === 0) return [];
  const known = new Set(options().map(envName));
  return [...env.keys()].filter((k) => !known.has(k) && !environmentOnly(k)).map((k) => `${k} is not a hainit setting: ignored`);
}

/**
 * argv and the environment to the validated Config: every value checked and every command line
 * split here, once (`shellAvailable`: whether a line that needs a shell can have /bin/sh; asked
 * only when one does).
 */
/**
 * The configuration of `hainit -- app` when no option and no HAINIT_* variable is set, and each
 * option's fallback: one literal, not built option by option (0.35 M instructions at every start
 * on Node 24: 40 lookups in empty sources, each run once). test/unit/config.test.ts holds it
 * against the same command parsed with options that say only what these say.
 */
function defaults(command: readonly string[]): Config {
  return {
    command,
    signalGroup: false,
    rewrites: new Map<number, number>(),
    stopSignal: undefined,
    remapExit: new Map<number, number>(),
    subreaper: undefined,
    pdeathSignal: undefined,
    logLevel: 'info',
    logFormat: 'text',
    warnOnReap: false,
    gracePeriodMs: 30_000,
    shutdownDelayMs: 0,
    preStop: [],
    preStopTimeoutMs: 10_000,
    orphanGraceMs: 2_000,
    waitFor: [],
    waitTimeoutMs: 60_000,
    postStart: undefined,
    postStartTimeoutMs: 30_000,
    healthListen: undefined,
    healthMaxConnections: undefined,
    readinessChecks: [],
    livenessChecks: [],
    startupTimeoutMs: undefined,
    checkIntervalMs: 5_000,
    checkTimeoutMs: 2_000,
    failureThreshold: 3,
    successThreshold: 1,
    maxMemory: undefined,
    memoryIntervalMs: 2_000,
    restart: 'never',
    maxRestarts: 5,
    restartDelayMs: 1_000,
    restartWindowMs: 60_000,
  };
}

export function parseInvocation(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  shellAvailable: () => boolean = () => existsSync('/bin/sh'),
): Invocation {
  let shellKnown: boolean | undefined;
  const shell = () => (shellKnown ??= shellAvailable());
  const { options, command } = splitAtCommand(argv);
  const flags = parseFlags(options);
  const vars = hainitVariables(env);
  const src = new Source(flags, vars);
  if (flags.help) return { kind: 'help' };
  if (flags.version) return { kind: 'version' };
  if (command.length === 0) throw new UsageError('no command given (usage: hainit [OPTIONS] [--] COMMAND [ARGS...]; see --help)');
  const d = defaults(command);
  if (options.length === 0 && vars.size === 0) return { kind: 'run', config: Object.freeze(d), warnings: [] };

  const rewrites = new Map<number, number>();
  const rw = src.list('rewrite');
  for (const item of rw.items) {
    const [from, to] = parseRewrite(item, rw.what);
    rewrites.set(from, to);
  }
  const remapExit = new Map<number, number>();
  const re = src.list('remap-exit');
  for (const item of re.items) {
    const [from, to] = parseRemapExit(item, re.what);
    remapExit.set(from, to);
  }
  const post = src.value('post-start');
  const postStart: CommandLine | undefined = post && { text: post.text, argv: splitCommandLine(post.text, post.what, shell) };
  const pre = src.list('pre-stop');
  const preStop = pre.items.map((text, i): CommandLine => ({ text, argv: splitCommandLine(text, `${pre.what} #${i + 1}`, shell, pre.what) }));
  const wait = src.list('wait-for');
  const config: Config = {
    command,
    signalGroup: signalGroup(src),
    rewrites,
    stopSignal: optionalSignal(src, 'stop-signal', parseStopSignal),
    remapExit,
    subreaper: src.flag('subreaper'),
    pdeathSignal: optionalSignal(src, 'pdeath-signal', parseOwnSignal),
    logLevel: logLevel(src, d.logLevel),
    logFormat: logFormat(src, d.logFormat),
    warnOnReap: src.flag('warn-on-reap') === true,
    gracePeriodMs: duration(src, 'grace-period', d.gracePeriodMs),
    shutdownDelayMs: duration(src, 'shutdown-delay', d.shutdownDelayMs),
    preStop,
    preStopTimeoutMs: duration(src, 'pre-stop-timeout', d.preStopTimeoutMs),
    orphanGraceMs: duration(src, 'orphan-grace', d.orphanGraceMs),
    waitFor: wait.items.map((text) => parseWaitTarget(text, wait.what)),
    waitTimeoutMs: duration(src, 'wait-timeout', d.waitTimeoutMs),
    postStart,
    postStartTimeoutMs: duration(src, 'post-start-timeout', d.postStartTimeoutMs),
    healthListen: healthListen(src),
    healthMaxConnections: src.value('health-max-connections') ? integer(src, 'health-max-connections', 0, 16, 1_000_000) : undefined,
    readinessChecks: checkTargets(src, 'ready', shell),
    livenessChecks: checkTargets(src, 'live', shell),
    startupTimeoutMs: src.value('startup-timeout') ? positiveDuration(src, 'startup-timeout', 0) : undefined,
    checkIntervalMs: positiveDuration(src, 'check-interval', d.checkIntervalMs),
    checkTimeoutMs: positiveDuration(src, 'check-timeout', d.checkTimeoutMs),
    failureThreshold: integer(src, 'failure-threshold', d.failureThreshold, 1, 1000),
    successThreshold: integer(src, 'success-threshold', d.successThreshold, 1, 1000),
    maxMemory: maxMemory(src),
    memoryIntervalMs: positiveDuration(src, 'memory-interval', d.memoryIntervalMs),
    restart: restartMode(src, d.restart),
    maxRestarts: integer(src, 'max-restarts', d.maxRestarts, 0, 1_000_000),
    restartDelayMs: duration(src, 'restart-delay', d.restartDelayMs),
    restartWindowMs: positiveDuration(src, 'restart-window', d.restartWindowMs),
  };
  return { kind: 'run', config: Object.freeze(config), warnings: unknownEnvironment(vars) };
}
