import { accessSync, constants, statSync } from 'node:fs';
import { NativeAddon } from '../native';
import { isAscii, printable, rawEntries } from '../native/app-env';
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

/** execvp's search: the first executable regular file on PATH; EACCES if only unexecutable ones exist.
 * A Buffer name is searched byte for byte (any byte string is a command name). */
export function resolveCommand<N extends string | Buffer>(name: N, searchPath: string | Buffer | undefined): { path: N } | { errno: 'ENOENT' | 'EACCES' } {
  if (name.includes('/')) return { path: name };
  let denied = false;
  const bytes = typeof name !== 'string';
  const dirs = typeof searchPath === 'string' || searchPath === undefined ? (searchPath ?? DEFAULT_PATH).split(':') : splitBytes(searchPath, 0x3a);
  for (const d of dirs) {
    const dir = d.toString();
    // No path.join and no thrown ENOENT per directory: on a long PATH both showed up in start-up.
    const candidate = (bytes
      ? Buffer.concat([typeof d === 'string' ? Buffer.from(d) : d, Buffer.from(d.length === 0 ? './' : dir.endsWith('/') ? '' : '/'), name as Buffer])
      : dir === '' ? `./${name}` : dir.endsWith('/') ? dir + name : `${dir}/${name}`) as N;
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

function splitBytes(b: Buffer, sep: number): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let i = b.indexOf(sep); i >= 0; i = b.indexOf(sep, from)) {
    out.push(b.subarray(from, i));
    from = i + 1;
  }
  out.push(b.subarray(from));
  return out;
}

/** PATH from the environment's raw entries (as bytes where they are not ASCII), else as a string. */
function searchPathOf(env: NodeJS.ProcessEnv, raw: readonly (string | Buffer)[] | undefined): string | Buffer | undefined {
  // byte by byte: a subarray and a string per variable ran Node's Buffer code often enough, at
  // every start, for V8 to compile it again with Sparkplug
  const entry = raw?.find((e) => (typeof e === 'string' ? e.startsWith('PATH=') : e.length >= 5 && e[0] === 0x50 && e[1] === 0x41 && e[2] === 0x54 && e[3] === 0x48 && e[4] === 0x3d));
  if (entry === undefined) return env.PATH;
  // an ASCII environment is kept as strings; an ASCII PATH is searched as one, not a Buffer per directory
  if (typeof entry === 'string') return entry.slice(5);
  const text = entry.toString('latin1', 5);
  return isAscii(text) ? text : entry.subarray(5);
}

/** Starts argv through the native spawn: hainit must own every child (see Reaper). Buffers in
 * argv go to the child byte for byte, and so does an environment from /proc (rawEntries). */
export function spawnProcess(addon: NativeAddon, argv: readonly (string | Buffer)[], env: NodeJS.ProcessEnv, opts: SpawnOptions = {}): SpawnResult {
  const name = argv[0];
  const raw = rawEntries(env);
  // A name given as bytes (the command hainit was given) that is ASCII is looked for as a string:
  // the same file, without Buffers made for every directory of PATH at every start.
  const text = typeof name === 'string' ? name : name.toString('latin1');
  const resolved = resolveCommand(typeof name === 'string' || isAscii(text) ? text : name, searchPathOf(env, raw));
  const shown = typeof name === 'string' ? name : printable(name);
  if ('errno' in resolved) return failure(shown, resolved.errno);
  // hainit's own environment is the C library's environ already: no copy needed
  const envp = raw ?? (env === process.env ? undefined : Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])));
  const pid = addon.spawn(resolved.path, argv, opts.stdio ?? [-1, -1, -1], opts.keepFds ?? [], opts.foreground ?? false, opts.newProcessGroup ?? true, envp);
  if (pid > 0) return { ok: true, pid };
  return failure(shown, errnoName(-pid));
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
