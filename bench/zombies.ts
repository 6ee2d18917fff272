/**
 * Section 3's ready-zombie rounds alone, hainit beside tini and the other peers installed, for
 * work on the reap loop: `npx tsc -p . && node lib/bench/zombies.js [--base DIR]... [ROUNDS] [ORPHANS] [INIT,INIT...]`.
 * HAINIT_BENCH_NODE picks the Node that runs bin/hainit (default: this one). Each --base DIR adds
 * `hainit (DIR's name)`: another built checkout (`git worktree add DIR main && cd DIR && npm ci`),
 * measured in the same rounds, so a change is compared with what it changes under the same load
 * (an option, not a variable: hainit warns about HAINIT_* names it does not know).
 *
 * Beside the wall time (SIGCONT -> none left) it gives the CPU time the init's main thread ran
 * meanwhile: on a loaded machine the wall time mostly measures the wait for a CPU.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { reapRound, reapSubjects } from './pid1';
import { NODE, buildFixtures, inits, median, table } from './util';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const bases: string[] = [];
  for (let b = args.indexOf('--base'); b >= 0; b = args.indexOf('--base')) bases.push(args.splice(b, 2)[1]);
  const rounds = Number(args[0] ?? 7);
  const n = Number(args[1] ?? 2000);
  const only = args[2]?.split(',');
  const list = inits();
  list.splice(1, 0, ...bases.map((dir) => ({ name: `hainit (${path.basename(dir)})`, argv: (c: readonly string[]) => [NODE, path.join(dir, 'bin', 'hainit'), '--', ...c] })));
  const wanted = (name: string) => !only || only.includes(name.split(' ')[0]);
  const { dir, bin } = buildFixtures();
  const subjects = reapSubjects(list, bin('orphans'), n).filter((s) => !s.selfReap && wanted(s.name));
  const ms = subjects.map(() => [] as number[]);
  const cpu = subjects.map(() => [] as number[]);
  const load0 = os.loadavg()[0];
  for (let k = 0; k < rounds; k++) {
    for (let i = 0; i < subjects.length; i++) {
      const r = await reapRound(subjects[i], n, 'zombies', 250);
      ms[i].push(r.zombiesMs!);
      cpu[i].push(r.zombiesCpuMs!);
    }
  }
  const h = subjects.findIndex((s) => s.name === 'hainit');
  const range = (xs: number[]) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}]`;
  const versus = (xs: number[][], i: number) => (h < 0 ? '' : `${(median(xs[h]) / median(xs[i])).toFixed(2)}x`);
  console.log(`${n} ready zombies, ${rounds} rounds interleaved (medians, min-max; load ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)})`);
  console.log(table(
    ['init', 'SIGCONT -> none left, ms', 'hainit / this', "CPU of the init's main thread, ms", 'hainit / this'],
    subjects.map((s, i) => [s.name, range(ms[i]), versus(ms, i), range(cpu[i]), versus(cpu, i)]),
  ));
  fs.rmSync(dir, { recursive: true, force: true });
}

void main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
