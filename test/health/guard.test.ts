import { strict as assert } from 'node:assert';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Connections, DefenceLog, connectionCap, fdLimit, synCookies } from '../../src/health/guard';
import { SERVER_LIMITS } from '../../src/health/server';
import { Logger } from '../../src/log/logger';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

class Lines extends Logger {
  lines: string[] = [];
  constructor() {
    super('info', 'text');
  }
  override write(level: string, msg: string): void {
    this.lines.push(`${level} ${msg}`);
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('health: connection guard (issue 14)', () => {
  it('the cap and the waiting room fit under the descriptor limit with hainit\'s own descriptors and one triage\'s', () => {
    const L = SERVER_LIMITS;
    assert.deepEqual(connectionCap(L, undefined, undefined), { cap: L.maxConnections, backlog: L.backlog, room: 0 });
    assert.deepEqual(connectionCap(L, undefined, 1_048_576), { cap: L.maxConnections, backlog: L.backlog, room: L.waitingRoomMax });
    assert.deepEqual(connectionCap(L, undefined, 20_000), { cap: 2048, backlog: 4096, room: L.waitingRoomMax });
    // 20,000 - 256 (hainit's own) - 512 (one triage's ready ones) = 19,232 usable: the cap, and the
    // waiting room past it; the accept queue (backlog) costs no descriptor
    assert.deepEqual(connectionCap(L, 10_000, 20_000), { cap: 10_000, backlog: 4096, room: 9_232 });
    assert.deepEqual(connectionCap(L, 50_000, 20_000), { cap: 19_232, backlog: 4096, room: 0, limitedBy: 20_000 });
    // a small limit: 1/8 kept for hainit, 1/8 for a triage: 1024 - 128 - 128 = 768, half of it for
    // node:http and half for the waiting room (the default cap is not asked for: no warning)
    assert.deepEqual(connectionCap(L, undefined, 1024), { cap: 384, backlog: 4096, room: 384 });
    assert.deepEqual(connectionCap(L, 300, 3000), { cap: 300, backlog: 4096, room: 3000 - 256 - 375 - 300 });
  });

  it('reads the soft descriptor limit from /proc/PID/limits', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-limits-'));
    const f = path.join(dir, 'limits');
    writeFileSync(f, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                1048576              files\n');
    assert.equal(fdLimit(f), 20000);
    writeFileSync(f, 'Max open files            unlimited            unlimited            files\n');
    assert.equal(fdLimit(f), Number.MAX_SAFE_INTEGER);
    assert.equal(fdLimit(path.join(dir, 'missing')), undefined);
    assert.equal(typeof fdLimit(), 'number');
  });

  it('reads whether the kernel answers with SYN cookies (TCP_DEFER_ACCEPT is used only then)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hainit-syncookies-'));
    const f = path.join(dir, 'tcp_syncookies');
    for (const [v, on] of [['1\n', true], ['2\n', true], ['0\n', false]] as const) {
      writeFileSync(f, v);
      assert.equal(synCookies(f), on, v);
    }
    assert.equal(synCookies(path.join(dir, 'missing')), false);
  });

  it('at the cap the least recently active connection makes room, once the accept loop is done; a request makes a connection the most recent', async () => {
    const log = new Lines();
    let conns: Connections | undefined;
    const defence = new DefenceLog(log, 60_000, () => ({ cap: 3, held: conns!.size, busiest: conns!.busiest() }));
    conns = new Connections(3, defence);
    const [a, b, c, d, e] = ['10.0.0.1', '10.0.0.2', '10.0.0.2', '10.0.0.3', '10.0.0.2'].map((ip) => new FakeSocket(ip));
    for (const s of [a, b, c]) conns.add(s as unknown as Socket);
    conns.touch(a as unknown as Socket); // a is now the most recently active: b is the oldest
    conns.add(d as unknown as Socket);
    assert.equal(conns.size, 4, 'nothing is closed inside the accept loop');
    await tick();
    assert.deepEqual([a, b, c, d].map((s) => s.destroyed), [false, true, false, false]);
    assert.equal(conns.size, 3);
    c.destroy(); // a connection that closes by itself leaves the set
    assert.equal(conns.size, 2);
    conns.add(e as unknown as Socket);
    await tick();
    assert.equal(conns.size, 3);
    assert.deepEqual([a, d, e].map((s) => s.destroyed), [false, false, false]);
    assert.equal(log.lines.length, 1);
    assert.match(log.lines[0], /^warn health endpoint: busy clients just now: closed 1 least recently active connection to stay at the cap of 3$/);
    defence.close();
  });

  it('a connection that completed no request is closed at its idle deadline; an answered one is left to keep-alive', async () => {
    const log = new Lines();
    let t = 1_000_000;
    const defence = new DefenceLog(log, 60_000, () => ({ cap: 10, held: 0 }));
    const conns = new Connections(10, defence, { timeoutMs: 10_000, jitterMs: 0 }, () => t);
    const [a, b] = [new FakeSocket('10.0.0.1'), new FakeSocket('10.0.0.2')];
    conns.add(a as unknown as Socket);
    conns.add(b as unknown as Socket);
    conns.touch(a as unknown as Socket);
    t += 9_999;
    await sleep(600);
    assert.deepEqual([a.destroyed, b.destroyed], [false, false]);
    t += 1;
    await sleep(600);
    assert.deepEqual([a.destroyed, b.destroyed], [false, true]);
    assert.equal(defence.total.timedOut, 1);
    conns.close();
    defence.close();
  });

  it('the log says what was done at once, then at most once per period, with the counts since', async () => {
    const log = new Lines();
    const defence = new DefenceLog(log, 100, () => ({ cap: 10, held: 10, busiest: { peer: '10.0.0.9', count: 7 } }));
    defence.note('evicted');
    assert.equal(log.lines.length, 1);
    for (let i = 0; i < 500; i++) defence.note('timedOut');
    defence.note('pipelined', 3);
    defence.note('triaged', 40);
    assert.equal(log.lines.length, 1, 'rate-limited');
    await sleep(200);
    assert.equal(log.lines.length, 2);
    assert.match(log.lines[1], /^warn health endpoint: busy clients in the last 0 s: reset 40 that waited the longest without a request, to make room \(more clients than descriptors\); closed 500 idle without a complete request; dropped 3 pipelining more than the limit per turn$/);
    assert.deepEqual(defence.total, { evicted: 1, parked: 0, triaged: 40, timedOut: 500, pipelined: 3, refused: 0 });
    await sleep(200);
    assert.equal(log.lines.length, 2, 'nothing to say, nothing said');
    defence.close();
  });
});
