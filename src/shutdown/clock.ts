import { CancelSignal } from '../cancel';

/** Time, injected so the shutdown planner is tested without sleeping. */
export interface Clock {
  now(): number;
  /** Resolves after ms, or at once when `abort` fires. */
  sleep(ms: number, abort?: CancelSignal): Promise<void>;
}

export const realClock: Clock = {
  // process.hrtime, not performance.now(): the latter loads perf_hooks at start-up.
  now: () => Number(process.hrtime.bigint()) / 1e6,
  sleep: (ms, abort) =>
    new Promise<void>((resolve) => {
      if (abort?.aborted || ms <= 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        abort?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      abort?.addEventListener('abort', done, { once: true });
    }),
};
