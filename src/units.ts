/**
 * Sizes in binary units, the units hainit's size options are written in (`450Mi`):
 * - `short`, for columns (`hainit ps`): `512`, `1.5Ki`, `300Mi`; the largest unit that keeps the
 *   figure under 1024, three digits at most.
 * - `log`, for messages that set a reading beside a --max-memory limit: `512.3 MiB`, `1.25 GiB`;
 *   MiB up to a GiB, so that the figures compared in one line share a unit.
 */
export function formatBytes(bytes: number, style: 'short' | 'log'): string {
  if (style === 'log') {
    if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  }
  if (bytes < 1024) return String(bytes);
  const units = ['Ki', 'Mi', 'Gi', 'Ti'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)}${units[i]}`;
}
