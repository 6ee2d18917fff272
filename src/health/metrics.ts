import { logLinesDropped } from '../log/output';
import { defenceTotals, peerLimit } from './guard';
import { signalName } from '../signals/names';
import type { Phase } from '../supervisor/supervisor';
import { Check, LifecycleView } from './checks';
import { TreeUsage } from '../proc/tree';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Listed so `hainit_phase` is a complete state set: a dashboard sees every phase at 0 or 1. */
const PHASES: readonly Phase[] = ['starting', 'running', 'draining', 'stopping', 'exited', 'restarting'];

export interface MetricsSources {
  readonly lifecycle: LifecycleView;
  readonly orphansReaped: () => number;
  /** orphans reaped past the naming budget, whose names were not read */
  readonly orphansUnnamed?: () => number;
  readonly checks: readonly Check[];
  readonly startupPassed: () => boolean;
  /** the supervised process tree now; undefined when /proc cannot tell */
  readonly usage: () => TreeUsage | undefined;
}

type Sample = readonly [labels: Record<string, string> | undefined, value: number];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function family(out: string[], name: string, type: 'gauge' | 'counter', help: string, samples: readonly Sample[]): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, value] of samples) {
    const l = labels && Object.keys(labels).length
      ? `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`
      : '';
    out.push(`${name}${l} ${Number.isFinite(value) ? value : 'NaN'}`);
  }
}

function bySignal(map: ReadonlyMap<number, number>): Sample[] {
  return [...map.entries()].sort((a, b) => a[0] - b[0]).map(([sig, n]) => [{ signal: signalName(sig) }, n] as const);
}

/** Prometheus text exposition format 0.0.4. */
export function renderMetrics(s: MetricsSources): string {
  const out: string[] = [];
  const { lifecycle } = s;
  const up = lifecycle.childPid !== undefined && lifecycle.childStatus === undefined && lifecycle.phase !== 'exited';
  family(out, 'hainit_child_up', 'gauge', '1 while the supervised child process is running.', [[undefined, up ? 1 : 0]]);
  family(out, 'hainit_child_restarts_total', 'counter', 'Times the child was restarted in place.', [[undefined, lifecycle.restarts ?? 0]]);
  family(out, 'hainit_phase', 'gauge', "hainit's lifecycle phase: 1 for the current one.", PHASES.map((p) => [{ phase: p }, lifecycle.phase === p ? 1 : 0] as const));
  family(out, 'hainit_startup_passed', 'gauge', '1 once readiness has passed for the first time (the startup gate).', [[undefined, s.startupPassed() ? 1 : 0]]);
  family(out, 'hainit_signals_received_total', 'counter', 'Signals hainit received, by signal.', bySignal(lifecycle.signalsReceived));
  family(out, 'hainit_signals_forwarded_total', 'counter', 'Signals hainit sent to the child, by signal sent.', bySignal(lifecycle.signalsForwarded));
  family(out, 'hainit_orphans_reaped_total', 'counter', 'Orphaned processes hainit reaped.', [[undefined, s.orphansReaped()]]);
  family(out, 'hainit_orphans_unnamed_total', 'counter', 'Orphans of those reaped in a storm without their name read (past the 64 a second that are named).', [[undefined, s.orphansUnnamed?.() ?? 0]]);
  // Process-wide, as stderr is: read here rather than passed in, so every caller reports it.
  family(
    out,
    'hainit_health_clients_total',
    'counter',
    'What the probe endpoint did to clients other than probes: evicted (closed at the cap), parked (held aside past it), triaged (reset, no room), timed_out (idle without a request), pipelined (cut off), refused (no descriptor).',
    Object.entries(defenceTotals()).map(([action, n]) => [{ action: action === 'timedOut' ? 'timed_out' : action }, n] as const),
  );
  family(out, 'hainit_health_peers_limited', 'gauge', 'Peers (an IPv4 address, 127.0.0.0/8, an IPv6 /64) holding most of the probe endpoint past the descriptor limit, whose new connections the kernel drops while the accept queue is over half full.', [[undefined, peerLimit.peers]]);
  family(out, 'hainit_health_peer_drop_seconds_total', 'counter', 'Time those new connections were being dropped.', [[undefined, Math.round(peerLimit.dropMs()) / 1000]]);
  family(out, 'hainit_log_lines_dropped_total', 'counter', "hainit's own log lines dropped because its stderr was not being read.", [[undefined, logLinesDropped()]]);
  const states = s.checks.map((c) => [c, c.state()] as const);
  family(out, 'hainit_check_up', 'gauge', '1 while the check passes.', states.map(([c, st]) => [{ check: c.name }, st.ok ? 1 : 0] as const));
  family(
    out,
    'hainit_check_duration_seconds',
    'gauge',
    "How long the check's last run took.",
    states.filter(([, st]) => st.lastDurationMs !== undefined).map(([c, st]) => [{ check: c.name }, Math.round((st.lastDurationMs as number) * 1000) / 1e6] as const),
  );
  const memory = lifecycle.memory;
  if (memory) {
    // The figures the watchdog acts on (tree RSS, or the cgroup's working set for a percentage).
    family(out, 'hainit_memory_watchdog_usage_bytes', 'gauge', 'Memory the --max-memory watchdog measured at its last sample.', [[undefined, memory.last?.usedBytes ?? NaN]]);
    family(out, 'hainit_memory_watchdog_limit_bytes', 'gauge', '--max-memory in bytes (NaN: a percentage of a cgroup without a limit).', [[undefined, memory.last?.limitBytes ?? (memory.limit.kind === 'bytes' ? memory.limit.bytes : NaN)]]);
    family(out, 'hainit_memory_watchdog_samples_over', 'gauge', 'Samples in a row over --max-memory.', [[undefined, memory.overFor]]);
    family(out, 'hainit_memory_watchdog_actions_total', 'counter', 'Graceful shutdowns and restarts the memory watchdog started.', [
      [{ action: 'restart' }, memory.actions.restart],
      [{ action: 'shutdown' }, memory.actions.shutdown],
    ]);
  }
  const usage = s.usage();
  if (usage) {
    family(out, 'hainit_child_processes', 'gauge', 'Processes under hainit (the child, its descendants and orphans not yet reaped).', [[undefined, usage.processes]]);
    family(out, 'hainit_child_memory_rss_bytes', 'gauge', 'Resident memory of every process under hainit.', [[undefined, usage.rssBytes]]);
    family(out, 'hainit_child_cpu_seconds_total', 'counter', 'CPU time (user+system, with reaped children) of every process under hainit.', [[undefined, usage.cpuSeconds]]);
  }
  return out.join('\n') + '\n';
}
