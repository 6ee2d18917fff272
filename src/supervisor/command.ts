import { CancelSignal } from '../runtime/cancel';
import { closeSync, openSync } from 'node:fs';
import { netModule } from '../runtime/lazy';
import { Logger } from '../log/logger';
import { NativeAddon } from '../native';
import { Reaper } from '../reaper/reaper';
import { longTimeout } from '../runtime/clock';
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
    const lines = new LineCutter();
    const emit = (line: string, continued: boolean) => log.info(`${name}: ${line}`, continued ? { continued: true } : undefined);
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => lines.push(chunk, emit));
    const end = () => {
      lines.end(emit);
      resolve();
    };
    s.on('end', end);
    s.on('error', end);
    s.on('close', end);
  });
}

/** Hook output is logged in lines of at most this many characters; a longer one is cut into
 * pieces, each but the last marked `continued`. Small enough that a whole log line (3 bytes per
 * character at most in UTF-8, the prefix, the mark) stays within PIPE_BUF (4096 bytes): the kernel
 * writes such a line to a pipe at once or not at all, so the application's own lines, which share
 * the pipe, never land inside one (with 4096-character pieces they did: the line was written in
 * two parts). */
export const MAX_LINE_CHARS = 1024;

/**
 * Splits a stream of text into lines in time linear in its size and memory bounded by
 * MAX_LINE_CHARS, whatever the stream (40 MB without a newline included).
 */
export class LineCutter {
  /** the unfinished line: never longer than MAX_LINE_CHARS */
  private rest = '';

  push(chunk: string, emit: (line: string, continued: boolean) => void): void {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf('\n', pos);
      let seg = chunk.slice(pos, nl < 0 ? chunk.length : nl);
      while (this.rest.length + seg.length > MAX_LINE_CHARS) {
        let take = MAX_LINE_CHARS - this.rest.length;
        // never split a surrogate pair (it would be written as two U+FFFD)
        if (take > 0 && isHighSurrogate(seg.charCodeAt(take - 1))) take--;
        emit(this.rest + seg.slice(0, take), true);
        this.rest = '';
        seg = seg.slice(take);
      }
      if (nl < 0) {
        this.rest += seg;
        return;
      }
      emit(this.rest + seg, false);
      this.rest = '';
      pos = nl + 1;
    }
  }

  /** The last line, when the stream did not end with a newline. */
  end(emit: (line: string, continued: boolean) => void): void {
    if (this.rest) emit(this.rest, false);
    this.rest = '';
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

export function describeResult(r: CommandResult): string {
  if (r.error) return r.error;
  if (r.timedOut) return 'timed out';
  if (r.signal !== null) return `killed by ${signalName(r.signal)}`;
  return `exit code ${r.code}`;
}
