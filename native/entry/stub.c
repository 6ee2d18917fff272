/* The entry point of dist/hainit, before Node's own _start (scripts/patch-entry.mjs puts it
 * there; native/entry/<arch>.S calls hainit_stub_main with the initial stack pointer).
 *
 * Freestanding: no libc, no relocations (scripts/entry-stub.mjs links it twice at different
 * addresses and refuses it if the two differ), raw system calls (sys.h). Nothing here may fail
 * loudly: whatever does not work is left undone and the loader (src/native/index.ts) explains.
 *
 * 1. The signal state hainit was started with. Node resets the dispositions of signals 1-31 and
 *    empties the mask in its C++ start-up (node.cc, PlatformInit). This reads the blocked mask and
 *    the ignored signals 1-64 and leaves them in the sa_mask of the default actions of signals
 *    63 (ignored set) and 64 (blocked mask), with a marker in 62's; the addon takes them back
 *    and restores 62-64 (native/startstate.c). Exec clears every sa_mask, so nobody before
 *    hainit can leave a forged state there.
 * 2. The Node settings meant for the application. Every NODE_*, UV_* and OPENSSL_{CONF,MODULES,
 *    ENGINES} entry is moved out of the C library's environ (the pointer array on the stack,
 *    which environ already points at), so hainit's own Node never reads them: NODE_OPTIONS,
 *    NODE_DEBUG, NODE_V8_COVERAGE, UV_THREADPOOL_SIZE... The strings are not touched: the
 *    application gets the environment as given from /proc/self/environ (native/rawargs.c).
 * 3. The addon in a sealed memfd. postject injected build/Release/hainit.node as the ELF note
 *    "HAINIT_ADDON"; it is copied into memfd_create("hainit.node") and sealed against every
 *    change, and the loader dlopens /proc/self/fd/N. No directory is touched. */
#include "sys.h"
#include "../startstate.h"

#define AT_NULL 0
#define AT_PHDR 3
#define AT_PHENT 4
#define AT_PHNUM 5
#define PT_NOTE 4
#define PT_PHDR 6
#define MFD_CLOEXEC 1U
#define MFD_ALLOW_SEALING 2U
#define MFD_EXEC 0x10U
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#define EINVAL 22
#define EINTR 4

typedef unsigned long ulong;
typedef unsigned int uint;

struct ksigaction {
  ulong handler, flags, restorer, mask;
};
struct phdr {
  uint type, flags;
  ulong offset, vaddr, paddr, filesz, memsz, align;
};
struct nhdr {
  uint namesz, descsz, type;
};

static void stash_signal_state(void) {
  struct ksigaction a;
  ulong ignored = 0, blocked = 0;
  for (int s = 1; s <= 64; s++) {
    a.handler = 0;
    if (sys(NR_rt_sigaction, s, 0, (long)&a, 8) == 0 && a.handler == 1 /* SIG_IGN */) ignored |= 1UL << (s - 1);
  }
  a.handler = a.flags = a.restorer = 0;
  a.mask = ignored;
  sys(NR_rt_sigaction, HAINIT_STASH_IGNORED, (long)&a, 0, 8);
  sys(NR_rt_sigprocmask, 0 /* SIG_BLOCK */, 0, (long)&blocked, 8);
  a.mask = blocked;
  sys(NR_rt_sigaction, HAINIT_STASH_BLOCKED, (long)&a, 0, 8);
  a.mask = HAINIT_STASH_MAGIC; /* written last: the other two are there when it is */
  sys(NR_rt_sigaction, HAINIT_STASH_MARKER, (long)&a, 0, 8);
}

static int starts(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

/* Keep in step with APP_ONLY in src/native/app-env.ts and bin/hainit. */
static int for_the_app(const char *e) {
  return starts(e, "NODE_") || starts(e, "UV_") || starts(e, "OPENSSL_CONF=") || starts(e, "OPENSSL_MODULES=") ||
         starts(e, "OPENSSL_ENGINES=");
}

/* [kept..., NULL, moved...]: the array keeps its length, and the auxiliary vector after it stays
 * where ld.so found it. Stable, in place, O(n*k) for k moved entries: n is small. */
static void hide_env(char **env, ulong n) {
  ulong kept = 0;
  for (ulong i = 0; i < n; i++)
    if (!for_the_app(env[i])) kept++;
  if (kept == n) return;
  /* bubble each moved entry to the end, keeping both orders */
  ulong end = n;
  for (ulong i = n; i-- > 0;) {
    if (!for_the_app(env[i])) continue;
    char *e = env[i];
    for (ulong j = i; j + 1 < end; j++) env[j] = env[j + 1];
    env[--end] = e;
  }
  /* env[0..kept) kept, env[kept..n) moved, env[n] == NULL: make room for the NULL at kept */
  for (ulong j = n; j > kept; j--) env[j] = env[j - 1];
  env[kept] = 0;
}

static int is_addon_note(const struct nhdr *h) {
  static const char want[] = "HAINIT_ADDON";
  const char *name = (const char *)(h + 1);
  if (h->namesz < sizeof want - 1 || h->namesz > sizeof want) return 0;
  for (uint i = 0; i < sizeof want - 1; i++)
    if (name[i] != want[i]) return 0;
  return h->namesz == sizeof want - 1 || name[sizeof want - 1] == 0;
}

static void addon_memfd(const ulong *auxv) {
  const struct phdr *ph = 0;
  ulong phnum = 0, phent = 0;
  for (const ulong *a = auxv; a[0] != AT_NULL; a += 2) {
    if (a[0] == AT_PHDR) ph = (const struct phdr *)a[1];
    else if (a[0] == AT_PHNUM) phnum = a[1];
    else if (a[0] == AT_PHENT) phent = a[1];
  }
  if (!ph || phent != sizeof *ph) return;
  ulong bias = 0;
  int have_bias = 0;
  for (ulong i = 0; i < phnum; i++)
    if (ph[i].type == PT_PHDR) {
      bias = (ulong)ph - ph[i].vaddr;
      have_bias = 1;
    }
  if (!have_bias) return;
  for (ulong i = 0; i < phnum; i++) {
    if (ph[i].type != PT_NOTE) continue;
    ulong pos = bias + ph[i].vaddr, end = pos + ph[i].memsz;
    while (pos + sizeof(struct nhdr) <= end) {
      const struct nhdr *h = (const struct nhdr *)pos;
      ulong desc = pos + sizeof *h + ((h->namesz + 3) & ~3UL);
      ulong next = desc + ((h->descsz + 3) & ~3UL);
      if (next > end || next <= pos) break;
      if (h->descsz != 0 && is_addon_note(h)) {
        long fd = sys(NR_memfd_create, (long)"hainit.node", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC, 0, 0);
        /* kernels before 6.3 know no MFD_EXEC: there every memfd is executable */
        if (fd == -EINVAL) fd = sys(NR_memfd_create, (long)"hainit.node", MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0);
        if (fd < 0) return; /* vm.memfd_noexec=2 (EACCES): the loader's fallback */
        const char *p = (const char *)desc;
        ulong left = h->descsz;
        while (left > 0) {
          long w = sys(NR_write, fd, (long)p, (long)left, 0);
          if (w == -EINTR) continue;
          if (w <= 0) {
            sys(NR_close, fd, 0, 0, 0);
            return;
          }
          p += w;
          left -= (ulong)w;
        }
        if (sys(NR_fcntl, fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE, 0) < 0)
          sys(NR_close, fd, 0, 0, 0); /* unsealed is not offered to the loader */
        return;
      }
      pos = next;
    }
  }
}

__attribute__((visibility("hidden"))) void hainit_stub_main(ulong *sp) {
  stash_signal_state();
  ulong argc = sp[0];
  char **env = (char **)(sp + 1 + argc + 1);
  ulong n = 0;
  while (env[n]) n++;
  const ulong *auxv = (const ulong *)(env + n + 1);
  hide_env(env, n);
  addon_memfd(auxv);
}
