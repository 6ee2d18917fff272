export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'text' | 'json';
import { outputFor } from './output';

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export type Fields = Record<string, string | number | boolean | null | undefined>;

/** hainit's own logs: always stderr, never stdout (stdout belongs to the application). Written
 * without ever blocking hainit (log/output.ts): what a stalled reader cannot take waits in a
 * bounded queue, and exits flush it for a moment. */
export class Logger {
  constructor(private readonly level: LogLevel, private readonly format: LogFormat, private readonly fd = 2) {
    outputFor(fd).notice = (n) => this.line('warn', `${n} log line(s) dropped: stderr was not being read`, {});
  }

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
    outputFor(this.fd).write(this.line(level, msg, fields));
  }

  /** Writes what waits in the queue while the reader takes it, for at most `ms`, blocking: for
   * the moment before hainit stops itself (a stopped hainit writes nothing; exits use main's
   * asynchronous flush). */
  flushSync(ms: number): void {
    outputFor(this.fd).flushSync(ms);
  }

  private line(level: LogLevel, msg: string, fields: Fields): string {
    if (this.format === 'json') {
      return JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n';
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : v}`)
      .join(' ');
    return `hainit: ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ' ' + extra : ''}\n`;
  }
}

export { writeAll } from './output';
