import { CancelController, CancelSignal } from '../cancel';
import { httpModule, httpsModule, netModule } from '../lazy';
import { longTimeout } from '../shutdown/clock';

/**
 * The one HTTP/TCP check of hainit: the application's readiness and liveness checks
 * (health/runners.ts), `--wait-for` (startup/wait-for.ts) and `hainit probe` (commands/probe.ts).
 */
export interface CheckOutcome {
  readonly ok: boolean;
  /** why not, when not */
  readonly reason?: string;
}

export const USER_AGENT = 'hainit-probe';

/**
 * One check on a fresh connection, as the kubelet makes it: `tcp://host:port` succeeds when the
 * port accepts; `http(s)://` when a GET answers 200-399 (TLS not verified, redirects not followed:
 * a 3xx already counts). The body is never read. `abort` ends it at once (a deadline, a shutdown).
 */
export function checkOnce(url: URL, abort: CancelSignal): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let destroy = (): void => undefined;
    const finish = (o: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      abort.removeEventListener('abort', onAbort);
      destroy();
      resolve(o);
    };
    const onAbort = (): void => finish({ ok: false, reason: 'aborted' });
    if (abort.aborted) return onAbort();
    abort.addEventListener('abort', onAbort, { once: true });
    if (url.protocol === 'tcp:') {
      const s = netModule().connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) });
      destroy = () => s.destroy();
      s.once('connect', () => finish({ ok: true }));
      s.on('error', (e) => finish({ ok: false, reason: errorText(e) }));
      return;
    }
    const lib = url.protocol === 'https:' ? httpsModule() : httpModule();
    const req = lib.request(
      url,
      {
        method: 'GET',
        // A fresh connection per run, like the kubelet: a stuck keep-alive socket cannot hide a dead listener.
        agent: false,
        rejectUnauthorized: false,
        headers: { 'user-agent': USER_AGENT, accept: '*/*', connection: 'close' },
      },
      (res) => {
        const code = res.statusCode ?? 0;
        res.destroy();
        finish(code >= 200 && code < 400 ? { ok: true } : { ok: false, reason: `HTTP status ${code}` });
      },
    );
    destroy = () => req.destroy();
    // `on`, not `once`: a destroyed request may still report its socket's end
    req.on('error', (e) => finish({ ok: false, reason: errorText(e) }));
    req.end();
  });
}

/**
 * checkOnce within an absolute deadline: a target that sends its headers one byte every 0.5 s, or
 * an endless body, cannot stretch it (an idle timeout would never fire). `abort`, when given,
 * ends it too.
 */
export async function checkWithin(url: URL, timeoutMs: number, abort?: CancelSignal): Promise<CheckOutcome> {
  const both = new CancelController();
  const deadline = longTimeout(() => both.abort(), timeoutMs);
  const onAbort = (): void => both.abort();
  if (abort?.aborted) both.abort();
  abort?.addEventListener('abort', onAbort, { once: true });
  try {
    const o = await checkOnce(url, both.signal);
    return o.reason === 'aborted' && !abort?.aborted ? { ok: false, reason: `timed out after ${timeoutMs} ms` } : o;
  } finally {
    deadline.clear();
    abort?.removeEventListener('abort', onAbort);
  }
}

export function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}${err.message && !err.message.includes(err.code) ? ` (${err.message})` : ''}` : String(err?.message ?? e);
}
