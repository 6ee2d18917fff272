import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Config } from '../../src/config/config';
import { helpText } from '../../src/config/options';
import { parseInvocation } from '../../src/config/parse';
import { UsageError } from '../../src/config/values';
import { applicationChecks } from '../../src/health';
import { CommandDeps } from '../../src/supervisor/command';
import { quiet } from './fakes';

function config(args: string[], env: NodeJS.ProcessEnv = {}): Config {
  const inv = parseInvocation([...args, 'app'], env);
  if (inv.kind !== 'run') throw new Error('not a run');
  return inv.config;
}

function rejects(args: string[], message: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(() => config(args, env), (e: Error) => e instanceof UsageError && message.test(e.message));
}

describe('health: options', () => {
  it('defaults: no endpoint, no checks, kubelet-like timing', () => {
    const c = config([]);
    assert.equal(c.healthListen, undefined);
    assert.deepEqual([c.readinessChecks, c.livenessChecks], [[], []]);
    assert.deepEqual([c.startupTimeoutMs, c.checkIntervalMs, c.checkTimeoutMs, c.failureThreshold, c.successThreshold], [undefined, 5_000, 2_000, 3, 1]);
  });

  it('--health-listen [HOST:]PORT; flags win over HAINIT_HEALTH_LISTEN; off disables', () => {
    assert.deepEqual(config(['--health-listen', '8558']).healthListen, { host: '0.0.0.0', port: 8558 });
    assert.deepEqual(config(['--health-listen', '127.0.0.1:9']).healthListen, { host: '127.0.0.1', port: 9 });
    assert.deepEqual(config(['--health-listen', '[::]:8558']).healthListen, { host: '::', port: 8558 });
    assert.deepEqual(config([], { HAINIT_HEALTH_LISTEN: ':8558' }).healthListen, { host: '0.0.0.0', port: 8558 });
    assert.deepEqual(config(['--health-listen', '1234'], { HAINIT_HEALTH_LISTEN: ':8558' }).healthListen, { host: '0.0.0.0', port: 1234 });
    assert.equal(config([], { HAINIT_HEALTH_LISTEN: 'off' }).healthListen, undefined);
    for (const bad of ['0', '65536', 'http', '::1:80', 'host:', '80 80']) rejects(['--health-listen', bad], new RegExp(`^--health-listen: invalid address "${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
    rejects([], /^HAINIT_HEALTH_LISTEN: invalid address "99999"/, { HAINIT_HEALTH_LISTEN: '99999' });
  });

  it('repeatable checks, by flag or one per line of the environment', () => {
    const c = config(['--ready-http', 'http://localhost:8080/ready', '--ready-http', 'https://127.0.0.1/x', '--ready-tcp', '5432', '--live-exec', 'test -e /tmp/alive']);
    assert.deepEqual(c.readinessChecks.map((t) => t.type), ['http', 'http', 'tcp']);
    assert.deepEqual(c.readinessChecks[2], { type: 'tcp', text: '5432', host: '127.0.0.1', port: 5432 });
    assert.deepEqual(c.livenessChecks, [{ type: 'exec', text: 'test -e /tmp/alive', argv: ['test', '-e', '/tmp/alive'] }]);
    const e = config([], { HAINIT_LIVE_TCP: '8080\ndb:5432\n' });
    assert.deepEqual(e.livenessChecks.map((t) => t.type === 'tcp' && `${t.host}:${t.port}`), ['127.0.0.1:8080', 'db:5432']);
  });

  it('bad check values are refused, naming the value', () => {
    rejects(['--ready-http', 'localhost:8080'], /^--ready-http: invalid URL "localhost:8080"/);
    rejects(['--live-http', 'ftp://x/'], /^--live-http: invalid URL "ftp:\/\/x\/"/);
    rejects(['--ready-tcp', 'db:0'], /^--ready-tcp: invalid address "db:0"/);
    rejects(['--check-interval', '0s'], /^--check-interval: "0s" must be more than 0/);
    rejects(['--check-timeout', 'soon'], /^--check-timeout: invalid duration "soon"/);
    rejects(['--startup-timeout', '0'], /^--startup-timeout: "0" must be more than 0/);
    rejects(['--failure-threshold', '0'], /^--failure-threshold: invalid number "0"/);
    rejects([], /^HAINIT_SUCCESS_THRESHOLD: invalid number "x"/, { HAINIT_SUCCESS_THRESHOLD: 'x' });
  });

  it('timing options', () => {
    const c = config(['--startup-timeout', '2m', '--check-interval', '500ms', '--check-timeout', '1', '--failure-threshold', '5', '--success-threshold', '2']);
    assert.deepEqual([c.startupTimeoutMs, c.checkIntervalMs, c.checkTimeoutMs, c.failureThreshold, c.successThreshold], [120_000, 500, 1_000, 5, 2]);
  });

  it('--help lists the Health endpoint section', () => {
    const h = helpText('0');
    assert.match(h, /\nHealth endpoint:\n/);
    for (const o of ['health-listen', 'ready-http', 'ready-tcp', 'ready-exec', 'live-http', 'live-tcp', 'live-exec', 'startup-timeout', 'check-interval', 'check-timeout', 'failure-threshold', 'success-threshold']) {
      assert.match(h, new RegExp(`--${o} `));
    }
  });

  it('check names: by kind and type, numbered from the second, saying nothing of the target', () => {
    const c = config(['--ready-http', 'http://10.0.0.1/', '--ready-http', 'http://10.0.0.2/', '--ready-exec', 'true', '--live-tcp', '80']);
    const names = applicationChecks({ config: c, log: quiet, lifecycle: undefined as never, reaper: { orphansReaped: 0 }, commands: {} as CommandDeps }).map((a) => `${a.kind}:${a.name}`);
    assert.deepEqual(names, ['ready:ready-http', 'ready:ready-http-2', 'ready:ready-exec', 'live:live-tcp']);
  });

  it('an exec check that needs a shell, without /bin/sh, is refused at start-up', () => {
    assert.throws(
      () => parseInvocation(['--ready-exec', 'curl -f localhost | grep ok', '--', 'app'], {}, () => false),
      (e: Error) => e instanceof UsageError && /^--ready-exec "curl -f localhost \| grep ok": .*needs a shell/.test(e.message),
    );
  });
});

describe('health: examples/kubernetes/deployment.yaml', () => {
  const file = path.resolve(__dirname, '../../../examples/kubernetes/deployment.yaml');
  const text = readFileSync(file, 'utf8');
  const env: NodeJS.ProcessEnv = {};
  for (const m of text.matchAll(/^\s*- name: (HAINIT_\w+)\n\s*value: "?([^"\n]*)"?$/gm)) env[m[1]] = m[2];

  it('its HAINIT_* settings are valid hainit configuration', () => {
    const c = config([], env);
    assert.deepEqual(c.healthListen, { host: '0.0.0.0', port: 8558 });
    assert.equal(c.readinessChecks.length, 1);
    assert.ok(c.shutdownDelayMs > 0 && c.shutdownDelayMs <= 10_000, 'a short shutdown delay');
  });

  it('terminationGracePeriodSeconds matches HAINIT_GRACE_PERIOD, and the probes point at hainit', () => {
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(text)?.[1]);
    assert.equal(config([], env).gracePeriodMs, grace * 1000);
    for (const [probe, p] of [['startupProbe', '/startupz'], ['readinessProbe', '/readyz'], ['livenessProbe', '/livez']]) {
      assert.match(text, new RegExp(`${probe}:\\n\\s+httpGet:\\n\\s+path: ${p}\\n\\s+port: health`), probe);
    }
    assert.match(text, /- name: health\n\s+containerPort: 8558/);
  });
});
