import { writeSync } from 'node:fs';
import { LogFormat, LogLevel } from '../config/config';

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export type Fields = Record<string, string | number | boolean | null | undefined>;

/** hainit's own logs: always stderr, never stdout (stdout belongs to the application), written
 * synchronously so nothing is lost when hainit exits right after. */
export class Logger {
  constructor(private readonly level: LogLevel, private readonly format: LogFormat, private readonly fd = 2) {}

  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.level];
  }
  error(msg: string, fields?: Fields): void { this.write('error', msg, fields); }
  warn(msg: string, fields?: Fields): void { this.write('warn', msg, fields); }
  info(msg: string, fields?: Fields): void { this.write('info', msg, fields); }
  debug(msg: string, fields?: Fields): void { this.write('debug', msg, fields); }
  trace(msg: string, fields?: Fields): void { this.write('trace', msg, fields); }

  write(level: LogLevel, msg: string, fields: Fields = {}): void {
    if (!this.enabled(level)) return;
    let line: string;
    if (this.format === 'json') {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n';
    } else {
      const extra = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : v}`)
        .join(' ');
      line = `hainit: ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ' ' + extra : ''}\n`;
    }
    writeAll(this.fd, line);
  }
}

/** All of text on fd, synchronously; gives up quietly when nobody reads (EPIPE, EBADF). */
export function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  for (let tries = 0; off < buf.length && tries < 1000; tries++) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      // EAGAIN: someone made our stderr non-blocking; retry. EPIPE/EBADF: nobody is reading.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}
