import { CancelSignal } from '../../src/runtime/cancel';
import { Clock } from '../../src/runtime/clock';

/** Virtual time: sleeps resolve only when the test advances the clock. */
export class FakeClock implements Clock {
  private t = 0;
  private timers: { at: number; resolve: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, abort?: CancelSignal): Promise<void> {
    return new Promise((resolve) => {
      if (abort?.aborted || ms <= 0) return resolve();
      const timer = { at: this.t + ms, resolve };
      this.timers.push(timer);
      abort?.addEventListener('abort', () => {
        this.timers = this.timers.filter((x) => x !== timer);
        resolve();
      }, { once: true });
    });
  }

  /** Moves time forward to `until`, firing timers in order and letting promise chains settle. */
  async runUntil(until: number): Promise<void> {
    await settle();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.t = next.at;
      next.resolve();
      await settle();
    }
    this.t = Math.max(this.t, until);
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}
