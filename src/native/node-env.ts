import { NativeAddon, isSingleExecutable } from '.';

const STASH = 'HAINIT_APP_NODE_ENV';

/**
 * Read by Node as it starts, and visible if the binary's own Node sees them: debug lines on
 * hainit's stderr (NODE_DEBUG, NODE_DEBUG_NATIVE), hainit's coverage files in the application's
 * coverage directory (NODE_V8_COVERAGE). Only these are worth a re-exec of the binary (~20 ms).
 */
const READ_AT_START = new Set(['NODE_DEBUG', 'NODE_DEBUG_NATIVE', 'NODE_V8_COVERAGE']);
/** Read by libuv on first use, so unsetting them keeps hainit out of their reach: no re-exec. */
const READ_ON_FIRST_USE = new Set(['UV_THREADPOOL_SIZE']);
/*
 * Every other NODE_* variable reaches the application untouched and leaves hainit as it is:
 * NODE_OPTIONS is ignored by the binary (execArgvExtension "none"); NODE_EXTRA_CA_CERTS and
 * NODE_TLS_REJECT_UNAUTHORIZED matter only to TLS, and hainit's https checks verify no
 * certificate (as the kubelet's); NODE_PATH, NODE_COMPILE_CACHE, NODE_NO_WARNINGS, NODE_ICU_DATA…
 * change nothing hainit does or prints. A CA file that does not load is the one trace: Node
 * warns once on hainit's stderr when an https check first connects.
 */

/**
 * Makes hainit's own Node blind to the Node variables meant for the application and returns the
 * environment the application (and every command hainit runs) gets: the one hainit was given.
 * In the single binary, NODE_DEBUG & co. need a re-exec without them; it happens at most once,
 * with the originals carried in HAINIT_APP_NODE_ENV.
 */
export function keepNodeEnvironmentForTheApp(addon: NativeAddon, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const stash = env[STASH];
  const carried: Record<string, string> = {};
  if (stash !== undefined) {
    delete env[STASH];
    try {
      Object.assign(carried, JSON.parse(stash) as Record<string, string>);
    } catch {
      /* not ours: ignored */
    }
  } else if (isSingleExecutable() && [...READ_AT_START].some((k) => env[k] !== undefined)) {
    const rest: string[] = [];
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) continue;
      if (READ_AT_START.has(k)) carried[k] = v;
      else rest.push(`${k}=${v}`);
    }
    rest.push(`${STASH}=${JSON.stringify(carried)}`);
    // Returns only if execve failed: hainit then goes on as it is.
    addon.exec(process.execPath, [process.argv0, ...process.argv.slice(2)], rest, addon.inheritedFds());
  }
  const hidden = [...READ_ON_FIRST_USE].filter((k) => env[k] !== undefined);
  // Usually nothing to hide or put back: the application gets hainit's own environment.
  if (hidden.length === 0 && Object.keys(carried).length === 0) return env;
  const appEnv: NodeJS.ProcessEnv = { ...env, ...carried };
  // `delete process.env.X` is unsetenv(3): libuv's getenv no longer finds it.
  for (const k of hidden) delete env[k];
  return appEnv;
}
