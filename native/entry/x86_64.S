/* The trampoline of the entry stub on x86-64 (native/entry/stub.c does the work).
 * ld.so jumps here as to _start: %rsp at argc (16-byte aligned), %rdx its fini function.
 * The last five bytes are `jmp rel32`, aimed at Node's _start by scripts/patch-entry.mjs. */
  .section .text.entry, "ax"
  .globl hainit_entry
hainit_entry:
  push %rdx
  lea 8(%rsp), %rdi             /* the initial stack pointer: argc, argv, envp, auxv */
  sub $8, %rsp                  /* 16-byte aligned at the call */
  call hainit_stub_main
  add $8, %rsp
  pop %rdx
  .globl hainit_jump
hainit_jump:
  .byte 0xe9
  .long 0

  .section .note.GNU-stack, "", @progbits
