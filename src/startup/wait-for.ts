import { CancelSignal } from '../cancel';
import { checkWithin } from '../net/check';
import type { WaitTarget } from '../config/config';
import { Logger } from '../log/logger';
import { Clock } from '../shutdown/clock';

/**
 * One attempt: true when the target accepts (tcp) or answers 2xx/3xx (http). `timeoutMs` is an
 * absolute deadline for the whole attempt; `abort` (a shutdown signal) ends it at once.
 */
export async function probeOnce(t: WaitTarget, timeoutMs: number, abort?: CancelSignal): Promise<boolean> {
  return (await checkWithin(t.url, timeoutMs, abort)).ok;
}

/** Waits for every target; returns the ones that never came within timeoutMs (empty: all came). */
export async function waitForAll(targets: readonly WaitTarget[], timeoutMs: number, clock: Clock, log: Logger, abort: CancelSignal): Promise<string[]> {
  const deadline = clock.now() + timeoutMs;
  const results = await Promise.all(
    targets.map(async (t) => {
      let pause = 100;
      for (;;) {
        const left = deadline - clock.now();
        if (abort.aborted || left <= 0) return t.text;
        if (await probeOnce(t, Math.min(2000, left), abort)) {
          log.info(`wait-for: ${t.text} is up`);
          return undefined;
        }
        await clock.sleep(Math.min(pause, deadline - clock.now()), abort);
        pause = Math.min(pause * 2, 1000);
      }
    }),
  );
  return results.filter((r): r is string => r !== undefined);
}
