/**
 * Node modules loaded on first use. hainit's start-up is the container's start-up: `http`,
 * `https` (and through it `tls` and `crypto`) cost ~15 ms and ~5 MB, so they load only when a
 * health listener, an HTTP check or --wait-for needs them.
 */
export function lazy<T>(load: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= load());
}

export const httpModule = lazy(() => require('node:http') as typeof import('node:http'));
export const httpsModule = lazy(() => require('node:https') as typeof import('node:https'));
export const netModule = lazy(() => require('node:net') as typeof import('node:net'));
