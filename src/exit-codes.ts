/** Exit codes, as documented in README.md ("Exit codes"), and the error that means 125. */
export const EXIT_OK = 0;
export const EXIT_PROBE_FAILED = 1; // hainit probe: the check failed
export const EXIT_USAGE = 125; // hainit's own error: bad option or value, port busy, timeouts
export const EXIT_CANNOT_EXECUTE = 126;
export const EXIT_NOT_FOUND = 127;
/** The grace period ended with no status of the child's: 128 + SIGKILL, as if it had been killed. */
export const EXIT_GRACE_OVER = 137;

/** 128+N: how a shell reports death by signal N (and hainit a stop before the child started). */
export function exitCodeOfSignal(signal: number): number {
  return 128 + signal;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: number | null;
}

/** The child's code, or 128+N when signal N killed it (as a shell reports it). */
export function exitCodeOf(status: ExitStatus): number {
  return status.code ?? exitCodeOfSignal(status.signal ?? 0);
}

/** --remap-exit, applied last. */
export function remapExit(code: number, map: ReadonlyMap<number, number>): number {
  return map.get(code) ?? code;
}

/** A value the user gave that hainit cannot accept; main() turns it into exit 125. */
export class UsageError extends Error {
  /** Always one line, whatever the values quoted in it: control characters are escaped, so a
   * forged value cannot write a log line of its own. */
  constructor(message: string) {
    super(message.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, escapeChar));
  }
}

function escapeChar(c: string): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
