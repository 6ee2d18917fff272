export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'text' | 'json';

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
  readonly preStop: readonly string[];
  readonly preStopTimeoutMs: number;
  readonly orphanGraceMs: number;
  readonly waitFor: readonly string[];
  readonly waitTimeoutMs: number;
  readonly postStart: string | undefined;
  readonly postStartTimeoutMs: number;
}

export type Invocation =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly config: Config; readonly warnings: readonly string[] };
