import type { WaitTarget } from './config';
import { parseSignalName, signalName } from '../signals/names';
import { UsageError } from '../exit-codes';

export { UsageError };

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `5s`, `2m`, `1h`, `1m30s`; a bare number means seconds, as in Kubernetes. Returns ms. */
export function parseDuration(text: string, what: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return withinTimerRange(Math.round(Number(t) * 1000), text, what);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    end = re.lastIndex;
  }
  if (t === '' || end !== t.length) {
    throw new UsageError(`${what}: invalid duration "${text}" (use e.g. 500ms, 5s, 2m, 1h; a bare number is seconds)`);
  }
  return withinTimerRange(Math.round(total), text, what);
}

/** hainit's timers honour any delay (chunked: runtime/clock.ts) up to where milliseconds stop
 * being exact integers; past that, refuse rather than round. */
function withinTimerRange(ms: number, text: string, what: string): number {
  if (!Number.isSafeInteger(ms)) {
    throw new UsageError(`${what}: duration "${text}" is too long (at most ${Number.MAX_SAFE_INTEGER} ms, about 285,000 years)`);
  }
  return ms;
}

export function parseSignal(text: string, what: string): number {
  const n = parseSignalName(text);
  if (n === undefined) {
    throw new UsageError(`${what}: unknown signal "${text}" (use e.g. TERM, SIGTERM, 15, RTMIN+3)`);
  }
  return n;
}

export function parseInteger(text: string, what: string, min: number, max: number): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < min || Number(t) > max) {
    throw new UsageError(`${what}: invalid number "${text}" (expected an integer from ${min} to ${max})`);
  }
  return Number(t);
}

/** `FROM:TO`, where TO = 0 drops the signal (dumb-init's --rewrite). */
export function parseRewrite(text: string, what: string): [number, number] {
  const i = text.lastIndexOf(':');
  if (i <= 0) throw new UsageError(`${what}: invalid rewrite "${text}" (expected FROM:TO, e.g. TERM:QUIT or 15:3; TO = 0 drops)`);
  const from = parseSignal(text.slice(0, i), what);
  const toText = text.slice(i + 1).trim();
  const to = toText === '0' ? 0 : parseSignal(toText, what);
  if (from === SIGCHLD) throw new UsageError(`${what}: SIGCHLD cannot be rewritten ("${text}"): hainit reaps on it`);
  if (from === SIGKILL || from === SIGSTOP) {
    throw new UsageError(`${what}: ${signalName(from)} cannot be caught, so it cannot be rewritten ("${text}")`);
  }
  // TERM and INT begin the shutdown: what they become is sent as the stop signal, and again to
  // the child for every further one (README "Signals").
  if ((from === SIGTERM || from === SIGINT) && !canStop(to)) {
    throw new UsageError(`${what}: "${text}" would make ${signalName(to)} the stop signal, which cannot stop the child (use e.g. TERM, QUIT, INT; 0 drops)`);
  }
  return [from, to];
}

const SIGINT = 2;
const SIGKILL = 9;
const SIGTERM = 15;
const SIGCHLD = 17;
const SIGSTOP = 19;

/** A stop signal must be able to end the child: SIGSTOP only pauses it, SIGCHLD means nothing. */
function canStop(signal: number): boolean {
  return signal !== SIGSTOP && signal !== SIGCHLD;
}

/** --stop-signal: sent to the child to stop it. */
export function parseStopSignal(text: string, what: string): number {
  const n = parseSignal(text, what);
  if (!canStop(n)) throw new UsageError(`${what}: ${signalName(n)} cannot stop the child ("${text}"; use e.g. TERM, QUIT, INT)`);
  return n;
}

/** -p/--pdeath-signal: a signal hainit itself receives (KILL ends hainit at once, as tini -p). */
export function parseOwnSignal(text: string, what: string): number {
  const n = parseSignal(text, what);
  if (n === SIGSTOP || n === SIGCHLD) throw new UsageError(`${what}: ${signalName(n)} cannot work here ("${text}"): hainit would ${n === SIGSTOP ? 'freeze' : 'ignore it'}`);
  return n;
}

/** `CODE[:NEW]`; tini's `-e CODE` means CODE:0. */
export function parseRemapExit(text: string, what: string): [number, number] {
  const [code, to, extra] = text.split(':');
  if (extra !== undefined) throw new UsageError(`${what}: invalid exit-code mapping "${text}" (expected CODE or CODE:NEW)`);
  return [parseInteger(code, what, 0, 255), to === undefined ? 0 : parseInteger(to, what, 0, 255)];
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);
export function parseBoolean(text: string, what: string): boolean {
  const t = text.trim().toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  throw new UsageError(`${what}: invalid boolean "${text}" (use 1/0, true/false, yes/no, on/off)`);
}

/**
 * `[HOST:]PORT`, `:PORT`, `[::1]:PORT`. IPv6 hosts need brackets: `::1:80` could be read two ways.
 * Port 0 is refused: a probe endpoint on a random port is one nobody can point a probe at.
 */
export function parseHostPort(text: string, what: string, defaultHost: string): { host: string; port: number } {
  const t = text.trim();
  const bad = () => new UsageError(`${what}: invalid address "${text}" (expected [HOST:]PORT, e.g. 8558, 0.0.0.0:8558 or [::]:8558; port 1-65535)`);
  let host = defaultHost;
  let portText = t;
  const bracket = /^\[([0-9A-Fa-f:.]+)\]:(.*)$/.exec(t);
  if (bracket) {
    host = bracket[1];
    portText = bracket[2];
  } else if (t.includes(':')) {
    const i = t.lastIndexOf(':');
    if (t.indexOf(':') !== i) throw bad();
    if (i > 0) host = t.slice(0, i);
    portText = t.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(portText) || !/^[A-Za-z0-9.:_-]+$/.test(host)) throw bad();
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad();
  return { host, port };
}

/** An http(s) URL to GET, kubelet style (TLS not verified). */
export function parseHttpUrl(text: string, what: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new UsageError(`${what}: invalid URL "${text}" (expected http://host[:port]/path or https://...)`);
  }
  return url.href;
}

/** A memory limit: bytes, or a share of the cgroup's memory limit. */
export type SizeLimit = { readonly kind: 'bytes'; readonly bytes: number } | { readonly kind: 'percent'; readonly percent: number };

// Kubernetes quantity suffixes: binary Ki..Ti, decimal k/K..T (K too, as users write it).
const SIZE_UNITS: Record<string, number> = {
  '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12,
};

/** `450Mi`, `1Gi`, `512M`, `1048576` (bytes) or `90%` (of the cgroup memory limit). */
export function parseSize(text: string, what: string): SizeLimit {
  const t = text.trim();
  const bad = (why = '') =>
    new UsageError(`${what}: invalid size "${text}"${why} (use e.g. 450Mi, 1Gi, 512M, bytes, or 90% of the cgroup memory limit)`);
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent <= 0 || percent > 100) throw bad(': a percentage must be more than 0 and at most 100');
    return { kind: 'percent', percent };
  }
  const m = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/.exec(t);
  if (!m || !(m[2] in SIZE_UNITS)) throw bad();
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2]]);
  if (bytes <= 0) throw bad(': must be more than 0');
  return { kind: 'bytes', bytes };
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
