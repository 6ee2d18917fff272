import { strict as assert } from 'node:assert';
import { Config } from '../../src/config/config';
import { parseInvocation } from '../../src/config/parse';
import { UsageError, parseDuration } from '../../src/config/values';
import { splitSimple } from '../../src/config/command-line';
import { parseSignalName, signalName } from '../../src/signals/names';

function config(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const inv = parseInvocation(argv, env);
  assert.equal(inv.kind, 'run');
  return (inv as { config: Config }).config;
}
function usageError(argv: string[], env: NodeJS.ProcessEnv, mentions: string): void {
  assert.throws(() => parseInvocation(argv, env), (e: Error) => e instanceof UsageError && e.message.includes(mentions));
}

describe('command line', () => {
  it('stops at the first non-option word and leaves the rest to the child', () => {
    const c = config(['-v', 'sh', '-c', 'exit 3', '--grace-period', '5']);
    assert.deepEqual(c.command, ['sh', '-c', 'exit 3', '--grace-period', '5']);
    assert.equal(c.logLevel, 'debug');
    assert.deepEqual(config(['-r', 'TERM:QUIT', '--', '-weird']).command, ['-weird']);
  });

  it('takes every option from HAINIT_* and lets flags win', () => {
    const env = { HAINIT_GRACE_PERIOD: '20s', HAINIT_REWRITE: 'USR1:USR2\nHUP:0', HAINIT_SIGNAL_GROUP: 'true' };
    const c = config(['x'], env);
    assert.equal(c.gracePeriodMs, 20_000);
    assert.deepEqual([...c.rewrites], [[10, 12], [1, 0]]);
    assert.equal(c.signalGroup, true);
    const f = config(['--grace-period', '7', '-c', 'x'], env);
    assert.equal(f.gracePeriodMs, 7_000);
    assert.equal(f.signalGroup, false);
  });

  it('counts -vv as trace and reads --no-subreaper', () => {
    assert.equal(config(['-vv', 'x']).logLevel, 'trace');
    // a quieter level than the default holds, from the flag or the environment; -v only raises it
    assert.equal(config(['--log-level', 'error', 'x']).logLevel, 'error');
    assert.equal(config(['x'], { HAINIT_LOG_LEVEL: 'warn' }).logLevel, 'warn');
    assert.equal(config(['--log-level', 'error', '-v', 'x']).logLevel, 'debug');
    assert.equal(config(['x']).logLevel, 'info');
    assert.equal(config(['--no-subreaper', 'x']).subreaper, false);
    assert.equal(config(['x']).subreaper, undefined);
  });

  it('with no option and no HAINIT_* variable, configures what the options would (defaults(), one literal)', () => {
    const plain = config(['--', 'app']);
    assert.ok(Object.isFrozen(plain));
    // parsed option by option: a flag, or a variable, that says only what the default says
    assert.deepEqual(config(['--log-format', 'text', '--', 'app']), plain);
    assert.deepEqual(config(['--', 'app'], { HAINIT_LOG_FORMAT: 'text' }), plain);
    assert.deepEqual(config(['app', 'x']).command, ['app', 'x']);
  });

  it('maps tini-style -e CODE to CODE:0', () => {
    assert.deepEqual([...config(['-e', '143', '-e', '3:4', 'x']).remapExit], [[143, 0], [3, 4]]);
  });

  it('names the value at fault', () => {
    usageError(['--bogus', 'x'], {}, '--bogus');
    usageError(['-r', 'FOO:1', 'x'], {}, 'FOO');
    usageError(['-e', '256', 'x'], {}, '256');
    usageError(['--grace-period', '5x', 'x'], {}, '5x');
    usageError(['x'], { HAINIT_SIGNAL_GROUP: 'maybe' }, 'HAINIT_SIGNAL_GROUP');
    usageError(['x'], { HAINIT_STOP_SIGNAL: 'NOPE' }, 'HAINIT_STOP_SIGNAL');
    usageError(['-g', '-c', 'x'], {}, '--signal-group');
    usageError([], {}, 'no command');
  });
});

describe('values', () => {
  it('parses durations as Kubernetes users write them', () => {
    assert.equal(parseDuration('500ms', 'd'), 500);
    assert.equal(parseDuration('5', 'd'), 5000);
    assert.equal(parseDuration('1m30s', 'd'), 90_000);
    assert.equal(parseDuration('1h', 'd'), 3_600_000);
    assert.throws(() => parseDuration('-1s', 'd'), UsageError);
  });

  it('parses signal names, numbers and real-time offsets both ways', () => {
    assert.equal(parseSignalName('TERM'), 15);
    assert.equal(parseSignalName('sigquit'), 3);
    assert.equal(parseSignalName('15'), 15);
    assert.equal(parseSignalName('RTMIN+3'), 37);
    assert.equal(parseSignalName('SIGRTMAX-1'), 63);
    assert.equal(parseSignalName('65'), undefined);
    assert.equal(parseSignalName('32'), undefined);
    assert.equal(signalName(37), 'SIGRTMIN+3');
    assert.equal(signalName(63), 'SIGRTMAX-1');
  });

  it("names signals 1-31 as this system's C library does (the table is not read from node:os)", () => {
    const { constants } = require('node:os') as typeof import('node:os');
    const ours = new Map<number, string>();
    for (let n = 1; n <= 31; n++) ours.set(n, signalName(n));
    for (const [name, n] of Object.entries(constants.signals)) {
      // every name the system has parses to its number, aliases (SIGIOT, SIGPOLL) included
      assert.equal(parseSignalName(name), n, name);
      assert.equal(parseSignalName(name.slice(3).toLowerCase()), n, name);
    }
    // and every number is named with one of the system's names for it
    for (const [n, name] of ours) assert.equal((constants.signals as Record<string, number>)[name], n, `${n} is ${name}`);
    for (const bad of ['', 'SIG', 'constructor', '__proto__', 'toString', 'SIGRT', 'RTMIN+31']) assert.equal(parseSignalName(bad), undefined, bad);
    assert.equal(signalName(64), 'SIGRTMAX');
    assert.equal(signalName(34), 'SIGRTMIN');
    assert.equal(signalName(32), 'SIG32');
  });

  it('splits simple command lines without a shell and refuses shell syntax', () => {
    assert.deepEqual(splitSimple(`curl -X POST 'http://x/drain?a=1' "a b" c\\ d`), ['curl', '-X', 'POST', 'http://x/drain?a=1', 'a b', 'c d']);
    for (const line of ['a | b', 'a; b', 'a && b', 'echo $HOME', 'a > f', 'X=1 a', 'ls *', 'echo "$X"']) {
      assert.equal(splitSimple(line), undefined, line);
    }
  });
});

describe('environment variables', () => {
  it('every HAINIT_* variable the sources read is in the option table or ENVIRONMENT_ONLY', () => {
    const { readdirSync, readFileSync } = require('node:fs') as typeof import('node:fs');
    const path = require('node:path') as typeof import('node:path');
    const { options, envName, environmentOnly } = require('../../src/config/options') as typeof import('../../src/config/options');
    const root = path.resolve(__dirname, '../../../src');
    const known = new Set(options().map(envName));
    const unlisted = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts')) {
          // a name read from the environment: env.NAME, env['NAME'], process.env.NAME, a quoted 'HAINIT_NAME'
          for (const m of readFileSync(p, 'utf8').matchAll(/(?:env\.|['"`])(HAINIT_[A-Z0-9_]*[A-Z0-9])\b/g)) {
            if (!known.has(m[1]) && !environmentOnly(m[1])) unlisted.add(`${path.relative(root, p)}: ${m[1]}`);
          }
        }
      }
    };
    walk(root);
    assert.deepEqual([...unlisted], []);
  });
});
