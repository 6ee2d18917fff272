/**
 * The one renderer of probe answers: /livez, /readyz, /startupz, /healthz, their per-check paths,
 * ?verbose, ?exclude= and application/health+json all come out of `renderProbe`. Nothing here
 * knows a check by name: adding a check changes no line of this file.
 */

/** What the wire may know of a check: its name and whether it passes. Reasons stay in the log. */
export interface CheckView {
  readonly name: string;
  readonly ok: boolean;
  /** application checks: how long the last run took */
  readonly durationMs?: number;
  /** ISO 8601 time of the observation */
  readonly time: string;
  /** `component` for the application's checks, `system` for hainit's own */
  readonly componentType: 'component' | 'system';
}

export interface ProbeQuery {
  readonly verbose: boolean;
  readonly exclude: readonly string[];
  readonly json: boolean;
}

export interface Rendered {
  readonly status: 200 | 503;
  readonly contentType: string;
  readonly body: string;
}

export const TEXT = 'text/plain; charset=utf-8';
export const HEALTH_JSON = 'application/health+json';

/** Names echoed back are the client's own input: bounded, quoted, never markup-capable (text/plain). */
function quoted(names: readonly string[]): string {
  const shown = names.slice(0, 10).map((n) => JSON.stringify(n.length > 64 ? n.slice(0, 64) + '…' : n));
  return shown.join(', ') + (names.length > 10 ? `, and ${names.length - 10} more` : '');
}

/**
 * kube-apiserver's healthz format: `ok` alone on success; a failure is always itemised (failing
 * checks, or every check with ?verbose) and ends with `<probe> check failed`. The status is 503,
 * not the apiserver's 500: both fail the kubelet, and 503 is what load balancers understand.
 */
export function renderProbe(probe: string, checks: readonly CheckView[], q: ProbeQuery): Rendered {
  const excluded = new Set(q.exclude);
  const known = new Set(checks.map((c) => c.name));
  const unknown = [...excluded].filter((n) => !known.has(n));
  const counted = checks.filter((c) => !excluded.has(c.name));
  const ok = counted.every((c) => c.ok);
  const status = ok ? 200 : 503;
  const warning = unknown.length ? `some health checks cannot be excluded: no matches for ${quoted(unknown)}` : undefined;
  if (q.json) return { status, contentType: HEALTH_JSON, body: renderJson(probe, counted, ok, warning) };
  if (ok && !q.verbose) return { status, contentType: TEXT, body: 'ok' };
  const lines: string[] = [];
  for (const c of checks) {
    if (excluded.has(c.name)) {
      if (q.verbose) lines.push(`[+]${c.name} excluded: ok`);
    } else if (!c.ok) {
      lines.push(`[-]${c.name} failed`);
    } else if (q.verbose) {
      lines.push(`[+]${c.name} ok`);
    }
  }
  if (warning) lines.push(`warn: ${warning}`);
  lines.push(`${probe} check ${ok ? 'passed' : 'failed'}`);
  return { status, contentType: TEXT, body: lines.join('\n') + '\n' };
}

/**
 * draft-inadarei-api-health-check-06: `status` pass/fail, `checks` keyed `component:measurement`.
 * Application checks report their last run time as `responseTime`; hainit's own checks are
 * keyed by name alone. No `output` with reasons, no version, no host: the endpoint is public.
 */
function renderJson(probe: string, checks: readonly CheckView[], ok: boolean, warning: string | undefined): string {
  const out: Record<string, unknown> = { status: ok ? 'pass' : 'fail', description: `hainit ${probe}` };
  if (!ok) out.output = `${probe} check failed`;
  if (warning) out.notes = [warning];
  const entries: Record<string, unknown[]> = {};
  for (const c of checks) {
    const entry: Record<string, unknown> = { componentId: c.name, componentType: c.componentType, status: c.ok ? 'pass' : 'fail', time: c.time };
    if (c.durationMs !== undefined) {
      entry.observedValue = Math.round(c.durationMs);
      entry.observedUnit = 'ms';
    }
    entries[c.durationMs !== undefined ? `${c.name}:responseTime` : c.name] = [entry];
  }
  out.checks = entries;
  return JSON.stringify(out, null, 2) + '\n';
}

/** `Accept: application/health+json` (with or without parameters, among other types). */
export function wantsHealthJson(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    return type === HEALTH_JSON && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
}
