import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import type { NativeAddon, ReapedStatus } from '../../src/native';
import { REAPED_RECORD, encodeReaped } from '../../src/reaper/record';
import { NAMES_PER_SECOND, Reaper } from '../../src/reaper/reaper';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** An addon whose zombies are a list: reap() names the first `named` of each pass, as reap.c does. */
class Zombies {
  waiting: { pid: number; comm: string }[] = [];
  namedAsked: number[] = [];
  readonly addon = {
    reap: (named: number, records: Buffer) => {
      this.namedAsked.push(named);
      const now = this.waiting.splice(0, records.length / REAPED_RECORD.size);
      now.forEach((z, i) => {
        const status: ReapedStatus = { pid: z.pid, code: 0, signal: null, core: false, comm: i < named ? z.comm : '', livedMs: i < named ? 5 : undefined };
        encodeReaped(records, i, status, i < named);
      });
      return now.length;
    },
  } as unknown as NativeAddon;

  exit(n: number, comm: string): void {
    const first = this.waiting.length ? this.waiting[this.waiting.length - 1].pid + 1 : 100 + this.namedAsked.length * 10_000;
    for (let i = 0; i < n; i++) this.waiting.push({ pid: first + i, comm });
  }
}

describe('Reaper: the naming budget', () => {
  it('names the first 64 of a storm, counts the rest, and says so in the summary', () => {
    const z = new Zombies();
    const reaper = new Reaper(z.addon, { now: () => 0 });
    const seen: ReapedStatus[] = [];
    reaper.on('orphan', (s) => seen.push(s));
    z.exit(2000, 'chrome');
    reaper.reapNow();
    assert.equal(reaper.orphansReaped, 2000);
    assert.equal(reaper.orphansUnnamed, 2000 - NAMES_PER_SECOND);
    assert.equal(seen.filter((s) => s.comm === 'chrome').length, NAMES_PER_SECOND);
    assert.equal(reaper.summary(), `chrome ×${NAMES_PER_SECOND}, and ${2000 - NAMES_PER_SECOND} more not named: reaped in a storm`);
    // 2000 in passes of 256: the budget was spent in the first
    assert.deepEqual(z.namedAsked, [64, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('refills at 64 a second, up to 64: a slow leak is named in full', () => {
    const z = new Zombies();
    let t = 0;
    const reaper = new Reaper(z.addon, { now: () => t });
    z.exit(64, 'sh');
    reaper.reapNow();
    t += 500; // half a second: 32 names back
    z.exit(50, 'sh');
    reaper.reapNow();
    assert.equal(reaper.orphansUnnamed, 18);
    t += 60_000; // a minute idle fills the bucket only to 64
    z.exit(100, 'sleep');
    reaper.reapNow();
    assert.equal(reaper.orphansUnnamed, 18 + 36);
    assert.equal(reaper.summary(), 'sh ×96, sleep ×64, and 54 more not named: reaped in a storm');
    // one orphan a second is always named
    const slow = new Reaper(z.addon, { now: () => t });
    for (let i = 0; i < 200; i++) {
      t += 1000;
      z.exit(1, 'cron');
      slow.reapNow();
    }
    assert.equal(slow.summary(), 'cron ×200');
  });

  it('Infinity (-v, -w) names every orphan; 0 names none', () => {
    const z = new Zombies();
    const all = new Reaper(z.addon, { namesPerSecond: Infinity });
    z.exit(1000, 'sleep');
    all.reapNow();
    assert.equal(all.summary(), 'sleep ×1000');
    const none = new Reaper(z.addon, { namesPerSecond: 0 });
    z.exit(10, 'sleep');
    none.reapNow();
    assert.equal(none.summary(), '10 not named: reaped in a storm');
  });

  it("the watched processes' statuses go to their watchers, and do not count as orphans", () => {
    const z = new Zombies();
    const reaper = new Reaper(z.addon, { namesPerSecond: 0 });
    z.exit(3, 'app');
    const got: number[] = [];
    const watched = z.waiting[1].pid;
    reaper.watch(watched, (s) => got.push(s.pid));
    reaper.reapNow();
    assert.deepEqual(got, [watched]);
    assert.equal(reaper.orphansReaped, 2);
    assert.equal(reaper.orphansUnnamed, 2);
  });

  it('the native loop names exactly the first `named` zombies of a pass, and reaps them all', () => {
    // In a child process that is a subreaper: reaping in mocha's own would take its children's statuses.
    const script = `
      const a = require(${JSON.stringify(path.join(ROOT, 'build', 'Release', 'hainit.node'))});
      const { decodeReaped, reapedNamed } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src', 'reaper', 'record.js'))});
      const { execFileSync } = require('node:child_process');
      const fs = require('node:fs');
      a.subreaper(1);
      // sh leaves 10 orphans (named "sleep") that exit at once
      execFileSync('sh', ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.05 & done']);
      const zombies = () => fs.readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim().split(' ').filter(Boolean)
        .filter((p) => { try { return fs.readFileSync('/proc/' + p + '/stat', 'utf8').split(') ')[1][0] === 'Z'; } catch { return false; } }).length;
      const until = Date.now() + 10000;
      while (zombies() < 10 && Date.now() < until);
      const b = Buffer.alloc(40 * 16);
      const n = a.reap(3, b);
      const out = [];
      for (let i = 0; i < n; i++) out.push([reapedNamed(b, i), decodeReaped(b, i).comm, decodeReaped(b, i).livedMs !== undefined]);
      console.log(JSON.stringify({ n, out, left: zombies() }));`;
    const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { n: number; out: [boolean, string, boolean][]; left: number };
    assert.equal(r.n, 10);
    assert.equal(r.left, 0);
    assert.deepEqual(r.out.slice(0, 3), [[true, 'sleep', true], [true, 'sleep', true], [true, 'sleep', true]]);
    assert.deepEqual(r.out.slice(3), Array(7).fill([false, '', false]));
  });
});
