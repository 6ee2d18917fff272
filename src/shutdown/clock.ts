/** Time, injected so the shutdown planner is tested without sleeping. */
export interface Clock {
  now(): number;
  /** Resolves after ms, or at once when `abort` fires. */
  sleep(ms: number, abort?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
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
