#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hainit.h"

/* /proc/PID/comm and the start time are readable while the process is a zombie, not after. */
static void read_details(struct reaped *r) {
  char path[64], buf[1024];
  r->comm[0] = 0;
  r->start_ticks = -1;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)r->pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
  if (!open_paren || !close_paren || close_paren < open_paren) return;
  size_t len = (size_t)(close_paren - open_paren - 1);
  if (len > 16) len = 16;
  memcpy(r->comm, open_paren + 1, len);
  r->comm[len] = 0;
  /* field 22 (starttime); fields after the comm start at 3 */
  char *p = close_paren + 2;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (p) r->start_ticks = strtoll(p, NULL, 10);
}

/* hainit starts every process of its own through spawn_child, never through libuv, so
 * waitpid(-1) takes no status that libuv is waiting for. */
int reap_some(struct reaped *out, int max, int want_details) {
  int n = 0;
  while (n < max) {
    struct reaped *r = &out[n];
    memset(r, 0, sizeof *r);
    r->start_ticks = -1;
    if (want_details) {
      siginfo_t si;
      memset(&si, 0, sizeof si);
      if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) break;
      r->pid = si.si_pid;
      read_details(r);
    }
    int st;
    pid_t pid = waitpid(want_details ? r->pid : -1, &st, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) break;
    r->pid = pid;
    if (WIFEXITED(st)) {
      r->exited = 1;
      r->code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      r->signo = WTERMSIG(st);
      r->core = WCOREDUMP(st) ? 1 : 0;
    } else {
      continue;
    }
    n++;
  }
  return n;
}

/* Job control: the signal that stopped child `pid` since the last call, 0 when it has not
 * stopped (running, continued, or exited: an exit is left, unreaped, for reap_some), or -errno.
 * WSTOPPED without WEXITED, and without WNOWAIT so that each stop is reported once. */
int child_stopped(pid_t pid) {
  siginfo_t si;
  for (;;) {
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOHANG) == 0) break;
    if (errno != EINTR) return -errno;
  }
  return si.si_pid == pid && si.si_code == CLD_STOPPED ? si.si_status : 0;
}
