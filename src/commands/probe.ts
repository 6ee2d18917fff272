import { PROBE_OPTIONS } from '../config/options';
import { parseSubcommand } from '../config/parse';
import { UsageError, parseDuration, parseWaitTarget } from '../config/values';
import { EXIT_OK, EXIT_PROBE_FAILED, EXIT_USAGE } from '../exit-codes';
import { probeOnce } from '../startup/wait-for';

const PROBE_SYNOPSIS = 'usage: hainit probe URL [--timeout DUR]';
export const PROBE_USAGE = `${PROBE_SYNOPSIS}   (URL: http(s)://host[:port]/path or tcp://host:port)\n`;

/**
 * `hainit probe URL`: one check, exit 0 (2xx/3xx, or the port accepts) or 1, so Docker's
 * HEALTHCHECK works in images without curl or a shell. `out` receives stdout text (--help), `err`
 * one line for stderr: the failure, or the bad argument named (125). Returns the exit code; main
 * exits with it.
 */
export async function probeMain(args: readonly string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  try {
    const { values, positionals } = parseSubcommand(args, PROBE_OPTIONS);
    if (values.help) {
      out(PROBE_USAGE);
      return EXIT_OK;
    }
    const timeoutMs = typeof values.timeout === 'string' ? parseDuration(values.timeout, '--timeout') : 5_000;
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    const url = positionals[0];
    if (url === undefined) throw new UsageError('no URL given');
    const target = parseWaitTarget(url, 'the URL');
    const ok = await probeOnce(target, timeoutMs);
    if (!ok) err(`hainit probe: ${url} failed\n`);
    return ok ? EXIT_OK : EXIT_PROBE_FAILED;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`hainit probe: ${e.message} (${PROBE_SYNOPSIS})\n`);
    return EXIT_USAGE;
  }
}
