import type * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { CheckTarget, Config } from '../config/config';
import { Logger } from '../log/logger';
import { ProcFs, realProcFs } from '../proc/procfs';
import { SystemConstants, systemConstants } from '../proc/system';
import { TreeUsage, treeUsage } from '../proc/tree';
import { Clock, realClock } from '../runtime/clock';
import { CommandDeps } from '../supervisor/command';
import { LifecycleView } from './checks';
import { renderMetrics } from './metrics';
import { ApplicationCheck, CheckRegistry, HealthEvents } from './registry';
import { ProbeFn, execProbe, httpProbe, tcpProbe } from './runners';
import { createHealthServer, listen } from './server';

export type { HealthEvents } from './registry';

export interface HealthDeps {
  readonly config: Config;
  readonly log: Logger;
  /** the Supervisor */
  readonly lifecycle: LifecycleView;
  readonly reaper: { readonly orphansReaped: number; readonly orphansUnnamed?: number };
  /** for --ready-exec/--live-exec: hainit's native spawn and reaper */
  readonly commands: CommandDeps;
  readonly clock?: Clock;
  readonly proc?: ProcFs;
  /** whose descendants /metrics measures; default hainit itself */
  readonly rootPid?: number;
  /** the signal router's catchUp: a probe right after `kill -TERM` already answers 503 */
  readonly catchUp?: () => void;
}

/** How long one /proc walk serves /metrics: a scrape flood costs one walk per second, not per request. */
const USAGE_CACHE_MS = 1_000;

/** The running health endpoint (and checks): what main.ts holds on to. */
export class Health {
  constructor(
    readonly registry: CheckRegistry,
    private readonly server: http.Server | undefined,
    /** where it listens; undefined without --health-listen */
    readonly address: AddressInfo | undefined,
  ) {}

  get startupPassed(): boolean {
    return this.registry.startupPassed;
  }

  /** `ready` (readiness passed the first time) and `startupTimeout` (act on it: stop, exit 125). */
  on<K extends keyof HealthEvents>(event: K, listener: (...args: HealthEvents[K]) => void): this {
    (this.registry.on as (e: K, l: (...args: HealthEvents[K]) => void) => unknown)(event, listener);
    return this;
  }

  /** Stops the checks and the listener; connections still open are cut. */
  close(): Promise<void> {
    this.registry.close();
    const server = this.server;
    if (!server || !server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

function probeFor(t: CheckTarget, name: string, d: HealthDeps): ProbeFn {
  switch (t.type) {
    case 'http':
      return httpProbe(t.url);
    case 'tcp':
      return tcpProbe(t.host, t.port);
    case 'exec':
      return execProbe(d.commands, t.argv, name, d.config.checkTimeoutMs);
  }
}

/** `ready-http`, `ready-http-2`, `ready-tcp`…: stable, path-safe, and saying nothing about the target. */
export function applicationChecks(d: HealthDeps): ApplicationCheck[] {
  const out: ApplicationCheck[] = [];
  const seen = new Map<string, number>();
  const add = (kind: 'ready' | 'live', t: CheckTarget) => {
    const base = `${kind}-${t.type}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const name = n === 1 ? base : `${base}-${n}`;
    out.push({ name, kind, probe: probeFor(t, name, d) });
  };
  for (const t of d.config.readinessChecks) add('ready', t);
  for (const t of d.config.livenessChecks) add('live', t);
  return out;
}

/**
 * Whether anything can see the checks: the endpoint (--health-listen), an application check, the
 * --startup-timeout, or -v's `ready:` line. Otherwise hainit builds none of it: `hainit -- app`
 * then starts 0.7 M instructions sooner (Node 24; README, Choices: start-up).
 */
export function healthWanted(config: Config, log: Logger): boolean {
  const { healthListen, readinessChecks, livenessChecks, startupTimeoutMs } = config;
  return healthListen !== undefined || readinessChecks.length > 0 || livenessChecks.length > 0 || startupTimeoutMs !== undefined || log.enabled('debug');
}

/**
 * Builds the checks, binds --health-listen (before the child starts) and starts following the
 * lifecycle. Rejects with a UsageError (exit 125) when a check command is unusable or the
 * address cannot be bound, naming the value and the error.
 */
export async function startHealth(d: HealthDeps): Promise<Health> {
  const clock = d.clock ?? realClock;
  const { config, log } = d;
  const registry = new CheckRegistry(
    {
      lifecycle: d.lifecycle,
      clock,
      log,
      timing: {
        intervalMs: config.checkIntervalMs,
        timeoutMs: config.checkTimeoutMs,
        failureThreshold: config.failureThreshold,
        successThreshold: config.successThreshold,
      },
      startupTimeoutMs: config.startupTimeoutMs,
      restarts: config.restart !== 'never',
    },
    applicationChecks(d),
  );
  let server: http.Server | undefined;
  let address: AddressInfo | undefined;
  if (config.healthListen) {
    const proc = d.proc ?? realProcFs;
    const root = d.rootPid ?? process.pid;
    let sys: SystemConstants | undefined;
    let cached: { at: number; usage: TreeUsage } | undefined;
    const usage = (): TreeUsage => {
      if (!cached || clock.now() - cached.at >= USAGE_CACHE_MS) {
        sys ??= systemConstants();
        cached = { at: clock.now(), usage: treeUsage(proc, root, sys) };
      }
      return cached.usage;
    };
    // node:http, not free at start-up, is loaded by createHealthServer: only with --health-listen.
    server = createHealthServer({
      checksFor: (e) => registry.checksFor(e),
      metrics: () =>
        renderMetrics({
          lifecycle: d.lifecycle,
          orphansReaped: () => d.reaper.orphansReaped,
          orphansUnnamed: () => d.reaper.orphansUnnamed ?? 0,
          checks: registry.checks,
          startupPassed: () => registry.startupPassed,
          usage,
        }),
      log,
      clock,
      catchUp: d.catchUp,
      maxConnections: config.healthMaxConnections,
    });
    address = await listen(server, config.healthListen, log);
    log.debug('health endpoint listening', { address: address.address, port: address.port });
  }
  registry.attach();
  return new Health(registry, server, address);
}
