/**
 * A one-shot cancellation with the shape of CancelController/CancelSignal, as far as hainit uses
 * it. Node's own CancelController loads the whole streams stack and node:net on first use
 * (~10 ms of every container's start-up), for nothing hainit needs.
 */
export class CancelSignal {
  private listeners: (() => void)[] | undefined = [];

  get aborted(): boolean {
    return this.listeners === undefined;
  }

  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    this.listeners?.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listeners) this.listeners = this.listeners.filter((l) => l !== listener);
  }

  /** @internal */
  fire(): void {
    const listeners = this.listeners;
    if (!listeners) return;
    this.listeners = undefined;
    for (const l of listeners) l();
  }
}

export class CancelController {
  readonly signal = new CancelSignal();
  abort(): void {
    this.signal.fire();
  }
}
