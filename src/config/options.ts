/** Every long option, once: the parser, the HAINIT_* environment mapping and --help are derived from this table. */
export type OptionKind = 'flag' | 'count' | 'value' | 'list';

export interface OptionSpec {
  readonly name: string;
  readonly short?: string;
  readonly kind: OptionKind;
  readonly arg?: string;
  readonly help: string;
  readonly section: string;
}

let table: readonly OptionSpec[] | undefined;

/** Every long option, once. Made on its first use, not when hainit loads: `hainit -- app` with no
 * flag and no HAINIT_* variable reads none of it (its 80 objects and their maps cost start-up
 * 0.4 M instructions; README "Choices", start-up). */
export function options(): readonly OptionSpec[] {
  return (table ??= [
    { section: 'Process and signals', name: 'signal-group', short: 'g', kind: 'flag', help: "forward signals to the child's whole process group" },
    { section: 'Process and signals', name: 'single-child', short: 'c', kind: 'flag', help: 'forward signals to the child alone (the default; dumb-init spelling)' },
    { section: 'Process and signals', name: 'rewrite', short: 'r', kind: 'list', arg: 'FROM:TO', help: 'rewrite a received signal before forwarding; TO=0 drops it; repeatable' },
    { section: 'Process and signals', name: 'stop-signal', kind: 'value', arg: 'SIG', help: 'signal that stops the child during shutdown (default: the one received, after rewrite)' },
    { section: 'Process and signals', name: 'remap-exit', short: 'e', kind: 'list', arg: 'CODE[:NEW]', help: "map the child's exit code (CODE alone means CODE:0); repeatable" },
    { section: 'Process and signals', name: 'subreaper', short: 's', kind: 'flag', help: 'when not PID 1, become a child subreaper (default when not PID 1; --no-subreaper)' },
    { section: 'Process and signals', name: 'pdeath-signal', short: 'p', kind: 'value', arg: 'SIG', help: 'signal hainit receives when its parent dies' },
    { section: 'Process and signals', name: 'verbose', short: 'v', kind: 'count', help: 'more logs: -v shows every signal and reap, -vv traces' },
    { section: 'Process and signals', name: 'warn-on-reap', short: 'w', kind: 'flag', help: 'log every orphan reaped at warn level' },
    { section: 'Process and signals', name: 'log-level', kind: 'value', arg: 'LEVEL', help: 'error, warn, info, debug or trace (default info); logs go to stderr' },
    { section: 'Process and signals', name: 'log-format', kind: 'value', arg: 'FORMAT', help: 'text or json (default text)' },
    { section: 'Shutdown', name: 'grace-period', kind: 'value', arg: 'DUR', help: "the pod's terminationGracePeriodSeconds: hainit has exited by then (default 30s)" },
    { section: 'Shutdown', name: 'shutdown-delay', kind: 'value', arg: 'DUR', help: 'after the shutdown signal, keep serving with readiness failing this long (default 0s)' },
    { section: 'Shutdown', name: 'pre-stop', kind: 'list', arg: 'CMD', help: 'drain command run after the delay, before the stop signal; repeatable, in order' },
    { section: 'Shutdown', name: 'pre-stop-timeout', kind: 'value', arg: 'DUR', help: 'bound on each drain command (default 10s)' },
    { section: 'Shutdown', name: 'orphan-grace', kind: 'value', arg: 'DUR', help: 'leftover processes get SIGTERM, then SIGKILL after this (default 2s)' },
    { section: 'Startup', name: 'wait-for', kind: 'list', arg: 'URL', help: 'before starting the child, wait for tcp://host:port or http(s)://...; repeatable' },
    { section: 'Startup', name: 'wait-timeout', kind: 'value', arg: 'DUR', help: 'give up waiting and exit 125 (default 60s)' },
    { section: 'Startup', name: 'post-start', kind: 'value', arg: 'CMD', help: 'run after the child starts; failure stops the child and exits non-zero' },
    { section: 'Startup', name: 'post-start-timeout', kind: 'value', arg: 'DUR', help: 'bound on --post-start (default 30s)' },
    { section: 'Health endpoint', name: 'health-listen', kind: 'value', arg: '[HOST:]PORT', help: 'serve /livez, /readyz, /startupz, /healthz and /metrics here (host default 0.0.0.0; default off)' },
    { section: 'Health endpoint', name: 'health-max-connections', kind: 'value', arg: 'N', help: 'connections node:http holds for the endpoint; past it, those without a request wait aside (default 2048, less with a low descriptor limit)' },
    { section: 'Health endpoint', name: 'ready-http', kind: 'list', arg: 'URL', help: "the application's readiness: an HTTP GET answering 200-399; repeatable" },
    { section: 'Health endpoint', name: 'ready-tcp', kind: 'list', arg: '[HOST:]PORT', help: 'readiness: a TCP port accepting connections (host default 127.0.0.1); repeatable' },
    { section: 'Health endpoint', name: 'ready-exec', kind: 'list', arg: 'CMD', help: 'readiness: a command exiting 0; repeatable' },
    { section: 'Health endpoint', name: 'live-http', kind: 'list', arg: 'URL', help: "the application's liveness: an HTTP GET answering 200-399; repeatable" },
    { section: 'Health endpoint', name: 'live-tcp', kind: 'list', arg: '[HOST:]PORT', help: 'liveness: a TCP port accepting connections; repeatable' },
    { section: 'Health endpoint', name: 'live-exec', kind: 'list', arg: 'CMD', help: 'liveness: a command exiting 0; repeatable' },
    { section: 'Health endpoint', name: 'startup-timeout', kind: 'value', arg: 'DUR', help: 'readiness must first pass within this time, or hainit stops the child and exits 125 (default none)' },
    { section: 'Health endpoint', name: 'check-interval', kind: 'value', arg: 'DUR', help: 'how often application checks run (default 5s)' },
    { section: 'Health endpoint', name: 'check-timeout', kind: 'value', arg: 'DUR', help: 'how long one check may take (default 2s)' },
    { section: 'Health endpoint', name: 'failure-threshold', kind: 'value', arg: 'N', help: 'consecutive failures that make a check fail (default 3)' },
    { section: 'Health endpoint', name: 'success-threshold', kind: 'value', arg: 'N', help: 'consecutive successes that make a readiness check pass (default 1)' },
    { section: 'Watchdog and restarts', name: 'max-memory', kind: 'value', arg: 'SIZE', help: "when the child's process tree uses more (450Mi, 1Gi, bytes; 90% = of the cgroup limit), stop it gracefully, or restart it (default off)" },
    { section: 'Watchdog and restarts', name: 'memory-interval', kind: 'value', arg: 'DUR', help: 'how often memory is sampled; 3 samples in a row over the limit act (default 2s)' },
    { section: 'Watchdog and restarts', name: 'restart', kind: 'value', arg: 'POLICY', help: 'never, on-failure or always: restart the child in place (default never)' },
    { section: 'Watchdog and restarts', name: 'max-restarts', kind: 'value', arg: 'N', help: 'restarts allowed before a stable run; then hainit exits with the child\'s code (default 5)' },
    { section: 'Watchdog and restarts', name: 'restart-delay', kind: 'value', arg: 'DUR', help: 'first delay before a restart, doubling up to 30s (default 1s)' },
    { section: 'Watchdog and restarts', name: 'restart-window', kind: 'value', arg: 'DUR', help: 'a run this long is stable: it resets the delay and the restart count (default 60s)' },
    { section: 'Other', name: 'help', short: 'h', kind: 'flag', help: 'print this help and exit' },
    { section: 'Other', name: 'version', kind: 'flag', help: 'print the version and exit' },
  ]);
}

/**
 * The variables hainit reads that are no option, because they act before the options are read
 * (the addon loads first). With options(), every `HAINIT_*` variable hainit reads is here
 * (test/unit/config.test.ts checks the sources against both).
 */
export const ENVIRONMENT_ONLY: readonly { readonly name: string; readonly help: string }[] = [
  { name: 'HAINIT_TMPDIR', help: 'dist/hainit where the kernel forbids executable memfds: a directory only root or hainit\'s user can write, for the addon' },
  { name: 'HAINIT_PREBUILD', help: 'the npm form: the addon file to load instead of the package\'s own (node-gyp-build\'s override)' },
  { name: 'HAINIT_APP_<NAME>', help: 'gives the application NAME (NODE_*, UV_*, OPENSSL_CONF/MODULES/ENGINES only), kept from hainit\'s own Node' },
];

/** Whether `name` is one of ENVIRONMENT_ONLY (HAINIT_APP_<NAME> stands for its prefix). */
export function environmentOnly(name: string): boolean {
  return ENVIRONMENT_ONLY.some((v) => (v.name.endsWith('<NAME>') ? name.startsWith(v.name.slice(0, -'<NAME>'.length)) : name === v.name));
}

/** `hainit ps`'s own options (no HAINIT_* variables: a subcommand is asked for by name). */
export const PS_OPTIONS: readonly OptionSpec[] = [
  { section: 'ps', name: 'json', kind: 'flag', help: 'the tree as JSON' },
  { section: 'ps', name: 'proc', kind: 'value', arg: 'DIR', help: 'read the process table from DIR instead of /proc' },
  { section: 'ps', name: 'help', short: 'h', kind: 'flag', help: 'print this help and exit' },
];

/** `hainit probe`'s own options. */
export const PROBE_OPTIONS: readonly OptionSpec[] = [
  { section: 'probe', name: 'timeout', kind: 'value', arg: 'DUR', help: 'an absolute deadline for the whole check (default 5s)' },
  { section: 'probe', name: 'help', short: 'h', kind: 'flag', help: 'print this help and exit' },
];

/** `--grace-period` = `HAINIT_GRACE_PERIOD`. */
export function envName(option: Pick<OptionSpec, 'name'>): string {
  return 'HAINIT_' + option.name.toUpperCase().replaceAll('-', '_');
}

export function takesValue(option: OptionSpec): boolean {
  return option.kind === 'value' || option.kind === 'list';
}

export function helpText(version: string): string {
  const lines = [
    `hainit ${version}: PID 1 for containers`,
    '',
    'Usage: hainit [OPTIONS] [--] COMMAND [ARGS...]',
    '',
    'Options stop at the first word that is not one; every long option can also be set as',
    'HAINIT_<NAME> in the environment (flags win; repeatable ones take one value per line).',
    'Durations: 500ms, 5s, 2m, 1h (a bare number is seconds). Signals: TERM, SIGTERM, 15, RTMIN+3.',
  ];
  let section = '';
  for (const o of options()) {
    if (o.section !== section) {
      section = o.section;
      lines.push('', `${section}:`);
    }
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.arg ? ` ${o.arg}` : ''}`;
    lines.push(`  ${flag.padEnd(34)} ${o.help}`);
  }
  lines.push('', 'Environment only:');
  for (const v of ENVIRONMENT_ONLY) lines.push(`  ${v.name.padEnd(34)} ${v.help}`);
  lines.push(
    '',
    'Exit codes: the child\'s code; 128+N when it died of signal N; 125 hainit\'s own error;',
    '126 the command cannot be executed; 127 the command was not found.',
  );
  return lines.join('\n') + '\n';
}
