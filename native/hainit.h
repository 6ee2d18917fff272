/* The N-API addon is a thin layer of system calls: no policy, no timers, no logging. */
#ifndef HAINIT_H
#define HAINIT_H
#include <stdint.h>
#include <sys/types.h>

#define HAINIT_MAXSIG 65 /* signals 1..64 */

/* How the signal handler treats a signal. */
enum { MODE_DROP = 0, MODE_FORWARD = 1, MODE_NOTIFY = 2 };

/* Record written by the signal handler to the notification pipe. Fixed size,
 * under PIPE_BUF, so each write is atomic even when handlers run concurrently. Read in
 * JavaScript at the offsets src/signals/record.ts names (test/unit/layout.test.ts holds the two
 * together). */
struct hainit_sigrecord {
  int32_t signo, code, pid, uid; /* from siginfo */
  int32_t sent;                  /* signal forwarded (after rewrite), 0 if none */
  int32_t target;                /* pid (or -pgid) it was sent to, 0 if none */
  int32_t err;                   /* errno of kill(), 0 on success */
  int32_t flags;                 /* HAINIT_REC_* */
  int64_t mono_ns;               /* CLOCK_MONOTONIC at receipt */
  char comm[16];                 /* the sender's name, read by the handler; NUL-padded, empty if gone */
};
#define HAINIT_REC_FORWARDED 1
#define HAINIT_REC_SELF 2      /* raised by hainit itself (EPIPE, abort): never forwarded */
#define HAINIT_REC_TTY 4       /* SIGTTIN/SIGTTOU from hainit's own terminal access */

int sig_install(void);           /* returns the read end of the notification pipe or -errno */
void sig_set_target(int target); /* >0 pid, <0 process group, 0 none */
void sig_set_rewrite(int from, int to);
void sig_set_mode(int sig, int mode);
int64_t sig_dropped_records(void);
uint64_t sig_skipped(void);      /* signals the system would not let hainit catch, bit N-1 for N */
int64_t sig_written_records(void); /* records in the pipe so far: JS compares with what it read */
int sig_settle(int max_ms);      /* waits for running handlers to write their records; how many still run */

/* The kernel's sigaction: glibc's hides signals 32 and 33, and its sigset_t is 128 bytes. */
struct ksigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

/* The signal mask and ignored set dist/hainit was started with (native/startstate.c), left by
 * its entry stub (native/entry-stub.S) before Node reset both. Without the stub (hainit run by
 * a plain `node`) there is none, and children get an empty mask and default actions. */
void startstate_take(void);                        /* once, when the addon loads */
int startstate_get(uint64_t *blocked, uint64_t *ignored); /* 1 if there was a stub */
void startstate_apply(void);  /* in a new child: that state, or the defaults; never 32/33 */
struct spawn_req {
  const char *path;
  char *const *argv;       /* NULL-terminated */
  char *const *sh_argv;    /* argv for /bin/sh when exec fails with ENOEXEC, or NULL */
  char *const *envp;       /* the child's environment; NULL = hainit's own (environ) */
  int stdio[3];            /* fd to dup onto 0,1,2; -1 = keep hainit's own */
  const int *keep;         /* inherited fds passed through */
  int nkeep;
  int foreground;          /* give the child the terminal on fd 0 when it is a tty */
  int new_pgrp;
};
pid_t spawn_child(const struct spawn_req *req, int *err); /* -1 and *err on failure */

/* One reaped process, as reap() hands it to JavaScript: fixed size, read there at the offsets
 * src/reaper/record.ts names (test/unit/layout.test.ts holds the two together). */
struct hainit_reaped {
  int32_t pid;
  int32_t code;      /* exit code; -1 when a signal killed it */
  int32_t signo;     /* the signal that killed it, 0 when it exited */
  int32_t flags;     /* HAINIT_REAPED_* */
  int64_t lived_ms;  /* from its start to now; -1 unknown or not named */
  char comm[16];     /* TASK_COMM_LEN; NUL-padded (not terminated at 16); empty when not named */
};
#define HAINIT_REAPED_CORE 1
#define HAINIT_REAPED_NAMED 2 /* its name and start time were looked for (found or not) */
/* The first `named` records: each zombie's name and start time read from /proc before it is
 * reaped; the rest are reaped without (one waitpid each). */
int reap_some(struct hainit_reaped *out, int max, int named);

/* Job control when hainit is not PID 1 (see signals.c, reap.c). */
int child_stopped(pid_t pid);    /* stop signal since the last call, 0 none, -errno */
int sig_stop_self(int sig);      /* SIGTSTP/SIGTTIN/SIGTTOU: returns once continued; 0 or -errno */
int tty_foreground(pid_t pgid);  /* 0: does hainit's group hold fd 0's terminal? >0: hand it over */

/* Peers of the probe endpoint (peers.c): an IPv4 address, 127.0.0.0/8 as one, or an IPv6 /64. */
struct peer {
  uint8_t v6, bits;
  uint8_t soft; /* to peer_drop_set: dropped only while the accept queue is over half full */
  uint32_t w[2]; /* the address (IPv4: w[0]; IPv6: its first 64 bits), host order */
};
#define PEER_DROP_MAX 16
int peer_of(int fd, struct peer *p);                      /* of a connected socket; 0 or -errno */
int peer_same(const struct peer *a, const struct peer *b);
int peer_format(const struct peer *p, char *buf, size_t len); /* "ADDRESS/BITS" */
int peer_parse(const char *s, struct peer *p);            /* "[~]ADDRESS/BITS" (~: soft); 0 or -EINVAL */
/* the peers holding at least `min` of the `n` given, most first, at most `max`; how many */
int peer_top(const struct peer *conns, int n, int min, struct peer *out, int *counts, int max);
/* Drop SYNs from these peers on listening socket `lfd`: the soft ones only while its accept queue
 * is more than half full (n = 0: none any more); 0 or -errno */
int peer_drop_set(int lfd, const struct peer *ps, int n);
/* ... and these too (soft, whatever they say), the peers that hold most of a burst */
int peer_drop_burst(int lfd, const struct peer *ps, int n);
void peer_drop_tick(int lfd, unsigned queued, unsigned max); /* the queue as it is now */
int peer_drop_lfd(void);                                  /* the socket armed, -1 none */
void peer_drop_stats(int *on, int *times, double *ms);   /* dropping now; times switched on; for how long */

#endif
