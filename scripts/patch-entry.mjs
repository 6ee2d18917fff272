// Puts native/entry-stub.S in front of an x86-64 ELF executable's entry point (dist/hainit).
//
// The stub needs executable memory that is already mapped. It goes into the zero padding after
// an executable PT_LOAD segment: that segment's sizes grow to cover it, and nothing else moves.
// The padding must be zeros in the file, and free in both the file and the address space (no
// other segment there). The stub's last instruction is `jmp rel32`; its displacement is set to
// reach the old entry point.
//
//   node scripts/patch-entry.mjs FILE STUB.bin     (build-binary.mjs calls patchEntry)
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

const PT_LOAD = 1;
const PF_X = 1;
const EM_X86_64 = 62;

/** Patches `file` in place. Returns { entry, stub } (addresses), or throws naming what is wrong. */
export function patchEntry(file, stub) {
  const elf = readFileSync(file);
  const fail = (why) => { throw new Error(`${file}: ${why}`); };
  if (elf.readUInt32BE(0) !== 0x7f454c46) fail('not an ELF file');
  if (elf[4] !== 2 || elf[5] !== 1) fail('not a 64-bit little-endian ELF file');
  if (elf.readUInt16LE(18) !== EM_X86_64) fail(`machine ${elf.readUInt16LE(18)} is not x86-64: the entry stub is x86-64 code`);
  if (stub.length < 5 || stub[stub.length - 5] !== 0xe9) fail('the stub does not end with jmp rel32');

  const entry = elf.readBigUInt64LE(24);
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  const phdrs = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    phdrs.push({
      at,
      type: elf.readUInt32LE(at),
      flags: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 8)),
      vaddr: Number(elf.readBigUInt64LE(at + 16)),
      filesz: Number(elf.readBigUInt64LE(at + 32)),
      memsz: Number(elf.readBigUInt64LE(at + 40)),
    });
  }
  // A second patch would put a stub in front of the stub.
  for (const p of phdrs) {
    if (p.type === PT_LOAD && Number(entry) >= p.vaddr && Number(entry) < p.vaddr + p.memsz) {
      const at = p.offset + (Number(entry) - p.vaddr);
      if (elf.subarray(at, at + stub.length - 4).equals(stub.subarray(0, stub.length - 4))) fail('already patched');
    }
  }

  const overlaps = (a0, a1, b0, b1) => a0 < b1 && b0 < a1;
  for (const seg of phdrs) {
    if (seg.type !== PT_LOAD || !(seg.flags & PF_X) || seg.filesz !== seg.memsz) continue;
    const pad = (16 - (seg.filesz % 16)) % 16;
    const offset = seg.offset + seg.filesz + pad;
    const vaddr = seg.vaddr + seg.filesz + pad;
    const end = offset + stub.length;
    if (end > elf.length) continue;
    if (elf.subarray(seg.offset + seg.filesz, end).some((b) => b !== 0)) continue;
    const clash = phdrs.some((p) => p !== seg && p.filesz + p.memsz > 0 && (
      overlaps(offset, end, p.offset, p.offset + Math.max(p.filesz, 1)) ||
      (p.type === PT_LOAD && overlaps(vaddr, vaddr + stub.length, p.vaddr, p.vaddr + p.memsz))));
    // The program header table itself, wherever it lives.
    if (clash || overlaps(offset, end, phoff, phoff + phnum * phentsize)) continue;

    const code = Buffer.from(stub);
    const next = vaddr + stub.length;
    code.writeInt32LE(Number(entry) - next, stub.length - 4);
    const size = Buffer.alloc(16);
    size.writeBigUInt64LE(BigInt(seg.filesz + pad + stub.length), 0);
    size.writeBigUInt64LE(BigInt(seg.filesz + pad + stub.length), 8);
    const newEntry = Buffer.alloc(8);
    newEntry.writeBigUInt64LE(BigInt(vaddr));
    // In place, three small writes: the rest of the file is not rewritten.
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, code, 0, code.length, offset);
      writeSync(fd, size, 0, 16, seg.at + 32);
      writeSync(fd, newEntry, 0, 8, 24);
    } finally {
      closeSync(fd);
    }
    return { entry: Number(entry), stub: vaddr };
  }
  return fail(`no executable segment is followed by ${stub.length} free bytes for the entry stub`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [file, stubFile] = process.argv.slice(2);
  const r = patchEntry(file, readFileSync(stubFile));
  console.log(`${file}: entry 0x${r.stub.toString(16)} (was 0x${r.entry.toString(16)})`);
}
