import { CancelController } from '../runtime/cancel';
import { Config } from '../config/config';
import { Logger } from '../log/logger';
import { step, stepAsync } from '../log/internal-error';
import { setExitFlushMs } from '../log/output';
import { NativeAddon, ReapedStatus } from '../native';
import { Reaper } from '../reaper/reaper';
import { Clock } from '../runtime/clock';
import { descendants } from '../shutdown/leftovers';
import { ShutdownActions, ShutdownSequence, cleanupLeftovers, timingWarnings } from '../shutdown/sequence';
import { signalName } from '../signals/names';
import { SignalEvent, SignalRouter, describeSender } from '../signals/router';
import { waitForAll } from '../startup/wait-for';
import { MemoryReading, MemorySampler, MemoryStatus, MemoryWatchdog, samplerFor } from '../watch/memory';
import { ChildRunner, describeExit } from './child';
import { startupWarnings } from '../forensics/dispositions';
import { describeResult } from './command';
import { EXIT_USAGE, ExitStatus, exitCodeOf, remapExit } from '../exit-codes';
import { Hooks, succeeded } from './hooks';
import { JobControl } from './job-control';
import { Ending, Lifecycle, LifecycleEvent, Phase, decideExitCode } from './lifecycle';
import { RestartController } from './restart';
import { SHUTDOWN_SIGNALS, SIGCONT, SIGTERM, decideSignal } from './signal-policy';

export type { Phase } from './lifecycle';

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
  /** tests: hainit's pid as job control sees it (default process.pid: PID 1 has no shell to stop to) */
  readonly pid?: number;
  /** tests: the processes left under hainit, hooks excluded (default: the kernel's children lists) */
  readonly leftovers?: (hooks: ReadonlySet<number>) => number[];
}

/** A stop sequence that runs: the shutdown's, or a graceful restart's (memory) until a shutdown takes it over. */
interface Stop {
  readonly sequence: ShutdownSequence;
  forShutdown: boolean;
  /** the phase the sequence is in, had it been a shutdown */
  phase: 'draining' | 'stopping';
}

/**
 * Runs the lifecycle (lifecycle.ts): wait for dependencies, start the child, react to signals,
 * its exit, the memory watchdog and hooks, shut down. `run()` resolves to the exit code; hainit's
 * only exit is in main.ts. The collaborators each do one job: ChildRunner (the process), Hooks
 * (post-start, pre-stop), RestartController (whether and when to start again), ShutdownSequence
 * (README "The shutdown sequence"), decideSignal (what a received signal means), JobControl (the terminal).
 */
export class Supervisor {
  private readonly lifecycle: Lifecycle;
  private readonly child: ChildRunner;
  private readonly hooks: Hooks;
  private readonly restartControl: RestartController;
  private readonly watchdog: MemoryWatchdog | undefined;
  private readonly jobs: JobControl;
  readonly signalsReceived = new Map<number, number>();
  readonly signalsForwarded = new Map<number, number>();
  /** signals that arrived before there was a child to forward them to */
  private readonly held: number[] = [];
  /** the signal that asked for the shutdown (or the stop signal, when hainit decided) */
  private shutdownBy: number | undefined;
  private stop: Stop | undefined;
  /** set when hainit, not the child, decides the exit code (post-start failure, start-up timeout) */
  private exitOverride: number | undefined;
  /** fires on a shutdown signal while there is no child: ends --wait-for and the restart delay */
  private readonly idleAbort = new CancelController();
  /** fires when run() has its answer: ends the grace timer and the early warnings */
  private readonly ended = new CancelController();
  private resolveGraceOver!: (code: number) => void;
  private readonly graceOver = new Promise<number>((r) => (this.resolveGraceOver = r));
  /** decided at the first start */
  private childGetsTerminal: boolean | undefined;

  constructor(private readonly d: SupervisorDeps) {
    const { config, log, clock } = d;
    this.lifecycle = new Lifecycle((m) => log.trace(m));
    for (const w of timingWarnings(config)) log.warn(w);
    this.child = new ChildRunner({
      addon: d.addon, reaper: d.reaper, router: d.router, log, now: () => clock.now(), env: d.env,
      command: d.rawCommand ?? config.command, signalGroup: config.signalGroup,
      onExit: (status) => this.onChildExit(status),
    });
    this.hooks = new Hooks({ addon: d.addon, reaper: d.reaper, log, env: d.env });
    this.restartControl = new RestartController({
      mode: config.restart, maxRestarts: config.maxRestarts, delayMs: config.restartDelayMs, windowMs: config.restartWindowMs,
    }, log);
    this.jobs = new JobControl({
      addon: d.addon,
      log,
      enabled: (d.pid ?? process.pid) !== 1,
      holdContinue: (hold) => d.router.setMode(SIGCONT, hold ? 'notify' : 'forward'),
      continueChild: () => this.continueStoppedGroup(),
    });
    d.router.on('signal', (e) => this.onSignal(e));
    // SIGCHLD: a stop of the main child (an exit is the reaper's, and may be reaped already).
    d.router.on('childExited', () => {
      if (this.child.running) this.jobs.childMayHaveStopped(this.child.pid as number);
    });
    // TERM and INT begin the shutdown: the handler only reports them, until the stop signal has gone.
    for (const s of SHUTDOWN_SIGNALS) if (d.router.rewriteOf(s) !== 0) d.router.setMode(s, 'notify');
    if (config.maxMemory) {
      const sampler = d.memorySampler ?? samplerFor(config.maxMemory);
      if (typeof sampler === 'string') log.warn(sampler);
      else this.watchdog = new MemoryWatchdog(config.maxMemory, sampler, clock, log, config.memoryIntervalMs, (r, n) => this.memoryExceeded(r, n));
    }
  }

  // ---- what the health endpoint, metrics and logs read (LifecycleView) ----

  get phase(): Phase {
    return this.lifecycle.phase;
  }
  get childPid(): number | undefined {
    return this.child.pid;
  }
  get childStatus(): ExitStatus | undefined {
    return this.child.status;
  }
  /** child restarts in place (--restart, and memory restarts) */
  get restarts(): number {
    return this.restartControl.count;
  }
  /** The memory watchdog's state, for the `memory` check and /metrics; undefined without --max-memory. */
  get memory(): MemoryStatus | undefined {
    return this.watchdog;
  }
  on(event: 'phase', listener: (phase: Phase) => void): this {
    this.lifecycle.on(event, listener);
    return this;
  }
  off(event: 'phase', listener: (phase: Phase) => void): this {
    this.lifecycle.off(event, listener);
    return this;
  }

  // ---- the life ----

  /**
   * The whole life; resolves to the exit code, at the latest when the grace period is over. It
   * never rejects: a bug in hainit may cost the restarts, never the exit with the child's code.
   */
  run(): Promise<number> {
    const { log } = this.d;
    const life = stepAsync(log, 'the supervision', () => this.live()).then((code) => code ?? this.withoutLive());
    return Promise.race([life, this.graceOver]).then((code) => {
      step(log, 'the exit phase', () => {
        this.ended.abort();
        this.move('exit');
      });
      return code;
    });
  }

  /**
   * live() failed (a bug in hainit, logged): the child is not restarted, but what is driven by
   * events goes on (forwarding, reaping, a shutdown signal's sequence and grace period), and hainit
   * exits with the child's code once it has one. 125 when no child ever ran: nothing else is known.
   */
  private async withoutLive(): Promise<number> {
    if (this.child.pid === undefined) return EXIT_USAGE;
    await this.child.exited;
    return this.decide({ kind: 'child-exited', status: this.child.status as ExitStatus });
  }

  private async live(): Promise<number> {
    const { config, log, clock } = this.d;
    const early = await this.waitForDependencies();
    if (early) return this.decide(early);
    for (;;) {
      const failed = this.child.start({
        keepFds: this.d.addon.inheritedFds(),
        // Only when hainit's group holds the terminal (the native spawn checks only that stdin is
        // one): `hainit -- app &` at a shell must leave the terminal to the shell. A restarted
        // child gets what the first one got: by then the dead child's group holds the terminal.
        foreground: (this.childGetsTerminal ??= this.jobs.holdsTerminal()),
        restart: this.restartControl.count,
      });
      if (failed !== undefined) return this.decide({ kind: 'spawn-failed', code: failed });
      this.childStarted();

      await this.child.exited;
      this.watchdog?.stop();
      const status = this.child.status as ExitStatus;
      const code = this.exitOverride ?? remapExit(exitCodeOf(status), config.remapExit);
      const ranMs = Math.round(clock.now() - this.child.startedAt);
      const restart = this.restartControl.afterExit(code, describeExit(status), ranMs, this.stopping);
      if (this.stop && !this.stop.forShutdown) this.stop = undefined;
      if (restart.restart) this.move('restart');
      const shutdown = this.stop?.forShutdown ? this.stop.sequence : undefined;
      // Before a restart too: a leftover still holding the port would make the new child fail.
      const killBy = Math.min(shutdown ? shutdown.leftoverDeadline() : Infinity, clock.now() + config.orphanGraceMs);
      await stepAsync(log, 'the leftover cleanup', () => cleanupLeftovers(this.actions, clock, log, config.orphanGraceMs, killBy, shutdown ? shutdown.exitBy : Infinity));
      if (shutdown) log.info(`shutdown: done in ${Math.round(clock.now() - shutdown.startedAt)} ms, exit code ${code}`);
      // The override is read again: --startup-timeout may have fired meanwhile.
      if (!restart.restart || this.shutdownBy !== undefined) return this.decide({ kind: 'child-exited', status });

      await clock.sleep(restart.delayMs, this.idleAbort.signal);
      if (this.shutdownBy !== undefined) {
        // The application is not running: nothing to drain, so no reason to wait for anything.
        const last = this.decide({ kind: 'child-exited', status });
        log.info(`shutdown during the restart delay: exiting with ${last === code ? "the child's last code" : 'code'} ${last}`);
        return last;
      }
    }
  }

  /** --wait-for; an Ending when hainit must not start the child at all. */
  private async waitForDependencies(): Promise<Ending | undefined> {
    const { config, log, clock } = this.d;
    if (config.waitFor.length) {
      const missing = await waitForAll(config.waitFor, config.waitTimeoutMs, clock, log, this.idleAbort.signal);
      if (this.shutdownBy !== undefined) {
        log.info(`shutdown during --wait-for: the child never started: exiting with ${128 + this.shutdownBy}`);
        return { kind: 'stopped-before-start', signal: this.shutdownBy };
      }
      if (missing.length) {
        log.error(`--wait-for: never came within ${config.waitTimeoutMs} ms: ${missing.join(', ')}`);
        return { kind: 'dependencies-missing' };
      }
    }
    if (this.shutdownBy !== undefined) return { kind: 'stopped-before-start', signal: this.shutdownBy };
    return undefined;
  }

  /** The child runs: the watchdog, the early warnings, held signals, then --post-start or ready. */
  private childStarted(): void {
    // A restarted child is the same program: its warnings were given the first time.
    if (this.restartControl.count === 0) this.scheduleEarlyWarnings(this.child.pid as number);
    this.watchdog?.start();
    for (const sig of this.held.splice(0)) this.forwardHeld(sig);
    const { postStart } = this.d.config;
    if (postStart) void this.runPostStart(postStart.argv, this.child.generation);
    else this.move('ready');
  }

  private decide(ending: Ending): number {
    return decideExitCode(ending, this.exitOverride, this.d.config.remapExit);
  }

  private move(event: LifecycleEvent): void {
    this.lifecycle.apply(event);
  }

  /** A shutdown was asked for (a signal, the watchdog, hainit's own error). */
  private get stopping(): boolean {
    return this.shutdownBy !== undefined || this.exitOverride !== undefined;
  }

  /** The stop signal when hainit itself decides to stop the child: --stop-signal, else TERM after --rewrite. */
  private get ownStopSignal(): number {
    return this.d.config.stopSignal ?? (this.d.router.rewriteOf(SIGTERM) || SIGTERM);
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
      if (!this.child.running || this.stop?.forShutdown || this.ended.signal.aborted) return;
      const found = startupWarnings(pid, stopSignal, '/proc', { signalGroup: this.d.config.signalGroup });
      // A shell still starting its command is not yet a problem; only warn when it persists.
      for (const w of found) if (!warned.has(w) && (final || !/shell/.test(w))) warned.add(w), this.d.log.warn(w);
    };
    void this.d.clock.sleep(1000, this.ended.signal).then(() => check(false));
    void this.d.clock.sleep(5000, this.ended.signal).then(() => check(true));
  }

  private async runPostStart(argv: readonly string[], generation: number): Promise<void> {
    const r = await this.hooks.run(argv, 'post-start', this.d.config.postStartTimeoutMs);
    if (!this.child.running || this.stop || generation !== this.child.generation) return;
    if (succeeded(r)) this.move('ready');
    else this.stopWithError(`post-start failed (${describeResult(r)}): stopping the child`, EXIT_USAGE);
  }

  /** hainit decided the child must go (post-start failed, start-up timed out): the graceful
   * shutdown, then exit with `code` whatever the child's own code. */
  stopWithError(message: string, code: number): void {
    if (this.stop?.forShutdown) return;
    this.d.log.error(message);
    this.exitOverride = code;
    this.beginShutdown(this.d.config.stopSignal ?? SIGTERM, undefined);
  }

  /**
   * The watchdog saw the tree over --max-memory for several samples in a row: a graceful restart
   * when the policy allows one, else the graceful shutdown. Either way the child gets its stop
   * signal and the grace period, never a SIGKILL out of the blue as from the OOM killer.
   */
  private memoryExceeded(reading: MemoryReading, samples: number): void {
    const { log, config, clock } = this.d;
    const watchdog = this.watchdog as MemoryWatchdog;
    if (this.stop || !this.child.running) return;
    const why = watchdog.describe(reading, samples);
    const decision = this.restartControl.forMemory(Math.round(clock.now() - this.child.startedAt));
    if (!decision.restart) {
      watchdog.actions.shutdown++;
      log.warn(`${why}: graceful shutdown${this.restartControl.enabled ? ` (no restart: ${decision.reason})` : ''}`);
      this.beginShutdown(this.ownStopSignal, undefined);
      return;
    }
    watchdog.actions.restart++;
    log.warn(`${why}: graceful restart`);
    this.move('restart');
    // The shutdown sequence (readiness off, delay, drain commands, stop signal, SIGKILL at the
    // grace period) with the phase held at `restarting` and no exit at its end.
    const stop: Stop = { sequence: new ShutdownSequence(config, clock, log, this.actions), forShutdown: false, phase: 'draining' };
    this.stop = stop;
    void stop.sequence.run(this.ownStopSignal);
  }

  // ---- signals ----

  private onSignal(e: SignalEvent): void {
    const { log, router } = this.d;
    const name = signalName(e.signal);
    const action = decideSignal(e, {
      rewriteTo: router.rewriteOf(e.signal),
      restartingWithoutChild: this.phase === 'restarting' && !this.child.running,
      childStarted: this.child.pid !== undefined,
    });
    if (action === 'own') return log.trace(`${name} raised by hainit itself: not forwarded`);
    this.count(this.signalsReceived, e.signal);
    if (e.signal === SIGCONT && this.child.running) this.jobs.continued(this.child.pid as number);
    const from = describeSender(e);
    switch (action) {
      case 'forwarded': {
        this.count(this.signalsForwarded, e.sent);
        const as = e.sent === e.signal ? '' : ` as ${signalName(e.sent)}`;
        if (SHUTDOWN_SIGNALS.includes(e.signal)) log.info(`shutdown: ${name} from ${from} forwarded${as} to the child`);
        else log.debug(`${name} from ${from} forwarded${as} to ${e.target < 0 ? `process group ${-e.target}` : `pid ${e.target}`}`);
        return;
      }
      case 'dropped':
        return log.debug(`${name} from ${from} dropped (--rewrite ${e.signal}:0)`);
      case 'shutdown':
        return this.beginShutdown(this.d.config.stopSignal ?? router.rewriteOf(e.signal), e);
      case 'dropped-restarting':
        return log.debug(`${name} from ${from} dropped: the child is restarting`);
      case 'hold':
        log.debug(`${name} from ${from} held until the child starts`);
        this.held.push(e.signal);
        return;
      case 'failed':
        return log.debug(`${name} from ${from} could not be forwarded`, { to: e.target, errno: e.errno });
      case 'none':
        return;
    }
  }

  /** A signal that came before the child: TERM/INT began the shutdown already; the rest go now. */
  private forwardHeld(received: number): void {
    const sent = this.d.router.rewriteOf(received);
    if (SHUTDOWN_SIGNALS.includes(received) || sent === 0) return;
    const rc = this.child.signal(sent);
    this.d.log.debug(`held ${signalName(received)} forwarded as ${signalName(sent)}`, { to: this.child.target, errno: rc < 0 ? -rc : undefined });
    if (rc === 0) this.count(this.signalsForwarded, sent);
  }

  /** The terminal stopped the child's whole process group (a shell's pipeline with it), so the
   * whole group is continued, as a shell does on `fg`, with or without -g. */
  private continueStoppedGroup(): void {
    const { addon, log, router } = this.d;
    const sig = router.rewriteOf(SIGCONT);
    if (sig === 0 || !this.child.running) return;
    const pid = this.child.pid as number;
    let rc = addon.kill(-pid, sig);
    if (rc < 0) rc = addon.kill(pid, sig); // the child left its group (setsid)
    log.debug(`SIGCONT passed on as ${signalName(sig)} to process group ${pid}`, { errno: rc < 0 ? -rc : undefined });
    if (rc === 0) this.count(this.signalsForwarded, sig);
  }

  // ---- the shutdown ----

  private beginShutdown(stopSignal: number, e: SignalEvent | undefined): void {
    const { log, config, clock } = this.d;
    if (this.stop?.forShutdown) {
      this.stop.sequence.again(e?.signal ?? stopSignal);
      return;
    }
    // The bound first: whatever fails below (a bug is only logged), hainit exits when the grace period is over.
    if (this.shutdownBy === undefined) this.armGracePeriod();
    if (e) log.info(`shutdown: ${signalName(e.signal)} from ${describeSender(e)}`);
    this.shutdownBy = e?.signal ?? stopSignal;
    this.watchdog?.stop();
    if (!this.child.running) {
      this.idleAbort.abort();
      return;
    }
    if (this.stop) {
      // The child is already being stopped gracefully: that stop becomes the shutdown, with no restart.
      log.info('shutdown: the child is already being stopped for a restart: it will not be restarted');
      this.stop.forShutdown = true;
      this.restartControl.cancel();
      this.move(this.stop.phase === 'draining' ? 'drain' : 'stop');
      if (this.stop.sequence.stopSent) this.forwardShutdownSignals();
    } else {
      this.stop = { sequence: new ShutdownSequence(config, clock, log, this.actions), forShutdown: true, phase: 'draining' };
      void this.stop.sequence.run(stopSignal);
    }
  }

  /** run() resolves when the grace period is over, whatever is still running then. */
  private armGracePeriod(): void {
    const { log, config, clock } = this.d;
    void clock.sleep(config.gracePeriodMs, this.ended.signal).then(() => {
      if (this.ended.signal.aborted) return;
      setExitFlushMs(0); // the grace period is a promise: no waiting for a slow log reader now
      this.resolveGraceOver(this.decide({ kind: 'grace-over', status: this.child.status }));
      log.error(`grace period of ${config.gracePeriodMs} ms is over: exiting now`);
    });
  }

  /** From the stop signal on, TERM and INT are the child's (README "Signals"): the native handler forwards
   * them at once, as it does every other signal. The shutdown never goes back, so neither does this. */
  private forwardShutdownSignals(): void {
    for (const s of SHUTDOWN_SIGNALS) if (this.d.router.rewriteOf(s) !== 0) this.d.router.setMode(s, 'forward');
  }

  /** The shutdown sequence's hands, for the current child (a sequence keeps the ones it started with). */
  private get actions(): ShutdownActions {
    const exited = this.child.exited;
    return {
      childGone: () => !this.child.running,
      childExited: exited,
      enterPhase: (phase) => {
        if (this.stop) this.stop.phase = phase;
        if (this.stop?.forShutdown) this.move(phase === 'draining' ? 'drain' : 'stop');
      },
      sendStopSignal: (sig) => {
        const rc = this.child.signal(sig);
        if (rc === 0) this.count(this.signalsForwarded, sig);
        else this.d.log.warn(`cannot send ${signalName(sig)} to the child`, { to: this.child.target, errno: -rc });
        if (this.stop?.forShutdown) this.forwardShutdownSignals();
      },
      forward: (received) => {
        const sig = this.d.router.rewriteOf(received);
        if (sig === 0 || !this.child.running) return;
        const rc = this.child.signal(sig);
        if (rc === 0) this.count(this.signalsForwarded, sig);
        this.d.log.info(`shutdown: ${signalName(received)} forwarded${sig === received ? '' : ` as ${signalName(sig)}`} to the child`, { errno: rc < 0 ? -rc : undefined });
      },
      runPreStop: async (i, _command, timeoutMs, abort) => {
        await this.hooks.run(this.d.config.preStop[i - 1].argv, `pre-stop[${i}]`, timeoutMs, abort);
      },
      leftovers: () => (this.d.leftovers ?? ((hooks) => descendants(process.pid, hooks)))(this.hooks.running),
      signalAll: (pids, sig) => {
        for (const pid of pids) this.d.addon.kill(pid, sig);
      },
    };
  }

  private onChildExit(status: ReapedStatus): void {
    this.d.log.write(status.signal !== null || this.stop?.forShutdown ? 'info' : 'debug', `child ${describeExit(status)}`, { pid: status.pid });
  }

  private count(map: Map<number, number>, sig: number): void {
    map.set(sig, (map.get(sig) ?? 0) + 1);
  }
}
