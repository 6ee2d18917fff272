/**
 * 7. The probe endpoint under hostile clients (issue 14): hainit as PID 1, attacked by each class
 *    of test/fixtures/hostile.js (idle, slow-header, keep-alive holders, pipeliners, a mix, and
 *    idle clients past the connection cap), each class in processes of its own connecting from
 *    127.0.0.2+; meanwhile what the kubelet does, from an address of its own (not the loopback,
 *    support/load.ts kubeletAddress; hainit listens on 0.0.0.0): a fresh connection and GET /livez
 *    every 50 ms with a 1 s timeout. Probe p50/p99 (a failure counts as 1000 ms) and hainit's largest RSS,
 *    beside the calm figure (the same probes, nobody else on the port).
 */
import { ProbeSubject, startServer, stopServer } from './probe';
import { fmt, table } from './util';
import { HostileKind, ProbeWindow, kubeletAddress, percentile, probeWindow, rssKb, settled, startAttackers } from '../support/load';

export interface HostileClass {
  readonly name: string;
  readonly mix: ReadonlyArray<readonly [HostileKind, number]>;
  /** hainit options added for this class */
  readonly args?: readonly string[];
  /** the clients give up a connection not made within this many ms and make a new one at once */
  readonly patienceMs?: number;
}

export const HOSTILE_CLASSES: readonly HostileClass[] = [
  { name: 'calm (nobody else on the port)', mix: [] },
  { name: '1500 idle, reconnecting when cut', mix: [['idle', 1500]] },
  { name: '1500 slow-header (never finish), reconnecting', mix: [['slow', 1500]] },
  { name: '1500 keep-alive holders (a request every 3 s)', mix: [['keepalive', 1500]] },
  { name: '32 pipeliners (20,000 requests per write)', mix: [['pipeline', 32]] },
  { name: 'mix: 600 idle + 600 slow + 600 keep-alive + 32 pipeliners', mix: [['idle', 600], ['slow', 600], ['keepalive', 600], ['pipeline', 32]] },
  { name: '12000 idle, past the default cap of 2048', mix: [['idle', 12000]] },
  { name: '600 keep-alive holders, past --health-max-connections 300', mix: [['keepalive', 600]], args: ['--health-max-connections', '300'] },
  { name: '18000 idle, near hainit\'s descriptor limit (20000)', mix: [['idle', 18000]] },
  // more clients than hainit has descriptors: the cap and the waiting room cannot hold them all
  { name: '24000 idle: more clients than descriptors (limit 20000)', mix: [['idle', 24000]] },
  { name: 'beyond the limit: 14000 idle + 4000 slow + 3000 keep-alive', mix: [['idle', 14000], ['slow', 4000], ['keepalive', 3000]] },
  // more than the descriptors, the waiting room and the accept queue (4096) hold together: the
  // loopback's new connections are dropped by the kernel (native/peers.c)
  { name: '32000 idle: more than the endpoint and its accept queue hold', mix: [['idle', 32000]] },
  { name: 'far beyond: 20000 idle + 6000 slow + 3000 keep-alive', mix: [['idle', 20000], ['slow', 6000], ['keepalive', 3000]] },
  { name: '12000 impatient idle (a new connection after 900 ms, no TCP back-off)', mix: [['idle', 12000]], patienceMs: 900 },
];

export interface HostileResult {
  readonly name: string;
  readonly held: number;
  readonly w: ProbeWindow;
  readonly rss0Kb: number;
  readonly opened: number;
  readonly cut: number;
}

export async function measureHostile(subject: (args: readonly string[]) => ProbeSubject, classes: readonly HostileClass[], seconds: number): Promise<HostileResult[]> {
  const out: HostileResult[] = [];
  // Each class connects from addresses of its own (127.0.0.2 and up, on through the classes): the
  // connections of the one before linger in TIME_WAIT on its addresses for 60 s, and a client that
  // binds its source address first may find no free port there (7,000-8,000 sockets in TIME_WAIT
  // per address after the big classes; the 21,000-client mix run right after the 24,000 had about
  // half of its clients never connected).
  let source = 2;
  const kubelet = kubeletAddress();
  for (const c of classes) {
    const s = subject(c.args ?? []);
    const wide: ProbeSubject = { ...s, argv: (port, child) => s.argv(port, child).map((a) => (a === `127.0.0.1:${port}` ? `0.0.0.0:${port}` : a)) };
    const r = await startServer(wide, ['sleep', '1000']);
    const attackers = [];
    try {
      const rss0Kb = rssKb(r.init);
      for (const [kind, n] of c.mix) {
        const procs = Math.max(1, Math.ceil(n / 3000));
        attackers.push(startAttackers(kind, n, r.port, procs, source, c.patienceMs ?? 0));
        source += procs;
      }
      const held = c.mix.length ? await settled(r.init) : 0;
      const w = await probeWindow(r.port, r.init, seconds * 1000, 50, 1000, kubelet.address);
      const stats = attackers.flatMap((a) => a.stats());
      out.push({ name: c.name, held, w, rss0Kb, opened: stats.reduce((n, s) => n + s.opened, 0), cut: stats.reduce((n, s) => n + s.cut, 0) });
    } finally {
      for (const a of attackers) await a.stop();
      await stopServer(r);
    }
  }
  kubelet.release();
  return out;
}

export function hostileTable(res: readonly HostileResult[]): string {
  const calm = res.find((r) => r.name.startsWith('calm'));
  const p = (r: HostileResult, q: number): number => percentile(r.w.latencies, q);
  return table(
    ['clients', 'hainit held (fds)', 'client connections opened / cut', 'fresh probes', 'failed', 'p50 ms', 'p99 ms', 'p99 / calm', 'RSS before -> max, MB'],
    res.map((r) => [
      r.name,
      String(r.held),
      `${r.opened} / ${r.cut}`,
      String(r.w.latencies.length),
      r.w.failed ? `${r.w.failed} ${JSON.stringify(r.w.failures)}` : '0',
      fmt(p(r, 50), 2),
      fmt(p(r, 99), 1),
      calm && r !== calm ? `${(p(r, 99) / p(calm, 99)).toFixed(0)}x` : '',
      `${fmt(r.rss0Kb / 1024)} -> ${fmt(r.w.rssMaxKb / 1024)}`,
    ]),
  );
}
