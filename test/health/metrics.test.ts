import { strict as assert } from 'node:assert';
import { Check } from '../../src/health/checks';
import { renderMetrics } from '../../src/health/metrics';
import { FakeLifecycle } from './fakes';

describe('health: /metrics', () => {
  const check = (name: string, ok: boolean, ms?: number): Check => ({
    name, kinds: ['ready'], origin: ms === undefined ? 'hainit' : 'application',
    state: () => ({ ok, reason: ok ? undefined : 'secret reason', lastDurationMs: ms, observedAt: 0 }),
  });

  it('renders every family in Prometheus text format', () => {
    const life = new FakeLifecycle();
    life.enter('running');
    life.enter('draining');
    life.restarts = 2;
    life.signalsReceived.set(15, 1);
    life.signalsReceived.set(1, 3);
    life.signalsForwarded.set(1, 3);
    const text = renderMetrics({
      lifecycle: life,
      orphansReaped: () => 7,
      orphansUnnamed: () => 3,
      checks: [check('child', true), check('ready-http', false, 1500)],
      startupPassed: () => true,
      usage: () => ({ processes: 3, rssBytes: 1024, cpuSeconds: 1.5 }),
    });
    const lines = text.split('\n');
    for (const expected of [
      'hainit_child_up 1',
      'hainit_child_restarts_total 2',
      'hainit_phase{phase="running"} 0',
      'hainit_phase{phase="draining"} 1',
      'hainit_startup_passed 1',
      'hainit_signals_received_total{signal="SIGHUP"} 3',
      'hainit_signals_received_total{signal="SIGTERM"} 1',
      'hainit_signals_forwarded_total{signal="SIGHUP"} 3',
      'hainit_orphans_reaped_total 7',
      'hainit_orphans_unnamed_total 3',
      'hainit_check_up{check="child"} 1',
      'hainit_check_up{check="ready-http"} 0',
      'hainit_check_duration_seconds{check="ready-http"} 1.5',
      'hainit_child_processes 3',
      'hainit_child_memory_rss_bytes 1024',
      'hainit_child_cpu_seconds_total 1.5',
      '# TYPE hainit_orphans_reaped_total counter',
      '# TYPE hainit_child_up gauge',
    ]) assert.ok(lines.includes(expected), `missing ${expected}\n${text}`);
    assert.ok(!text.includes('secret reason'), 'reasons stay in the log');
    assert.ok(!lines.some((l) => l.startsWith('hainit_check_duration_seconds{check="child"}')), 'built-ins have no duration');
    // Every sample line belongs to a family declared before it.
    const declared = new Set<string>();
    for (const l of lines) {
      const m = /^# TYPE (\S+) (gauge|counter)$/.exec(l);
      if (m) declared.add(m[1]);
      else if (l && !l.startsWith('#')) assert.ok(declared.has(l.split(/[{ ]/)[0]), l);
    }
  });

  it('child down once exited; no usage families when /proc cannot tell', () => {
    const life = new FakeLifecycle();
    life.enter('running');
    life.enter('exited');
    const text = renderMetrics({ lifecycle: life, orphansReaped: () => 0, checks: [], startupPassed: () => false, usage: () => undefined });
    assert.match(text, /^hainit_child_up 0$/m);
    assert.doesNotMatch(text, /hainit_child_memory/);
  });
});
