import { strict as assert } from 'node:assert';
import { parseInvocation } from '../../src/config/parse';
import { Config } from '../../src/config/config';
import { Logger } from '../../src/log/logger';
import { NativeAddon, ReapedStatus } from '../../src/native';
import { REAPED_RECORD, encodeReaped } from '../../src/reaper/record';
import { Reaper } from '../../src/reaper/reaper';
import { SignalEvent, SignalRouter } from '../../src/signals/router';
import { Phase, Supervisor } from '../../src/supervisor/supervisor';
import { MemoryReading } from '../../src/watch/memory';
import { FakeClock, settle } from './fake-clock';

const SIGINT = 2;
const SIGKILL = 9;
const SIGTERM = 15;
const SIGUSR1 = 10;

function configOf(...argv: string[]): Config {
  const inv = parseInvocation([...argv, '--', '/bin/app'], {});
  if (inv.kind !== 'run') throw new Error('not a run');
  return inv.config;
}

/** Keeps the error lines, so a test can see which step was named. */
class ErrorLines extends Logger {
  readonly lines: string[] = [];
  /** a line matching it throws (a bug in the logger) */
  faultOn: RegExp | undefined;
  constructor() {
    super('error', 'text');
  }
  override write(level: string, msg: string): void {
    if (this.faultOn?.test(msg)) throw new Error('injected fault: log');
    if (level === 'error') this.lines.push(msg);
  }
}

/**
 * The system as the Supervisor sees it, on virtual time: spawn hands out pids, kill records the
 * signal and lets the child die of the ones it honours, reap reports what died. No process runs.
 */
class World {
  readonly clock = new FakeClock();
  readonly log = new ErrorLines();
  readonly kills: string[] = [];
  readonly modes = new Map<number, number>();
  readonly phases: Phase[] = [];
  private nextPid = 100;
  private dead: ReapedStatus[] = [];
  private readonly reaped = new Set<number>();
  /** pid -> the signals it dies of; exitCode for the next child started */
  honours = new Set<number>([SIGTERM, SIGINT, SIGKILL]);
  spawned: number[] = [];
  /** a bug on the way out: thrown by the leftover list, or by the spawn of any process after the child */
  leftoversFault: Error | undefined;
  hookSpawnFault: Error | undefined;
  inheritedFdsFault: Error | undefined;
  readonly addon: NativeAddon;
  readonly router: SignalRouter;
  readonly reaper: Reaper;
  memoryUsed = 0;

  constructor() {
    const stub = (name: string) => () => {
      throw new Error(`unexpected addon call ${name}`);
    };
    const addon: Partial<NativeAddon> = {
      spawn: () => {
        if (this.hookSpawnFault && this.spawned.length > 0) throw this.hookSpawnFault;
        const pid = this.nextPid++;
        this.spawned.push(pid);
        return pid;
      },
      kill: (pid, sig) => {
        this.kills.push(`${this.clock.now()} ${pid} ${sig}`);
        const child = Math.abs(pid);
        if (sig !== 0 && this.honours.has(sig) && this.spawned.includes(child) && !this.dead.some((d) => d.pid === child) && !this.reaped.has(child)) {
          this.die(child, { signal: sig });
        }
        return 0;
      },
      reap: (_named, records) => {
        const now = this.dead.splice(0, records.length / REAPED_RECORD.size);
        now.forEach((d, i) => {
          this.reaped.add(d.pid);
          encodeReaped(records, i, d);
        });
        return now.length;
      },
      inheritedFds: () => {
        if (this.inheritedFdsFault) throw this.inheritedFdsFault;
        return [];
      },
      terminalForeground: () => -25,
      childStopped: () => 0,
      signalsTarget: () => undefined,
      signalsMode: (sig, mode) => void this.modes.set(sig, mode),
      pipe: () => -24,
      exitNow: stub('exitNow') as never,
    };
    this.addon = addon as NativeAddon;
    this.router = new SignalRouter(this.addon);
    this.reaper = new Reaper(this.addon, { namesPerSecond: 0 });
  }

  supervisor(config: Config): Supervisor {
    const s = new Supervisor({
      config, log: this.log, addon: this.addon, router: this.router, reaper: this.reaper, clock: this.clock, env: { PATH: '/bin' }, pid: 1,
      memorySampler: () => ({ usedBytes: this.memoryUsed, limitBytes: 100e6, source: 'tree' }) as MemoryReading,
      // the children still alive: the main child, as the kernel's children lists would show it
      leftovers: (hooks) => {
        if (this.leftoversFault) throw this.leftoversFault;
        return this.spawned.filter((p) => !hooks.has(p) && !this.reaped.has(p));
      },
    });
    s.on('phase', (p) => this.phases.push(p));
    return s;
  }

  /** The child (or a hook) ends; hainit hears of it as it does from SIGCHLD. */
  die(pid: number, how: { code?: number; signal?: number }): void {
    this.dead.push({ pid, code: how.code ?? null, signal: how.signal ?? null, core: false, comm: '', livedMs: undefined });
    setImmediate(() => this.reaper.reapNow());
  }

  /** A signal as the native handler reports it; `forwarded` when its mode was forward. */
  signal(sig: number, target = 0): void {
    const forward = this.modes.get(sig) === 1 || (this.modes.get(sig) === undefined && sig !== SIGTERM && sig !== SIGINT);
    if (forward && target !== 0) this.addon.kill(target, sig);
    const e: SignalEvent = {
      signal: sig, code: 0, senderPid: 42, senderUid: 0, senderComm: 'kill', sent: forward ? sig : 0, target: forward ? target : 0, errno: 0,
      forwarded: forward && target !== 0, fromSelf: false, fromOwnTty: false, monoNs: 0n,
    };
    this.router.emit('signal', e);
  }

  get child(): number {
    return this.spawned[this.spawned.length - 1];
  }

  killsOf(sig: number): string[] {
    return this.kills.filter((k) => k.endsWith(` ${sig}`));
  }
}

async function until(w: World, ms: number): Promise<void> {
  await w.clock.runUntil(w.clock.now() + ms);
  await settle();
}

describe('Supervisor: the lifecycle on virtual time', () => {
  it('SIGTERM: draining, the stop signal after the delay, stopping, then the child\'s 128+15', async () => {
    const w = new World();
    const run = w.supervisor(configOf('--shutdown-delay', '5s')).run();
    await until(w, 100);
    assert.deepEqual(w.phases, ['running']);
    w.signal(SIGTERM);
    await until(w, 4000);
    assert.deepEqual(w.phases, ['running', 'draining'], 'still in the delay at 4.1 s');
    assert.equal(w.killsOf(SIGTERM).length, 0);
    await until(w, 2000);
    assert.deepEqual(w.killsOf(SIGTERM), [`5100 ${w.child} ${SIGTERM}`]);
    assert.equal(await run, 128 + SIGTERM);
    assert.deepEqual(w.phases, ['running', 'draining', 'stopping', 'exited']);
  });

  it('a second TERM cuts the delay short; once the stop signal has gone, TERM and INT are the child\'s', async () => {
    const w = new World();
    w.honours = new Set([SIGINT, SIGKILL]);
    const run = w.supervisor(configOf('--shutdown-delay', '20s', '--grace-period', '60s')).run();
    await until(w, 100);
    w.signal(SIGTERM);
    await until(w, 1000);
    assert.equal(w.killsOf(SIGTERM).length, 0, 'in the delay');
    w.signal(SIGTERM);
    await until(w, 10);
    assert.deepEqual(w.killsOf(SIGTERM), [`1100 ${w.child} ${SIGTERM}`], 'the stop signal at once on the second TERM');
    assert.equal(w.modes.get(SIGTERM), 1, 'TERM forwarded by the handler from now on');
    assert.equal(w.modes.get(SIGINT), 1, 'INT too');
    // A third signal, INT: the handler forwards it, and the child quits on it (a cold shutdown).
    w.signal(SIGINT, w.child);
    assert.equal(await run, 128 + SIGINT);
    assert.equal(w.killsOf(SIGKILL).length, 0, 'no SIGKILL: the child quit on the forwarded INT');
  });

  it('a child that ignores its stop signal is killed before the grace period ends; hainit exits 137 by then', async () => {
    const w = new World();
    w.honours = new Set();
    const run = w.supervisor(configOf('--grace-period', '10s')).run();
    await until(w, 100);
    w.signal(SIGTERM);
    await until(w, 9500);
    assert.deepEqual(w.killsOf(SIGKILL), [`9100 ${w.child} ${SIGKILL}`], 'SIGKILL a second before the end');
    await until(w, 1000);
    assert.equal(await run, 137);
    assert.equal(w.phases[w.phases.length - 1], 'exited');
  });

  it('the child exits during the delay: hainit exits with its code at once, without sending the stop signal', async () => {
    const w = new World();
    const run = w.supervisor(configOf('--shutdown-delay', '30s', '--grace-period', '60s')).run();
    await until(w, 100);
    w.signal(SIGTERM);
    await until(w, 2000);
    w.die(w.child, { code: 3 });
    await until(w, 10);
    assert.equal(await run, 3);
    assert.equal(w.killsOf(SIGTERM).length, 0);
    assert.ok(w.clock.now() < 3000);
  });

  it('restarts on failure with a doubling delay until the budget is spent, then exits with the child\'s code', async () => {
    const w = new World();
    const s = w.supervisor(configOf('--restart', 'on-failure', '--max-restarts', '2', '--restart-delay', '1s'));
    const run = s.run();
    for (let i = 0; i < 3; i++) {
      await until(w, 50);
      w.die(w.child, { code: 4 });
      await until(w, i === 0 ? 1000 : 2000);
    }
    assert.equal(await run, 4);
    assert.equal(w.spawned.length, 3);
    assert.equal(s.restarts, 2);
    assert.deepEqual(w.phases, ['running', 'restarting', 'running', 'restarting', 'running', 'exited']);
  });

  it('a memory restart stops the child gracefully; a TERM during it becomes the shutdown, with no restart', async () => {
    const w = new World();
    w.honours = new Set([SIGKILL]);
    const s = w.supervisor(configOf('--max-memory', '100M', '--memory-interval', '1s', '--restart', 'always', '--shutdown-delay', '10s', '--grace-period', '20s'));
    const run = s.run();
    await until(w, 100);
    w.memoryUsed = 500e6;
    await until(w, 5000);
    assert.equal(s.phase, 'restarting', 'memory over the limit for three samples');
    w.signal(SIGTERM);
    await until(w, 10);
    assert.equal(s.phase, 'draining', 'the restart stop became the shutdown');
    await until(w, 30_000);
    assert.equal(await run, 137);
    assert.equal(w.spawned.length, 1, 'never restarted');
    assert.equal(s.restarts, 0);
  });

  it('memory over the limit during a shutdown changes nothing', async () => {
    const w = new World();
    w.honours = new Set([SIGKILL]);
    const s = w.supervisor(configOf('--max-memory', '100M', '--memory-interval', '1s', '--restart', 'always', '--shutdown-delay', '10s', '--grace-period', '20s'));
    const run = s.run();
    await until(w, 100);
    w.signal(SIGTERM);
    w.memoryUsed = 500e6;
    await until(w, 5000);
    assert.equal(s.phase, 'draining');
    assert.equal(s.memory?.actions.restart, 0);
    await until(w, 30_000);
    assert.equal(await run, 137);
    assert.equal(w.spawned.length, 1);
  });

  it('a post-start that fails stops the child gracefully and exits 125', async () => {
    const w = new World();
    const run = w.supervisor(configOf('--post-start', '/bin/check')).run();
    await until(w, 10);
    assert.equal(w.spawned.length, 2, 'the child, then the hook');
    const [child, hook] = w.spawned;
    assert.deepEqual(w.phases, [], 'starting until the hook passes');
    w.die(hook, { code: 1 });
    await until(w, 200);
    assert.deepEqual(w.killsOf(SIGTERM).map((k) => k.split(' ').slice(1).join(' ')), [`${child} ${SIGTERM}`], 'the stop signal to the child');
    assert.equal(await run, 125);
    assert.deepEqual(w.phases, ['draining', 'stopping', 'exited']);
  });

  it('signals before the child exists are held and forwarded once it runs; TERM before it ends hainit with 128+15', async () => {
    const w = new World();
    const s = w.supervisor(configOf());
    // No --wait-for: the child starts in run(); a USR1 that came before is held for it.
    w.signal(SIGUSR1);
    const run = s.run();
    await until(w, 10);
    assert.deepEqual(w.killsOf(SIGUSR1), [`0 ${w.child} ${SIGUSR1}`]);
    w.signal(SIGTERM);
    assert.equal(await run, 128 + SIGTERM);
  });
});

/**
 * A bug in hainit on its way out (a dependency that throws): before, run() rejected or the shutdown
 * sequence stopped, and hainit, which only logs internal errors, never exited (README "Reliability").
 */
describe('Supervisor: a bug on the way out still ends in the exit with the child\'s code', () => {
  const fault = () => new Error('injected fault');
  const internalErrors = (w: World) => w.log.lines.filter((l) => l.startsWith('internal error in '));

  it('the leftover cleanup throws after the child exited: its code, and one line naming the step', async () => {
    const w = new World();
    const run = w.supervisor(configOf()).run();
    await until(w, 100);
    w.leftoversFault = fault();
    w.die(w.child, { code: 3 });
    await until(w, 100);
    assert.equal(await run, 3);
    assert.deepEqual(internalErrors(w).map((l) => l.split(':')[0]), ['internal error in the leftover cleanup (hainit carries on)']);
    assert.match(internalErrors(w)[0], /Error: injected fault/);
    assert.deepEqual(w.phases, ['running', 'exited']);
  });

  it('the leftover cleanup throws before a restart: the child is still restarted', async () => {
    const w = new World();
    const run = w.supervisor(configOf('--restart', 'on-failure', '--max-restarts', '1', '--restart-delay', '1s')).run();
    await until(w, 100);
    w.leftoversFault = fault();
    w.die(w.child, { code: 4 });
    await until(w, 1100);
    assert.equal(w.spawned.length, 2, 'restarted');
    w.die(w.child, { code: 5 });
    await until(w, 100);
    assert.equal(await run, 5);
    assert.equal(internalErrors(w).length, 2, 'one line per failed cleanup');
  });

  it('SIGTERM, a drain command that throws: the child still gets its stop signal, hainit its code', async () => {
    const w = new World();
    const run = w.supervisor(configOf('--pre-stop', '/bin/drain', '--pre-stop', '/bin/drain-more', '--grace-period', '30s')).run();
    await until(w, 100);
    w.hookSpawnFault = fault();
    w.signal(SIGTERM);
    await until(w, 100);
    assert.deepEqual(w.killsOf(SIGTERM), [`100 ${w.child} ${SIGTERM}`], 'the stop signal at once, not at the grace period');
    assert.equal(await run, 128 + SIGTERM);
    assert.deepEqual(internalErrors(w).map((l) => l.split(' (')[0]), ['internal error in pre-stop[1]', 'internal error in pre-stop[2]']);
    assert.deepEqual(w.phases, ['running', 'draining', 'stopping', 'exited']);
  });

  it('SIGTERM, the child ignores it and the process list throws at SIGKILL time: the child still gets SIGKILL, exit 137', async () => {
    const w = new World();
    w.honours = new Set([SIGKILL]);
    const run = w.supervisor(configOf('--grace-period', '10s')).run();
    await until(w, 100);
    w.signal(SIGTERM);
    await until(w, 100);
    w.leftoversFault = fault();
    await until(w, 9000);
    assert.deepEqual(w.killsOf(SIGKILL), [`9100 ${w.child} ${SIGKILL}`], 'SIGKILL one second before the grace period ends');
    assert.equal(await run, 137);
    assert.deepEqual(internalErrors(w).map((l) => l.split(' (hainit')[0]), ['internal error in the shutdown (the processes to SIGKILL)', 'internal error in the leftover cleanup']);
  });

  it('the shutdown fails as it begins (its first line throws) and nothing ends the child: hainit still exits when the grace period is over', async () => {
    const w = new World();
    w.honours = new Set(); // a child no signal ends (stuck in the kernel)
    let code: number | undefined;
    void w.supervisor(configOf('--grace-period', '5s')).run().then((c) => (code = c));
    await until(w, 100);
    w.log.faultOn = /^shutdown: SIGTERM from/;
    // in hainit the router's event ends in the uncaughtException handler ("supervision continues")
    assert.throws(() => w.signal(SIGTERM), /injected fault: log/);
    w.log.faultOn = undefined;
    await until(w, 5000);
    assert.equal(code, 137, 'run() resolved with the grace period (EXIT_GRACE_OVER)');
  });

  it('a listener of the phase throws (draining, then exited): the shutdown goes on and run() resolves', async () => {
    const w = new World();
    const s = w.supervisor(configOf('--shutdown-delay', '2s'));
    s.on('phase', (p) => {
      if (p === 'draining' || p === 'exited') throw fault();
    });
    const run = s.run();
    await until(w, 100);
    w.signal(SIGTERM);
    await until(w, 2100);
    assert.deepEqual(w.killsOf(SIGTERM), [`2100 ${w.child} ${SIGTERM}`], 'the stop signal after the delay');
    assert.equal(await run, 128 + SIGTERM);
    assert.deepEqual(internalErrors(w).map((l) => l.split(' (hainit')[0]), ['internal error in the shutdown (draining)', 'internal error in the exit phase']);
  });

  it('the supervision itself fails while the child runs: no restart, but TERM still stops it and hainit exits with its code', async () => {
    const w = new World();
    const s = w.supervisor(configOf('--restart', 'always', '--shutdown-delay', '1s'));
    s.on('phase', (p) => {
      if (p === 'running') throw fault();
    });
    const run = s.run();
    let settled = false;
    void run.finally(() => (settled = true));
    await until(w, 5000);
    assert.equal(settled, false, 'the child runs: hainit does not leave it');
    assert.deepEqual(internalErrors(w).map((l) => l.split(' (hainit')[0]), ['internal error in the supervision']);
    w.signal(SIGTERM);
    await until(w, 1100);
    assert.deepEqual(w.killsOf(SIGTERM), [`6000 ${w.child} ${SIGTERM}`]);
    assert.equal(await run, 128 + SIGTERM);
    assert.equal(w.spawned.length, 1);
  });

  it('the supervision fails while the child runs, and the child exits on its own: its code (after --remap-exit)', async () => {
    const w = new World();
    const s = w.supervisor(configOf('-e', '7:0'));
    s.on('phase', (p) => {
      if (p === 'running') throw fault();
    });
    const run = s.run();
    await until(w, 100);
    w.die(w.child, { code: 7 });
    await until(w, 100);
    assert.equal(await run, 0);
  });

  it('the supervision fails before any child ran: 125 at once', async () => {
    const w = new World();
    w.inheritedFdsFault = fault();
    const run = w.supervisor(configOf()).run();
    await until(w, 10);
    assert.equal(await run, 125);
    assert.equal(w.spawned.length, 0);
    assert.deepEqual(internalErrors(w).map((l) => l.split(' (hainit')[0]), ['internal error in the supervision']);
  });
});
