import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { OptionSpec, envName, options } from '../../src/config/options';
import { parseInvocation } from '../../src/config/parse';
import { UsageError } from '../../src/config/values';
import { HAINIT, cleanEnv } from '../../support/pid1';

/** Per option: values that must parse and values that must be refused (by parseInvocation). */
// 600h is past a libuv timer's 2^31-1 ms and is honoured (chunked timers); past 2^53 ms is refused
const DUR = { good: ['250ms', '5s', '1m30s', '2', '1.5s', '600h'], bad: ['soon', '5x', '-1s', '', '1 h', '9999999999999h'] };
const POSITIVE_DUR = { good: ['250ms', '5s', '2'], bad: ['0s', '0', 'soon', ''] };
const SIG = { good: ['TERM', 'SIGQUIT', '9', 'RTMIN+3', 'SIGRTMAX-1'], bad: ['SIGFOO', '99', 'RTMIN+99', ''] };
const ADDR = { good: ['8558', '127.0.0.1:9', '[::1]:80'], bad: ['0', 'host:', '99999', '::1:80', ''] };
const URL_ = { good: ['http://127.0.0.1:8080/ready', 'https://example.com/x'], bad: ['localhost:8080', 'ftp://x/', 'http://'] };
// a hook line no shell can parse is found at start-up, not when the drain command is due
const CMD = { good: ['true', 'sh -c "exit 0"', 'echo a b', "echo a # it's a comment"], bad: ['"x', "sh -c 'exit 0", 'echo `date', 'echo $(date'] };
const COUNT = (min: number, max: number) => ({ good: [String(min), String(Math.min(max, min + 4))], bad: ['x', '-1', '1.5', String(max + 1)] });
const FLAG = { good: [], bad: [] as string[] };

export const SAMPLES: Record<string, { good: string[]; bad: string[] }> = {
  'signal-group': FLAG,
  'single-child': FLAG,
  // KILL/STOP cannot be caught; TERM/INT become the stop signal, which STOP and CHLD cannot be
  rewrite: { good: ['TERM:QUIT', '15:0', 'USR1:USR2', 'TSTP:STOP', 'TERM:KILL'], bad: ['TERM', 'CHLD:TERM', 'TERM:FOO', ':3', 'KILL:TERM', 'STOP:CONT', 'TERM:STOP', 'INT:CHLD'] },
  'stop-signal': { good: SIG.good, bad: [...SIG.bad, 'STOP', 'SIGCHLD', '19'] },
  'remap-exit': { good: ['143', '143:0', '0:1'], bad: ['256', '1:2:3', 'x', ''] },
  subreaper: FLAG,
  'pdeath-signal': { good: SIG.good, bad: [...SIG.bad, 'STOP', 'CHLD'] },
  verbose: FLAG,
  'warn-on-reap': FLAG,
  'log-level': { good: ['error', 'DEBUG', 'trace'], bad: ['loud', ''] },
  'log-format': { good: ['text', 'json'], bad: ['xml', ''] },
  'grace-period': DUR,
  'shutdown-delay': DUR,
  'pre-stop': CMD,
  'pre-stop-timeout': DUR,
  'orphan-grace': DUR,
  'wait-for': { good: ['tcp://db:5432', 'http://127.0.0.1:8080/'], bad: [] },
  'wait-timeout': DUR,
  'post-start': CMD,
  'post-start-timeout': DUR,
  'health-listen': { good: [...ADDR.good, 'off', ''], bad: ADDR.bad.filter((b) => b !== '') }, // '' and off: no endpoint
  'health-max-connections': COUNT(16, 1_000_000),
  'ready-http': URL_,
  'ready-tcp': ADDR,
  'ready-exec': { good: CMD.good, bad: ['', ...CMD.bad] },
  'live-http': URL_,
  'live-tcp': ADDR,
  'live-exec': { good: CMD.good, bad: ['', ...CMD.bad] },
  'startup-timeout': POSITIVE_DUR,
  'check-interval': POSITIVE_DUR,
  'check-timeout': POSITIVE_DUR,
  'failure-threshold': COUNT(1, 1000),
  'success-threshold': COUNT(1, 1000),
  'max-memory': { good: ['450Mi', '1Gi', '512M', '1048576', '90%', 'off'], bad: ['lots', '0', '150%', '-1Mi', '1Xi'] },
  'memory-interval': POSITIVE_DUR,
  restart: { good: ['never', 'on-failure', 'always'], bad: ['no', 'unless-stopped', 'sometimes', ''] },
  'max-restarts': COUNT(0, 1_000_000),
  'restart-delay': DUR,
  'restart-window': POSITIVE_DUR,
  help: FLAG,
  version: FLAG,
};

const BOOL = { good: ['1', 'true', 'yes', 'on', '0', 'off', ''], bad: ['maybe', '2', 'y'] };
/** -v's environment form also takes a level: HAINIT_VERBOSE=2 is -vv */
const LEVEL = { good: ['1', 'true', '0', 'off', '2', '9'], bad: ['maybe', 'y', '10'] };

function samples(o: OptionSpec): { good: string[]; bad: string[] } {
  const s = SAMPLES[o.name];
  assert.ok(s, `option --${o.name} has no samples in test/reliability/bad-input.test.ts: add some`);
  return o.kind === 'count' ? LEVEL : o.kind === 'flag' ? BOOL : s;
}

/** What parseInvocation did: 'ok', or the UsageError's message; anything else is thrown on. */
function outcome(argv: string[], env: NodeJS.ProcessEnv): { ok: true } | { ok: false; message: string } {
  try {
    parseInvocation(argv, env);
    return { ok: true };
  } catch (e) {
    if (e instanceof UsageError) return { ok: false, message: e.message };
    throw new Error(`not a UsageError for argv=${JSON.stringify(argv)} env=${JSON.stringify(env)}: ${(e as Error)?.stack ?? e}`);
  }
}

// ---- generators -----------------------------------------------------------------------------------

/** A value for `o`: one of its good or bad samples, or any string at all. */
const valueFor = (o: OptionSpec, anyString: fc.Arbitrary<string>): fc.Arbitrary<string> => {
  const s = SAMPLES[o.name] ?? { good: [], bad: [] };
  const known = [...s.good, ...s.bad];
  return known.length ? fc.oneof(fc.constantFrom(...known), anyString) : anyString;
};

/** The words one option takes on the command line, in one of the spellings parseArgs accepts. */
const optionWords = (anyString: fc.Arbitrary<string>): fc.Arbitrary<string[]> =>
  fc.constantFrom(...options().filter((o) => o.name !== 'help' && o.name !== 'version')).chain((o): fc.Arbitrary<string[]> => {
    if (o.kind === 'flag' || o.kind === 'count') {
      const spellings = [[`--${o.name}`], [`--no-${o.name}`]];
      if (o.short) spellings.push([`-${o.short}`], [`-${o.short}${o.short}`]);
      return fc.constantFrom(...spellings);
    }
    return fc.tuple(valueFor(o, anyString), fc.nat(2)).map(([v, form]) => {
      if (form === 0 || !o.short) return form === 2 ? [`--${o.name}=${v}`] : [`--${o.name}`, v];
      return form === 1 ? [`-${o.short}`, v] : [`-${o.short}${v}`];
    });
  });

const junkWords = fc.constantFrom(['--bogus'], ['-Z'], ['--grace-period'], ['--'], ['-'], ['--=x'], ['---x']);

const argvArb = (anyString: fc.Arbitrary<string>) =>
  fc
    .tuple(
      fc.array(fc.oneof({ weight: 8, arbitrary: optionWords(anyString) }, { weight: 1, arbitrary: junkWords }), { maxLength: 6 }),
      fc.oneof(fc.constant([] as string[]), fc.constant(['--', 'app']), fc.constant(['app', '--grace-period', 'x']), fc.constant(['--', '-v'])),
    )
    .map(([words, command]) => [...words.flat(), ...command]);

const envArb = (anyString: fc.Arbitrary<string>) =>
  fc
    .array(
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...options()).chain((o) => fc.tuple(fc.constant(envName(o)), o.kind === 'flag' || o.kind === 'count' ? fc.oneof(fc.constantFrom(...BOOL.good, ...BOOL.bad), anyString) : valueFor(o, anyString))) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom('HAINIT_BOGUS', 'HAINIT_', 'HAINIT_TMPDIR', 'PATH'), anyString) },
      ),
      { maxLength: 5 },
    )
    .map((pairs) => Object.fromEntries(pairs) as NodeJS.ProcessEnv);

const anyText = fc.string({ unit: 'binary', maxLength: 24 });
const noLineBreaks = anyText.map((s) => s.replace(/[\r\n\u2028\u2029\u0085]/g, ''));

/** The strings a message could name the offending input by. */
function namesOf(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const out = ['no command given'];
  for (const o of options()) out.push(`--${o.name}`, envName(o), ...(o.short ? [`-${o.short}`] : []));
  for (const a of argv) if (a.length > 0) out.push(a, a.replace(/^-+/, ''));
  for (const v of Object.values(env)) if (v) out.push(v, v.trim());
  return out.filter((s) => s.length > 0);
}

describe('reliability: bad input (property-based, fast-check)', function () {
  this.timeout(60_000);

  it('every option of the table has samples here', () => {
    for (const o of options()) samples(o);
  });

  it('any command line and HAINIT_* environment yields a Config or a UsageError, never another exception', () => {
    fc.assert(
      fc.property(argvArb(anyText), envArb(anyText), (argv, env) => {
        outcome(argv, env);
      }),
      { numRuns: 3000 },
    );
  });

  // one line: asserted by the property below (which fails, see there)
  it('a refusal names the option or the value at fault and shows nothing internal', () => {
    fc.assert(
      fc.property(argvArb(noLineBreaks), envArb(noLineBreaks), (argv, env) => {
        const r = outcome(argv, env);
        if (r.ok) return;
        assert.ok(r.message.length > 0 && r.message.length < 400, `message length ${r.message.length}: ${r.message}`);
        assert.doesNotMatch(r.message, /\n\s+at |TypeError|undefined/, `internal details: ${r.message}`);
        const names = namesOf(argv, env);
        assert.ok(names.some((n) => r.message.includes(n)), `names nothing of the input: ${JSON.stringify(r.message)} for argv=${JSON.stringify(argv)} env=${JSON.stringify(env)}`);
      }),
      { numRuns: 3000 },
    );
  });

  // Found with this test (issue 7): a value that starts with a dash (`--failure-threshold -1`,
  // `--grace-period --`) gets node:util parseArgs' own three-line "argument is ambiguous"
  // message (parse.ts only trims the "To specify a positional" tail of another message), so hainit
  // prints three lines and names no fix in hainit's terms. Fixed: parseFlags says it in one line.
  it('the real CLI: a value starting with a dash is refused in one line', () => {
    for (const argv of [['--failure-threshold', '-1', 'true'], ['--grace-period', '--', 'true']]) {
      const r = spawnSync(process.execPath, [HAINIT, ...argv], { env: cleanEnv(), encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 125, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `hainit ${argv.join(' ')}: ${r.stderr}`);
    }
  });

  // Found with this test (issue 7): a value with a line break is quoted raw, so the message (and
  // hainit's one ERROR line on stderr) spans two lines, e.g.
  //   hainit --grace-period $'5s\nx' true  ->  hainit: ERROR --grace-period: invalid duration "5s
  //                                            x" (use e.g. ...)
  // A forged value could so write a line of its own into hainit's log. Fixed: UsageError escapes
  // control characters, and the dash case above is one line too (fast-check finds either).
  it('a refusal is one line, whatever the values (line breaks, leading dashes)', () => {
    fc.assert(
      fc.property(argvArb(anyText), envArb(anyText), (argv, env) => {
        const r = outcome(argv, env);
        if (!r.ok) assert.doesNotMatch(r.message, /[\r\n\u2028\u2029]/, `more than one line: ${JSON.stringify(r.message)}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('each option, by flag and by environment: its good values parse, its bad ones are refused naming the option and the value', () => {
    for (const o of options()) {
      const s = samples(o);
      const isFlag = o.kind === 'flag' || o.kind === 'count';
      if (isFlag) {
        const r = outcome([`--${o.name}`, 'app'], {});
        assert.ok(r.ok, `--${o.name}: ${JSON.stringify(r)}`);
        if (o.short) assert.ok(outcome([`-${o.short}`, 'app'], {}).ok, `-${o.short}`);
      } else {
        for (const v of s.good) {
          const r = outcome([`--${o.name}`, v, 'app'], {});
          assert.ok(r.ok, `--${o.name} ${JSON.stringify(v)} was refused: ${JSON.stringify(r)}`);
        }
        for (const v of s.bad) {
          // `--opt=-1s`: a separate `-1s` is the dash case, tested above
          const r = outcome(v.startsWith('-') ? [`--${o.name}=${v}`, 'app'] : [`--${o.name}`, v, 'app'], {});
          assert.ok(!r.ok, `--${o.name} ${JSON.stringify(v)} was accepted`);
          assert.ok(r.message.startsWith(`--${o.name}`), `--${o.name} ${JSON.stringify(v)}: ${r.message}`);
          // the value, or the part of it at fault (FOO in TERM:FOO)
          const parts = [v, ...v.split(':')].filter((p) => p.trim() !== '');
          if (v.trim()) assert.ok(parts.some((p) => r.message.includes(`"${p}"`)), `--${o.name} ${JSON.stringify(v)}: the message does not quote the value: ${r.message}`);
        }
      }
      if (o.name === 'help' || o.name === 'version') continue;
      for (const v of s.good) {
        const r = outcome(['app'], { [envName(o)]: v });
        assert.ok(r.ok, `${envName(o)}=${JSON.stringify(v)} was refused: ${JSON.stringify(r)}`);
      }
      for (const v of s.bad) {
        const r = outcome(['app'], { [envName(o)]: v });
        // a repeatable option in the environment skips empty lines: '' means none
        if (o.kind === 'list' && v.trim() === '') continue;
        assert.ok(!r.ok, `${envName(o)}=${JSON.stringify(v)} was accepted`);
        assert.ok(r.message.startsWith(envName(o)), `${envName(o)}=${JSON.stringify(v)}: ${r.message}`);
      }
    }
  });

  it('the real CLI: bad values exit 125 with one line on stderr, no stack trace, nothing on stdout', () => {
    const cases: Array<{ argv: string[]; env: NodeJS.ProcessEnv }> = [];
    // from the generator: refused command lines, values that can be passed through exec (no NUL)
    const clean = fc.string({ unit: 'grapheme-ascii', maxLength: 16 });
    const gen = fc.sample(fc.tuple(argvArb(clean), envArb(clean)), { numRuns: 400, seed: 7 });
    for (const [argv, env] of gen) {
      if (cases.length >= 14) break;
      const r = outcome([...argv, '--', 'true'], env);
      if (!r.ok && argv.every((a) => !a.includes('\0'))) cases.push({ argv: [...argv, '--', 'true'], env });
    }
    cases.push({ argv: ['--grace-period', 'soon', 'true'], env: {} }, { argv: ['true'], env: { HAINIT_RESTART: 'sometimes' } }, { argv: ['--wait-for', 'garbage', 'true'], env: {} }, { argv: [], env: {} });
    for (const c of cases) {
      const r = spawnSync(process.execPath, [HAINIT, ...c.argv], { env: cleanEnv(c.env), encoding: 'utf8', timeout: 10_000 });
      const what = `hainit ${JSON.stringify(c.argv)} env ${JSON.stringify(c.env)}: ${r.stderr}`;
      assert.equal(r.status, 125, what);
      assert.equal(r.stdout, '', what);
      const lines = r.stderr.split('\n').filter((l) => l !== '' && !/ WARN /.test(l));
      assert.equal(lines.length, 1, what);
      assert.match(lines[0], /^hainit: ERROR /, what);
      assert.doesNotMatch(r.stderr, /\n\s+at |node:internal|\.js:\d+/, what);
    }
  });
});
