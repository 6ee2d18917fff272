/* Where native/entry-stub.S leaves the signal state dist/hainit was started with, shared with
 * the addon (native/startstate.c). Signal N is bit N-1 of a mask. */
#ifndef HAINIT_STARTSTATE_H
#define HAINIT_STARTSTATE_H

#define HAINIT_STASH_MARKER 62
#define HAINIT_STASH_IGNORED 63
#define HAINIT_STASH_BLOCKED 64
/* The kernel drops the bits of SIGKILL (9) and SIGSTOP (19) from any sa_mask: the marker has
 * neither. */
#define HAINIT_STASH_MAGIC 0x6861696e69000001

#endif
