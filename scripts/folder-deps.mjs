#!/usr/bin/env node
// Which folder of src/ imports which, and the pairs that import each other (both ways): the
// import graph at the level a reader sees. `node scripts/folder-deps.mjs [--files]`; with --files
// each edge lists the imports behind it. Reads the TypeScript sources as text; runs nothing.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const src = path.join(root, 'src');
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.ts')) files.push(p);
  }
})(src);

/** src/health/proc.ts -> health; src/main.ts -> main */
const room = (file) => {
  const rel = path.relative(src, file).split(path.sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.ts$/, '');
};
const resolve = (from, spec) => {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      /* next */
    }
  }
  return undefined;
};

const edges = new Map(); // "a -> b" -> [file: import]
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  // static imports, re-exports, bare imports, require('./x') and import('./x') of relative paths
  for (const m of text.matchAll(/(?:from\s+|^import\s+|require\(\s*|import\(\s*)'(\.{1,2}\/[^']+)'/gm)) {
    const target = resolve(file, m[1]);
    if (!target || !target.startsWith(src)) continue;
    const a = room(file);
    const b = room(target);
    if (a === b) continue;
    const key = `${a} -> ${b}`;
    if (!edges.has(key)) edges.set(key, []);
    edges.get(key).push(`${path.relative(root, file)}: ${m[1]}`);
  }
}

const showFiles = process.argv.includes('--files');
for (const key of [...edges.keys()].sort()) {
  console.log(key);
  if (showFiles) for (const f of edges.get(key)) console.log(`    ${f}`);
}
// Folders that reach each other through imports (strongly connected components, Tarjan).
const next = new Map();
for (const k of edges.keys()) {
  const [a, b] = k.split(' -> ');
  if (!next.has(a)) next.set(a, []);
  next.get(a).push(b);
}
const index = new Map();
const low = new Map();
const stack = [];
const loops = [];
let counter = 0;
const visit = (v) => {
  index.set(v, counter);
  low.set(v, counter++);
  stack.push(v);
  for (const w of next.get(v) ?? []) {
    if (!index.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (stack.includes(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) === index.get(v)) {
    const scc = [];
    let w;
    do {
      w = stack.pop();
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1) loops.push(scc.sort().join(' '));
  }
};
for (const v of next.keys()) if (!index.has(v)) visit(v);
console.log(loops.length ? `folders in a loop: ${loops.join('; ')}` : 'folders in a loop: none');
process.exitCode = loops.length ? 1 : 0;
