/**
 * The kernel-side limit on peers (native/peers.c) on a real listening socket: SYNs from a listed
 * peer are dropped, everyone else's pass, a "soft" peer only while the accept queue is over half
 * full, and an empty list lets everyone in again. Connections are made by a separate process
 * while this one's event loop is held in spawnSync, so Node accepts nothing meanwhile: the accept
 * queue holds exactly what the test put there.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { Server, createServer } from 'node:net';
import { SERVER_LIMITS } from '../../src/health/server';
import { native } from '../../src/native';
import { PYTHON } from '../../support/pid1';
import { kubeletAddress } from '../../support/load';

/** Connects from each source (all to `to`, `port`); 'connected' or 'dropped' (no SYN-ACK in 600 ms)
 * each; `fill` connections from 127.0.0.1 are made first and left in the accept queue. With `hold`,
 * every connection stays open for 10 s after this returns (a process of its own keeps them). */
function connectFrom(port: number, to: string, sources: readonly string[], fill = 0, hold = false): string[] {
  const script = `
import socket, sys, json, os, time
port, to, fill, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1'
keep = [socket.create_connection(('127.0.0.1', port)) for _ in range(fill)]
out = []
for src in sys.argv[5:]:
    s = socket.socket(); s.settimeout(0.6); s.bind((src, 0))
    try:
        s.connect((to, port)); out.append('connected')
    except socket.timeout:
        out.append('dropped')
    keep.append(s)
print(json.dumps(out), flush=True)
if hold and os.fork() == 0:
    for fd in (0, 1, 2): os.close(fd)
    time.sleep(10)
`;
  const r = spawnSync(PYTHON, ['-c', script, String(port), to, String(fill), hold ? '1' : '0', ...sources], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

describe('health: peers limited in the kernel (native/peers.c)', function () {
  this.timeout(30_000);
  const BACKLOG = 16;
  let kubelet: ReturnType<typeof kubeletAddress>;
  let server: Server | undefined;

  before(() => {
    kubelet = kubeletAddress();
  });
  after(() => kubelet.release());
  afterEach(async () => {
    const fd = listenFd();
    if (fd >= 0) native().peerDrop(fd, []);
    await new Promise((r) => server?.close(r) ?? r(undefined));
    server = undefined;
  });

  function listenFd(): number {
    return (server as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd ?? -1;
  }

  async function listen(): Promise<{ port: number; fd: number }> {
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server!.listen({ host: '0.0.0.0', port: 0, backlog: BACKLOG }, r));
    return { port: (server.address() as { port: number }).port, fd: listenFd() };
  }

  it('drops the SYNs of a listed peer (127.0.0.0/8 as one), lets the others in, and lets everyone in once the list is empty', async () => {
    const { port, fd } = await listen();
    assert.equal(native().peerDrop(fd, ['127.0.0.0/8']), 0);
    assert.deepEqual(connectFrom(port, '127.0.0.1', ['127.0.0.1', '127.0.0.9']), ['dropped', 'dropped']);
    assert.deepEqual(connectFrom(port, kubelet.address, [kubelet.address]), ['connected']);
    assert.equal(native().peerDropState()[0], 1, 'the filter is said to be on');
    assert.equal(native().peerDrop(fd, []), 0);
    assert.equal(native().peerDropState()[0], 0, 'the filter is said to be off');
    // taken off the socket for real (a detach the kernel refused once left it dropping)
    assert.deepEqual(connectFrom(port, '127.0.0.1', ['127.0.0.1']), ['connected']);
  });

  it('an IPv4 address alone: its SYNs are dropped, the loopback\'s are not', async () => {
    const { port, fd } = await listen();
    assert.equal(native().peerDrop(fd, [`${kubelet.address}/32`]), 0);
    assert.deepEqual(connectFrom(port, kubelet.address, [kubelet.address]), ['dropped']);
    assert.deepEqual(connectFrom(port, '127.0.0.1', ['127.0.0.1']), ['connected']);
  });

  it('a soft peer ("~"): dropped only while the accept queue is over half full', async () => {
    let { port, fd } = await listen();
    assert.equal(native().peerDrop(fd, ['~127.0.0.0/8']), 0);
    // an empty queue: it gets in
    assert.deepEqual(connectFrom(port, '127.0.0.1', ['127.0.0.1']), ['connected']);
    await new Promise((r) => server!.close(r));
    ({ port, fd } = await listen());
    // a queue over half full when the list is set (the state is looked at then, and on every
    // triage and waiting-room check of the endpoint)
    connectFrom(port, '127.0.0.1', [], BACKLOG / 2 + 2);
    assert.equal(native().peerDrop(fd, ['~127.0.0.0/8']), 0);
    assert.deepEqual(connectFrom(port, '127.0.0.1', ['127.0.0.1']), ['dropped']);
    assert.deepEqual(connectFrom(port, kubelet.address, [kubelet.address]), ['connected']);
  });

  it('refuses what is not a peer', async () => {
    const { fd } = await listen();
    for (const bad of ['127.0.0.1', '10.0.0.1/24', 'fd00::/48', 'x/32', '']) assert.ok(native().peerDrop(fd, [bad]) < 0, bad);
    assert.equal(native().peerDrop(fd, ['fd00::/64']), 0);
  });

  it('counts who holds the waiting room, by peer, most first', async () => {
    const { port, fd } = await listen();
    // the sizes the endpoint itself gives it (the room is one per process: a later one keeps these)
    assert.equal(native().roomInit(SERVER_LIMITS.waitingRoomMax, SERVER_LIMITS.idleTimeoutMs, SERVER_LIMITS.idleJitterMs), 0);
    const before = native().roomCheck(0)[1];
    connectFrom(port, kubelet.address, [kubelet.address, kubelet.address], 3, true);
    // taken from the accept queue natively; none has sent a request: all five wait in the room
    const r = native().triage(fd, 1);
    assert.equal(r[1], 5, `parked ${r[1]}`);
    const peers = native().roomPeers(2);
    assert.deepEqual(before === 0 ? peers : peers.slice(0, 4), ['127.0.0.0/8', 3, `${kubelet.address}/32`, 2]);
    assert.deepEqual(native().roomPeers(3).slice(0, 2), ['127.0.0.0/8', 3]);
  });
});
