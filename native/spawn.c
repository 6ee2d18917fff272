#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hainit.h"

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void block_all(uint64_t *old) {
  uint64_t all = ~(uint64_t)0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, sizeof all);
}
static void set_mask(const uint64_t *m) { syscall(SYS_rt_sigprocmask, SIG_SETMASK, m, NULL, sizeof *m); }

pid_t spawn_child(const struct spawn_req *req, int *err) {
  uint64_t old_mask;
  volatile int child_errno = 0;
  /* With every signal blocked, no handler of ours can run in the vfork child, which shares
   * our memory, before it has reset the dispositions. */
  block_all(&old_mask);
  pid_t pid = vfork();
  if (pid == 0) {
    if (req->new_pgrp && setpgid(0, 0) < 0) goto fail;
    /* SIGTTOU is blocked, so a background tcsetpgrp is allowed (tcsetpgrp(3)). */
    if (req->foreground && isatty(STDIN_FILENO)) (void)tcsetpgrp(STDIN_FILENO, getpid());
    for (int i = 0; i < 3; i++)
      if (req->stdio[i] >= 0 && req->stdio[i] != i && dup2(req->stdio[i], i) < 0) goto fail;
    /* Node opened everything close-on-exec, fds 0-2 and inherited ones included. */
    (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 0; i < 3; i++) (void)fcntl(i, F_SETFD, 0);
    for (int i = 0; i < req->nkeep; i++) (void)fcntl(req->keep[i], F_SETFD, 0);
    /* Every action Node or hainit set, reset; the mask and ignored set hainit was started with. */
    startstate_apply();
    char *const *envp = req->envp ? req->envp : environ;
    execve(req->path, req->argv, envp);
    if (errno == ENOEXEC && req->sh_argv) execve("/bin/sh", req->sh_argv, envp);
  fail:
    child_errno = errno ? errno : EINVAL;
    _exit(127);
  }
  int saved = errno;
  set_mask(&old_mask);
  if (pid < 0) {
    *err = saved;
    return -1;
  }
  if (child_errno) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    *err = child_errno;
    return -1;
  }
  return pid;
}
