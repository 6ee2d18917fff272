import { CancelSignal } from '../cancel';
import { closeSync, openSync } from 'node:fs';
import { netModule } from '../lazy';
import { Logger } from '../log/logger';
import { NativeAddon } from '../native';
import { Reaper } from '../reaper/reaper';
import { longTimeout } from '../shutdown/clock';
import { signalName } from '../signals/names';
import { spawnProcess } from './spawn';

export interface CommandResult {
  readonly code: number | null;
  readonly signal: number | null;
  readonly timedOut: boolean;
  /** why it could not start, when it could not */
  readonly error?: string;
  readonly ms: number;
  readonly pid?: number;
}

export interface CommandDeps {
  readonly addon: NativeAddon;
  readonly reaper: Reaper;
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
  /** told the pid as soon as the command runs */
  readonly onSpawn?: (pid: number) => void;
  /** kills the command's group early (a second shutdown signal skips the drain) */
  readonly abort?: CancelSignal;
}

const SIGKILL = 9;

/**
 * Runs a hook or check command in its own process group, bounded by timeoutMs: on timeout the
 * whole group is killed, so a drain command's own children do not outlive it. Output goes to
 * hainit's stderr, each line tagged with the command's name (or nowhere when `quiet`).
 */
export function runCommand(d: CommandDeps, argv: readonly string[], name: string, timeoutMs: number, quiet = false): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const devnull = openSync('/dev/null', 'r+');
    const p = quiet ? undefined : d.addon.pipe();
    const out = Array.isArray(p) ? p[1] : devnull;
    const result = spawnProcess(d.addon, argv, d.env, { stdio: [devnull, out, out], newProcessGroup: true });
    closeSync(devnull);
    if (Array.isArray(p)) closeSync(p[1]);
    if (!result.ok) {
      if (Array.isArray(p)) closeSync(p[0]);
      resolve({ code: result.exitCode, signal: null, timedOut: false, error: result.message, ms: Date.now() - started });
      return;
    }
    const pid = result.pid;
    d.onSpawn?.(pid);
    let timedOut = false;
    const timer = longTimeout(() => {
      timedOut = true;
      d.log.warn(`${name} timed out after ${timeoutMs} ms: killing its process group`, { pid });
      d.addon.kill(-pid, SIGKILL);
    }, timeoutMs);
    const onAbort = () => {
      d.log.info(`${name} cut short: killing its process group`, { pid });
      d.addon.kill(-pid, SIGKILL);
    };
    d.abort?.addEventListener('abort', onAbort, { once: true });
    const output = Array.isArray(p) ? tagLines(p[0], name, d.log) : Promise.resolve();
    d.reaper.watch(pid, (status) => {
      timer.clear();
      d.abort?.removeEventListener('abort', onAbort);
      // A child of the command may still hold the pipe: do not wait for it past the exit.
      let settled = false;
      const done = () => !settled && (settled = true) && resolve({ code: status.code, signal: status.signal, timedOut, ms: Date.now() - started, pid });
      const grace = setTimeout(done, 100);
      void output.then(() => {
        clearTimeout(grace);
        done();
      });
    });
  });
}

function tagLines(fd: number, name: string, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const s = new (netModule().Socket)({ fd, readable: true, writable: false });
    let rest = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) log.info(`${name}: ${line}`);
    });
    const end = () => {
      if (rest) log.info(`${name}: ${rest}`);
      rest = '';
      resolve();
    };
    s.on('end', end);
    s.on('error', end);
    s.on('close', end);
  });
}

export function describeResult(r: CommandResult): string {
  if (r.error) return r.error;
  if (r.timedOut) return 'timed out';
  if (r.signal !== null) return `killed by ${signalName(r.signal)}`;
  return `exit code ${r.code}`;
}
