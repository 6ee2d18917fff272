import { readFileSync } from 'node:fs';
import { readText } from './procfs';

/**
 * The kernel's constants for converting what /proc says: clock ticks (USER_HZ) and the page
 * size, from the auxiliary vector the kernel hands every process (getauxval(3) without libc),
 * and the seconds since boot from /proc/uptime.
 */

export interface SystemConstants {
  /** AT_CLKTCK: the unit of the times in /proc/PID/stat */
  readonly clockTicks: number;
  /** AT_PAGESZ: the unit of RSS in /proc/PID/stat and statm */
  readonly pageSize: number;
}

const AT_PAGESZ = 6;
const AT_CLKTCK = 17;

/** Linux's usual values, kept when the vector cannot be read. */
const USUAL: SystemConstants = { clockTicks: 100, pageSize: 4096 };

/** The 64-bit architectures Node runs on (process.arch); the others have 32-bit words. */
export const ARCH_64: readonly string[] = ['x64', 'arm64', 'ppc64', 'riscv64', 'loong64', 's390x', 'mips64el', 'mips64'];

export interface AuxvLayout {
  readonly wordBytes: 4 | 8;
  readonly littleEndian: boolean;
}

/** This process's: the auxiliary vector is a pair of native words per entry. */
export function nativeLayout(arch: string = process.arch): AuxvLayout {
  return { wordBytes: ARCH_64.includes(arch) ? 8 : 4, littleEndian: new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 };
}

/**
 * AT_PAGESZ and AT_CLKTCK from an auxiliary vector, so ticks and pages are converted without
 * `getconf`. Missing entries keep Linux's usual 100 Hz and 4 KiB.
 */
export function parseAuxv(buf: Buffer | undefined, layout: AuxvLayout = nativeLayout()): SystemConstants {
  let { clockTicks, pageSize } = USUAL;
  const w = layout.wordBytes;
  const word = (off: number): number => {
    if (!buf) return 0;
    if (w === 8) return Number(layout.littleEndian ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off));
    return layout.littleEndian ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
  };
  for (let off = 0; buf && off + 2 * w <= buf.length; off += 2 * w) {
    const type = word(off);
    const value = word(off + w);
    if (type === 0) break;
    if (type === AT_PAGESZ && value > 0) pageSize = value;
    if (type === AT_CLKTCK && value > 0) clockTicks = value;
  }
  return { clockTicks, pageSize };
}

let own: SystemConstants | undefined;

/** Read once: the kernel's, so they hold for every process it lists, in any PID namespace. */
export function systemConstants(): SystemConstants {
  if (!own) {
    try {
      own = parseAuxv(readFileSync('/proc/self/auxv'));
    } catch {
      own = USUAL;
    }
  }
  return own;
}

/** Seconds since boot, as `procRoot`/uptime says; NaN when it cannot be read. */
export function uptimeSeconds(procRoot = '/proc'): number {
  const text = readText(`${procRoot}/uptime`);
  const uptime = text === undefined ? NaN : Number(text.split(/\s+/)[0]);
  return Number.isFinite(uptime) ? uptime : NaN;
}
