// node:http and node:net load on first use (runtime/lazy.ts), not when the bundle starts: this
// module is imported, not required, so that esbuild needs no lazy-module wrappers (README, start-up).
import type * as http from 'node:http';
import { closeSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { httpModule, netModule } from '../runtime/lazy';
import { ListenAddress } from '../config/config';
import { UsageError } from '../config/values';
import { Logger } from '../log/logger';
import { native } from '../native';
import { Check, Now } from './checks';
import { Connections, DefenceLog, connectionCap, fdLimit, peerLimit, synCookies } from './guard';
import { METRICS_CONTENT_TYPE } from './metrics';
import { ENDPOINTS, Endpoint } from './registry';
import { CheckView, TEXT, renderProbe, wantsHealthJson } from './render';

/**
 * Limits of the probe server. Probes are tiny GETs answered from memory, so anything slow or big
 * is an attack or a bug: it gets a bounded share of PID 1's event loop and memory, and never the
 * power to keep a fresh probe out (src/health/guard.ts).
 *
 * There is no short header or request timeout: a slot held by a slow client is taken back when a
 * new connection needs it (maxConnections), and a client cut off reconnects at once. Node checks
 * those timeouts for all connections together, so the clients that came together are cut together
 * and come back together: libuv accepts one connection per event-loop turn, and a probe waited
 * behind thousands of them (p99 340-460 ms with 6,000 idle or slow clients, 2 s timeouts).
 */
export const SERVER_LIMITS = {
  /** a connection that has not completed a request is closed this long after it came, plus a
   * random part of idleJitterMs (so that clients that came together do not return together);
   * once answered, keepAliveTimeoutMs bounds its idle time */
  idleTimeoutMs: 10_000,
  idleJitterMs: 5_000,
  /** keep-alive is bounded in time, not in requests: Node's maxRequestsPerSocket cost 15% of the
   * throughput at 1,000 and 9% even at 100,000 (a Keep-Alive header and bookkeeping on every
   * answer, plus reconnects), and one busy connection is already held in check by maxPipelined */
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 8_192,
  maxHeadersCount: 50,
  /** connections are tracked (least recently active, idle deadlines, the cap) once more than this
   * are open: below it a connection costs nothing more than in plain node:http (the kubelet's
   * connection per probe: bookkeeping on each cost 4% more instructions per request) */
  trackFrom: 128,
  /** connections held at most (--health-max-connections; the descriptor limit may lower it, see
   * connectionCap). At the cap a new connection is taken and the least recently active one is
   * closed: a fresh probe is never refused, whoever holds the others. */
  maxConnections: 2_048,
  /** connections held aside past maxConnections, outside node:http (atCap), at most: the descriptors
   * left under the limit, up to this (each still costs the kernel a socket, a few KB, in the
   * container's memory) */
  waitingRoomMax: 16_384,
  /** the kernel's accept queue (listen backlog; the kernel caps it at net.core.somaxconn): room
   * for the connections that arrive while hainit is busy, so that a probe's SYN is not dropped */
  backlog: 4_096,
  /** descriptors kept out of the connection cap: hainit's own, its checks' and commands' */
  reservedFds: 256,
  /** SO_RCVBUF of every connection (set on the listening socket, the kernel doubles it): what one
   * read can bring, hence how many pipelined requests node:http parses at once (~100 instead of
   * ~1,800 with the default 64 KiB reads). A probe is 100-300 bytes; 8 KiB headers still arrive. */
  receiveBufferBytes: 1_024,
  /** requests one connection may have parsed in a single event-loop turn: a probe never
   * pipelines, and a pipelined flood would hold PID 1's event loop while node:http answers it */
  maxPipelined: 32,
  /** a connection cut off for pipelining is held this long, unread, before it is closed */
  pipelineHoldMs: 5_000,
  /** ... and at most this many at a time (each keeps what node:http parsed of its last read) */
  pipelineHeldMax: 256,
  /** past the cap, connections that have sent nothing wait this long in the kernel's SYN queue (no
   * descriptor, not accepted; TCP_DEFER_ACCEPT, with SYN cookies only): while clients outnumber the
   * descriptors, a probe (which sends its request at once) does not queue behind them, and one
   * reset to make room comes back only after it, not at once (the kernel rounds to 3 s) */
  deferAcceptS: 2,
  /** at the cap, the accept queue is emptied natively (atCap); at most this many of the connections
   * taken have a complete request head and go to node:http at once (descriptors kept for them) */
  triageBatch: 512,
  /** Once the waiting room is half full, a peer holding at least 1/peerShare of it (and
   * peerMinHeld) has its new connections dropped by the kernel (limitPeers, native/peers.c): its
   * excess waits in its own SYN retransmissions, not in the accept queue ahead of a probe. A peer
   * is an IPv4 address, 127.0.0.0/8 as one, or an IPv6 /64. */
  peerShare: 16,
  peerMinHeld: 8,
  /** who holds the room is looked at this often while it holds connections ... */
  peerEveryMs: 100,
  /** ... and the limit ends once the room has been under an eighth full for this long */
  peerQuietMs: 10_000,
  /** what the endpoint did against hostile clients is logged at most once per this */
  defenceLogMs: 10_000,
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
  /** --health-max-connections; default SERVER_LIMITS.maxConnections (both lowered to fit the descriptor limit) */
  readonly maxConnections?: number;
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
function requestHeaders(raw: readonly string[]): { accept: string | undefined; body: boolean; prober: boolean } {
  let accept: string | undefined;
  let body = false;
  let prober = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 6 && name.toLowerCase() === 'accept') accept = accept === undefined ? raw[i + 1] : `${accept}, ${raw[i + 1]}`;
    else if (name.length === 10 && name.toLowerCase() === 'user-agent') prober = PROBER.test(raw[i + 1]);
    else if (name.length === 14 && name.toLowerCase() === 'content-length') body ||= raw[i + 1].trim() !== '0';
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') body = true;
  }
  return { accept, body, prober };
}

/** The kubelet's probes and `hainit probe` (Docker's HEALTHCHECK) say who they are. */
const PROBER = /^(kube-probe\/|hainit-probe$)/;

function send(req: http.IncomingMessage, res: http.ServerResponse, w: Wire, requestBody: boolean): void {
  // A request with a body has no business here: answer and close rather than read it.
  res.writeHead(w.status, requestBody ? [...w.headers, 'Connection', 'close'] : (w.headers as (string | number)[]));
  res.end(req.method === 'HEAD' ? undefined : w.body);
}

type BurstSocket = Socket & { hainitTurn?: number; hainitBurst?: number; hainitHeld?: boolean; _handle?: { readStop?: () => number } | null };

/** Pipelining connections currently held (not read, not yet closed). */
let held = 0;

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
 * connection is cut off: the rest of what it sent is never answered. It is not read any more and
 * is closed only SERVER_LIMITS.pipelineHoldMs later (at most pipelineHeldMax at a time): a flooder
 * closed at once reconnects and floods again, and each of its connections costs a read's parse. */
function pipelineFlood(socket: BurstSocket, limit: number, defence: DefenceLog): boolean {
  if (socket.hainitHeld || socket.destroyed) return true;
  const t = currentTurn();
  if (socket.hainitTurn !== t) {
    socket.hainitTurn = t;
    socket.hainitBurst = 0;
  }
  socket.hainitBurst = (socket.hainitBurst ?? 0) + 1;
  if (socket.hainitBurst <= limit) return false;
  defence.note('pipelined');
  socket.hainitHeld = true;
  if (held >= SERVER_LIMITS.pipelineHeldMax || !socket._handle?.readStop || socket._handle.readStop() !== 0) {
    socket.destroy();
    return true;
  }
  held++;
  setTimeout(() => {
    held--;
    socket.destroy();
  }, SERVER_LIMITS.pipelineHoldMs).unref();
  return true;
}

/** What listen() needs to know of a server made by createHealthServer. */
interface Guard {
  readonly server: http.Server;
  readonly log: Logger;
  readonly backlog: number;
  /** connections the native waiting room may hold past the cap */
  readonly room: number;
  readonly defence: DefenceLog;
  /** the listening socket's descriptor once listening and the waiting room is set up; -1 before, or without */
  listenFd: number;
  triaging: boolean;
  /** TCP_DEFER_ACCEPT may be used (SYN cookies are on), and is on now */
  mayDefer: boolean;
  deferring: boolean;
  /** node:http holds fewer connections than its cap */
  belowCap: () => boolean;
  roomTimer?: NodeJS.Timeout;
  /** when the waiting room was last more than an eighth full (Date.now()), when the peers were
   * last looked at, and the peers limited now (limitPeers) */
  busyAt: number;
  peersAt: number;
  limited: readonly string[];
  /** addresses the kubelet's probes (or `hainit probe`) came from while all was calm, the latest
   * last (limitPeers) */
  probers: Set<string>;
}
const GUARDS = new WeakMap<http.Server, Guard>();

/** The probe server, not yet listening. */
export function createHealthServer(d: ServerDeps): http.Server {
  const L = SERVER_LIMITS;
  const plain = new Map<string, Wire>();
  const fds = fdLimit();
  const { cap, backlog, room, limitedBy } = connectionCap(L, d.maxConnections, fds);
  if (limitedBy !== undefined && d.maxConnections !== undefined) {
    d.log.warn(`--health-max-connections ${d.maxConnections}: the descriptor limit (${limitedBy}) leaves room for ${cap}; holding at most ${cap}`);
  }
  const defence: DefenceLog = new DefenceLog(d.log, L.defenceLogMs, () => ({ cap, held: conns.size, busiest: conns.busiest() }));
  // At the cap the least recently active connection makes room: held aside in the waiting room
  // (a keep-alive client between requests, one that never sent one), closed only without it.
  const conns: Connections = new Connections(cap, defence, { timeoutMs: L.idleTimeoutMs, jitterMs: L.idleJitterMs }, Date.now, (s) => park(s, guard));
  const server = httpModule().createServer(
    {
      // A backstop for the connections accepted while few were open (untracked, see trackFrom):
      // node checks these for all connections at once; the tracked ones meet their spread
      // idle deadline (idleTimeoutMs + part of idleJitterMs) first.
      headersTimeout: L.idleTimeoutMs + L.idleJitterMs,
      requestTimeout: 2 * (L.idleTimeoutMs + L.idleJitterMs),
      connectionsCheckingInterval: 1_000,
      keepAliveTimeout: L.keepAliveTimeoutMs,
      maxHeaderSize: L.maxHeaderBytes,
      // Probes from odd clients (busybox wget, HTTP/1.0) are still probes.
      requireHostHeader: false,
    },
    (req, res) => {
      if (pipelineFlood(req.socket as BurstSocket, L.maxPipelined, defence)) return;
      conns.touch(req.socket);
      d.catchUp?.();
      const h = requestHeaders(req.rawHeaders);
      if (h.prober) noteProber(guard, req.socket.remoteAddress);
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
  server.maxHeadersCount = L.maxHeadersCount;
  // No server.maxConnections: at its cap node:net refuses the new connection, which is the probe.
  const trackFrom = Math.min(L.trackFrom, Math.floor(cap / 2));
  const guard: Guard = {
    server, log: d.log, backlog, room, defence, listenFd: -1, triaging: false, mayDefer: false, deferring: false,
    belowCap: () => conns.size < cap, busyAt: -Infinity, peersAt: -Infinity, limited: [], probers: new Set(),
  };
  // One 'connection' listener, node:http's called from ours: an event with two listeners costs an
  // array copy on every connection.
  const httpConnection = server.listeners('connection')[0] as (s: Socket) => void;
  server.removeListener('connection', httpConnection);
  server.on('connection', (socket: Socket) => {
    // Few open (the kubelet's connection per probe): nothing to track, nothing to pay. node:net
    // counts what it accepted; those the waiting room hands back (no _server) are always tracked.
    const s = socket as Socket & { _server?: unknown };
    const few = (server as http.Server & { _connections: number })._connections <= trackFrom && s._server;
    // Past the cap, a connection without its request head goes to the waiting room before
    // node:http sets it up (a parser, timers): under churn that is every accepted connection.
    if (!few && !guard.triaging && guard.listenFd >= 0 && (conns.size >= cap || queueFilling(guard))) {
      guard.triaging = true;
      try {
        if (atCap(socket, guard)) return;
      } finally {
        guard.triaging = false;
      }
    }
    httpConnection.call(server, socket);
    if (!few) conns.add(socket);
  });
  server.on('close', () => conns.close());
  GUARDS.set(server, guard);
  d.log.debug('health endpoint limits', { max_connections: cap, backlog, waiting_room: room, descriptor_limit: fds });
  // Node's default answer would do, but this one is known to say nothing about the host.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    d.log.trace(`health endpoint: bad request: ${err.code ?? err.message}`);
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') defence.note('timedOut');
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

/** SO_RCVBUF on the listening socket, inherited by every connection it accepts
 * (SERVER_LIMITS.receiveBufferBytes); returns the listening descriptor, -1 when unknown. */
function smallReceiveBuffer(server: http.Server, log: Logger): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  let r: number | string = 'no descriptor';
  try {
    if (typeof fd === 'number' && fd >= 0) r = native().receiveBuffer(fd, SERVER_LIMITS.receiveBufferBytes);
  } catch (e) {
    r = (e as Error).message;
  }
  if (r !== 0) log.debug('health endpoint: the receive buffer keeps its default size', { error: String(r) });
  return r === 0 ? fd! : -1;
}

/**
 * At the cap, a connection that has not sent a complete request head goes to the native waiting
 * room (a descriptor there, nothing in JavaScript) rather than making a held one leave: clients
 * past the cap that reconnect the instant they are cut turned every accept into a close, tens of
 * thousands a second, and V8's heap followed that churn (RSS 204-262 MB), not the cap. Held aside,
 * they do not reconnect. The ones waiting in the kernel's accept queue are looked at too, natively
 * (libuv takes one per event-loop turn, and a probe would wait behind them all). Whoever sends a
 * request comes back to node:http within ROOM_CHECK_MS. Returns whether `socket` went to the room.
 */
/** Moves an idle connection from node:http into the waiting room. */
function park(socket: Socket, g: Guard): 'parked' | 'busy' | 'no' {
  if (g.listenFd < 0) return 'no';
  const fd = (socket as Socket & { _handle?: { fd?: number } | null })._handle?.fd;
  let r = -1;
  try {
    if (typeof fd === 'number' && fd >= 0) r = native().roomAdopt(fd);
  } catch {
    r = -1;
  }
  if (r === 1) return 'busy';
  if (r !== 0) return 'no';
  socket.destroy();
  watchRoom(g);
  return 'parked';
}

function atCap(socket: Socket, g: Guard): boolean {
  const n = native();
  if (g.mayDefer && !g.deferring) deferAccept(g, true);
  let parked = 0;
  let reset = 0;
  let adopted = false;
  const fd = (socket as Socket & { _handle?: { fd?: number } | null })._handle?.fd;
  const ready: number[] = [];
  try {
    if (typeof fd === 'number' && fd >= 0 && n.roomAdopt(fd) === 0) {
      adopted = true;
      parked++;
      socket.destroy();
    }
    const r = n.triage(g.listenFd, SERVER_LIMITS.triageBatch);
    reset += r[0];
    parked += r[1];
    for (let i = 2; i < r.length; i++) ready.push(r[i]);
  } catch (e) {
    g.listenFd = -1;
    g.log.debug('health endpoint: no waiting room', { error: (e as Error).message });
  }
  if (reset) g.defence.note('triaged', reset);
  if (parked) {
    g.defence.note('parked', parked);
    watchRoom(g);
  }
  for (const f of ready) serveFd(g.server, f);
  // under churn this runs every turn: whoever was parked and has sent its head since (a probe
  // accepted a moment before its request arrived) need not wait for the next check
  if (parked) checkRoom(g, false);
  return adopted;
}

/** The accept queue over half full: connections come faster than node:http takes them (one per
 * event-loop turn, a JavaScript socket each), so they are taken natively, as at the cap: a probe
 * behind them would wait, and once the queue is full the kernel drops every SYN, a probe's too. */
function queueFilling(g: Guard): boolean {
  let q: [number, number] | number;
  try {
    q = native().acceptQueue(g.listenFd);
  } catch {
    return false;
  }
  return typeof q !== 'number' && q[0] * 2 >= q[1];
}

/** How often the waiting room is looked at for requests that arrived and deadlines that passed.
 * The room is the addon's, one per process: hainit has one endpoint. */
const ROOM_CHECK_MS = 20;

/** Checks the waiting room every ROOM_CHECK_MS while it holds connections or accepts are deferred. */
function watchRoom(g: Guard): void {
  g.roomTimer ??= setInterval(() => checkRoom(g), ROOM_CHECK_MS).unref();
}

function checkRoom(g: Guard, deadlines = true): void {
  let r: number[];
  try {
    r = native().roomCheck(deadlines ? 1 : 0);
  } catch {
    r = [0, 0, 0];
  }
  if (r[0]) g.defence.note('timedOut', r[0]);
  if (r[2]) g.defence.note('triaged', r[2]);
  if (deadlines) limitPeers(g, r[1]);
  // deferring ends once the room is empty and node:http below its cap again
  if (r[1] === 0 && g.deferring && deadlines && g.belowCap()) deferAccept(g, false);
  if (r[1] === 0 && !g.deferring && g.limited.length === 0 && g.roomTimer) {
    clearInterval(g.roomTimer);
    g.roomTimer = undefined;
  }
  for (let i = 3; i < r.length; i++) serveFd(g.server, r[i]);
}

/** peers limited at once at most (PEER_DROP_MAX in native/hainit.h) */
const PEERS_MAX = 16;

/**
 * More clients than descriptors. The accept queue is where a probe's connection waits: once it is
 * full the kernel drops every SYN, the probe's too, and the probe comes back a second later (TCP's
 * retransmission). Past about 1.2 times the descriptor limit it stayed full: the clients reset to
 * make room reconnect faster than anything can be accepted. So once the waiting room is half full,
 * the peers that hold a large part of it (SERVER_LIMITS.peerShare) have their new connections
 * dropped by the kernel (native/peers.c): theirs wait in their own SYN retransmissions, with
 * TCP's back-off, and the room and the queue stay free for everyone else. Looked at every
 * peerEveryMs; lifted once the room has been nearly empty (under an eighth) for peerQuietMs. The
 * kubelet holds one connection at a time and is never among them. A peer that probes came from
 * while all was calm (a NAT in front of the pod, or the loopback where `hainit probe` runs
 * Docker's HEALTHCHECK) is dropped only while the accept queue is over half full, when the kernel
 * would soon drop its SYNs anyway (as are, whoever they are, those that hold most of the room
 * during a burst: native/addon.c, queue_tick).
 */
function limitPeers(g: Guard, inRoom: number): void {
  const L = SERVER_LIMITS;
  const now = Date.now();
  if (now - g.peersAt < L.peerEveryMs) return;
  g.peersAt = now;
  if (inRoom * 8 >= g.room) g.busyAt = now;
  if (now - g.busyAt >= L.peerQuietMs) {
    if (g.limited.length) dropFrom(g, [], '');
    return;
  }
  if (inRoom * 2 < g.room) return;
  let r: Array<string | number>;
  try {
    r = native().roomPeers(Math.max(L.peerMinHeld, Math.ceil(g.room / L.peerShare)));
  } catch {
    return;
  }
  // those limited already stay so until the room has been nearly empty for peerQuietMs
  const peers = [...g.limited];
  const said: string[] = [];
  for (let i = 0; i + 1 < r.length && peers.length < PEERS_MAX; i += 2) {
    const peer = softIfProbed(g, String(r[i]));
    if (peers.includes(peer)) continue;
    peers.push(peer);
    said.push(`${r[i]} (holding ${r[i + 1]}${peer.startsWith('~') ? '; probes came from there: only while the accept queue is over half full' : ''})`);
  }
  if (said.length) dropFrom(g, peers, said.join(', '));
}

/** Addresses probes came from, learnt only while calm: a flood's own probes cannot make its
 * address one. At most PROBERS_MAX, the oldest forgotten first. */
const PROBERS_MAX = 32;
function noteProber(g: Guard, address: string | undefined): void {
  if (address === undefined || Date.now() - g.busyAt < SERVER_LIMITS.peerQuietMs) return;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (!g.probers.delete(a) && g.probers.size >= PROBERS_MAX) g.probers.delete(g.probers.values().next().value as string);
  g.probers.add(a);
}

/** "ADDRESS/BITS" with "~" before it when a prober's address is in it (native/peers.c: soft) */
function softIfProbed(g: Guard, peer: string): string {
  if (g.probers.size === 0) return peer;
  const [address, bits] = peer.split('/');
  const family = address.includes(':') ? 'ipv6' : 'ipv4';
  const list = new (netModule().BlockList)();
  list.addSubnet(address, Number(bits), family);
  for (const a of g.probers) if ((a.includes(':') ? 'ipv6' : 'ipv4') === family && list.check(a, family)) return `~${peer}`;
  return peer;
}

function dropFrom(g: Guard, peers: readonly string[], said: string): void {
  if (peers.join() === g.limited.join()) return;
  let r: number;
  try {
    r = native().peerDrop(g.listenFd, peers);
  } catch {
    r = -1;
  }
  if (r !== 0) {
    g.log.debug('health endpoint: cannot limit peers', { error: String(r) });
    return;
  }
  g.limited = peers;
  peerLimit.peers = peers.length;
  // a change of state, said at once: a few lines an attack (16 peers at most, then the end)
  if (peers.length) g.log.warn(`health endpoint: more clients than it can hold: the kernel now drops new connections from ${said}, until the waiting room has been nearly empty for ${SERVER_LIMITS.peerQuietMs / 1000} s`);
  else g.log.info('health endpoint: no peer is limited any more: the waiting room has been nearly empty for a while');
}

/** Past the cap (on) until the waiting room is empty again (off): quiet newcomers wait in the
 * kernel, not in the accept queue ahead of a probe (SERVER_LIMITS.deferAcceptS). */
function deferAccept(g: Guard, on: boolean): void {
  let r: number;
  try {
    r = native().deferAccept(g.listenFd, on ? SERVER_LIMITS.deferAcceptS : 0);
  } catch {
    r = -1;
  }
  if (r !== 0) g.mayDefer = false;
  g.deferring = on && r === 0;
  if (g.deferring) watchRoom(g);
  g.log.debug(`health endpoint: connections that have sent nothing ${g.deferring ? 'now wait in the kernel until they do (past the cap)' : 'are accepted at once again'}`);
}

/** A connection accepted natively, handed to node:http as node:net would. */
function serveFd(server: http.Server, fd: number): void {
  let s: Socket;
  try {
    s = new (netModule().Socket)({ fd, readable: true, writable: true });
  } catch {
    closeSync(fd);
    return;
  }
  // node:http times sockets out through socket.server
  (s as Socket & { server?: http.Server }).server = server;
  s.setNoDelay(true);
  server.emit('connection', s);
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
    const guard = GUARDS.get(server);
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port, exclusive: true, backlog: guard?.backlog }, () => {
      server.off('error', onError);
      // From now on an error is logged and the server goes on; running out of descriptors on
      // accept (which the connection cap is sized to avoid) is counted in the rate-limited line.
      server.on('error', (e: NodeJS.ErrnoException) => {
        if (guard && (e.code === 'EMFILE' || e.code === 'ENFILE')) guard.defence.note('refused');
        else log.warn(`health endpoint: ${e.code ?? e.message}`);
      });
      if (guard) {
        const fd = smallReceiveBuffer(server, log);
        if (fd >= 0 && guard.room > 0) {
          let r: number | string;
          try {
            r = native().roomInit(guard.room, SERVER_LIMITS.idleTimeoutMs, SERVER_LIMITS.idleJitterMs);
          } catch (e) {
            r = (e as Error).message;
          }
          if (r === 0) {
            guard.listenFd = fd;
            guard.mayDefer = synCookies();
            peerLimit.dropMs = () => native().peerDropState()[2];
          }
          else log.debug('health endpoint: no waiting room', { error: String(r) });
        }
      }
      resolve(server.address() as AddressInfo);
    });
  });
}
