import { strict as assert } from 'node:assert';
import { soak } from '../../support/load';

describe('reliability: compressed soak', function () {
  this.timeout(90_000);

  it('~20 s of probes, reaps, exec checks and signals: no growth in RSS or open descriptors', async () => {
    // V8's heap reaches its working size after ~100-150k probes here (a step of ~14 MB), sooner or
    // later in seconds depending on the machine: the warm-up runs past that.
    const f = await soak(12, 4, 200_000);
    assert.equal(f.code, 143, `sh killed by the forwarded SIGTERM; ${f.stderr}`);
    const rssFirst = f.rss[0];
    const rssLast = f.rss[f.rss.length - 1];
    // growth: the last third of the run against the first third (a leak grows steadily; GC noise does not)
    const third = Math.max(1, Math.floor(f.rss.length / 3));
    const early = Math.max(...f.rss.slice(0, third));
    const late = Math.max(...f.rss.slice(-third));
    console.log(
      `      soak ${f.seconds} s: ${f.probes} probes (${f.probeFailures} failed), ${f.reaped} orphans reaped, ${f.signals} signals;` +
        ` RSS ${rssFirst} -> max ${Math.max(...f.rss)} -> ${rssLast} kB (early max ${early}, late max ${late});` +
        ` fds ${f.fds[0]} -> max ${Math.max(...f.fds)} -> ${f.fds[f.fds.length - 1]}; warm-up ${f.warm.length} s, RSS ${f.warm.join(' ')}`,
    );
    assert.equal(f.probeFailures, 0);
    assert.ok(f.probes >= 5000, `only ${f.probes} probes`);
    assert.ok(f.reaped >= 150, `only ${f.reaped} orphans reaped`);
    assert.ok(late - early < 6 * 1024, `RSS grew from ${early} kB (first third) to ${late} kB (last third)`);
    assert.ok(rssLast - rssFirst < 8 * 1024, `RSS ${rssFirst} -> ${rssLast} kB`);
    // descriptors: back where they were (a probe may be mid-flight when sampled: allow 2)
    assert.ok(f.fds[f.fds.length - 1] <= f.fds[0] + 2, `open descriptors ${f.fds.join(',')}`);
  });
});
