// Builds the entry stub of dist/hainit (native/entry/): freestanding C plus a trampoline per
// architecture, linked into one position-independent blob that scripts/patch-entry.mjs puts in
// front of Node's _start.
//
//   buildStub({ arch: 'x86_64' | 'aarch64', work }) -> { code: Buffer, jump: number }
//
// aarch64 uses the cross tools (aarch64-linux-gnu-gcc, -ld, -objcopy, -nm). The blob is linked
// twice, at address 0 and at 0x10010 (16-byte aligned like the patcher's spot, not page-aligned):
// it must come out the same, or some instruction holds an absolute or page-relative address,
// which would be wrong wherever the patcher puts the stub.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'native', 'entry');

const TOOLS = {
  x86_64: { cc: 'cc', ld: 'ld', objcopy: 'objcopy', nm: 'nm' },
  aarch64: { cc: 'aarch64-linux-gnu-gcc', ld: 'aarch64-linux-gnu-ld', objcopy: 'aarch64-linux-gnu-objcopy', nm: 'aarch64-linux-gnu-nm' },
};

const CFLAGS = [
  '-Os', '-ffreestanding', '-fno-builtin', '-nostdlib', '-fPIE', '-fvisibility=hidden',
  // no memmove/memset calls generated from loops: there is no libc to call
  '-fno-tree-loop-distribute-patterns',
  '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables',
  '-Wall', '-Wextra', '-Werror',
];

export function buildStub({ arch = 'x86_64', work }) {
  const t = TOOLS[arch];
  if (!t) throw new Error(`no entry stub for ${arch}`);
  const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const stubO = path.join(work, `entry-${arch}-stub.o`);
  const trampO = path.join(work, `entry-${arch}-trampoline.o`);
  // aarch64: the tiny code model addresses data with `adr` (exact, +-1 MiB) instead of `adrp`
  // (4 KiB pages), which would be wrong wherever the stub is not page-aligned, as it is here.
  const archFlags = arch === 'x86_64' ? ['-fcf-protection=none'] : ['-mcmodel=tiny'];
  run(t.cc, [...CFLAGS, ...archFlags, '-c', '-o', stubO, path.join(src, 'stub.c')]);
  run(t.cc, ['-c', '-o', trampO, path.join(src, `${arch}.S`)]);
  const blobs = [];
  let jump = -1;
  for (const base of ['0', '0x10010']) {
    const elf = path.join(work, `entry-${arch}-${base}.elf`);
    const bin = path.join(work, `entry-${arch}-${base}.bin`);
    run(t.ld, ['-T', path.join(src, 'stub.ld'), '--defsym', `BASE=${base}`, '-z', 'noexecstack', '--no-warn-rwx-segments', '-o', elf, trampO, stubO]);
    run(t.objcopy, ['-O', 'binary', '-j', '.stub', elf, bin]);
    blobs.push(readFileSync(bin));
    const syms = Object.fromEntries(run(t.nm, [elf]).trim().split('\n').map((l) => l.split(' ')).map(([v, , n]) => [n, parseInt(v, 16)]));
    if (syms.hainit_entry !== Number(base)) throw new Error('entry stub: hainit_entry is not at the start of the blob');
    jump = syms.hainit_jump - Number(base);
  }
  if (!blobs[0].equals(blobs[1])) throw new Error('entry stub: the blob depends on its address (an absolute reference in native/entry/)');
  return { code: blobs[0], jump };
}
