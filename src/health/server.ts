import * as http from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { ListenAddress } from '../config/config';
import { UsageError } from '../config/values';
import { Logger } from '../log/logger';
import { Check, Now } from './checks';
import { METRICS_CONTENT_TYPE } from './metrics';
import { ENDPOINTS, Endpoint } from './registry';
import { CheckView, TEXT, renderProbe, wantsHealthJson } from './render';

/**
 * Limits of the probe server. Probes are tiny GETs answered from memory, so anything slow or big
 * is an attack or a bug: it gets a short deadline instead of a share of PID 1's event loop.
 */
export const SERVER_LIMITS = {
  /** a client must finish its request headers within this (slowloris) */
  headersTimeoutMs: 2_000,
  requestTimeoutMs: 5_000,
  /** Node checks the two timeouts above on this period (default 30 s, far too coarse here) */
  checkingIntervalMs: 500,
  /** keep-alive is bounded in time, not in requests: Node's maxRequestsPerSocket cost 15% of the
   * throughput at 1,000 and 9% even at 100,000 (a Keep-Alive header and bookkeeping on every
   * answer, plus reconnects), and one busy connection is already held in check by maxPipelined */
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 8_192,
  maxHeadersCount: 50,
  maxConnections: 256,
  /** requests one connection may have parsed in a single event-loop turn: a probe never
   * pipelines, and a pipelined flood would hold PID 1's event loop while node:http answers it */
  maxPipelined: 32,
} as const;

export interface ServerDeps {
  readonly checksFor: (endpoint: Endpoint) => readonly Check[];
  readonly metrics: () => string;
  readonly log: Logger;
  /** the clock check states are stamped with */
  readonly clock: Now;
  /** wall time in ms, for the `time` fields of health+json */
  readonly wallNow?: () => number;
  /** called before each answer: brings the lifecycle up to date with signals already received */
  readonly catchUp?: () => void;
}

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

const NOT_FOUND: Answer = { status: 404, contentType: TEXT, body: 'not found\n' };
const METHOD_NOT_ALLOWED: Answer = { status: 405, contentType: TEXT, body: 'method not allowed\n', headers: { Allow: 'GET, HEAD' } };
const INTERNAL: Answer = { status: 500, contentType: TEXT, body: 'internal error\n' };

const NO_PARAMS = new URLSearchParams();

/** The path and query of a request target, also in absolute form (`GET http://host/livez`). */
function splitTarget(raw: string): { segments: string[]; params: URLSearchParams } | undefined {
  let target = raw;
  if (/^https?:\/\//i.test(target)) {
    const slash = target.indexOf('/', target.indexOf('//') + 2);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  try {
    const segments = path.split('/').filter((s) => s !== '');
    return {
      segments: path.includes('%') ? segments.map(decodeURIComponent) : segments,
      params: q < 0 ? NO_PARAMS : new URLSearchParams(target.slice(q + 1)),
    };
  } catch {
    return undefined;
  }
}

/** Routing, generic over the registry: no path or check is named here. */
export function answer(d: ServerDeps, method: string, url: string, accept: string | undefined): Answer {
  const t = splitTarget(url);
  if (!t || t.segments.length === 0 || t.segments.length > 2) return NOT_FOUND;
  const [first, one] = t.segments;
  if (first === 'metrics') {
    if (one !== undefined) return NOT_FOUND;
    if (method !== 'GET' && method !== 'HEAD') return METHOD_NOT_ALLOWED;
    return { status: 200, contentType: METRICS_CONTENT_TYPE, body: d.metrics() };
  }
  if (!(ENDPOINTS as readonly string[]).includes(first)) return NOT_FOUND;
  const endpoint = first as Endpoint;
  let checks = d.checksFor(endpoint);
  if (one !== undefined) {
    checks = checks.filter((c) => c.name === one);
    if (checks.length === 0) return NOT_FOUND;
  }
  if (method !== 'GET' && method !== 'HEAD') return METHOD_NOT_ALLOWED;
  const json = wantsHealthJson(accept);
  // Times are only shown in JSON: the plain probes, the kubelet's, skip the date formatting.
  const wallNow = json ? (d.wallNow ? d.wallNow() : Date.now()) : 0;
  const now = json ? d.clock.now() : 0;
  const views: CheckView[] = checks.map((c) => {
    const s = c.state();
    return {
      name: c.name,
      ok: s.ok,
      durationMs: s.lastDurationMs,
      time: json ? new Date(wallNow - Math.max(0, now - s.observedAt)).toISOString() : '',
      componentType: c.origin === 'hainit' ? 'system' : 'component',
    };
  });
  const exclude = one === undefined ? t.params.getAll('exclude').flatMap((e) => e.split(',')).filter((e) => e !== '') : [];
  const r = renderProbe(one === undefined ? endpoint : `${endpoint}/${one}`, views, {
    verbose: t.params.has('verbose'),
    exclude,
    json,
  });
  return { ...r, headers: VARY_ACCEPT };
}

const VARY_ACCEPT = { Vary: 'Accept' } as const;

/** An answer as it goes on the wire: built once per distinct answer, not per request. */
interface Wire {
  readonly status: number;
  /** flat [name, value, ...], as writeHead takes them */
  readonly headers: readonly (string | number)[];
  readonly body: Buffer;
}

function toWire(a: Answer): Wire {
  const body = Buffer.from(a.body);
  const headers: (string | number)[] = ['Content-Type', a.contentType, 'Content-Length', body.length, 'Cache-Control', 'no-store', 'X-Content-Type-Options', 'nosniff'];
  for (const [k, v] of Object.entries(a.headers ?? {})) headers.push(k, v);
  return { status: a.status, headers, body };
}

const FIXED_WIRE = new WeakMap<Answer, Wire>();
const PLAIN_WIRE_MAX = 256;

/** The answer for a request, as bytes. `plain` holds one server's plain probes (no query, no
 * JSON) keyed by target and the checks' ok bits: a probe answer changes only when a check flips,
 * so the kubelet's probes are answered from there. */
export function answerWire(d: ServerDeps, plain: Map<string, Wire>, method: string, url: string, accept: string | undefined): Wire {
  let key: string | undefined;
  if ((method === 'GET' || method === 'HEAD') && url.charCodeAt(0) === 47 /* / */ && !/[?%]/.test(url) && !wantsHealthJson(accept)) {
    const slash = url.indexOf('/', 1);
    const first = url.slice(1, slash < 0 ? undefined : slash);
    if ((ENDPOINTS as readonly string[]).includes(first)) {
      let bits = '';
      for (const c of d.checksFor(first as Endpoint)) bits += c.state().ok ? '1' : '0';
      key = `${url} ${bits}`;
      const hit = plain.get(key);
      if (hit) return hit;
    }
  }
  const a = answer(d, method, url, accept);
  if (key !== undefined) {
    if (plain.size >= PLAIN_WIRE_MAX) plain.clear();
    const w = toWire(a);
    plain.set(key, w);
    return w;
  }
  if (a === NOT_FOUND || a === METHOD_NOT_ALLOWED || a === INTERNAL) {
    let w = FIXED_WIRE.get(a);
    if (!w) FIXED_WIRE.set(a, (w = toWire(a)));
    return w;
  }
  return toWire(a);
}

/** Accept, and whether the request announced a body, from the raw headers (req.headers would
 * build an object per request). */
function requestHeaders(raw: readonly string[]): { accept: string | undefined; body: boolean } {
  let accept: string | undefined;
  let body = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 6 && name.toLowerCase() === 'accept') accept = accept === undefined ? raw[i + 1] : `${accept}, ${raw[i + 1]}`;
    else if (name.length === 14 && name.toLowerCase() === 'content-length') body ||= raw[i + 1].trim() !== '0';
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') body = true;
  }
  return { accept, body };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, w: Wire, requestBody: boolean): void {
  // A request with a body has no business here: answer and close rather than read it.
  res.writeHead(w.status, requestBody ? [...w.headers, 'Connection', 'close'] : (w.headers as (string | number)[]));
  res.end(req.method === 'HEAD' ? undefined : w.body);
}

type BurstSocket = Socket & { hainitTurn?: number; hainitBurst?: number };

/** Event-loop turns, counted only while requests come in (one setImmediate per busy turn). */
let turn = 0;
let turnPending = false;
function currentTurn(): number {
  if (!turnPending) {
    turnPending = true;
    setImmediate(() => {
      turn++;
      turnPending = false;
    });
  }
  return turn;
}

/** Counts the requests a connection had parsed in this turn of the event loop; past the limit the
 * connection is dropped, so the rest of what it sent is never answered. */
function pipelineFlood(socket: BurstSocket, limit: number): boolean {
  if (socket.destroyed) return true;
  const t = currentTurn();
  if (socket.hainitTurn !== t) {
    socket.hainitTurn = t;
    socket.hainitBurst = 0;
  }
  socket.hainitBurst = (socket.hainitBurst ?? 0) + 1;
  if (socket.hainitBurst <= limit) return false;
  socket.destroy();
  return true;
}

/** The probe server, not yet listening. */
export function createHealthServer(d: ServerDeps): http.Server {
  const L = SERVER_LIMITS;
  const plain = new Map<string, Wire>();
  const server = http.createServer(
    {
      headersTimeout: L.headersTimeoutMs,
      requestTimeout: L.requestTimeoutMs,
      connectionsCheckingInterval: L.checkingIntervalMs,
      keepAliveTimeout: L.keepAliveTimeoutMs,
      maxHeaderSize: L.maxHeaderBytes,
      // Probes from odd clients (busybox wget, HTTP/1.0) are still probes.
      requireHostHeader: false,
    },
    (req, res) => {
      if (pipelineFlood(req.socket as BurstSocket, L.maxPipelined)) return;
      d.catchUp?.();
      const h = requestHeaders(req.rawHeaders);
      let w: Wire;
      try {
        w = answerWire(d, plain, req.method ?? '', req.url ?? '/', h.accept);
      } catch (e) {
        d.log.error(`health endpoint: ${(e as Error)?.stack ?? e}`);
        w = toWire(INTERNAL);
      }
      send(req, res, w, h.body);
    },
  );
  server.maxConnections = L.maxConnections;
  server.maxHeadersCount = L.maxHeadersCount;
  // Node's default answer would do, but this one is known to say nothing about the host.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    d.log.trace(`health endpoint: bad request: ${err.code ?? err.message}`);
    // A response already under way on this socket cannot be followed by an error status.
    const responding = (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
    if (!socket.writable || responding || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
      : '400 Bad Request';
    // Close for good once the answer is handed to the kernel: end() alone half-closes, and a
    // client that never reads nor closes would keep its slot under maxConnections for ever.
    socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
  });
  return server;
}

const WHY: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
};

function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Binds before the child starts: a kubelet probing a port nobody listens on would kill the pod
 * later and less clearly. Rejects with a UsageError (exit 125) naming the address and the error. */
export function listen(server: http.Server, address: ListenAddress, log: Logger): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      const why = e.code ? `${WHY[e.code] ?? e.message} (${e.code})` : e.message;
      reject(new UsageError(`--health-listen ${formatAddress(address)}: cannot listen: ${why}`));
    };
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
      server.off('error', onError);
      // From now on an error (EMFILE on accept) is logged; the server goes on.
      server.on('error', (e: NodeJS.ErrnoException) => log.warn(`health endpoint: ${e.code ?? e.message}`));
      resolve(server.address() as AddressInfo);
    });
  });
}
