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
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';

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

/** The program headers of an ELF64 little-endian image: each with its table slot `at`. */
function programHeaders(elf) {
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
      align: Number(elf.readBigUInt64LE(at + 48)),
    });
  }
  return { phoff, phentsize, phnum, phdrs };
}

/**
 * What stops an ELF image from loading on a kernel with pages of `page` bytes, or [] when nothing
 * does. The kernel maps each PT_LOAD rounded out to whole pages, in table order, so a segment whose
 * offset and address disagree within a page cannot be mapped, and one that shares a page with
 * another segment of other permissions replaces that part of it.
 */
export function pageConflicts(elf, page) {
  const loads = programHeaders(elf).phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0);
  const out = [];
  const down = (a) => Math.floor(a / page) * page;
  const up = (a) => Math.ceil(a / page) * page;
  const hex = (n) => `0x${n.toString(16)}`;
  for (const p of loads) {
    if (p.vaddr % page !== p.offset % page) out.push(`segment at ${hex(p.vaddr)}: address and file offset ${hex(p.offset)} differ within a page`);
  }
  for (let i = 0; i < loads.length; i++) {
    for (let j = i + 1; j < loads.length; j++) {
      const [a, b] = [loads[i], loads[j]];
      if (a.flags === b.flags) continue;
      if (down(a.vaddr) < up(b.vaddr + b.memsz) && down(b.vaddr) < up(a.vaddr + a.memsz)) {
        out.push(`segments at ${hex(a.vaddr)} and ${hex(b.vaddr)} (other permissions) share a page`);
      }
    }
  }
  return out;
}

/** The largest page an aarch64 Linux kernel may use (4, 16 and 64 KiB are all configurations in use). */
export const AARCH64_MAX_PAGE = 0x10000;

/**
 * Makes an aarch64 executable load on 16 and 64 KiB pages (Raspberry Pi 5 and Asahi kernels use 16,
 * RHEL's kernel-64k and some servers 64). postject puts the program header table into a read-only
 * segment of its own, 4 KiB-aligned, right after Node's data: on a larger page, that segment's
 * mapping covers the end of Node's data and makes it read-only (qemu-user maps page fragments with
 * care, so emulation does not show it). This moves the table to the end of the file, in a segment
 * aligned to 64 KiB at (first segment's address - its offset) + its own offset, so that kernels that
 * compute AT_PHDR as load address + e_phoff still find it; postject's segment's slot is reused, the
 * PT_LOAD entries are put in address order, and `room` zero bytes follow the table for the entry
 * stub. Returns false when the file needs no change.
 */
export function alignForLargePages(file, room) {
  const page = AARCH64_MAX_PAGE;
  let elf = readFileSync(file);
  if (pageConflicts(elf, page).length === 0) return false;
  const { phoff, phentsize, phnum, phdrs } = programHeaders(elf);
  const size = phnum * phentsize;
  const loads = phdrs.filter((p) => p.type === PT_LOAD);
  const holder = loads.find((p) => !(p.flags & PF_W) && p.offset <= phoff && phoff + size <= p.offset + p.filesz && p.filesz <= size + 4096);
  if (!holder) throw new Error(`${file}: segments conflict on ${page}-byte pages (${pageConflicts(elf, page).join('; ')}), and no segment of postject's holds just the program header table`);
  const first = loads.reduce((a, b) => (b.vaddr < a.vaddr ? b : a));
  const offset = Math.ceil(elf.length / page) * page;
  const vaddr = first.vaddr - first.offset + offset;
  const end = Math.ceil((vaddr + size + room) / page) * page;
  for (const p of loads) {
    if (p !== holder && p.memsz > 0 && Math.floor(p.vaddr / page) * page < end && vaddr < Math.ceil((p.vaddr + p.memsz) / page) * page) {
      throw new Error(`${file}: no free address for the program header table at 0x${vaddr.toString(16)}`);
    }
  }
  const table = Buffer.from(elf.subarray(phoff, phoff + size));
  const put = (slot, p) => {
    const at = slot * phentsize;
    table.writeUInt32LE(p.type, at);
    table.writeUInt32LE(p.flags, at + 4);
    table.writeBigUInt64LE(BigInt(p.offset), at + 8);
    table.writeBigUInt64LE(BigInt(p.vaddr), at + 16);
    table.writeBigUInt64LE(BigInt(p.vaddr), at + 24); // p_paddr
    table.writeBigUInt64LE(BigInt(p.filesz), at + 32);
    table.writeBigUInt64LE(BigInt(p.memsz), at + 40);
    table.writeBigUInt64LE(BigInt(p.align), at + 48);
  };
  const moved = { type: PT_LOAD, flags: holder.flags, offset, vaddr, filesz: size, memsz: size, align: page };
  const newLoads = loads.map((p) => (p === holder ? moved : p)).sort((a, b) => a.vaddr - b.vaddr);
  const slots = loads.map((p) => (p.at - phoff) / phentsize);
  newLoads.forEach((p, i) => put(slots[i], p));
  for (const p of phdrs) {
    if (p.type === PT_PHDR) put((p.at - phoff) / phentsize, { ...p, offset, vaddr, filesz: size, memsz: size, align: 8 });
  }
  elf = Buffer.concat([elf, Buffer.alloc(offset - elf.length), table, Buffer.alloc(room)]);
  elf.writeBigUInt64LE(BigInt(offset), 32); // e_phoff
  writeFileSync(file, elf);
  return true;
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
  const { phoff, phentsize, phnum, phdrs } = programHeaders(elf);
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
