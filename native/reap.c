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

/* The text of /proc/PID/NAME into buf (NUL-terminated), its length, or -1. The open is what a
 * detail costs (procfs makes a dentry and an inode per process and per file, and the reap
 * invalidates them again): one file per zombie, never two. */
static ssize_t read_proc(pid_t pid, const char *name, char *buf, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  return n;
}

static void set_comm(struct hainit_reaped *r, const char *from, size_t len) {
  if (len > sizeof r->comm) len = sizeof r->comm;
  memcpy(r->comm, from, len);
}

/* The name only: /proc/PID/comm is the cheapest file that has it. */
static void read_name(struct hainit_reaped *r) {
  char buf[64];
  ssize_t n = read_proc(r->pid, "comm", buf, sizeof buf);
  if (n <= 0) return;
  if (buf[n - 1] == '\n') n--;
  set_comm(r, buf, (size_t)n);
}

/* The name and the start time (field 22 of /proc/PID/stat, clock ticks after boot). The comm
 * sits in parentheses and may itself hold ')' and spaces: fields are counted from the last ')'. */
static void read_name_and_lifetime(struct hainit_reaped *r, long long now_ms, long clk_tck) {
  char buf[1024];
  if (read_proc(r->pid, "stat", buf, sizeof buf) <= 0) return;
  char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
  if (!open_paren || !close_paren || close_paren < open_paren) return;
  set_comm(r, open_paren + 1, (size_t)(close_paren - open_paren - 1));
  char *p = close_paren + 2; /* field 3 */
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p) return;
  long long start_ticks = strtoll(p, NULL, 10);
  long long lived = now_ms - start_ticks * 1000 / clk_tck;
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
 * waitpid(-1) takes no status that libuv is waiting for. */
int reap_some(struct hainit_reaped *out, int max, int details) {
  long long now_ms = details == REAP_NAME_AND_LIFETIME ? boottime_ms() : -1;
  long clk_tck = (long)getauxval(AT_CLKTCK);
  if (clk_tck <= 0) clk_tck = 100;
  if (now_ms < 0 && details == REAP_NAME_AND_LIFETIME) details = REAP_NAME;
  int n = 0;
  while (n < max) {
    struct hainit_reaped *r = &out[n];
    memset(r, 0, sizeof *r);
    r->lived_ms = -1;
    if (details != REAP_STATUS_ONLY) {
      /* WNOWAIT: the zombie stays, so its /proc entry can still be read. */
      siginfo_t si;
      memset(&si, 0, sizeof si);
      if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) break;
      r->pid = si.si_pid;
      if (details == REAP_NAME_AND_LIFETIME) read_name_and_lifetime(r, now_ms, clk_tck);
      else read_name(r);
    }
    int st;
    pid_t pid = waitpid(details != REAP_STATUS_ONLY ? r->pid : -1, &st, WNOHANG);
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
