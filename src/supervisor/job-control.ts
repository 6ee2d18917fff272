import { Logger } from '../log/logger';
import { NativeAddon } from '../native';
import { signalName } from '../signals/names';

const SIGTSTP = 20;
const SIGTTIN = 21;
const SIGTTOU = 22;
/**
 * The stops a terminal asks for: Ctrl-Z, and reading or writing the terminal from the background.
 * A SIGSTOP sent to the child alone (a debugger, `kill -STOP`, cpulimit's STOP/CONT cycles) is
 * someone pausing that one process, not the user's job: hainit goes on.
 */
const TERMINAL_STOPS: readonly number[] = [SIGTSTP, SIGTTIN, SIGTTOU];
/** How long, at most, the record of the SIGCONT that continued hainit is waited for. */
const RESUME_RECORD_WAIT_MS = 1000;
/**
 * How long, at most, hainit waits for its log lines to be taken before it stops itself. A
 * non-blocking write to a terminal fails with EAGAIN while another process (the shell writing its
 * prompt) writes to it, and a line left queued would wait for the next SIGCONT. The child is
 * stopped already, so a reader that takes nothing only delays the shell's "Stopped" by this much.
 */
const STOP_FLUSH_MS = 500;
/** fd 0 is not hainit's controlling terminal: there is nothing to hand over */
const ENOTTY = 25;

export interface JobControlDeps {
  readonly addon: Pick<NativeAddon, 'childStopped' | 'stopSelf' | 'terminalForeground'>;
  readonly log: Logger;
  /** false as PID 1: there is no shell above hainit to stop to */
  readonly enabled: boolean;
  /** while hainit is stopped, a SIGCONT must wait for the terminal to be handed back (see below) */
  holdContinue(hold: boolean): void;
  /** SIGCONT (after --rewrite) to the child's process group, all of which the terminal stopped */
  continueChild(): void;
}

/**
 * Job control when hainit is not PID 1, as dumb-init users expect. The shell that started hainit
 * sees one job, hainit, while the terminal's foreground belongs to the child's process group.
 * When the child stops at the terminal (Ctrl-Z), hainit stops itself with the same signal, so the
 * shell reports the job stopped and takes the terminal back; when the shell continues the job,
 * hainit hands the terminal back to the child if the job is in the foreground (`fg`), then
 * continues the child.
 */
export class JobControl {
  /** set while SIGCONT is held back from the signal handler (see childMayHaveStopped) */
  private holding: { timer: NodeJS.Timeout | undefined } | undefined;

  constructor(private readonly d: JobControlDeps) {}

  /** After SIGCHLD, while `childPid` has not been reaped: if it stopped, follow it. Returns once
   * hainit has been continued (at once when it does not stop). */
  childMayHaveStopped(childPid: number): void {
    const { addon, log } = this.d;
    const sig = addon.childStopped(childPid);
    if (sig <= 0) return;
    const name = signalName(sig);
    if (!this.d.enabled || !TERMINAL_STOPS.includes(sig)) {
      log.debug(`child stopped by ${name}: hainit goes on (${this.d.enabled ? 'not a stop from the terminal' : 'as PID 1'})`, { pid: childPid });
      return;
    }

    // The shell brought a job that `bg` had continued back with `fg`: it gave hainit's group the
    // terminal but sent no SIGCONT (bash does not continue a running job), so the child, left
    // in the background, stopped at its first read or write. It only needs the terminal.
    if (sig !== SIGTSTP && this.handTerminalTo(childPid)) {
      log.debug(`child stopped by ${name} while hainit's job is in the foreground: terminal handed to the child, continuing it`, { pid: childPid });
      this.d.continueChild();
      return;
    }
    log.debug(`child stopped by ${name}: hainit stops itself so that its shell sees the job stop`, { pid: childPid });
    // A child continued before it holds the terminal again would stop at once on its next read
    // (SIGTTIN): the SIGCONT that continues hainit is passed on here, after the hand-over, not
    // by the signal handler.
    this.hold();
    log.flushSync(STOP_FLUSH_MS);
    const rc = addon.stopSelf(sig);
    if (rc < 0) log.warn(`cannot stop hainit itself with ${name}: continuing the child`, { errno: -rc });
    const handed = this.handTerminalTo(childPid);
    log.debug(handed ? 'continued in the foreground: terminal handed back to the child' : 'continued in the background');
    this.d.continueChild();
    // That SIGCONT is handled on the signal thread, which may run only after this one: it stays
    // held until its record arrives (continued), else a late forward could continue a child that
    // a quick second Ctrl-Z has stopped again. There is none when the kernel discarded the stop.
    this.releaseHold(RESUME_RECORD_WAIT_MS);
  }

  /** hainit received SIGCONT. The one that continued it from childMayHaveStopped was passed on
   * there. Any other (hainit was stopped by SIGSTOP, or a shell continues a running job on
   * `fg`): the terminal goes back to the child if hainit's process group has just been given it. */
  continued(childPid: number): void {
    if (!this.d.enabled) return;
    if (this.holding) {
      this.releaseHold(0);
      return;
    }
    if (this.handTerminalTo(childPid)) this.d.log.debug('continued in the foreground: terminal handed back to the child');
  }

  /** Whether hainit's process group holds the foreground of the terminal on fd 0 (false without
   * a terminal): a hainit started in the background must leave the terminal to the shell. */
  holdsTerminal(): boolean {
    return this.d.addon.terminalForeground(0) === 1;
  }

  private hold(): void {
    if (this.holding) clearTimeout(this.holding.timer);
    this.holding = { timer: undefined };
    this.d.holdContinue(true);
  }

  /** ms = 0: now; else once the record of the SIGCONT is read, or after ms at the latest. */
  private releaseHold(ms: number): void {
    const h = this.holding;
    if (!h) return;
    if (h.timer) clearTimeout(h.timer);
    h.timer = undefined;
    const release = () => {
      if (this.holding !== h) return;
      this.holding = undefined;
      this.d.holdContinue(false);
    };
    if (ms === 0) release();
    else (h.timer = setTimeout(release, ms)).unref();
  }

  /** The child leads its own process group (spawned with one). */
  private handTerminalTo(childPid: number): boolean {
    const rc = this.d.addon.terminalForeground(childPid);
    if (rc < 0 && rc !== -ENOTTY) this.d.log.warn('cannot hand the terminal back to the child', { errno: -rc });
    return rc === 1;
  }
}
