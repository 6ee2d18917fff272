import { PROBE_OPTIONS } from '../config/options';
import { parseSubcommand } from '../config/parse';
import { UsageError, parseDuration, parseWaitTarget } from '../config/values';
import { probeOnce } from '../startup/wait-for';

export const PROBE_USAGE = 'usage: hainit probe URL [--timeout DUR]   (URL: http(s)://host[:port]/path or tcp://host:port)\n';

/**
 * `hainit probe URL`: one check, exit 0 (2xx/3xx, or the port accepts) or 1, so Docker's
 * HEALTHCHECK works in images without curl or a shell. 125 for bad arguments.
 */
export async function probeMain(args: readonly string[], err: (s: string) => void): Promise<number> {
  try {
    let parsed: ReturnType<typeof parseSubcommand>;
    try {
      parsed = parseSubcommand(args, PROBE_OPTIONS);
    } catch (e) {
      throw e instanceof UsageError ? new UsageError(`hainit probe: ${e.message}`) : e;
    }
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(PROBE_USAGE);
      return 0;
    }
    const timeoutMs = typeof values.timeout === 'string' ? parseDuration(values.timeout, 'hainit probe --timeout') : 5_000;
    if (positionals.length > 1) throw new UsageError(`hainit probe: unexpected argument "${positionals[1]}"`);
    const url = positionals[0];
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
