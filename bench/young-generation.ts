/**
 * What the launcher's `--max-semi-space-size=4` buys and costs on each Node (README, "Choices", the
 * launcher): V8's young generation (`new_space`) and the RSS after a loop that makes short-lived
 * objects with a window of live ones (as many connections' buffers do), with the flag, without it,
 * and with it set at run time (`v8.setFlagsFromString`, after the heap is made); and whether V8
 * counts the flag in the hash it checks code caches against (`v8.cachedDataVersionTag()` moves),
 * which makes Node reject the code cache of its own modules too.
 *
 *   npm run build && node lib/bench/young-generation.js
 */
import { spawnSync } from 'node:child_process';
import { ensureNode22, nodeFlavours, table } from './util';

const FLAG = '--max-semi-space-size=4';

const LOOP = `
const v8 = require('v8');
if (process.env.AT_RUN_TIME) v8.setFlagsFromString(${JSON.stringify(FLAG)});
let keep = [];
for (let r = 0; r < 200; r++) {
  for (let i = 0; i < 20000; i++) keep.push({ a: i, b: 'x' + i, c: [i, i + 1] });
  if (keep.length > 60000) keep = keep.slice(-20000);
}
const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
console.log(JSON.stringify({ newSpace: ns.space_size, rss: process.memoryUsage().rss }));
`;

function run(node: string, flags: string[], env: NodeJS.ProcessEnv = {}): { newSpace: number; rss: number } {
  const r = spawnSync(node, [...flags, '-e', LOOP], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${node} ${flags.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function tag(node: string, flags: string[]): string {
  return spawnSync(node, [...flags, '-p', 'require("v8").cachedDataVersionTag()'], { encoding: 'utf8' }).stdout.trim();
}

function main(): void {
  ensureNode22();
  const mb = (n: number) => (n / 1048576).toFixed(0);
  const rows: string[][] = [];
  for (const f of nodeFlavours()) {
    const none = run(f.node, []);
    const flag = run(f.node, [FLAG]);
    const late = run(f.node, [], { AT_RUN_TIME: '1' });
    const hashed = tag(f.node, []) !== tag(f.node, [FLAG]);
    rows.push([f.label, f.version, `${mb(none.newSpace)} / ${mb(none.rss)}`, `${mb(flag.newSpace)} / ${mb(flag.rss)}`, `${mb(late.newSpace)} / ${mb(late.rss)}`, hashed ? 'yes: Node rejects its own modules\' cache' : 'no']);
  }
  process.stdout.write(`new_space / RSS in MB after the loop (one run each; RSS moves by about 20 MB from run to run):\n\n`);
  process.stdout.write(table(['node', 'version', 'no flag', FLAG, 'set at run time', 'in V8\'s cache hash'], rows) + '\n');
}

main();
