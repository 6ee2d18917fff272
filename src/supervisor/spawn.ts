import { accessSync, constants, statSync } from 'node:fs';
import { NativeAddon } from '../native';
import { EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND } from '../exit-codes';

export interface SpawnOptions {
  /** fds to put at 0, 1, 2 in the child; -1 keeps hainit's own */
  readonly stdio?: readonly [number, number, number];
  /** descriptors hainit inherited, passed through */
  readonly keepFds?: readonly number[];
  /** give the child the terminal's foreground when stdin is a tty */
  readonly foreground?: boolean;
  readonly newProcessGroup?: boolean;
}

export type SpawnResult =
  | { readonly ok: true; readonly pid: number }
  | { readonly ok: false; readonly exitCode: number; readonly message: string };

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function errnoName(errno: number): string {
  // node:os only on this failure path: loading it costs start-up 0.25 ms
  const { errno: names } = (require('node:os') as typeof import('node:os')).constants;
  for (const [name, value] of Object.entries(names)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** execvp's search: the first executable regular file on PATH; EACCES if only unexecutable ones exist. */
export function resolveCommand(name: string, searchPath: string | undefined): { path: string } | { errno: 'ENOENT' | 'EACCES' } {
  if (name.includes('/')) return { path: name };
  let denied = false;
  for (const dir of (searchPath ?? DEFAULT_PATH).split(':')) {
    // No path.join and no thrown ENOENT per directory: on a long PATH both showed up in start-up.
    const candidate = dir === '' ? `./${name}` : dir.endsWith('/') ? dir + name : `${dir}/${name}`;
    try {
      if (!statSync(candidate, { throwIfNoEntry: false })?.isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return { path: candidate };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  return { errno: denied ? 'EACCES' : 'ENOENT' };
}

/** Starts argv through the native spawn: hainit must own every child (see Reaper). */
export function spawnProcess(addon: NativeAddon, argv: readonly string[], env: NodeJS.ProcessEnv, opts: SpawnOptions = {}): SpawnResult {
  const name = argv[0];
  const resolved = resolveCommand(name, env.PATH);
  if ('errno' in resolved) return failure(name, resolved.errno);
  // hainit's own environment is the C library's environ already: no copy needed
  const envp = env === process.env ? undefined : Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  const pid = addon.spawn(resolved.path, argv, opts.stdio ?? [-1, -1, -1], opts.keepFds ?? [], opts.foreground ?? false, opts.newProcessGroup ?? true, envp);
  if (pid > 0) return { ok: true, pid };
  return failure(name, errnoName(-pid));
}

function failure(name: string, errno: string): SpawnResult {
  const notFound = errno === 'ENOENT' || errno === 'ENOTDIR';
  const why = notFound ? 'not found' : errno === 'EACCES' ? 'permission denied' : errno === 'ENOEXEC' ? 'not an executable format' : errno;
  return {
    ok: false,
    exitCode: notFound ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE,
    message: `cannot execute "${name}": ${why} (${errno})`,
  };
}
