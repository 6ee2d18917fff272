import { UsageError, parseDuration, parseWaitTarget } from '../config/values';
import { probeOnce } from '../startup/wait-for';

export const PROBE_USAGE = 'usage: hainit probe URL [--timeout DUR]   (URL: http(s)://host[:port]/path or tcp://host:port)\n';

/**
 * `hainit probe URL`: one check, exit 0 (2xx/3xx, or the port accepts) or 1, so Docker's
 * HEALTHCHECK works in images without curl or a shell. 125 for bad arguments.
 */
export async function probeMain(args: readonly string[], err: (s: string) => void): Promise<number> {
  try {
    let url: string | undefined;
    let timeoutMs = 5_000;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-h' || a === '--help') {
        process.stdout.write(PROBE_USAGE);
        return 0;
      } else if (a === '--timeout' || a.startsWith('--timeout=')) {
        const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
        if (v === undefined) throw new UsageError('hainit probe: --timeout needs a duration');
        timeoutMs = parseDuration(v, 'hainit probe --timeout');
      } else if (a.startsWith('-') || url !== undefined) {
        throw new UsageError(`hainit probe: unexpected argument "${a}"`);
      } else {
        url = a;
      }
    }
    if (url === undefined) throw new UsageError('hainit probe: no URL given');
    const target = parseWaitTarget(url, 'hainit probe');
    const ok = await probeOnce(target, timeoutMs);
    if (!ok) err(`hainit probe: ${url} failed\n`);
    return ok ? 0 : 1;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`hainit: ERROR ${e.message}\n${PROBE_USAGE}`);
    return 125;
  }
}
