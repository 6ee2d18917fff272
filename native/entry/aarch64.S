/* The trampoline of the entry stub on aarch64 (native/entry/stub.c does the work).
 * ld.so jumps here as to _start: sp at argc (16-byte aligned), x0 its fini function.
 * The last instruction is `b`, aimed at Node's _start by scripts/patch-entry.mjs. */
  .section .text.entry, "ax"
  .globl hainit_entry
hainit_entry:
  stp x0, x30, [sp, #-16]!
  add x0, sp, #16               /* the initial stack pointer: argc, argv, envp, auxv */
  bl hainit_stub_main
  ldp x0, x30, [sp], #16
  .globl hainit_jump
hainit_jump:
  .inst 0x14000000              /* b 0, filled in by the patcher */

  .section .note.GNU-stack, "", %progbits
