/** glibc's SIGRTMIN/SIGRTMAX on Linux: 32 and 33 belong to the C library (NPTL). */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

let tables: { byNumber: Map<number, string>; byName: Map<string, number> } | undefined;
/** Built on first use: node:os costs start-up 0.25 ms, and `hainit -- app` may never name a signal. */
function signalTables(): { byNumber: Map<number, string>; byName: Map<string, number> } {
  if (tables) return tables;
  const { constants } = require('node:os') as typeof import('node:os');
  const byNumber = new Map<number, string>();
  const byName = new Map<string, number>();
  for (const [name, num] of Object.entries(constants.signals)) {
    byName.set(name.slice(3), num);
    if (!byNumber.has(num)) byNumber.set(num, name);
  }
  // Prefer the conventional spellings where Linux has aliases.
  byNumber.set(6, 'SIGABRT');
  byNumber.set(29, 'SIGIO');
  return (tables = { byNumber, byName });
}

/** `SIGTERM`, `SIGRTMIN+3`, or `SIG40` when nothing better exists. */
export function signalName(num: number): string {
  const known = signalTables().byNumber.get(num);
  if (known) return known;
  if (num >= SIGRTMIN && num <= SIGRTMAX) {
    const fromMin = num - SIGRTMIN;
    const fromMax = SIGRTMAX - num;
    if (fromMin === 0) return 'SIGRTMIN';
    if (fromMax === 0) return 'SIGRTMAX';
    return fromMin <= fromMax ? `SIGRTMIN+${fromMin}` : `SIGRTMAX-${fromMax}`;
  }
  return `SIG${num}`;
}

/** Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3`, `SIGRTMAX-1`; undefined when invalid. */
export function parseSignalName(text: string): number | undefined {
  const t = text.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n >= 1 && n <= SIGRTMAX && n !== 32 && n !== 33 ? n : undefined;
  }
  const name = t.startsWith('SIG') ? t.slice(3) : t;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '-' ? -1 : 1);
    const n = base + off;
    return n >= SIGRTMIN && n <= SIGRTMAX ? n : undefined;
  }
  return signalTables().byName.get(name);
}
