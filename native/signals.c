#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "hainit.h"

static atomic_int target_pid;
static atomic_int rewrite_to[HAINIT_MAXSIG];
static atomic_int mode_of[HAINIT_MAXSIG];
static atomic_llong dropped;
static atomic_llong written;
static atomic_int in_flight; /* handlers past their start that have not written their record yet */
static int notify_wr = -1;
static pid_t self_pid;
static struct sigaction previous[HAINIT_MAXSIG];

static int is_fault(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS;
}

/* Whether si_pid names the process that sent the signal (kill, sigqueue, tgkill), not the kernel. */
static int sent_by_a_process(const siginfo_t *si) {
  return (si->si_code == SI_USER || si->si_code == SI_QUEUE || si->si_code == SI_TKILL) && si->si_pid > 0;
}

/* The sender's name from /proc/PID/comm, read while the signal is handled: a sender that exits at
 * once (`kill -TERM 1` from a shell) is reaped by its parent moments later, and its name with it.
 * open/read/close are async-signal-safe; the path is put together by hand (snprintf is not). */
static void read_sender(pid_t pid, char comm[16]) {
  char path[32] = "/proc/", digits[12];
  int nd = 0, at = 6;
  for (unsigned v = (unsigned)pid; nd == 0 || v > 0; v /= 10) digits[nd++] = (char)('0' + v % 10);
  while (nd > 0) path[at++] = digits[--nd];
  memcpy(path + at, "/comm", sizeof "/comm");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[16];
  ssize_t n = read(fd, buf, sizeof buf); /* up to 15 bytes and a newline */
  close(fd);
  for (ssize_t i = 0; i < n && buf[i] != '\n'; i++) comm[i] = buf[i];
}

/* Async-signal-safe only: atomics, kill(), write(), clock_gettime(), sigaction(), open(), read(),
 * close(). Forwarding happens here, not in JavaScript, so its latency does not depend on how busy
 * the event loop is. */
static void on_signal(int sig, siginfo_t *si, void *uctx) {
  int saved_errno = errno;
  struct hainit_sigrecord r;
  memset(&r, 0, sizeof r);
  r.signo = sig;
  r.code = si->si_code;
  r.pid = si->si_pid;
  r.uid = (int32_t)si->si_uid;

  if (is_fault(sig) && si->si_code > 0) {
    /* A real fault in hainit (or V8's WebAssembly trap): hand it to whoever had it before. */
    struct sigaction *p = &previous[sig];
    if ((p->sa_flags & SA_SIGINFO) && p->sa_sigaction) {
      p->sa_sigaction(sig, si, uctx);
    } else if (p->sa_handler != SIG_IGN && p->sa_handler != SIG_DFL) {
      p->sa_handler(sig);
    } else {
      signal(sig, SIG_DFL); /* returning re-executes the faulting instruction: default action */
    }
    errno = saved_errno;
    return;
  }
  atomic_fetch_add(&in_flight, 1);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  r.mono_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;

  if (si->si_code <= 0 && si->si_pid == self_pid && sig != SIGCHLD) {
    r.flags |= HAINIT_REC_SELF; /* EPIPE on our own stderr, abort(): not the child's business */
  } else if ((sig == SIGTTIN || sig == SIGTTOU) && si->si_code == SI_KERNEL) {
    r.flags |= HAINIT_REC_TTY; /* hainit touched the terminal from the background */
  } else {
    /* SIGCHLD's sender is a child that exited: nobody asks its name. */
    int name_sender = sig != SIGCHLD && sent_by_a_process(si);
    if (atomic_load(&mode_of[sig]) == MODE_FORWARD) {
      int to = atomic_load(&rewrite_to[sig]);
      int target = atomic_load(&target_pid);
      if (to > 0 && target != 0) {
        /* When the forward can reach the sender (the child signalling PID 1; its group with -g),
         * the name is read first: the forwarded signal may end it. Otherwise after, so that
         * forwarding waits for nothing. */
        if (name_sender && (target == si->si_pid || target < 0)) {
          read_sender(si->si_pid, r.comm);
          name_sender = 0;
        }
        r.sent = to;
        r.target = target;
        r.err = kill(target, to) == 0 ? 0 : errno;
        if (!r.err) r.flags |= HAINIT_REC_FORWARDED;
      }
    }
    if (name_sender) read_sender(si->si_pid, r.comm);
  }
  if (notify_wr >= 0) {
    if (write(notify_wr, &r, sizeof r) == (ssize_t)sizeof r) atomic_fetch_add(&written, 1);
    else atomic_fetch_add(&dropped, 1);
  }
  atomic_fetch_sub(&in_flight, 1);
  errno = saved_errno;
}

/* Signals are delivered to a thread that does not block them. The main thread runs JavaScript
 * (the probe server under load keeps it busy), so it blocks the forwardable signals and this
 * otherwise idle thread takes them: a woken sleeper gets a CPU sooner than a busy thread's turn
 * comes round. Faults stay unblocked everywhere: they are synchronous and must not be blocked. */
static void *signal_thread(void *unused) {
  /* Open its own mask: it inherits its creator's, which is not open everywhere (Node started with
   * --disable-sigusr1 blocks SIGUSR1 in every thread it makes, and so in the one that makes this). */
  sigset_t open;
  sigemptyset(&open);
  pthread_sigmask(SIG_SETMASK, &open, NULL);
  for (;;) pause();
  return NULL;
}

static void route_to_signal_thread(void) {
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&th, &attr, signal_thread, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) return; /* the main thread keeps taking signals itself */
  sigset_t set;
  sigemptyset(&set);
  for (int s = 1; s < HAINIT_MAXSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP || is_fault(s) || (s > 31 && s < SIGRTMIN)) continue;
    sigaddset(&set, s);
  }
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static uint64_t skipped; /* signals whose handler could not be installed (EINVAL) */

int sig_install(void) {
  if (notify_wr >= 0) return -EALREADY;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
  /* A bigger pipe holds a storm of ~18k records before any is dropped. */
  (void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  notify_wr = fds[1];
  self_pid = getpid();
  for (int s = 1; s < HAINIT_MAXSIG; s++) {
    atomic_store(&rewrite_to[s], s);
    atomic_store(&mode_of[s], MODE_FORWARD);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  /* Every other signal waits while one is handled: with an open mask a storm of mixed kinds
   * nests one frame per kind and overflows the signal thread's small stack. Faults are not
   * held back by a mask (the kernel forces them), so nothing real is lost. */
  sigfillset(&sa.sa_mask);
  for (int s = 1; s < HAINIT_MAXSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP || (s > 31 && s < SIGRTMIN)) continue; /* 32, 33: glibc's own */
    if (sigaction(s, &sa, &previous[s]) == 0) continue;
    /* A signal the system keeps for itself (valgrind takes one real-time signal) is passed
     * over; hainit says which (sig_skipped). */
    if (errno != EINVAL) return -errno;
    skipped |= 1ULL << (s - 1);
  }
  route_to_signal_thread();
  return fds[0];
}

void sig_set_target(int target) { atomic_store(&target_pid, target); }
void sig_set_rewrite(int from, int to) {
  if (from > 0 && from < HAINIT_MAXSIG) atomic_store(&rewrite_to[from], to);
}
void sig_set_mode(int sig, int mode) {
  if (sig > 0 && sig < HAINIT_MAXSIG) atomic_store(&mode_of[sig], mode);
}
int64_t sig_dropped_records(void) { return atomic_load(&dropped); }
uint64_t sig_skipped(void) { return skipped; }
int64_t sig_written_records(void) { return atomic_load(&written); }

/* Waits up to max_ms for handlers that are running to write their records. At exit: a signal
 * forwarded to the child that ends it can have its SIGCHLD taken, the child reaped and hainit on
 * its way out while that handler, preempted between its kill() and its write(), still holds the
 * record. Returns how many are still running. */
int sig_settle(int max_ms) {
  struct timespec step = {0, 100000};
  for (int i = 0; i < max_ms * 10 && atomic_load(&in_flight) > 0; i++) nanosleep(&step, NULL);
  return atomic_load(&in_flight);
}

/* Job control when hainit is not PID 1: a shell's job is hainit, not its child, so when the child
 * stops at the terminal hainit stops too, and the shell sees its job stop.
 *
 * The signal is sent to this thread only, with the default action put in place while it is
 * blocked here; unblocking it then stops the whole process on the way out of sigprocmask, before
 * any handler of ours could see it, and this returns once something sent SIGCONT. The kernel
 * discards SIGTSTP/SIGTTIN/SIGTTOU in an orphaned process group (nobody there could continue it):
 * then this returns at once. */
int sig_stop_self(int sig) {
  if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) return -EINVAL;
  sigset_t one, mask;
  sigemptyset(&one);
  sigaddset(&one, sig);
  int rc = pthread_sigmask(SIG_BLOCK, &one, &mask);
  if (rc != 0) return -rc;
  struct sigaction dfl, handler;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  if (sigaction(sig, &dfl, &handler) < 0) {
    rc = errno;
  } else {
    rc = pthread_kill(pthread_self(), sig);
    if (rc == 0) pthread_sigmask(SIG_UNBLOCK, &one, NULL); /* stopped in here until SIGCONT */
    pthread_sigmask(SIG_BLOCK, &one, NULL);
    sigaction(sig, &handler, NULL);
  }
  pthread_sigmask(SIG_SETMASK, &mask, NULL);
  return -rc;
}

/* pgid 0: 1 when hainit's process group is the foreground group of the terminal on fd 0, else 0.
 * pgid > 0: only then, make pgid the foreground group (1); else leave the terminal alone (0),
 * since a hainit running in the background must never take it from the shell. -errno otherwise
 * (ENOTTY: fd 0 is not hainit's controlling terminal). */
int tty_foreground(pid_t pgid) {
  pid_t fg = tcgetpgrp(STDIN_FILENO);
  if (fg < 0) return -errno;
  if (fg != getpgrp()) return 0;
  if (pgid <= 0) return 1;
  /* SIGTTOU blocked (the main thread blocks it already): had the shell taken the terminal back
   * since the check, tcsetpgrp would otherwise send SIGTTOU to hainit's group, whose handler
   * catches it, and restart, over and over. */
  sigset_t ttou, mask;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &mask);
  int rc = tcsetpgrp(STDIN_FILENO, pgid) == 0 ? 1 : -errno;
  pthread_sigmask(SIG_SETMASK, &mask, NULL);
  return rc;
}
