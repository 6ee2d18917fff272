import { strict as assert } from 'node:assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mountPointOf, parseNoexec, safeReason } from '../../src/native';
import { applicationEnvironment, printable, rawEntries } from '../../src/native/app-env';
import { UsageError } from '../../src/config/values';

// Where the single binary may write its addon: a candidate on a noexec mount is skipped.
describe('native addon extraction: mount options', () => {
  const mountinfo = [
    '22 1 0:21 / / ro,relatime shared:1 - overlay overlay rw',
    '23 22 0:22 / /proc rw,nosuid,nodev,noexec - proc proc rw',
    '24 22 0:23 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw',
    '25 22 0:24 / /dev/shm rw,nosuid,nodev,noexec - tmpfs shm rw',
    '26 22 0:25 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw', // mounted over the noexec /tmp
    '27 22 0:26 / /my\\040dir rw - tmpfs tmpfs rw',
  ].join('\n');

  it('takes the latest mount on a point and reads noexec from the mount options', () => {
    const { points, noexec } = parseNoexec(mountinfo);
    assert.deepEqual(noexec.sort(), ['/dev/shm', '/proc']);
    assert.ok(points.includes('/my dir'), 'octal escapes in mount points are decoded');
  });

  it('finds the mount a path lives on by the longest prefix, on path boundaries', () => {
    const points = ['/', '/tmp', '/tmpfoo', '/dev/shm'];
    assert.equal(mountPointOf('/tmp/x', points), '/tmp');
    assert.equal(mountPointOf('/tmpx', points), '/');
    assert.equal(mountPointOf('/dev/shm', points), '/dev/shm');
    assert.equal(mountPointOf('/var/tmp', points), '/');
  });
});

describe('the application environment (src/native/app-env.ts)', () => {
  // the entries as the addon's rawEnviron() gives them: latin1 texts, a character a byte
  const entries = (...e: string[]) => e;
  it('gives HAINIT_APP_NAME to the application as NAME, in its place, over any NAME, bytes untouched', () => {
    const { raw, env } = applicationEnvironment(entries('A=1', 'NODE_OPTIONS=old', 'HAINIT_APP_NODE_OPTIONS=--require x', 'B=\xff\xfe', 'HAINIT_APP_UV_THREADPOOL_SIZE=64'));
    // not all ASCII: the child gets the bytes, as Buffers
    assert.ok(raw.every((b) => Buffer.isBuffer(b)));
    assert.deepEqual(raw.map((b) => (b as Buffer).toString('latin1')), ['A=1', 'NODE_OPTIONS=--require x', 'B=\xff\xfe', 'UV_THREADPOOL_SIZE=64']);
    assert.equal(env.NODE_OPTIONS, '--require x');
    assert.equal(env.B, Buffer.from('\xff\xfe', 'latin1').toString('utf8'), 'values decoded as UTF-8, as Node decodes its own');
    assert.equal(rawEntries(env), raw);
    // all ASCII: the texts are their own bytes
    const ascii = applicationEnvironment(entries('A=1', 'HAINIT_APP_NODE_OPTIONS=--require y', 'NODE_OPTIONS=old', 'PATH=/bin'));
    assert.deepEqual(ascii.raw, ['A=1', 'NODE_OPTIONS=--require y', 'PATH=/bin']);
    assert.deepEqual({ ...ascii.env }, { A: '1', NODE_OPTIONS: '--require y', PATH: '/bin' });
  });
  it('refuses a HAINIT_APP_* that names no Node setting, naming it', () => {
    assert.throws(() => applicationEnvironment(entries('HAINIT_APP_PATH=/evil')), (e: Error) => e instanceof UsageError && /HAINIT_APP_PATH: only NODE_\*/.test(e.message));
    assert.throws(() => applicationEnvironment(entries('HAINIT_APP_LD_PRELOAD=/x.so')), UsageError);
  });
  it('the old internal channel is an ordinary, documented carrier now: NODE_ENV for the application', () => {
    const { env } = applicationEnvironment(entries('HAINIT_APP_NODE_ENV={"PATH":1}'));
    assert.equal(env.NODE_ENV, '{"PATH":1}');
  });
  it('prints bytes that are not printable ASCII as \\xNN', () => {
    assert.equal(printable(Buffer.from('caf\xe9\xff\\', 'latin1')), 'caf\\xe9\\xff\\\\');
  });
});

describe('which places the single binary may load its addon from (safeReason)', () => {
  it('accepts root-owned directories and sticky world-writable ones, refuses a world-writable one without the sticky bit', function () {
    if (process.getuid?.() !== 0) this.skip();
    const base = mkdtempSync(path.join(tmpdir(), 'hainit-safe-'));
    try {
      chmodSync(base, 0o755);
      const open = path.join(base, 'open');
      const sticky = path.join(base, 'sticky');
      mkdirSync(open);
      mkdirSync(sticky);
      chmodSync(open, 0o777);
      chmodSync(sticky, 0o1777);
      assert.equal(safeReason(base, false), undefined);
      assert.equal(safeReason(sticky, false), undefined);
      assert.match(safeReason(open, false) ?? '', /writable by others without the sticky bit \(mode 777\)/);
      assert.match(safeReason(path.join(open, '..', 'open'), false) ?? '', /without the sticky bit/, 'through .. too');
      const other = path.join(base, 'other');
      mkdirSync(other);
      chownSync(other, 65534, 65534);
      assert.match(safeReason(other, false) ?? '', /belongs to uid 65534/);
      assert.equal(safeReason(other, false, 65534), undefined, 'its owner may use it');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
