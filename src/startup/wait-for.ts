import { CancelSignal } from '../cancel';
import { httpModule, httpsModule, netModule } from '../lazy';
import { UsageError } from '../config/values';
import { Logger } from '../log/logger';
import { Clock } from '../shutdown/clock';

export interface WaitTarget {
  readonly text: string;
  readonly url: URL;
}

/** `tcp://host:port`, `http://…`, `https://…` (TLS not verified, as the kubelet does). */
export function parseWaitTarget(text: string, what: string): WaitTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${what}: invalid address "${text}" (use tcp://host:port or http(s)://host[:port]/path)`);
  }
  if (!['tcp:', 'http:', 'https:'].includes(url.protocol) || !url.hostname || (url.protocol === 'tcp:' && !url.port)) {
    throw new UsageError(`${what}: invalid address "${text}" (use tcp://host:port or http(s)://host[:port]/path)`);
  }
  return { text, url };
}

const hostOf = (u: URL) => u.hostname.replace(/^\[|\]$/g, '');

/** One attempt: resolves true when the target accepts (tcp) or answers 2xx/3xx (http). */
export function probeOnce(t: WaitTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = t.url;
    if (u.protocol === 'tcp:') {
      const s = netModule().connect({ host: hostOf(u), port: Number(u.port), timeout: timeoutMs });
      const done = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.once('connect', () => done(true));
      s.once('timeout', () => done(false));
      s.once('error', () => done(false));
      return;
    }
    const lib = u.protocol === 'https:' ? httpsModule() : httpModule();
    const req = lib.request(u, { method: 'GET', timeout: timeoutMs, rejectUnauthorized: false, headers: { 'user-agent': 'hainit' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
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
        if (await probeOnce(t, Math.min(2000, left))) {
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
