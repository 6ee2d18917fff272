import { closeSync, constants, fstatSync, openSync, write as writeAsync, writeSync } from 'node:fs';

/**
 * Where hainit's log lines go (its stderr), written so that hainit never blocks on them: a log
 * collector that stops reading must not keep hainit from its grace period. The descriptor is
 * shared with the application, so its flags are never touched (O_NONBLOCK on a shared pipe would
 * make the application's own writes fail with EAGAIN). Instead, by what fd 2 is:
 *
 * - a socket (what libuv and many supervisors hand out): send(2) with MSG_DONTWAIT, per call;
 * - a pipe, FIFO or terminal: a description of hainit's own, opened through /proc/self/fd/2 with
 *   O_NONBLOCK (same pipe, separate flags);
 * - a regular file or /dev/null: write(2) as it is; they do not block for long;
 * - a pipe hainit may not reopen (owned by another uid: runc makes them for the container's
 *   root, hainit may run as a user): write(2) in libuv's thread pool, one at a time, so only a
 *   pool thread waits.
 *
 * What cannot be written now waits in a bounded queue, retried with a timer; past the bound a
 * line is dropped and counted, and one line says how many once the reader takes lines again.
 */
export const QUEUE_LIMIT_BYTES = 256 * 1024;
const RETRY_MIN_MS = 10;
const RETRY_MAX_MS = 250;
/** how long an exit waits for a slow reader to take what is queued */
export const EXIT_FLUSH_MS = 100;

type Mode = 'socket' | 'reopened' | 'direct' | 'pool';

/** One attempt to write: bytes written, or 'again' (would block), or 'gone' (nobody reads). */
type Attempt = number | 'again' | 'gone';

export interface OutputHooks {
  /** the native send(MSG_DONTWAIT); without it a socket is written through the pool */
  sendNoWait?: (fd: number, buffer: Buffer, offset: number) => number;
}

const EAGAIN = 11;

export class LogOutput {
  private mode: Mode | undefined;
  private ownFd = -1;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** a pool write is under way */
  private writing = false;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  /** dropped since the last notice */
  private pendingDrops = 0;
  /** dropped in all */
  dropped = 0;
  /** the line that reports drops, in the logger's format */
  notice: (dropped: number) => string = (n) => `hainit: WARN  ${n} log line(s) dropped: stderr was not being read\n`;

  constructor(readonly fd: number, private readonly hooks: OutputHooks = {}) {}

  /** The native hooks, once the addon is loaded (main). */
  use(hooks: OutputHooks): void {
    Object.assign(this.hooks, hooks);
    if (this.mode === 'pool' && hooks.sendNoWait && this.isSocket()) this.mode = 'socket';
  }

  /** Lines waiting for the reader. */
  get pending(): number {
    return this.queue.length;
  }

  write(text: string): void {
    const buf = Buffer.from(text);
    const mode = (this.mode ??= this.chooseMode());
    if (mode === 'direct') return writeAll(this.fd, buf);
    if (mode === 'pool') {
      this.enqueue(buf);
      return this.pump();
    }
    if (this.queue.length > 0 || this.pendingDrops > 0) {
      this.enqueue(buf);
      return this.schedule();
    }
    const r = this.attempt(buf, 0);
    if (r === 'gone' || r === buf.length) return;
    this.enqueue(r === 'again' ? buf : buf.subarray(r));
    this.schedule();
  }

  /**
   * Writes what is queued while the reader takes it, for at most `maxMs` (synchronous: for exit
   * paths). A pool write under way is left to its thread.
   */
  flushSync(maxMs: number): void {
    if (this.mode === 'pool' || this.mode === 'direct' || this.mode === undefined) return;
    const until = Date.now() + maxMs;
    for (;;) {
      this.pumpNonBlocking();
      if (this.queue.length === 0 || Date.now() >= until) return;
      sleepSync(Math.min(5, until - Date.now()));
    }
  }

  /** As flushSync, without blocking the loop (a pool write can complete meanwhile). */
  async flush(maxMs: number): Promise<void> {
    const until = Date.now() + maxMs;
    while ((this.queue.length > 0 || this.writing) && Date.now() < until) {
      if (this.mode === 'pool') this.pump();
      else this.pumpNonBlocking();
      if (this.queue.length === 0 && !this.writing) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private chooseMode(): Mode {
    let st;
    try {
      st = fstatSync(this.fd);
    } catch {
      return 'direct'; // EBADF: writes fail quietly, as before
    }
    if (st.isSocket()) return this.hooks.sendNoWait ? 'socket' : 'pool';
    if (st.isFIFO() || st.isCharacterDevice()) {
      try {
        this.ownFd = openSync(`/proc/self/fd/${this.fd}`, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
        return 'reopened';
      } catch {
        // /dev/null and the like never block; a pipe of another uid (EACCES), or no /proc: the pool
        return st.isCharacterDevice() && !isTerminal(this.fd) ? 'direct' : 'pool';
      }
    }
    return 'direct';
  }

  private isSocket(): boolean {
    try {
      return fstatSync(this.fd).isSocket();
    } catch {
      return false;
    }
  }

  private attempt(buf: Buffer, offset: number): Attempt {
    if (this.mode === 'socket') {
      const n = this.hooks.sendNoWait!(this.fd, buf, offset);
      if (n >= 0) return n;
      return n === -EAGAIN ? 'again' : 'gone';
    }
    try {
      return writeSync(this.ownFd, buf, offset);
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EAGAIN' ? 'again' : 'gone';
    }
  }

  private enqueue(buf: Buffer): void {
    if (this.queued + buf.length > QUEUE_LIMIT_BYTES) {
      this.pendingDrops++;
      this.dropped++;
      return;
    }
    this.queue.push(buf);
    this.queued += buf.length;
  }

  /** Writes from the head of the queue until it would block; true when all of it went. */
  private pumpNonBlocking(): boolean {
    for (;;) {
      if (this.queue.length === 0) {
        if (this.pendingDrops === 0) return true;
        // The reader takes lines again: say what it missed, once.
        this.queue.push(Buffer.from(this.notice(this.pendingDrops)));
        this.pendingDrops = 0;
      }
      const head = this.queue[0];
      const r = this.attempt(head, 0);
      if (r === 'again') return false;
      if (r === 'gone') {
        this.queue.length = 0;
        this.queued = 0;
        this.pendingDrops = 0;
        return true;
      }
      this.queued -= r;
      if (r === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(r);
    }
  }

  private schedule(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.pumpNonBlocking()) {
        this.retryMs = RETRY_MIN_MS;
        return;
      }
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.schedule();
    }, this.retryMs);
    this.retry.unref();
  }

  /** Pool mode: one write(2) at a time in libuv's pool, of everything queued. */
  private pump(): void {
    if (this.writing) return;
    if (this.queue.length === 0) {
      if (this.pendingDrops === 0) return;
      this.queue.push(Buffer.from(this.notice(this.pendingDrops)));
      this.pendingDrops = 0;
    }
    const buf = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue);
    this.queue.length = 0;
    this.queued = 0;
    this.writing = true;
    writeAsync(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.writing = false;
      if (err && err.code !== 'EAGAIN') return; // nobody reads: what was queued is gone with it
      const rest = buf.subarray(err ? 0 : n);
      if (rest.length > 0) {
        this.queue.unshift(rest);
        this.queued += rest.length;
        if (err) return void setTimeout(() => this.pump(), RETRY_MAX_MS).unref();
      }
      this.pump();
    });
  }

  /** Tests: forget the chosen mode and close hainit's own descriptor. */
  reset(): void {
    if (this.ownFd >= 0) closeSync(this.ownFd);
    this.ownFd = -1;
    this.mode = undefined;
  }
}

/** All of `data` on fd, synchronously; gives up quietly when nobody reads (EPIPE, EBADF). Also for
 * --help and --version on stdout. */
export function writeAll(fd: number, data: string | Buffer): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  for (let tries = 0; off < buf.length && tries < 1000; tries++) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      // EAGAIN: someone made the descriptor non-blocking; retry. EPIPE/EBADF: nobody is reading.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}

function isTerminal(fd: number): boolean {
  return (require('node:tty') as typeof import('node:tty')).isatty(fd);
}

let sleeper: Int32Array | undefined;
function sleepSync(ms: number): void {
  if (ms <= 0) return;
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

const outputs = new Map<number, LogOutput>();

/** The one output per descriptor: every Logger on fd 2 shares its queue and its drop count. */
export function outputFor(fd: number): LogOutput {
  let o = outputs.get(fd);
  if (!o) {
    o = new LogOutput(fd);
    outputs.set(fd, o);
    const out = o;
    // main's exit() flushes first, then leaves by exitNow, or by process.exit() where the addon
    // could not be loaded (and for the subcommands); this is for anything else that ends Node.
    process.on('exit', () => out.flushSync(exitFlushMs));
  }
  return o;
}

let exitFlushMs = EXIT_FLUSH_MS;
/** The grace period's hard timer exits at once: no waiting for a slow reader then. */
export function setExitFlushMs(ms: number): void {
  exitFlushMs = ms;
}

/** How long the exit waits for a slow log reader: EXIT_FLUSH_MS, or 0 once the grace period is over. */
export function exitFlushTime(): number {
  return exitFlushMs;
}

/** Log lines hainit had to drop because its stderr was not being read (for /metrics). */
export function logLinesDropped(): number {
  let n = 0;
  for (const o of outputs.values()) n += o.dropped;
  return n;
}

/**
 * Node creates process.stderr (a stream on fd 2) the first time anything reads it, and that
 * stream puts fd 2's open file description in O_NONBLOCK mode. The description is the
 * application's stderr too: its writes then fail with EAGAIN whenever the log reader falls
 * behind (Python raises BlockingIOError, output is lost). Node reads it more often than one
 * would think: net.Socket's destroy compares `this !== process.stderr`, so every closed hook pipe,
 * check connection or probe connection did it. From here on process.stderr is a small writer
 * into hainit's own log output, and fd 2 keeps the flags it came with.
 */
export function guardProcessStderr(): void {
  const { EventEmitter } = require('node:events') as typeof import('node:events');
  let stream: object | undefined;
  const make = () =>
    Object.assign(new EventEmitter(), {
      fd: 2,
      isTTY: false,
      writable: true,
      write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
        outputFor(2).write(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString());
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      },
      end(): void {},
    });
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => (stream ??= make()) });
}
