import { EventEmitter } from 'node:events';
import { Config } from '../config/config';
import { Logger } from '../log/logger';
import { NativeAddon, ReapedStatus } from '../native';
import { Reaper } from '../reaper/reaper';
import { signalName } from '../signals/names';
import { SignalEvent, SignalRouter, describeSender } from '../signals/router';
import { ExitStatus, exitCodeOf, remapExit } from './exit-codes';
import { spawnProcess } from './spawn';

/** The lifecycle; the health server, metrics and logs read it, they never drive it. */
export type Phase = 'starting' | 'running' | 'draining' | 'stopping' | 'exited';

export interface SupervisorDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly addon: NativeAddon;
  readonly router: SignalRouter;
  readonly reaper: Reaper;
  readonly env: NodeJS.ProcessEnv;
  readonly stdinIsTty: boolean;
}

export interface SupervisorEvents {
  phase: [Phase];
  /** hainit's exit code, decided: the caller cleans up and exits */
  exit: [number];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  phase: Phase = 'starting';
  childPid: number | undefined;
  childStatus: ExitStatus | undefined;
  readonly signalsReceived = new Map<number, number>();
  readonly signalsForwarded = new Map<number, number>();
  /** signals that arrived before there was a child to forward them to */
  private readonly held: number[] = [];

  constructor(private readonly d: SupervisorDeps) {
    super();
    d.router.on('signal', (e) => this.onSignal(e));
  }

  /** The forwarding target: the child, or its process group with -g. */
  get target(): number {
    if (this.childPid === undefined) return 0;
    return this.d.config.signalGroup ? -this.childPid : this.childPid;
  }

  startChild(): void {
    const { config, addon, router, reaper, log } = this.d;
    const result = spawnProcess(addon, config.command, this.d.env, {
      keepFds: addon.inheritedFds(),
      foreground: this.d.stdinIsTty,
      newProcessGroup: true,
    });
    if (!result.ok) {
      log.error(result.message);
      this.finish(result.exitCode);
      return;
    }
    this.childPid = result.pid;
    router.setTarget(this.target);
    reaper.watch(result.pid, (status) => this.onChildExit(status));
    log.debug('child started', { pid: result.pid, command: config.command.join(' ') });
    this.setPhase('running');
    for (const sig of this.held.splice(0)) this.forward(sig);
    // The child may have exited before we watched it: collect it now.
    reaper.reapNow();
  }

  private forward(received: number): void {
    const sent = this.d.router.rewriteOf(received);
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
    if (e.forwarded) {
      this.count(this.signalsForwarded, e.sent);
      if (log.enabled('debug')) {
        const as = e.sent === e.signal ? '' : ` as ${signalName(e.sent)}`;
        log.debug(`${name} from ${describeSender(e)} forwarded${as} to ${e.target < 0 ? `process group ${-e.target}` : `pid ${e.target}`}`);
      }
      return;
    }
    const sent = this.d.router.rewriteOf(e.signal);
    if (sent === 0) {
      log.debug(`${name} from ${describeSender(e)} dropped (--rewrite ${e.signal}:0)`);
    } else if (e.target === 0 && this.phase === 'starting') {
      log.debug(`${name} from ${describeSender(e)} held until the child starts`);
      this.held.push(e.signal);
    } else if (e.errno) {
      log.debug(`${name} from ${describeSender(e)} could not be forwarded`, { to: e.target, errno: e.errno });
    }
  }

  private onChildExit(status: ReapedStatus): void {
    this.childStatus = status;
    this.d.router.setTarget(0);
    const code = remapExit(exitCodeOf(status), this.d.config.remapExit);
    const how = status.signal !== null ? `was killed by ${signalName(status.signal)}` : `exited with code ${status.code}`;
    const level = status.signal !== null ? 'info' : 'debug';
    this.d.log.write(level, `child ${how}`, { pid: status.pid, exit: code });
    this.finish(code);
  }

  private finish(code: number): void {
    this.setPhase('exited');
    this.emit('exit', code);
  }

  private setPhase(phase: Phase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.emit('phase', phase);
  }

  private count(map: Map<number, number>, sig: number): void {
    map.set(sig, (map.get(sig) ?? 0) + 1);
  }
}
