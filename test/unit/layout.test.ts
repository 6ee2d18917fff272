import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REAPED_CORE, REAPED_NAMED, REAPED_RECORD, decodeReaped, encodeReaped, reapedNamed } from '../../src/reaper/record';
import { RecordFlag, SIGNAL_RECORD, decodeSignalRecord } from '../../src/signals/record';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * The records the addon hands to JavaScript are read at offsets written down in TypeScript. The
 * C compiler is the authority on the header's layout: a program built from native/hainit.h
 * prints every size, offset and constant, and they must be the TypeScript ones.
 */
function headerLayout(): Record<string, number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hainit-layout-'));
  try {
    const fields: [string, string][] = [];
    const size = (name: string, type: string) => fields.push([name, `sizeof(${type})`]);
    const off = (name: string, type: string, field: string) => fields.push([name, `offsetof(${type}, ${field})`]);
    size('sig.size', 'struct hainit_sigrecord');
    for (const f of ['signo', 'code', 'pid', 'uid', 'sent', 'target', 'err', 'flags', 'mono_ns', 'comm']) off(`sig.${f}`, 'struct hainit_sigrecord', f);
    fields.push(['sig.comm_bytes', 'sizeof(((struct hainit_sigrecord *)0)->comm)']);
    size('reaped.size', 'struct hainit_reaped');
    for (const f of ['pid', 'code', 'signo', 'flags', 'lived_ms', 'comm']) off(`reaped.${f}`, 'struct hainit_reaped', f);
    fields.push(['reaped.comm_bytes', 'sizeof(((struct hainit_reaped *)0)->comm)']);
    for (const c of ['HAINIT_REC_FORWARDED', 'HAINIT_REC_SELF', 'HAINIT_REC_TTY', 'HAINIT_REAPED_CORE', 'HAINIT_REAPED_NAMED']) {
      fields.push([c, `(long)(${c})`]);
    }
    const program = [
      '#include <stddef.h>',
      '#include <stdio.h>',
      '#include "hainit.h"',
      'int main(void) {',
      ...fields.map(([name, expr]) => `  printf("%s %ld\\n", "${name}", (long)${expr});`),
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(path.join(dir, 'layout.c'), program);
    execFileSync('cc', ['-Wall', '-Werror', '-I', path.join(ROOT, 'native'), '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
    const out = execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('native records: the TypeScript layouts are the C header\'s', function () {
  this.timeout(30_000);
  let c: Record<string, number>;
  before(() => (c = headerLayout()));

  it('struct hainit_sigrecord: size, every offset and the flags', () => {
    const S = SIGNAL_RECORD;
    assert.deepEqual(
      { size: S.size, signo: S.signo, code: S.code, pid: S.pid, uid: S.uid, sent: S.sent, target: S.target, err: S.err, flags: S.flags, monoNs: S.monoNs, comm: S.comm, commBytes: S.commBytes },
      { size: c['sig.size'], signo: c['sig.signo'], code: c['sig.code'], pid: c['sig.pid'], uid: c['sig.uid'], sent: c['sig.sent'], target: c['sig.target'], err: c['sig.err'], flags: c['sig.flags'], monoNs: c['sig.mono_ns'], comm: c['sig.comm'], commBytes: c['sig.comm_bytes'] },
    );
    assert.deepEqual(RecordFlag, { forwarded: c.HAINIT_REC_FORWARDED, self: c.HAINIT_REC_SELF, tty: c.HAINIT_REC_TTY });
  });

  it('struct hainit_reaped: size, every offset and the flags', () => {
    const R = REAPED_RECORD;
    assert.deepEqual(
      { size: R.size, pid: R.pid, code: R.code, signo: R.signo, flags: R.flags, livedMs: R.livedMs, comm: R.comm, commBytes: R.commBytes },
      { size: c['reaped.size'], pid: c['reaped.pid'], code: c['reaped.code'], signo: c['reaped.signo'], flags: c['reaped.flags'], livedMs: c['reaped.lived_ms'], comm: c['reaped.comm'], commBytes: c['reaped.comm_bytes'] },
    );
    assert.deepEqual([REAPED_CORE, REAPED_NAMED], [c.HAINIT_REAPED_CORE, c.HAINIT_REAPED_NAMED]);
  });

  it("decodes a signal record field by field: a sender's name, one of 15 bytes, none", () => {
    const b = Buffer.alloc(3 * SIGNAL_RECORD.size);
    const at = SIGNAL_RECORD.size;
    [15, -1, 42, 1000, 10, -7, 3, RecordFlag.forwarded | RecordFlag.tty].forEach((v, i) => b.writeInt32LE(v, at + 4 * i));
    b.writeBigInt64LE(123456789012n, at + SIGNAL_RECORD.monoNs);
    b.write('kill', at + SIGNAL_RECORD.comm, 'latin1');
    b.write('abcdefghijklmno', 2 * at + SIGNAL_RECORD.comm, 'latin1');
    assert.deepEqual(decodeSignalRecord(b, at), {
      signal: 15, code: -1, senderPid: 42, senderUid: 1000, senderComm: 'kill', sent: 10, target: -7, errno: 3,
      forwarded: true, fromSelf: false, fromOwnTty: true, monoNs: 123456789012n,
    });
    assert.equal(decodeSignalRecord(b, 2 * at).senderComm, 'abcdefghijklmno');
    assert.equal(decodeSignalRecord(b, 0).senderComm, '');
  });

  it('decodes reaped records: an exit, a kill with a core, a 16-byte name without its NUL, no details', () => {
    const R = REAPED_RECORD;
    const b = Buffer.alloc(3 * R.size);
    const put = (i: number, pid: number, code: number, signo: number, flags: number, lived: bigint, comm: string) => {
      b.writeInt32LE(pid, i * R.size + R.pid);
      b.writeInt32LE(code, i * R.size + R.code);
      b.writeInt32LE(signo, i * R.size + R.signo);
      b.writeInt32LE(flags, i * R.size + R.flags);
      b.writeBigInt64LE(lived, i * R.size + R.livedMs);
      b.write(comm, i * R.size + R.comm, 'latin1');
    };
    put(0, 10, 3, 0, 0, 250n, 'sleep');
    put(1, 11, -1, 9, REAPED_CORE, -1n, 'abcdefghijklmnop');
    put(2, 12, 0, 0, 0, -1n, '');
    b.writeInt32LE(REAPED_NAMED | REAPED_CORE, R.size + R.flags);
    assert.deepEqual(decodeReaped(b, 0), { pid: 10, code: 3, signal: null, core: false, comm: 'sleep', livedMs: 250 });
    assert.deepEqual(decodeReaped(b, 1), { pid: 11, code: null, signal: 9, core: true, comm: 'abcdefghijklmnop', livedMs: undefined });
    assert.deepEqual(decodeReaped(b, 2), { pid: 12, code: 0, signal: null, core: false, comm: '', livedMs: undefined });
    assert.deepEqual([0, 1, 2].map((i) => reapedNamed(b, i)), [false, true, false]);
  });

  it('encodes for fakes exactly what it decodes', () => {
    const b = Buffer.alloc(2 * REAPED_RECORD.size, 0xff);
    const statuses = [
      { pid: 7, code: 0, signal: null, core: false, comm: 'python3', livedMs: 1234 },
      { pid: 8, code: null, signal: 6, core: true, comm: '', livedMs: undefined },
    ];
    statuses.forEach((st, i) => encodeReaped(b, i, st));
    assert.deepEqual([decodeReaped(b, 0), decodeReaped(b, 1)], statuses);
    assert.deepEqual([reapedNamed(b, 0), reapedNamed(b, 1)], [true, false]);
  });

  it('the addon writes reap records only into a buffer aligned for them', () => {
    // In a child process: reaping in mocha's own would take the statuses of its children.
    const script = `const a = require(${JSON.stringify(path.join(ROOT, 'build', 'Release', 'hainit.node'))});
      try { a.reap(1, Buffer.alloc(${REAPED_RECORD.size * 2}).subarray(4)); console.log('accepted'); } catch (e) { console.log(e.message); }`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.match(out, /not aligned/);
  });
});
