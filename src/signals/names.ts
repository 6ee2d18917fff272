/** glibc's SIGRTMIN/SIGRTMAX on Linux: 32 and 33 belong to the C library (NPTL). */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/**
 * Linux's signals 1-31 by number: the generic numbering, which x86-64 and arm64 share (Alpha, MIPS,
 * PA-RISC and SPARC have others; hainit is not built for them). Not read from node:os: loading it
 * cost 0.9 M instructions (about 1% of `node -e 0` on Node 24) at the first signal a run names,
 * every `docker stop` among them. test/unit/signals.test.ts holds it against os.constants.signals.
 */
const NAMES = [
  '', 'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM',
  'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO', 'PWR', 'SYS',
];

/** `SIGTERM`, `SIGRTMIN+3`, or `SIG40` when nothing better exists. */
export function signalName(num: number): string {
  if (num >= SIGRTMIN && num <= SIGRTMAX) {
    const fromMin = num - SIGRTMIN;
    const fromMax = SIGRTMAX - num;
    if (fromMin === 0) return 'SIGRTMIN';
    if (fromMax === 0) return 'SIGRTMAX';
    return fromMin <= fromMax ? `SIGRTMIN+${fromMin}` : `SIGRTMAX-${fromMax}`;
  }
  return num >= 1 && num < NAMES.length ? `SIG${NAMES[num]}` : `SIG${num}`;
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
  // glibc's other spellings of 6 and 29
  if (name === 'IOT') return 6;
  if (name === 'POLL') return 29;
  const n = NAMES.indexOf(name);
  return n > 0 ? n : undefined;
}
