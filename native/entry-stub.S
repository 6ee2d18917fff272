/* The entry point of dist/hainit, put in front of Node's own _start by scripts/patch-entry.mjs.
 *
 * Node resets the dispositions of signals 1-31 and empties the signal mask in its C++ start-up,
 * before any of hainit's code runs (node.cc, PlatformInit), so by then the state hainit was
 * started with is gone. This runs first: it reads the blocked mask and the set of ignored
 * signals 1-64 and leaves them where Node does not look, in the sa_mask of the default actions
 * of signals 63 (ignored set) and 64 (blocked mask), with a marker in signal 62's. The addon
 * takes them back and restores 62-64 when it loads (native/startstate.c).
 *
 * x86-64 Linux, position independent, no libc: ld.so has jumped here with %rsp at argc and
 * %rdx holding its fini function for _start; both are given to _start unchanged. The last
 * five bytes are a jmp whose target the patcher fills in: Node's original entry point. */
#include "startstate.h"

/* rt_sigaction(SIG, %rsp, NULL, 8): SIG's default action, with the mask at 24(%rsp). */
.macro STASH sig
  mov $13, %eax
  mov $\sig, %edi
  mov %rsp, %rsi
  xor %edx, %edx
  mov $8, %r10d
  syscall
.endm

  .text
  .globl hainit_entry
hainit_entry:
  push %rdx
  push %rbx
  push %r12
  sub $32, %rsp                 /* struct { handler, flags, restorer, mask } for rt_sigaction */

  xor %ebx, %ebx                /* %rbx: the ignored set, bit N-1 for signal N */
  mov $1, %r12d
1:
  mov $13, %eax                 /* rt_sigaction(sig, NULL, %rsp, 8) */
  mov %r12d, %edi
  xor %esi, %esi
  mov %rsp, %rdx
  mov $8, %r10d
  syscall
  test %rax, %rax
  jnz 2f
  cmpq $1, (%rsp)               /* SIG_IGN */
  jne 2f
  lea -1(%r12), %ecx
  mov $1, %eax
  shl %cl, %rax
  or %rax, %rbx
2:
  inc %r12d
  cmp $64, %r12d
  jbe 1b

  movq $0, (%rsp)               /* SIG_DFL, no flags, no restorer */
  movq $0, 8(%rsp)
  movq $0, 16(%rsp)

  mov %rbx, 24(%rsp)            /* signal 63 <- the ignored set */
  STASH HAINIT_STASH_IGNORED

  mov $14, %eax                 /* rt_sigprocmask(SIG_BLOCK, NULL, &mask, 8): the blocked mask */
  xor %edi, %edi
  xor %esi, %esi
  lea 24(%rsp), %rdx
  mov $8, %r10d
  syscall
  STASH HAINIT_STASH_BLOCKED     /* signal 64 <- the blocked mask */

  movabs $HAINIT_STASH_MAGIC, %rax  /* signal 62 <- the marker, written last */
  mov %rax, 24(%rsp)
  STASH HAINIT_STASH_MARKER

  add $32, %rsp
  pop %r12
  pop %rbx
  pop %rdx
  .byte 0xe9                    /* jmp rel32 to Node's _start, filled in by the patcher */
  .long 0

