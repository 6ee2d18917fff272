import type { SizeLimit } from './values';

import type { LogFormat, LogLevel } from '../log/logger';

export type { LogFormat, LogLevel } from '../log/logger';

/** Where the probe endpoint listens. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** One application check (`--ready-http` and friends), validated; `text` is what the user wrote. */
export type CheckTarget =
  | { readonly type: 'http'; readonly text: string; readonly url: string }
  | { readonly type: 'tcp'; readonly text: string; readonly host: string; readonly port: number }
  | { readonly type: 'exec'; readonly text: string; readonly argv: readonly string[] };

/**
 * A hook or exec check as it will run: `text` as the user wrote it, `argv` split at start-up
 * (a line that needs a shell becomes `/bin/sh -c LINE`, decided once, here at the edge).
 */
export interface CommandLine {
  readonly text: string;
  readonly argv: readonly string[];
}

/** A --wait-for target: `tcp://host:port` or `http(s)://…`, parsed. */
export interface WaitTarget {
  readonly text: string;
  readonly url: URL;
}

/** The validated, immutable configuration: the core never reads argv or process.env. */
export interface Config {
  readonly command: readonly string[];
  readonly signalGroup: boolean;
  /** received signal -> signal forwarded; 0 drops it */
  readonly rewrites: ReadonlyMap<number, number>;
  readonly stopSignal: number | undefined;
  readonly remapExit: ReadonlyMap<number, number>;
  /** undefined: on when hainit is not PID 1 */
  readonly subreaper: boolean | undefined;
  readonly pdeathSignal: number | undefined;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly warnOnReap: boolean;
  readonly gracePeriodMs: number;
  readonly shutdownDelayMs: number;
  readonly preStop: readonly CommandLine[];
  readonly preStopTimeoutMs: number;
  readonly orphanGraceMs: number;
  readonly waitFor: readonly WaitTarget[];
  readonly waitTimeoutMs: number;
  readonly postStart: CommandLine | undefined;
  readonly postStartTimeoutMs: number;
  /** undefined: no probe endpoint */
  readonly healthListen: ListenAddress | undefined;
  /** --health-max-connections; undefined: SERVER_LIMITS.maxConnections */
  readonly healthMaxConnections?: number;
  readonly readinessChecks: readonly CheckTarget[];
  readonly livenessChecks: readonly CheckTarget[];
  /** undefined: wait for readiness forever */
  readonly startupTimeoutMs: number | undefined;
  readonly checkIntervalMs: number;
  readonly checkTimeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  /** undefined: no memory watchdog */
  readonly maxMemory: SizeLimit | undefined;
  readonly memoryIntervalMs: number;
  readonly restart: RestartMode;
  readonly maxRestarts: number;
  readonly restartDelayMs: number;
  readonly restartWindowMs: number;
}

export type RestartMode = 'never' | 'on-failure' | 'always';

export type Invocation =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly config: Config; readonly warnings: readonly string[] };
