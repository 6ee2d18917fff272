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
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 8_192,
  maxHeadersCount: 50,
  maxConnections: 256,
  /** a keep-alive client reconnects after this many; low values cost throughput (bench/probe.ts) */
  maxRequestsPerSocket: 1_000,
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
  return { ...r, headers: { Vary: 'Accept' } };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, a: Answer): void {
  const body = Buffer.from(a.body);
  const headers: Record<string, string | number> = {
    'Content-Type': a.contentType,
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...a.headers,
  };
  // A request with a body has no business here: answer and close rather than read it.
  if (req.headers['content-length'] && req.headers['content-length'] !== '0') headers.Connection = 'close';
  if (req.headers['transfer-encoding']) headers.Connection = 'close';
  res.writeHead(a.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

type BurstSocket = Socket & { hainitBurst?: number };

/** Counts the requests a connection had parsed in this turn of the event loop; past the limit the
 * connection is dropped, so the rest of what it sent is never answered. */
function pipelineFlood(socket: BurstSocket, limit: number): boolean {
  if (socket.destroyed) return true;
  socket.hainitBurst = (socket.hainitBurst ?? 0) + 1;
  if (socket.hainitBurst === 1) setImmediate(() => (socket.hainitBurst = 0));
  if (socket.hainitBurst <= limit) return false;
  socket.destroy();
  return true;
}

/** The probe server, not yet listening. */
export function createHealthServer(d: ServerDeps): http.Server {
  const L = SERVER_LIMITS;
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
      let a: Answer;
      try {
        a = answer(d, req.method ?? '', req.url ?? '/', req.headers.accept);
      } catch (e) {
        d.log.error(`health endpoint: ${(e as Error)?.stack ?? e}`);
        a = INTERNAL;
      }
      send(req, res, a);
    },
  );
  server.maxConnections = L.maxConnections;
  server.maxRequestsPerSocket = L.maxRequestsPerSocket;
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
