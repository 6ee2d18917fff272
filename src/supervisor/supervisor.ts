import { CancelController, CancelSignal } from '../cancel';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { Config } from '../config/config';
import { Logger } from '../log/logger';
import { NativeAddon, ReapedStatus } from '../native';
import { Reaper } from '../reaper/reaper';
import { Clock } from '../shutdown/clock';
import { descendants } from '../shutdown/leftovers';
import { SIGTERM, ShutdownActions, ShutdownSequence, cleanupLeftovers, timingWarnings } from '../shutdown/sequence';
import { signalName } from '../signals/names';
import { SignalEvent, SignalRouter, describeSender } from '../signals/router';
import { WaitTarget, parseWaitTarget, waitForAll } from '../startup/wait-for';
import { runCommand, describeResult } from './command';
import { splitCommandLine } from './command-line';
import { EXIT_USAGE, ExitStatus, exitCodeOf, remapExit } from './exit-codes';
import { spawnProcess } from './spawn';

/** The lifecycle; the health server, metrics and logs read it, they never drive it. */
export type Phase = 'starting' | 'running' | 'draining' | 'stopping' | 'exited';

export interface SupervisorDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly addon: NativeAddon;
  readonly router: SignalRouter;
  readonly reaper: Reaper;
  readonly clock: Clock;
  readonly env: NodeJS.ProcessEnv;
}

export interface SupervisorEvents {
  phase: [Phase];
}

const SIGINT = 2;
/** Signals that, as received, begin the shutdown sequence (SPEC §2 "Signals"). */
const SHUTDOWN_SIGNALS = [SIGTERM, SIGINT];

export class Supervisor extends EventEmitter<SupervisorEvents> {
  phase: Phase = 'starting';
  childPid: number | undefined;
  childStatus: ExitStatus | undefined;
  readonly signalsReceived = new Map<number, number>();
  readonly signalsForwarded = new Map<number, number>();
  /** signals that arrived before there was a child to forward them to */
  private readonly held: number[] = [];
  private shutdown: ShutdownSequence | undefined;
  private shutdownRequested: { signal: number; stopSignal: number } | undefined;
  private readonly startupAbort = new CancelController();
  private childExited!: () => void;
  private readonly childExitedPromise = new Promise<void>((r) => (this.childExited = r));
  /** set when hainit, not the child, decides the exit code (post-start failure) */
  private exitOverride: number | undefined;
  private readonly preStop: readonly string[][];
  private readonly postStart: readonly string[] | undefined;
  /** hook commands running now: not leftovers of the child */
  private readonly hookPids = new Set<number>();
  private readonly waitTargets: readonly WaitTarget[];

  constructor(private readonly d: SupervisorDeps) {
    super();
    const shell = existsSync('/bin/sh');
    this.preStop = d.config.preStop.map((c, i) => splitCommandLine(c, `--pre-stop #${i + 1}`, shell));
    this.postStart = d.config.postStart === undefined ? undefined : splitCommandLine(d.config.postStart, '--post-start', shell);
    this.waitTargets = d.config.waitFor.map((u) => parseWaitTarget(u, '--wait-for'));
    for (const w of timingWarnings(d.config)) d.log.warn(w);
    d.router.on('signal', (e) => this.onSignal(e));
    for (const s of SHUTDOWN_SIGNALS) if (d.router.rewriteOf(s) !== 0) d.router.setMode(s, 'notify');
  }

  /** The forwarding target: the child, or its process group with -g. */
  get target(): number {
    if (this.childPid === undefined || this.childStatus) return 0;
    return this.d.config.signalGroup ? -this.childPid : this.childPid;
  }

  /** The whole life: wait for dependencies, start, supervise, shut down. Resolves to the exit code. */
  async run(): Promise<number> {
    const { config, log, clock } = this.d;
    if (this.waitTargets.length) {
      const missing = await waitForAll(this.waitTargets, config.waitTimeoutMs, clock, log, this.startupAbort.signal);
      if (this.shutdownRequested) return this.finish(128 + this.shutdownRequested.signal);
      if (missing.length) {
        log.error(`--wait-for: never came within ${config.waitTimeoutMs} ms: ${missing.join(', ')}`);
        return this.finish(EXIT_USAGE);
      }
    }
    if (this.shutdownRequested) return this.finish(128 + this.shutdownRequested.signal);
    const spawned = this.startChild();
    if (spawned !== undefined) return this.finish(spawned);
    if (this.postStart) void this.runPostStart(this.postStart);
    else this.setPhase('running');

    await this.childExitedPromise;
    const status = this.childStatus as ExitStatus;
    const deadline = this.shutdown ? this.shutdown.leftoverDeadline() : Infinity;
    const hardDeadline = this.shutdown ? this.shutdown.exitBy : Infinity;
    await cleanupLeftovers(this.actions, clock, log, config.orphanGraceMs, Math.min(deadline, clock.now() + config.orphanGraceMs), hardDeadline);
    const code = this.exitOverride ?? remapExit(exitCodeOf(status), config.remapExit);
    if (this.shutdown) log.info(`shutdown: done in ${Math.round(clock.now() - this.shutdown.startedAt)} ms, exit code ${code}`);
    return this.finish(code);
  }

  /** undefined when started; else the exit code (126/127). */
  private startChild(): number | undefined {
    const { config, addon, router, reaper, log } = this.d;
    const result = spawnProcess(addon, config.command, this.d.env, {
      keepFds: addon.inheritedFds(),
      // The native spawn hands over the terminal only when stdin is one.
      foreground: true,
      newProcessGroup: true,
    });
    if (!result.ok) {
      log.error(result.message);
      return result.exitCode;
    }
    this.childPid = result.pid;
    router.setTarget(this.target);
    reaper.watch(result.pid, (status) => this.onChildExit(status));
    log.debug('child started', { pid: result.pid, command: config.command.join(' ') });
    this.scheduleEarlyWarnings(result.pid);
    for (const sig of this.held.splice(0)) this.forwardHeld(sig);
    return undefined;
  }

  /**
   * Warnings that save a night: the app ignores or blocks its stop signal, or is a shell that
   * will not pass signals on. Read twice (1 s, 5 s): slow starters install handlers late.
   */
  private scheduleEarlyWarnings(pid: number): void {
    const stopSignal = this.d.config.stopSignal ?? this.d.router.rewriteOf(SIGTERM);
    if (stopSignal === 0) return;
    const warned = new Set<string>();
    const check = (final: boolean) => {
      if (this.childStatus || this.shutdown) return;
      const { startupWarnings } = require('../forensics/dispositions') as typeof import('../forensics/dispositions');
      const found = startupWarnings(pid, stopSignal, '/proc', { signalGroup: this.d.config.signalGroup });
      // A shell still starting its command is not yet a problem; only warn when it persists.
      for (const w of found) if (!warned.has(w) && (final || !/shell/.test(w))) warned.add(w), this.d.log.warn(w);
    };
    setTimeout(() => check(false), 1000).unref();
    setTimeout(() => check(true), 5000).unref();
  }

  private async runPostStart(argv: readonly string[]): Promise<void> {
    const r = await this.runHook(argv, 'post-start', this.d.config.postStartTimeoutMs);
    if (this.childStatus || this.shutdown) return;
    if (r.code === 0 && !r.timedOut) {
      this.setPhase('running');
      return;
    }
    this.stopWithError(`post-start failed (${describeResult(r)}): stopping the child`, EXIT_USAGE);
  }

  /** hainit decided the child must go (post-start failed, start-up timed out): the graceful
   * shutdown, then exit with `code` whatever the child's own code. */
  stopWithError(message: string, code: number): void {
    if (this.shutdown) return;
    this.d.log.error(message);
    this.exitOverride = code;
    this.beginShutdown(this.d.config.stopSignal ?? SIGTERM, undefined);
  }

  private async runHook(argv: readonly string[], name: string, timeoutMs: number, abort?: CancelSignal) {
    const d = this.d;
    const r = runCommand({ ...d, onSpawn: (pid) => this.hookPids.add(pid), abort }, argv, name, timeoutMs);
    const result = await r;
    if (result.pid) this.hookPids.delete(result.pid);
    const level = result.code === 0 && !result.timedOut ? 'info' : 'warn';
    d.log.write(level, `${name} finished: ${describeResult(result)} in ${result.ms} ms`);
    return result;
  }

  private forwardHeld(received: number): void {
    const sent = this.d.router.rewriteOf(received);
    if (SHUTDOWN_SIGNALS.includes(received)) return;
    if (sent === 0 || this.target === 0) return;
    const rc = this.d.addon.kill(this.target, sent);
    this.d.log.debug(`held ${signalName(received)} forwarded as ${signalName(sent)}`, { to: this.target, errno: rc < 0 ? -rc : undefined });
    if (rc === 0) this.count(this.signalsForwarded, sent);
  }

  private onSignal(e: SignalEvent): void {
    const { log } = this.d;
    const name = signalName(e.signal);
    if (e.fromSelf || e.fromOwnTty) {
      log.trace(`${name} raised by hainit itself: not forwarded`);
      return;
    }
    this.count(this.signalsReceived, e.signal);
    const sent = this.d.router.rewriteOf(e.signal);
    if (e.forwarded) {
      this.count(this.signalsForwarded, e.sent);
      if (log.enabled('debug')) {
        const as = e.sent === e.signal ? '' : ` as ${signalName(e.sent)}`;
        log.debug(`${name} from ${describeSender(e)} forwarded${as} to ${e.target < 0 ? `process group ${-e.target}` : `pid ${e.target}`}`);
      }
    } else if (sent === 0) {
      log.debug(`${name} from ${describeSender(e)} dropped (--rewrite ${e.signal}:0)`);
    } else if (SHUTDOWN_SIGNALS.includes(e.signal)) {
      this.beginShutdown(this.d.config.stopSignal ?? sent, e);
    } else if (this.childPid === undefined) {
      log.debug(`${name} from ${describeSender(e)} held until the child starts`);
      this.held.push(e.signal);
    } else if (e.errno) {
      log.debug(`${name} from ${describeSender(e)} could not be forwarded`, { to: e.target, errno: e.errno });
    }
  }

  private beginShutdown(stopSignal: number, e: SignalEvent | undefined): void {
    const { log, config, clock } = this.d;
    if (this.shutdown) {
      this.shutdown.again(e?.signal ?? stopSignal);
      return;
    }
    if (e) log.info(`shutdown: ${signalName(e.signal)} from ${describeSender(e)}`);
    this.shutdownRequested = { signal: e?.signal ?? stopSignal, stopSignal };
    if (this.childPid === undefined || this.childStatus) {
      this.startupAbort.abort();
      return;
    }
    this.shutdown = new ShutdownSequence(config, clock, log, this.actions);
    void this.shutdown.run(stopSignal);
    const grace = setTimeout(() => {
      log.error(`grace period of ${config.gracePeriodMs} ms is over: exiting now`);
      process.exit(this.exitOverride ?? (this.childStatus ? remapExit(exitCodeOf(this.childStatus), config.remapExit) : 137));
    }, config.gracePeriodMs);
    grace.unref();
  }

  /** The shutdown sequence's hands. */
  private readonly actions: ShutdownActions = {
    childGone: () => this.childStatus !== undefined,
    childExited: this.childExitedPromise,
    enterPhase: (phase) => this.setPhase(phase),
    sendStopSignal: (sig) => {
      const rc = this.d.addon.kill(this.target, sig);
      if (rc === 0) this.count(this.signalsForwarded, sig);
      else this.d.log.warn(`cannot send ${signalName(sig)} to the child`, { to: this.target, errno: -rc });
    },
    runPreStop: async (i, _command, timeoutMs, abort) => {
      await this.runHook(this.preStop[i - 1], `pre-stop[${i}]`, timeoutMs, abort);
    },
    leftovers: () => descendants(process.pid, this.hookPids),
    signalAll: (pids, sig) => {
      for (const pid of pids) this.d.addon.kill(pid, sig);
    },
  };

  private onChildExit(status: ReapedStatus): void {
    this.childStatus = status;
    this.d.router.setTarget(0);
    const how = status.signal !== null ? `was killed by ${signalName(status.signal)}` : `exited with code ${status.code}`;
    const level = status.signal !== null || this.shutdown ? 'info' : 'debug';
    this.d.log.write(level, `child ${how}`, { pid: status.pid });
    this.childExited();
  }

  private finish(code: number): number {
    this.setPhase('exited');
    return code;
  }

  private setPhase(phase: Phase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.d.log.trace(`phase ${phase}`);
    this.emit('phase', phase);
  }

  private count(map: Map<number, number>, sig: number): void {
    map.set(sig, (map.get(sig) ?? 0) + 1);
  }
}
