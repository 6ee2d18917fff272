/**
 * Would a V8 start-up snapshot start hainit faster than its code cache? (README, "Choices": no.)
 * Counted with callgrind, whole process, `-- true`, on every Node the bench knows that can build
 * a snapshot (Node 20's blob is refused under valgrind, see below):
 *
 *   npm run build && node lib/bench/startup-snapshot.js [RUNS]    (default 3 runs per command)
 *
 * Rows per Node:
 * - `node -e 0`, and `node bin/hainit -- true` with its code cache (today's form);
 * - a snapshot holding hainit: the bundle's top level run at build time, `main` left for
 *   v8.startupSnapshot.setDeserializeMainFunction; the addon is loaded after deserialisation,
 *   as always (process.dlopen); run as the launcher would, `node --snapshot-blob F bin/hainit -- true`;
 * - the same blob built `withoutCodeCache` (--build-snapshot-config), and an empty snapshot
 *   (Node alone), which shows what any userland blob costs before hainit does anything.
 * A blob is built for the Node that runs it; another Node's blob is a fatal error (exit 14).
 * Node 20 also checks V8's flag and CPU-feature tag, which differs under valgrind, so its blob is
 * refused there and no count is possible (the row says so).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, ensureNode22, median, nodeFlavours, table } from './util';

function count(argv: string[]): number | string {
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`callgrind gave no count for ${argv.join(' ')}:\n${r.stderr.slice(-2000)}`);
  // the process's own failure (a refused blob: exit 14) is a result, not a count
  return r.status === 0 ? Number(m[1]) : `${r.signal ?? `exit ${r.status}`}: ${r.stderr.split('\n').find((l) => /snapshot/i.test(l) && !l.startsWith('==')) ?? ''}`.trim();
}

/** The snapshot entry: hainit's bundle with its top level run and main kept for deserialisation. */
function snapshotEntry(dir: string): string {
  const lib = path.join(ROOT, 'lib');
  const bundle = fs.readFileSync(path.join(lib, 'hainit.js'), 'latin1');
  const call = 'main(process.argv.slice(2))';
  if (bundle.split(call).length !== 2) throw new Error(`lib/hainit.js does not call ${call} exactly once: bench/startup-snapshot.ts makes its entry from that call`);
  const entry = path.join(dir, 'entry.js');
  fs.writeFileSync(entry, [
    "'use strict';",
    'globalThis.__hainitFromPackage = true;',
    `const hainit = ${bundle.replace(call, 'globalThis.__hainitMain = main')};`,
    // __dirname as src/native/index.js sees it (the addon is found from there at run time)
    `hainit({}, require, { exports: {} }, ${JSON.stringify(path.join(lib, 'hainit.js'))}, ${JSON.stringify(path.join(lib, 'src', 'native'))});`,
    'const main = globalThis.__hainitMain;',
    'delete globalThis.__hainitMain;',
    "require('node:v8').startupSnapshot.setDeserializeMainFunction(() => main(process.argv.slice(2)));",
    '',
  ].join('\n'));
  return entry;
}

function build(node: string, dir: string, name: string, builder: string, withoutCodeCache: boolean): string | undefined {
  const blob = path.join(dir, `${name}.blob`);
  const config = path.join(dir, `${name}.json`);
  fs.writeFileSync(config, JSON.stringify({ builder, withoutCodeCache }));
  const r = spawnSync(node, ['--snapshot-blob', blob, '--build-snapshot-config', config], { encoding: 'utf8' });
  return r.status === 0 && fs.existsSync(blob) ? blob : undefined;
}

function main(): void {
  const runs = Number(process.argv[2] ?? 3);
  ensureNode22();
  const hainit = path.join(ROOT, 'bin', 'hainit');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hainit-snapshot-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const entry = snapshotEntry(dir);
  const empty = path.join(dir, 'empty.js');
  fs.writeFileSync(empty, "require('node:v8').startupSnapshot.setDeserializeMainFunction(() => {});\n");
  const rows: string[][] = [];
  const cell = (xs: (number | string)[]): string => {
    const n = xs.filter((x): x is number => typeof x === 'number');
    if (n.length < xs.length) return String(xs.find((x) => typeof x === 'string'));
    return `${(median(n) / 1e6).toFixed(1)} (${(Math.min(...n) / 1e6).toFixed(1)}-${(Math.max(...n) / 1e6).toFixed(1)})`;
  };
  for (const f of nodeFlavours()) {
    // warm-up: the code cache for a Node that has none
    spawnSync(f.node, [hainit, '--', 'true'], { stdio: 'ignore' });
    const blobs: [string, string | undefined, string[]][] = [
      ['snapshot holding hainit', build(f.node, dir, `${f.label}-hainit`, entry, false), [hainit, '--', 'true']],
      ['the same, withoutCodeCache', build(f.node, dir, `${f.label}-hainit-nocc`, entry, true), [hainit, '--', 'true']],
      ['empty snapshot (Node alone)', build(f.node, dir, `${f.label}-empty`, empty, false), ['x']],
    ];
    const commands: [string, string[]][] = [['node -e 0', ['-e', '0']], ['node bin/hainit -- true (code cache)', [hainit, '--', 'true']]];
    for (const [name, blob, args] of blobs) if (blob) commands.push([name, ['--snapshot-blob', blob, ...args]]);
    const counts = commands.map(() => [] as (number | string)[]);
    for (let i = 0; i < runs; i++) commands.forEach(([, args], k) => counts[k].push(count([f.node, ...args])));
    const bare = counts[0].filter((x): x is number => typeof x === 'number');
    commands.forEach(([name], k) => {
      const n = counts[k].filter((x): x is number => typeof x === 'number');
      rows.push([f.label, name, cell(counts[k]), n.length === runs && bare.length ? `${(median(n) / median(bare)).toFixed(2)}x` : '']);
    });
    for (const [name, blob] of blobs) if (!blob) rows.push([f.label, name, 'the build failed', '']);
    process.stderr.write(`  .. ${f.label} done\n`);
  }
  process.stdout.write(`Start-up instructions (callgrind, whole process, median (min-max) of ${runs}), a userland V8 snapshot against hainit's code cache:\n\n`);
  process.stdout.write(table(['node', 'command', 'M instructions', '/ node -e 0'], rows) + '\n');
}

main();
