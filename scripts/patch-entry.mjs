// Puts the entry stub (native/entry/, built by scripts/entry-stub.mjs) in front of an ELF64
// executable's entry point (dist/hainit). x86-64 and aarch64.
//
// The stub needs executable memory that is already mapped. It goes into the zero padding after
// an executable PT_LOAD segment: that segment's sizes grow to cover it, and nothing else moves.
// The padding must be zeros in the file, and free in both the file and the address space (no
// other segment there). The stub starts at its entry; at offset `jump` it has a jump to fill in:
// x86-64 `jmp rel32` (e9 + 4 bytes), aarch64 `b imm26` (14000000), aimed at the old entry point.
//
//   node scripts/patch-entry.mjs FILE STUB.bin JUMP-OFFSET   (build-binary.mjs calls patchEntry)
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

const PT_LOAD = 1;
const PT_PHDR = 6;
const PF_X = 1;
const PF_W = 2;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** The jump at `at` in `code` (loaded at `from`) aimed at `to`, per machine; throws if it cannot. */
function writeJump(machine, code, at, from, to) {
  if (machine === EM_X86_64) {
    if (code[at] !== 0xe9) throw new Error('the stub has no jmp rel32 at its jump offset');
    const d = to - (from + at + 5);
    if (d < -(2 ** 31) || d >= 2 ** 31) throw new Error('the entry point is out of jmp rel32 range');
    code.writeInt32LE(d, at + 1);
  } else {
    if (code.readUInt32LE(at) !== 0x14000000) throw new Error('the stub has no `b` at its jump offset');
    const d = to - (from + at);
    if (d % 4 !== 0 || d < -(2 ** 27) || d >= 2 ** 27) throw new Error('the entry point is out of `b` range (128 MiB)');
    code.writeUInt32LE((0x14000000 | ((d / 4) & 0x3ffffff)) >>> 0, at);
  }
}

/** Patches `file` in place. Returns { entry, stub } (addresses), or throws naming what is wrong. */
export function patchEntry(file, stub, jump) {
  const elf = readFileSync(file);
  const fail = (why) => { throw new Error(`${file}: ${why}`); };
  if (elf.readUInt32BE(0) !== 0x7f454c46) fail('not an ELF file');
  if (elf[4] !== 2 || elf[5] !== 1) fail('not a 64-bit little-endian ELF file');
  const machine = elf.readUInt16LE(18);
  if (machine !== EM_X86_64 && machine !== EM_AARCH64) fail(`machine ${machine} is neither x86-64 nor aarch64`);
  if (!(jump >= 0 && jump + (machine === EM_X86_64 ? 5 : 4) <= stub.length)) fail(`jump offset ${jump} is outside the stub`);

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
      if (elf.subarray(at, at + jump).equals(stub.subarray(0, jump))) fail('already patched');
    }
  }

  const overlaps = (a0, a1, b0, b1) => a0 < b1 && b0 < a1;
  // Executable segments first (x86-64 Node: its text is followed by padding). aarch64 Node's
  // text is followed at once by its data in the file; there the stub goes after a read-only,
  // never writable segment, which becomes executable too: the one postject made for the program
  // header table, the only one within `b`'s 128 MiB of Node's entry.
  const candidates = [
    ...phdrs.filter((p) => p.type === PT_LOAD && p.flags & PF_X),
    ...phdrs.filter((p) => p.type === PT_LOAD && !(p.flags & PF_X) && !(p.flags & PF_W)),
  ];
  for (const seg of candidates) {
    if (seg.filesz !== seg.memsz) continue;
    const pad = (16 - ((seg.vaddr + seg.filesz) % 16)) % 16;
    const offset = seg.offset + seg.filesz + pad;
    const vaddr = seg.vaddr + seg.filesz + pad;
    const end = offset + stub.length;
    if (end > elf.length) continue;
    if (elf.subarray(seg.offset + seg.filesz, end).some((b) => b !== 0)) continue;
    // PT_PHDR is not checked in the file: postject's rewrite leaves it with a size larger than
    // the table, which is checked below from e_phoff and e_phnum.
    // A segment that holds the table itself (postject maps it twice) has nothing after the
    // table but padding: the zeros checked above.
    const holdsTable = (p) => p.type === PT_LOAD && !(p.flags & PF_W) && p.offset <= phoff && phoff + phnum * phentsize <= p.offset + p.filesz;
    const clash = phdrs.some((p) => p !== seg && p.type !== PT_PHDR && p.filesz + p.memsz > 0 && (
      (!holdsTable(p) && overlaps(offset, end, p.offset, p.offset + Math.max(p.filesz, 1))) ||
      (p.type === PT_LOAD && overlaps(vaddr, vaddr + stub.length, p.vaddr, p.vaddr + p.memsz))));
    // The program header table itself, wherever it lives.
    if (clash || overlaps(offset, end, phoff, phoff + phnum * phentsize)) continue;

    const code = Buffer.from(stub);
    try {
      writeJump(machine, code, jump, vaddr, Number(entry));
    } catch (e) {
      continue; // out of the jump's range from here
    }
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
      if (!(seg.flags & PF_X)) {
        const flags = Buffer.alloc(4);
        flags.writeUInt32LE(seg.flags | PF_X);
        writeSync(fd, flags, 0, 4, seg.at + 4);
      }
      writeSync(fd, newEntry, 0, 8, 24);
    } finally {
      closeSync(fd);
    }
    return { entry: Number(entry), stub: vaddr };
  }
  return fail(`no executable or read-only segment within the jump's range of the entry is followed by ${stub.length} free bytes for the entry stub`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [file, stubFile, jump] = process.argv.slice(2);
  const r = patchEntry(file, readFileSync(stubFile), Number(jump));
  console.log(`${file}: entry 0x${r.stub.toString(16)} (was 0x${r.entry.toString(16)})`);
}
