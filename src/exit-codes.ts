/** Exit codes, as documented in README.md ("Exit codes"). */
export const EXIT_USAGE = 125; // hainit's own error: bad option or value, port busy, timeouts
export const EXIT_CANNOT_EXECUTE = 126;
export const EXIT_NOT_FOUND = 127;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: number | null;
}

/** The child's code, or 128+N when signal N killed it (as a shell reports it). */
export function exitCodeOf(status: ExitStatus): number {
  return status.code ?? 128 + (status.signal ?? 0);
}

/** --remap-exit, applied last. */
export function remapExit(code: number, map: ReadonlyMap<number, number>): number {
  return map.get(code) ?? code;
}
