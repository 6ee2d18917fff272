import { strict as assert } from 'node:assert';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import fc from 'fast-check';
import { native } from '../../src/native';
import { LineCutter, MAX_LINE_CHARS } from '../../src/supervisor/command';
import { LogOutput, QUEUE_LIMIT_BYTES } from '../../src/log/output';

/** Everything the pipe holds now. */
function drain(fd: number): string {
  let out = '';
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n = 0;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch {
      return out; // EAGAIN: empty
    }
    if (n === 0) return out;
    out += buf.toString('utf8', 0, n);
  }
}

describe('log output on a pipe that is not read (real kernel pipe)', () => {
  let fds: [number, number];
  /** the test reads through a description of its own, non-blocking */
  let reader = -1;
  beforeEach(() => {
    const p = native().pipe();
    assert.ok(Array.isArray(p));
    fds = p;
    reader = openSync(`/proc/self/fd/${fds[0]}`, constants.O_RDONLY | constants.O_NONBLOCK);
  });
  afterEach(() => {
    for (const fd of [...fds, reader]) closeSync(fd);
  });

  it('never blocks: a full pipe queues up to the bound, drops and counts the rest, then reports them once, in order', () => {
    const out = new LogOutput(fds[1]);
    const line = 'x'.repeat(99) + '\n';
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 10_000; i++) out.write(line); // 1 MB into a 64 KiB pipe
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(out.dropped > 0, 'nothing dropped');
    assert.ok(out.pending * 100 <= QUEUE_LIMIT_BYTES, `${out.pending} lines queued`);
    // the reader comes back
    let got = drain(reader);
    for (let i = 0; i < 50 && out.pending > 0; i++) {
      out.flushSync(5);
      got += drain(reader);
    }
    const lines = got.split('\n').filter((l) => l !== '');
    console.log(`      10,000 lines into a stuck pipe in ${Math.round(ms)} ms: ${lines.length - 1} written, ${out.dropped} dropped`);
    assert.equal(lines.length - 1 + out.dropped, 10_000, 'every line was written or counted');
    assert.equal(lines[lines.length - 1], `hainit: WARN  ${out.dropped} log line(s) dropped: stderr was not being read`);
    assert.ok(lines.slice(0, -1).every((l) => l === line.trim()), 'a line was cut or mixed');
    out.reset();
  });

  it("the application's description of the pipe keeps blocking mode (hainit writes through its own)", () => {
    const out = new LogOutput(fds[1]);
    out.write('hello\n');
    const flags = (require('node:child_process') as typeof import('node:child_process'))
      .spawnSync('sh', ['-c', `grep flags /proc/${process.pid}/fdinfo/${fds[1]}`], { encoding: 'utf8' }).stdout;
    const octal = parseInt(/flags:\s+(\d+)/.exec(flags)![1], 8);
    assert.equal(octal & 0o4000, 0, `O_NONBLOCK set on the shared description (flags ${flags.trim()})`);
    assert.equal(drain(reader), 'hello\n');
    out.reset();
  });
});

describe('hook output lines', () => {
  const collect = (chunks: string[]) => {
    const pieces: [string, boolean][] = [];
    const c = new LineCutter();
    for (const ch of chunks) c.push(ch, (l, cont) => pieces.push([l, cont]));
    c.end((l, cont) => pieces.push([l, cont]));
    return pieces;
  };

  it('any text in any chunks: pieces of at most MAX_LINE_CHARS that rebuild the lines exactly', () => {
    const text = fc.array(fc.oneof(fc.constant('\n'), fc.constant('x'.repeat(1000)), fc.string({ unit: 'grapheme', maxLength: 50 }), fc.constant('😀'.repeat(3000))), { maxLength: 20 }).map((a) => a.join(''));
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 5 }), (t, cuts) => {
        const at = [...new Set(cuts.map((c) => c % (t.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...at].map((start, i, all) => t.slice(start, all[i + 1] ?? t.length));
        const pieces = collect(chunks);
        assert.ok(pieces.every(([l]) => l.length <= MAX_LINE_CHARS));
        let rebuilt = '';
        for (const [l, cont] of pieces) rebuilt += l + (cont ? '' : '\n');
        const expected = t.endsWith('\n') || t === '' ? t : t + '\n';
        assert.equal(rebuilt, expected);
        assert.ok(!pieces.some(([l]) => /[\ud800-\udbff]$/.test(l)), 'a surrogate pair was split');
      }),
      { numRuns: 300 },
    );
  });

  it('40 MB without a newline in 64 KiB chunks: 9766 pieces, the unfinished line never over the bound', () => {
    const c = new LineCutter();
    let pieces = 0;
    const chunk = 'x'.repeat(65536);
    for (let i = 0; i < Math.floor(40_000_000 / 65536); i++) c.push(chunk, () => pieces++);
    c.push('x'.repeat(40_000_000 % 65536), () => pieces++);
    c.end(() => pieces++);
    assert.equal(pieces, Math.ceil(40_000_000 / MAX_LINE_CHARS));
  });
});
