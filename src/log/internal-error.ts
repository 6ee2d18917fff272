import { Logger } from './logger';

/**
 * One step on hainit's way out (after the child's exit, in the shutdown sequence): a bug in it, a
 * throw or a rejection, is logged once as an internal error naming the step, and the caller goes
 * on to the next one. A step returns undefined when it failed. What follows a failed step must
 * still run: the child's stop signal, SIGKILL at the deadline, and the exit with the child's code.
 */
export function step<T>(log: Logger, name: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    internalError(log, name, e);
    return undefined;
  }
}

/** `step` for a step that waits (drain commands, the leftover cleanup). */
export async function stepAsync<T>(log: Logger, name: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    internalError(log, name, e);
    return undefined;
  }
}

/** The one line saying what failed; the stack shows where (the bundle keeps hainit's names). */
export function internalError(log: Logger, where: string, e: unknown): void {
  try {
    log.error(`internal error in ${where} (hainit carries on): ${(e as Error)?.stack ?? e}`);
  } catch {
    // the log itself failed: the caller still goes on
  }
}
