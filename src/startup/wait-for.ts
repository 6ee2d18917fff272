import { CancelSignal } from '../cancel';
import { httpModule, httpsModule, netModule } from '../lazy';
import type { WaitTarget } from '../config/config';
import { Logger } from '../log/logger';
import { Clock, longTimeout } from '../shutdown/clock';

const hostOf = (u: URL) => u.hostname.replace(/^\[|\]$/g, '');

/**
 * One attempt: resolves true when the target accepts (tcp) or answers 2xx/3xx (http), false on
 * anything else. `timeoutMs` is an absolute deadline for the whole attempt, not an idle timeout:
 * a dependency that sends its headers one byte every 0.5 s, or an endless body, cannot stretch
 * it. The body is never read. `abort` (a shutdown signal) ends it at once.
 */
export function probeOnce(t: WaitTarget, timeoutMs: number, abort?: CancelSignal): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    let destroy = () => {};
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      deadline.clear();
      abort?.removeEventListener('abort', onAbort);
      destroy();
      resolve(ok);
    };
    const onAbort = () => finish(false);
    const deadline = longTimeout(() => finish(false), timeoutMs);
    if (abort?.aborted) return finish(false);
    abort?.addEventListener('abort', onAbort, { once: true });
    const u = t.url;
    if (u.protocol === 'tcp:') {
      const s = netModule().connect({ host: hostOf(u), port: Number(u.port) });
      destroy = () => s.destroy();
      s.once('connect', () => finish(true));
      s.on('error', () => finish(false));
      return;
    }
    const lib = u.protocol === 'https:' ? httpsModule() : httpModule();
    const req = lib.request(u, { method: 'GET', agent: false, rejectUnauthorized: false, headers: { 'user-agent': 'hainit', connection: 'close' } }, (res) => {
      const code = res.statusCode ?? 0;
      res.destroy();
      finish(code >= 200 && code < 400);
    });
    destroy = () => req.destroy();
    // `on`, not `once`: a destroyed request may still report its socket's end
    req.on('error', () => finish(false));
    req.end();
  });
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
