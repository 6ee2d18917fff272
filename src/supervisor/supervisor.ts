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
import { JobControl } from './job-control';
import { RestartDecision, RestartPolicy } from './restart';
import { MemoryReading, MemorySampler, MemoryStatus, MemoryWatchdog, samplerFor } from '../watch/memory';

/**
 * The lifecycle; the health server, metrics and logs read it, they never drive it.
 * starting -> running -> draining -> stopping -> exited; `restarting` from the moment hainit has
 * decided to restart the child in place (its graceful stop, the leftovers, the delay) until the
 * new child runs.
 */
export type Phase = 'starting' | 'running' | 'draining' | 'stopping' | 'exited' | 'restarting';

export interface SupervisorDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly addon: NativeAddon;
  readonly router: SignalRouter;
  readonly reaper: Reaper;
  readonly clock: Clock;
  readonly env: NodeJS.ProcessEnv;
  /** config.command as the bytes hainit was given, when known (native/app-env.ts) */
  readonly rawCommand?: readonly Buffer[];
  /** tests: the memory measurement for --max-memory (default: /proc or the cgroup) */
  readonly memorySampler?: MemorySampler;
}

export interface SupervisorEvents {
  phase: [Phase];
}

const SIGINT = 2;
const SIGCONT = 18;
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
  /** child restarts in place (--restart, and memory restarts) */
  restarts = 0;
  private shutdown: ShutdownSequence | undefined;
  private shutdownRequested: { signal: number; stopSignal: number } | undefined;
  /** fires on a shutdown signal while there is no child: ends --wait-for and the restart delay */
  private readonly idleAbort = new CancelController();
  /** the current child's exit */
  private childExited!: () => void;
  private childExitedPromise = new Promise<void>((r) => (this.childExited = r));
  private childStartedAt = 0;
  /** bumped at each start: late results of hooks for an earlier child are ignored */
  private generation = 0;
  private readonly restartPolicy: RestartPolicy;
  /** a graceful stop hainit began in order to restart the child (memory) */
  private restartStop: ShutdownSequence | undefined;
  private pendingRestart: RestartDecision | undefined;
  /** the phase the running stop sequence is in, had it been a shutdown */
  private sequencePhase: 'draining' | 'stopping' = 'draining';
  private readonly watchdog: MemoryWatchdog | undefined;
  /** set when hainit, not the child, decides the exit code (post-start failure) */
  private exitOverride: number | undefined;
  private readonly preStop: readonly string[][];
  private readonly postStart: readonly string[] | undefined;
  /** hook commands running now: not leftovers of the child */
  private readonly hookPids = new Set<number>();
  private readonly waitTargets: readonly WaitTarget[];
  private readonly jobs: JobControl;
  /** decided at the first start */
  private childGetsTerminal: boolean | undefined;

  constructor(private readonly d: SupervisorDeps) {
    super();
    const shell = existsSync('/bin/sh');
    this.preStop = d.config.preStop.map((c, i) => splitCommandLine(c, `--pre-stop #${i + 1}`, shell));
    this.postStart = d.config.postStart === undefined ? undefined : splitCommandLine(d.config.postStart, '--post-start', shell);
    this.waitTargets = d.config.waitFor.map((u) => parseWaitTarget(u, '--wait-for'));
    for (const w of timingWarnings(d.config)) d.log.warn(w);
    d.router.on('signal', (e) => this.onSignal(e));
    this.jobs = new JobControl({
      addon: d.addon,
      log: d.log,
      enabled: process.pid !== 1,
      holdContinue: (hold) => d.router.setMode(SIGCONT, hold ? 'notify' : 'forward'),
      continueChild: () => this.continueStoppedGroup(),
    });
    // SIGCHLD: a stop of the main child (an exit is the reaper's, and may be reaped already).
    d.router.on('childExited', () => {
      if (this.childPid !== undefined && !this.childStatus) this.jobs.childMayHaveStopped(this.childPid);
    });
    for (const s of SHUTDOWN_SIGNALS) if (d.router.rewriteOf(s) !== 0) d.router.setMode(s, 'notify');
    const { config } = d;
    this.restartPolicy = new RestartPolicy({
      mode: config.restart, maxRestarts: config.maxRestarts, delayMs: config.restartDelayMs, windowMs: config.restartWindowMs,
    });
    if (config.maxMemory) {
      const sampler = d.memorySampler ?? samplerFor(config.maxMemory);
      if (typeof sampler === 'string') d.log.warn(sampler);
      else {
        this.watchdog = new MemoryWatchdog(config.maxMemory, sampler, d.clock, d.log, config.memoryIntervalMs, (r, n) => this.memoryExceeded(r, n));
      }
    }
  }

  /** The memory watchdog's state, for the `memory` check and /metrics; undefined without --max-memory. */
  get memory(): MemoryStatus | undefined {
    return this.watchdog;
  }

  /** The stop signal when hainit itself decides to stop the child: --stop-signal, else TERM after --rewrite. */
  private get ownStopSignal(): number {
    return this.d.config.stopSignal ?? (this.d.router.rewriteOf(SIGTERM) || SIGTERM);
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
      const missing = await waitForAll(this.waitTargets, config.waitTimeoutMs, clock, log, this.idleAbort.signal);
      if (this.shutdownRequested) return this.finish(128 + this.shutdownRequested.signal);
      if (missing.length) {
        log.error(`--wait-for: never came within ${config.waitTimeoutMs} ms: ${missing.join(', ')}`);
        return this.finish(EXIT_USAGE);
      }
    }
    if (this.shutdownRequested) return this.finish(128 + this.shutdownRequested.signal);
    for (;;) {
      const spawned = this.startChild();
      if (spawned !== undefined) return this.finish(spawned);
      if (this.postStart) void this.runPostStart(this.postStart, this.generation);
      else this.setPhase('running');

      await this.childExitedPromise;
      this.watchdog?.stop();
      const status = this.childStatus as ExitStatus;
      const code = this.exitOverride ?? remapExit(exitCodeOf(status), config.remapExit);
      const restart = this.restartDecision(code);
      if (restart.restart) {
        this.restarts++;
        this.setPhase('restarting');
      }
      const deadline = this.shutdown ? this.shutdown.leftoverDeadline() : Infinity;
      const hardDeadline = this.shutdown ? this.shutdown.exitBy : Infinity;
      // Before a restart too: a leftover still holding the port would make the new child fail.
      await cleanupLeftovers(this.actions, clock, log, config.orphanGraceMs, Math.min(deadline, clock.now() + config.orphanGraceMs), hardDeadline);
      if (this.shutdown) log.info(`shutdown: done in ${Math.round(clock.now() - this.shutdown.startedAt)} ms, exit code ${code}`);
      // exitOverride again: --startup-timeout may have fired meanwhile.
      if (!restart.restart || this.shutdownRequested) return this.finish(this.exitOverride ?? code);

      await clock.sleep(restart.delayMs, this.idleAbort.signal);
      if (this.shutdownRequested) {
        // The application is not running: nothing to drain, so no reason to wait for anything.
        const last = this.exitOverride ?? code;
        log.info(`shutdown during the restart delay: exiting with ${last === code ? "the child's last code" : 'code'} ${last}`);
        return this.finish(last);
      }
    }
  }

  /** After the child exited: restart it or not (and say why in the log). */
  private restartDecision(code: number): RestartDecision {
    const { log, clock } = this.d;
    const pending = this.pendingRestart;
    this.pendingRestart = undefined;
    this.restartStop = undefined;
    if (this.shutdown || this.shutdownRequested || this.exitOverride !== undefined) return { restart: false, reason: 'shutting down' };
    const status = this.childStatus as ExitStatus;
    const how = status.signal !== null ? `was killed by ${signalName(status.signal)}` : `exited with code ${status.code}`;
    const ranMs = Math.round(clock.now() - this.childStartedAt);
    const decision = pending ?? this.restartPolicy.decide(code !== 0, ranMs);
    if (decision.restart) {
      log.write(code === 0 && !pending ? 'info' : 'warn',
        `child ${how} after ${ranMs} ms: restart ${decision.attempt} of ${this.d.config.maxRestarts} in ${decision.delayMs} ms`);
    } else if (this.restartPolicy.enabled) {
      log.write(code === 0 ? 'info' : 'warn', `child ${how} after ${ranMs} ms: not restarted (${decision.reason}): exiting with code ${code}`);
    }
    return decision;
  }

  /**
   * The watchdog saw the tree over --max-memory for several samples in a row: a graceful restart
   * when the policy allows one, else the graceful shutdown. Either way the child gets its stop
   * signal and the grace period, never a SIGKILL out of the blue as from the OOM killer.
   */
  private memoryExceeded(reading: MemoryReading, samples: number): void {
    const { log, config, clock } = this.d;
    const watchdog = this.watchdog as MemoryWatchdog;
    if (this.shutdown || this.restartStop || this.childStatus || this.childPid === undefined) return;
    const why = watchdog.describe(reading, samples);
    const decision = this.restartPolicy.decide(true, Math.round(clock.now() - this.childStartedAt));
    if (!decision.restart) {
      watchdog.actions.shutdown++;
      log.warn(`${why}: graceful shutdown${this.restartPolicy.enabled ? ` (no restart: ${decision.reason})` : ''}`);
      this.beginShutdown(this.ownStopSignal, undefined);
      return;
    }
    watchdog.actions.restart++;
    log.warn(`${why}: graceful restart`);
    this.pendingRestart = decision;
    this.sequencePhase = 'draining';
    // The shutdown sequence (readiness off, delay, drain commands, stop signal, SIGKILL at the
    // grace period) with the phase held at `restarting` and no exit at its end.
    this.restartStop = new ShutdownSequence(config, clock, log, this.actions);
    void this.restartStop.run(this.ownStopSignal);
  }

  /** undefined when started; else the exit code (126/127). */
  private startChild(): number | undefined {
    const { config, addon, router, reaper, log } = this.d;
    const result = spawnProcess(addon, this.d.rawCommand ?? config.command, this.d.env, {
      keepFds: addon.inheritedFds(),
      // Only when hainit's group holds the terminal (the native spawn checks only that stdin is
      // one): `hainit -- app &` at a shell must leave the terminal to the shell. A restarted
      // child gets what the first one got: by then the dead child's group holds the terminal.
      foreground: (this.childGetsTerminal ??= this.jobs.holdsTerminal()),
      newProcessGroup: true,
    });
    if (!result.ok) {
      log.error(result.message);
      return result.exitCode;
    }
    this.childPid = result.pid;
    this.childStatus = undefined;
    this.childExitedPromise = new Promise<void>((r) => (this.childExited = r));
    this.childStartedAt = this.d.clock.now();
    this.generation++;
    router.setTarget(this.target);
    reaper.watch(result.pid, (status) => this.onChildExit(status));
    log.write(this.restarts ? 'info' : 'debug', this.restarts ? `child restarted (restart ${this.restarts})` : 'child started', { pid: result.pid, command: config.command.join(' ') });
    // A restarted child is the same program: its warnings were given the first time.
    if (this.restarts === 0) this.scheduleEarlyWarnings(result.pid);
    this.watchdog?.start();
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

  private async runPostStart(argv: readonly string[], generation: number): Promise<void> {
    const r = await this.runHook(argv, 'post-start', this.d.config.postStartTimeoutMs);
    if (this.childStatus || this.shutdown || this.restartStop || generation !== this.generation) return;
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

  /** The terminal stopped the child's whole process group (a shell's pipeline with it), so the
   * whole group is continued, as a shell does on `fg`, with or without -g. */
  private continueStoppedGroup(): void {
    const { addon, log, router } = this.d;
    const sig = router.rewriteOf(SIGCONT);
    if (sig === 0 || this.childPid === undefined || this.childStatus) return;
    let rc = addon.kill(-this.childPid, sig);
    if (rc < 0) rc = addon.kill(this.childPid, sig); // the child left its group (setsid)
    log.debug(`SIGCONT passed on as ${signalName(sig)} to process group ${this.childPid}`, { errno: rc < 0 ? -rc : undefined });
    if (rc === 0) this.count(this.signalsForwarded, sig);
  }

  private onSignal(e: SignalEvent): void {
    const { log } = this.d;
    const name = signalName(e.signal);
    if (e.fromSelf || e.fromOwnTty) {
      log.trace(`${name} raised by hainit itself: not forwarded`);
      return;
    }
    this.count(this.signalsReceived, e.signal);
    if (e.signal === SIGCONT && this.childPid !== undefined && !this.childStatus) this.jobs.continued(this.childPid);
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
    } else if (this.phase === 'restarting' && this.target === 0) {
      // A new child is a fresh start: a HUP or USR1 meant for the one that died means nothing to it.
      log.debug(`${name} from ${describeSender(e)} dropped: the child is restarting`);
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
    this.watchdog?.stop();
    if (this.childPid === undefined || this.childStatus) {
      this.idleAbort.abort();
      return;
    }
    if (this.restartStop) {
      // The child is already being stopped gracefully: that stop becomes the shutdown, with no restart.
      log.info('shutdown: the child is already being stopped for a restart: it will not be restarted');
      this.shutdown = this.restartStop;
      this.restartStop = undefined;
      this.pendingRestart = undefined;
      this.setPhase(this.sequencePhase);
    } else {
      this.shutdown = new ShutdownSequence(config, clock, log, this.actions);
      void this.shutdown.run(stopSignal);
    }
    const grace = setTimeout(() => {
      log.error(`grace period of ${config.gracePeriodMs} ms is over: exiting now`);
      process.exit(this.exitOverride ?? (this.childStatus ? remapExit(exitCodeOf(this.childStatus), config.remapExit) : 137));
    }, config.gracePeriodMs);
    grace.unref();
  }

  /** The shutdown sequence's hands, for the current child (a sequence keeps the ones it started with). */
  private get actions(): ShutdownActions {
    return {
      childGone: () => this.childStatus !== undefined,
      childExited: this.childExitedPromise,
      enterPhase: (phase) => {
        this.sequencePhase = phase;
        this.setPhase(this.shutdown ? phase : 'restarting');
      },
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
  }

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
