/**
 * The probe endpoint against hostile clients (issue 14): whoever holds connections, a fresh probe
 * is taken and answered. Connections are held in order of last activity; at the cap each new one
 * closes the least recently active (an idle socket, one that never finished its headers, a
 * keep-alive holder between requests), so the kubelet's new connection is never refused. What was
 * done is logged in one line at most every SERVER_LIMITS.defenceLogMs.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Logger } from '../log/logger';

/** RLIMIT_NOFILE's soft limit (Node has raised it to the hard limit at start-up), undefined when unknown. */
export function fdLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'));
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Whether the kernel answers with SYN cookies once a listen queue's SYN queue is full (this network
 * namespace's net.ipv4.tcp_syncookies is 1 or 2; the default everywhere). Without them, connections
 * held back by TCP_DEFER_ACCEPT would fill the SYN queue and a probe's SYN would be dropped. */
export function synCookies(file = '/proc/sys/net/ipv4/tcp_syncookies'): boolean {
  try {
    return /^[12]/.test(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

export interface CapLimits {
  readonly maxConnections: number;
  readonly waitingRoomMax: number;
  readonly backlog: number;
  readonly reservedFds: number;
  readonly triageBatch: number;
}

/**
 * How many connections the endpoint holds (node:http's cap, and the native waiting room past
 * it), and the listen backlog. Held connections, what one triage of the accept queue may hand
 * node:http before the cap is restored, and hainit's own descriptors must fit under the
 * descriptor limit: past it accept() fails (EMFILE) and libuv closes whatever waits, probes too.
 * The accept queue itself costs no descriptor: libuv takes one connection from it per turn of
 * the event loop, and at the cap the rest are triaged natively, a batch at a time, into the
 * room (which makes room for a newcomer when full, see native/addon.c). Without a requested cap
 * and with few descriptors, node:http and the room share them half and half.
 */
export function connectionCap(
  L: CapLimits,
  requested: number | undefined,
  fds: number | undefined,
): { cap: number; backlog: number; room: number; limitedBy?: number } {
  const want = requested ?? L.maxConnections;
  if (fds === undefined) return { cap: want, backlog: L.backlog, room: 0 };
  const backlog = L.backlog;
  const usable = Math.max(32, fds - Math.min(L.reservedFds, Math.floor(fds / 8)) - Math.min(L.triageBatch, Math.floor(fds / 8)));
  if (requested !== undefined && usable - requested < 16) return { cap: usable, backlog, room: 0, limitedBy: fds };
  const cap = requested ?? Math.min(want, Math.floor(usable / 2));
  return { cap, backlog, room: Math.min(L.waitingRoomMax, usable - cap) };
}

type Counter = 'evicted' | 'parked' | 'triaged' | 'timedOut' | 'pipelined' | 'refused';

/** Every action of every DefenceLog since start, for /metrics (hainit_health_clients_total). */
const sinceStart: Record<Counter, number> = { evicted: 0, parked: 0, triaged: 0, timedOut: 0, pipelined: 0, refused: 0 };
export function defenceTotals(): Readonly<Record<Counter, number>> {
  return sinceStart;
}

/** How many peers have their new connections dropped by the kernel now (src/health/server.ts
 * limitPeers), and for how long that has been in force since start. */
export const peerLimit = { peers: 0, dropMs: (): number => 0 };

/** Counts what the endpoint did to clients and says so, at most once per `everyMs` (the first at once). */
export class DefenceLog {
  private counts: Record<Counter, number> = { evicted: 0, parked: 0, triaged: 0, timedOut: 0, pipelined: 0, refused: 0 };
  private lastAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** every count since start, for tests and diagnostics */
  readonly total: Record<Counter, number> = { evicted: 0, parked: 0, triaged: 0, timedOut: 0, pipelined: 0, refused: 0 };

  constructor(
    private readonly log: Logger,
    private readonly everyMs: number,
    private readonly describe: () => { cap: number; held: number; busiest?: { peer: string; count: number } },
    private readonly now: () => number = Date.now,
  ) {}

  note(what: Counter, n = 1): void {
    this.counts[what] += n;
    this.total[what] += n;
    sinceStart[what] += n;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = this.lastAt + this.everyMs - this.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait).unref();
  }

  flush(): void {
    this.timer = undefined;
    const c = this.counts;
    if (c.evicted + c.parked + c.triaged + c.timedOut + c.pipelined + c.refused === 0) return;
    const since = Number.isFinite(this.lastAt) ? `in the last ${Math.round((this.now() - this.lastAt) / 1000)} s` : 'just now';
    this.lastAt = this.now();
    const d = this.describe();
    const parts: string[] = [];
    if (c.evicted) parts.push(`closed ${c.evicted} least recently active connection${c.evicted === 1 ? '' : 's'} to stay at the cap of ${d.cap}`);
    if (c.parked) parts.push(`held ${c.parked} aside until they send a request (past the cap)`);
    if (c.triaged) parts.push(`reset ${c.triaged} that waited the longest without a request, to make room (more clients than descriptors)`);
    if (c.timedOut) parts.push(`closed ${c.timedOut} idle without a complete request`);
    if (c.pipelined) parts.push(`dropped ${c.pipelined} pipelining more than the limit per turn`);
    if (c.refused) parts.push(`refused ${c.refused} (no descriptor left)`);
    this.log.warn(`health endpoint: busy clients ${since}: ${parts.join('; ')}`, {
      connections: d.held,
      busiest_peer: d.busiest?.peer,
      busiest_peer_connections: d.busiest?.count,
    });
    this.counts = { evicted: 0, parked: 0, triaged: 0, timedOut: 0, pipelined: 0, refused: 0 };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The connections held, least recently active first (a Set keeps insertion order: a request
 * moves its connection to the end). Past the cap the oldest are closed once the accept loop is
 * done (setImmediate): closing them at once would let their owners reconnect within the same
 * accept loop, which libuv runs until the queue is empty.
 */
/** the deadline of a connection that has completed a request: node:http's keep-alive timeout rules */
const SERVED = Infinity;

/** How often connections that never completed a request are looked at for their idle deadline. */
const SWEEP_MS = 500;

export interface IdleLimit {
  /** a connection that has not completed a request is closed this long after it came... */
  readonly timeoutMs: number;
  /** ... plus a random part of this, so that clients that came together do not come back together */
  readonly jitterMs: number;
}

export class Connections {
  /** connection -> its idle deadline (ms), or SERVED; in order of last activity (a Map keeps
   * insertion order). Nothing is stored on the sockets themselves: a property added to node's
   * Socket objects gives them another shape, which node:http's own code then pays for. */
  private readonly held = new Map<Socket, number>();
  private pending = false;
  private sweeper: NodeJS.Timeout | undefined;
  /** now(), read when the sweeper starts and at each sweep: not once per connection */
  private clock = 0;
  private spread = 0;
  private readonly onClose: () => void;

  constructor(
    readonly cap: number,
    private readonly defence: DefenceLog,
    private readonly idle?: IdleLimit,
    private readonly now: () => number = Date.now,
    /** moves a connection out of node:http into the waiting room ('parked'); 'busy': a request of
     * its is waiting to be read, leave it; 'no': it cannot (close it) */
    private readonly park?: (s: Socket) => 'parked' | 'busy' | 'no',
  ) {
    const held = this.held;
    this.onClose = function (this: Socket) {
      held.delete(this);
    };
  }

  get size(): number {
    return this.held.size;
  }

  add(socket: Socket): void {
    let deadline = SERVED;
    if (this.idle) {
      if (!this.sweeper) {
        this.clock = this.now();
        this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
      }
      // spread over the jitter by a stride, not Math.random(): the same effect, for less
      this.spread = (this.spread + 7919) % 1_000_003;
      deadline = this.clock + this.idle.timeoutMs + (this.idle.jitterMs > 0 ? this.spread % this.idle.jitterMs : 0);
    }
    this.held.set(socket, deadline);
    socket.on('close', this.onClose);
    if (this.held.size > this.cap && !this.pending) {
      this.pending = true;
      setImmediate(() => this.evict());
    }
  }

  /** a request arrived on `socket`: it is now the most recently active (and node:http's
   * keep-alive timeout bounds its idle time from its first answer on) */
  touch(socket: Socket): void {
    if (this.held.size !== 0 && this.held.delete(socket)) this.held.set(socket, SERVED);
  }

  /** Closes the connections past their idle deadline that never completed a request. One timer
   * for all of them, not one per connection: the kubelet's connection-per-probe costs nothing more. */
  private sweep(): void {
    if (this.held.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = (this.clock = this.now());
    let n = 0;
    for (const [s, deadline] of this.held) {
      if (deadline > now) continue;
      this.held.delete(s);
      s.destroy();
      n++;
    }
    if (n) this.defence.note('timedOut', n);
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private evict(): void {
    this.pending = false;
    let n = this.held.size - this.cap;
    if (n <= 0) return;
    let evicted = 0;
    let parked = 0;
    const busy: Socket[] = [];
    for (const s of this.held.keys()) {
      if (n <= 0) break;
      // A connection with an answer still going out is closed (its client is not reading).
      const p = (s as Socket & { _httpMessage?: unknown })._httpMessage || !this.park ? 'no' : this.park(s);
      if (p === 'busy') {
        busy.push(s);
        continue;
      }
      this.held.delete(s);
      n--;
      if (p === 'parked') parked++;
      else {
        s.destroy();
        evicted++;
      }
    }
    // requests about to be read: most recently active now
    for (const s of busy) this.touch(s);
    if (evicted) this.defence.note('evicted', evicted);
    if (parked) this.defence.note('parked', parked);
  }

  /** The peer address holding the most connections (scans them all: for the rate-limited log only). */
  busiest(): { peer: string; count: number } | undefined {
    const per = new Map<string, number>();
    let best: { peer: string; count: number } | undefined;
    for (const s of this.held.keys()) {
      const peer = s.remoteAddress ?? '?';
      const n = (per.get(peer) ?? 0) + 1;
      per.set(peer, n);
      if (!best || n > best.count) best = { peer, count: n };
    }
    return best;
  }
}
