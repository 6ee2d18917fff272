import { NativeAddon, isSingleExecutable } from '.';

const STASH = 'HAINIT_APP_NODE_ENV';
/** Variables for a Node runtime: set for the application, but the binary's own Node reads them too. */
const NODE_RUNTIME = /^(NODE_|UV_)/;

/**
 * The single binary is a Node program, and NODE_DEBUG, NODE_EXTRA_CA_CERTS, NODE_V8_COVERAGE,
 * NODE_COMPILE_CACHE, UV_THREADPOOL_SIZE… set for a Node application would change hainit itself
 * (debug lines on its stderr, files written, warnings). When any is set, hainit re-executes itself
 * once without them and puts them back into the environment the application gets. NODE_OPTIONS
 * needs none of this: the binary ignores it (execArgvExtension "none").
 */
export function keepNodeEnvironmentForTheApp(addon: NativeAddon, env: NodeJS.ProcessEnv = process.env): void {
  const stash = env[STASH];
  if (stash !== undefined) {
    delete env[STASH];
    try {
      for (const [k, v] of Object.entries(JSON.parse(stash) as Record<string, string>)) env[k] = v;
    } catch {
      /* not ours: ignored */
    }
    return;
  }
  if (!isSingleExecutable()) return;
  const saved: Record<string, string> = {};
  const rest: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (NODE_RUNTIME.test(k) && k !== 'NODE_OPTIONS') saved[k] = v;
    else rest.push(`${k}=${v}`);
  }
  if (Object.keys(saved).length === 0) return;
  rest.push(`${STASH}=${JSON.stringify(saved)}`);
  // Returns only if execve failed: hainit then goes on as it is.
  addon.exec(process.execPath, [process.argv0, ...process.argv.slice(2)], rest, addon.inheritedFds());
}
