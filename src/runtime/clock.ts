import { CancelSignal } from './cancel';

/** Time, injected so the shutdown planner is tested without sleeping. */
export interface Clock {
  now(): number;
  /** Resolves after ms, or at once when `abort` fires. */
  sleep(ms: number, abort?: CancelSignal): Promise<void>;
}

/**
 * The longest delay one libuv timer takes. Node turns anything longer into 1 ms with a
 * TimeoutOverflowWarning: `--grace-period 600h` would SIGKILL the app at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The timer primitives a long timer is built from; tests pass fakes to check the chunking. */
export interface TimerPrimitives {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LongTimer {
  clear(): void;
}

// process.hrtime, not performance.now(): the latter loads perf_hooks at start-up.
const monotonicNow = () => Number(process.hrtime.bigint()) / 1e6;

const nodeTimers: TimerPrimitives = {
  now: monotonicNow,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * setTimeout for any delay: one timer of at most MAX_TIMER_MS at a time, re-armed against the
 * monotonic clock until the deadline, so a duration of weeks fires when it should, not at once.
 * `unref`: the timer alone does not keep hainit alive.
 */
export function longTimeout(fn: () => void, ms: number, opts: { unref?: boolean; timers?: TimerPrimitives } = {}): LongTimer {
  const timers = opts.timers ?? nodeTimers;
  const deadline = timers.now() + Math.max(0, ms);
  let handle: unknown;
  let cleared = false;
  const arm = () => {
    const left = Math.max(0, deadline - timers.now());
    handle = timers.setTimeout(() => {
      if (cleared) return;
      if (timers.now() >= deadline) fn();
      else arm();
    }, Math.min(Math.ceil(left), MAX_TIMER_MS));
    if (opts.unref) (handle as { unref?: () => void }).unref?.();
  };
  arm();
  return {
    clear() {
      cleared = true;
      if (handle !== undefined) timers.clearTimeout(handle);
    },
  };
}

/** A Clock on real time whose sleeps honour any length (see longTimeout). */
export function clockOn(timers: TimerPrimitives): Clock {
  return {
    now: () => timers.now(),
    sleep: (ms, abort) =>
      new Promise<void>((resolve) => {
        if (abort?.aborted || ms <= 0) return resolve();
        const done = () => {
          timer.clear();
          abort?.removeEventListener('abort', done);
          resolve();
        };
        const timer = longTimeout(done, ms, { timers });
        abort?.addEventListener('abort', done, { once: true });
      }),
  };
}

export const realClock: Clock = clockOn(nodeTimers);
