#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "hainit.h"
#include "startstate.h"

_Static_assert((HAINIT_STASH_MAGIC & ((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)))) == 0,
               "the kernel would drop bits of the marker");

static int have;
static uint64_t blocked, ignored;

static int get_action(int sig, struct ksigaction *a) {
  memset(a, 0, sizeof *a);
  return (int)syscall(SYS_rt_sigaction, sig, NULL, a, sizeof a->mask);
}

void startstate_take(void) {
  struct ksigaction marker, ign, blk;
  if (get_action(HAINIT_STASH_MARKER, &marker) < 0 || marker.handler != SIG_DFL || marker.mask != HAINIT_STASH_MAGIC) return;
  if (get_action(HAINIT_STASH_IGNORED, &ign) < 0 || get_action(HAINIT_STASH_BLOCKED, &blk) < 0) return;
  have = 1;
  ignored = ign.mask;
  blocked = blk.mask;
  /* Signals 62-64 as they were: ignored, or their default action with an empty mask. */
  for (int s = HAINIT_STASH_MARKER; s <= HAINIT_STASH_BLOCKED; s++) {
    struct ksigaction a;
    memset(&a, 0, sizeof a);
    a.handler = (ignored >> (s - 1)) & 1 ? SIG_IGN : SIG_DFL;
    (void)syscall(SYS_rt_sigaction, s, &a, NULL, sizeof a.mask);
  }
}

int startstate_get(uint64_t *blocked_out, uint64_t *ignored_out) {
  *blocked_out = have ? blocked : 0;
  *ignored_out = have ? ignored : 0;
  return have;
}

/* glibc's own signals (32 SIGCANCEL, 33 SIGSETXID) are never passed on: posix_spawn and friends
 * leave them ignored, and the child's libc sets them up for itself. */
#define GLIBC_SIGS ((1ULL << 31) | (1ULL << 32))

void startstate_apply(void) {
  struct ksigaction a;
  memset(&a, 0, sizeof a);
  uint64_t ign = have ? ignored & ~GLIBC_SIGS : 0;
  for (int s = 1; s < HAINIT_MAXSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    a.handler = (ign >> (s - 1)) & 1 ? SIG_IGN : SIG_DFL;
    (void)syscall(SYS_rt_sigaction, s, &a, NULL, sizeof a.mask);
  }
  uint64_t mask = have ? blocked & ~GLIBC_SIGS : 0;
  (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
}
