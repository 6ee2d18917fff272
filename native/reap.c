#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "hainit.h"

/* The name and the start time (field 22 of /proc/PID/stat, clock ticks after boot), readable
 * while the process is a zombie and not after. The open is what this costs (procfs makes a
 * dentry and an inode for the process and for the file, and the reap invalidates them): one
 * file per zombie, never two; /proc/PID/comm alone costs the same. The comm sits in parentheses
 * and may itself hold ')' and spaces: fields are counted from the last ')'. */
static void read_details(struct hainit_reaped *r, long long now_ms, long clk_tck) {
  char path[64], buf[1024];
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
  memcpy(r->comm, open_paren + 1, len < sizeof r->comm ? len : sizeof r->comm);
  char *p = close_paren + 2; /* field 3 */
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p || now_ms < 0) return;
  long long lived = now_ms - strtoll(p, NULL, 10) * 1000 / clk_tck;
  r->lived_ms = lived < 0 ? 0 : lived;
}

/* /proc/PID/stat's start time is on CLOCK_BOOTTIME (in the time namespace, as /proc/uptime is),
 * in AT_CLKTCK units: the auxiliary vector's, not a constant. */
static long long boottime_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return -1;
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* hainit starts every process of its own through spawn_child, never through libuv, so
 * waitpid(-1) takes no status that libuv is waiting for.
 *
 * The first `named` records get the zombie's name and lifetime (read_details), the rest none:
 * past that the loop is tini's, one waitpid per zombie. Naming costs an extra waitid and a
 * procfs open per zombie, about three times the reap itself, so the caller decides how many a
 * storm gets (src/reaper/reaper.ts: a budget per second). */
int reap_some(struct hainit_reaped *out, int max, int named) {
  long long now_ms = named > 0 ? boottime_ms() : -1;
  long clk_tck = (long)getauxval(AT_CLKTCK);
  if (clk_tck <= 0) clk_tck = 100;
  int n = 0;
  while (n < max) {
    struct hainit_reaped *r = &out[n];
    memset(r, 0, sizeof *r);
    r->lived_ms = -1;
    int details = n < named;
    if (details) {
      /* WNOWAIT: the zombie stays, so its /proc entry can still be read. */
      siginfo_t si;
      memset(&si, 0, sizeof si);
      if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) break;
      r->pid = si.si_pid;
      r->flags |= HAINIT_REAPED_NAMED;
      read_details(r, now_ms, clk_tck);
    }
    int st;
    pid_t pid = waitpid(details ? r->pid : -1, &st, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) break;
    r->pid = pid;
    if (WIFEXITED(st)) {
      r->code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      r->code = -1;
      r->signo = WTERMSIG(st);
      if (WCOREDUMP(st)) r->flags |= HAINIT_REAPED_CORE;
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
