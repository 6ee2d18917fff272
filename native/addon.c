/* N-API bindings: argument conversion only. Errors come back as negative errno values;
 * naming and policy are the TypeScript side's job. */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "hainit.h"

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

#include <sys/stat.h>

static struct { int fd; dev_t dev; ino_t ino; int pipe, paired; } inherited[256];
static int ninherited;

/* Node opens files of its own during start-up on other threads (NODE_EXTRA_CA_CERTS, …) that
 * may still be open when the addon loads and close soon after. */
static int node_own_path(const char *link) {
  const char *ca = getenv("NODE_EXTRA_CA_CERTS");
  char real[4096];
  if (ca && realpath(ca, real) && strcmp(real, link) == 0) return 1;
  return 0;
}

/* Descriptors open when the addon loads that Node did not open: Node's own are event polls,
 * eventfds and pipes whose both ends it holds. Everything hainit opens later is excluded.
 * Only what is compared later is kept (descriptor, device, inode): each link is judged as it is
 * read, and a pipe is known by its inode, which both of its ends share. */
static void snapshot_inherited(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int dfd = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) && ninherited < 256) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd < 3 || fd == dfd) continue;
    char path[64], link[4096];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) continue;
    link[n] = 0;
    if (strncmp(link, "anon_inode:", 11) == 0) continue;
    /* the memfd the binary's entry stub made for this very addon (native/entry/stub.c) */
    if (strncmp(link, "/memfd:hainit.node", 18) == 0) continue;
    if (node_own_path(link)) continue;
    struct stat st;
    if (fstat(fd, &st) < 0) continue;
    inherited[ninherited].fd = fd;
    inherited[ninherited].dev = st.st_dev;
    inherited[ninherited].ino = st.st_ino;
    inherited[ninherited].pipe = strncmp(link, "pipe:", 5) == 0;
    inherited[ninherited].paired = 0;
    ninherited++;
  }
  closedir(d);
  /* A pipe open at both ends is Node's own: both ends are marked, then the rest kept. (Marked
   * before any is moved: pipe2 takes the two lowest free numbers, so an inherited descriptor can
   * stand between the two ends of one of Node's pipes.) */
  for (int i = 0; i < ninherited; i++)
    for (int j = i + 1; inherited[i].pipe && j < ninherited; j++)
      if (inherited[j].pipe && inherited[j].dev == inherited[i].dev && inherited[j].ino == inherited[i].ino)
        inherited[i].paired = inherited[j].paired = 1;
  int kept = 0;
  for (int i = 0; i < ninherited; i++)
    if (!inherited[i].paired) inherited[kept++] = inherited[i];
  ninherited = kept;
}

static int32_t get_i32(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}
static napi_value mk_i32(napi_env env, int32_t x) {
  napi_value v;
  napi_create_int32(env, x, &v);
  return v;
}
/* A Buffer's bytes as they are (argv and env from /proc, any byte but NUL), or a string as UTF-8. */
static char *get_str(napi_env env, napi_value v) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) == napi_ok && is_buffer) {
    void *data;
    size_t n;
    if (napi_get_buffer_info(env, v, &data, &n) != napi_ok) return NULL;
    char *s = malloc(n + 1);
    memcpy(s, data, n);
    s[n] = 0;
    return s;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}
static char **get_strv(napi_env env, napi_value arr, int prefix, const char *first, uint32_t *count) {
  uint32_t n = 0;
  napi_get_array_length(env, arr, &n);
  char **v = calloc(n + prefix + 1, sizeof *v);
  if (prefix) v[0] = strdup(first);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    napi_get_element(env, arr, i, &el);
    v[i + prefix] = get_str(env, el);
  }
  *count = n + prefix;
  return v;
}
static void free_strv(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* spawn(path, argv[], stdio[3], keepFds[], foreground, newProcessGroup[, env[]]) -> pid or -errno
 * env: "KEY=value" strings for the child; without it, hainit's own environment. */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value a[7];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  struct spawn_req req;
  memset(&req, 0, sizeof req);
  char *path = get_str(env, a[0]);
  uint32_t n, nsh;
  char **argv = get_strv(env, a[1], 0, NULL, &n);
  /* execvp's ENOEXEC fallback: /bin/sh PATH ARGS... (argv[0] replaced by the path) */
  char **sh = calloc(n + 2, sizeof *sh);
  sh[0] = strdup("sh");
  sh[1] = strdup(path);
  for (uint32_t i = 1; i < n; i++) sh[i + 1] = strdup(argv[i]);
  nsh = n + 1;
  (void)nsh;
  for (int i = 0; i < 3; i++) {
    napi_value el;
    napi_get_element(env, a[2], i, &el);
    req.stdio[i] = get_i32(env, el);
  }
  uint32_t nkeep = 0;
  napi_get_array_length(env, a[3], &nkeep);
  int keep[256];
  if (nkeep > 256) nkeep = 256;
  for (uint32_t i = 0; i < nkeep; i++) {
    napi_value el;
    napi_get_element(env, a[3], i, &el);
    keep[i] = get_i32(env, el);
  }
  bool fg = false, pg = true;
  napi_get_value_bool(env, a[4], &fg);
  napi_get_value_bool(env, a[5], &pg);
  req.path = path;
  req.argv = argv;
  req.sh_argv = sh;
  req.keep = keep;
  req.nkeep = (int)nkeep;
  req.foreground = fg;
  req.new_pgrp = pg;
  char **envp = NULL;
  napi_valuetype et = napi_undefined;
  if (argc > 6) napi_typeof(env, a[6], &et);
  if (et == napi_object) {
    uint32_t ne;
    envp = get_strv(env, a[6], 0, NULL, &ne);
  }
  req.envp = envp;
  int err = 0;
  pid_t pid = spawn_child(&req, &err);
  free(path);
  free_strv(envp);
  free_strv(argv);
  free_strv(sh);
  return mk_i32(env, pid > 0 ? pid : -err);
}

/* reap(named, buffer) -> how many struct hainit_reaped it wrote into buffer (as many as fit;
 * call again while it is full); the first `named` of them with the zombie's name (reap_some). Records, not objects: a storm of zombies costs no N-API
 * property per field, and JavaScript makes its objects at JavaScript's speed. */
static napi_value js_reap(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  int32_t named = get_i32(env, a[0]);
  void *data = NULL;
  size_t len = 0;
  CHECK(napi_get_buffer_info(env, a[1], &data, &len));
  if ((uintptr_t)data % _Alignof(struct hainit_reaped)) {
    napi_throw_error(env, NULL, "reap: the records buffer is not aligned (use Buffer.alloc, not a slice)");
    return NULL;
  }
  int max = (int)(len / sizeof(struct hainit_reaped));
  return mk_i32(env, max > 0 ? reap_some((struct hainit_reaped *)data, max, named) : 0);
}

/* The signal records are read on Node's own loop with a uv_poll on the pipe: no net.Socket,
 * so hainit's start-up does not pay for node:net and the streams stack. */
static struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int fd;
} records = {.fd = -1};

static void on_records(uv_poll_t *handle, int status, int events) {
  char buf[100 * sizeof(struct hainit_sigrecord)]; /* whole records: every write is one record */
  napi_env env = records.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  for (;;) {
    ssize_t n = read(records.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    napi_value buffer, cb, recv;
    void *data;
    napi_create_buffer_copy(env, (size_t)n, buf, &data, &buffer);
    napi_get_reference_value(env, records.callback, &cb);
    napi_get_global(env, &recv);
    napi_status st = napi_make_callback(env, records.context, recv, cb, 1, &buffer, NULL);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err); /* to process 'uncaughtException': logged, supervision goes on */
    }
    if ((size_t)n < sizeof buf) break;
  }
  napi_close_handle_scope(env, scope);
}

/* signalsRead(settleMs = 0) -> Buffer of the records still in the pipe (possibly empty): read
 * before exit, since handlers on other threads may have written after the last poll; with
 * settleMs, after waiting up to that long for handlers still running (sig_settle). */
static napi_value js_sig_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (argc > 0) {
    int32_t settle = get_i32(env, a[0]);
    if (settle > 0) sig_settle(settle);
  }
  char buf[100 * sizeof(struct hainit_sigrecord)];
  size_t total = 0;
  napi_value out;
  char *all = NULL;
  for (;;) {
    ssize_t n = records.fd < 0 ? 0 : read(records.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    all = realloc(all, total + (size_t)n);
    memcpy(all + total, buf, (size_t)n);
    total += (size_t)n;
  }
  void *data;
  napi_create_buffer_copy(env, total, total ? all : "", &data, &out);
  free(all);
  return out;
}

/* signalsInstall(onRecords(buffer)) -> 0 or -errno */
static napi_value js_sig_install(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  int fd = sig_install();
  if (fd < 0) return mk_i32(env, fd);
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  records.env = env;
  records.fd = fd;
  CHECK(napi_create_reference(env, a[0], 1, &records.callback));
  napi_value name;
  napi_create_string_utf8(env, "hainit:signals", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_async_init(env, NULL, name, &records.context));
  if (uv_poll_init(loop, &records.poll, fd) != 0 || uv_poll_start(&records.poll, UV_READABLE, on_records) != 0) return mk_i32(env, -EIO);
  return mk_i32(env, 0);
}

static napi_value js_two_ints(napi_env env, napi_callback_info info, int32_t *x, int32_t *y) {
  size_t argc = 2;
  napi_value a[2];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  *x = get_i32(env, a[0]);
  *y = argc > 1 ? get_i32(env, a[1]) : 0;
  return a[0];
}
static napi_value js_sig_target(napi_env env, napi_callback_info info) {
  int32_t x, y;
  if (!js_two_ints(env, info, &x, &y)) return NULL;
  sig_set_target(x);
  return NULL;
}
static napi_value js_sig_rewrite(napi_env env, napi_callback_info info) {
  int32_t x, y;
  if (!js_two_ints(env, info, &x, &y)) return NULL;
  sig_set_rewrite(x, y);
  return NULL;
}
static napi_value js_sig_mode(napi_env env, napi_callback_info info) {
  int32_t x, y;
  if (!js_two_ints(env, info, &x, &y)) return NULL;
  sig_set_mode(x, y);
  return NULL;
}
static napi_value js_sig_dropped(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_create_double(env, (double)sig_dropped_records(), &v);
  return v;
}
static napi_value js_sig_written(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_create_double(env, (double)sig_written_records(), &v);
  return v;
}
static napi_value js_kill(napi_env env, napi_callback_info info) {
  int32_t pid, sig;
  if (!js_two_ints(env, info, &pid, &sig)) return NULL;
  return mk_i32(env, kill(pid, sig) == 0 ? 0 : -errno);
}
/* f(the first argument) -> f's int result: a count, a signal, 0/1, or -errno */
static napi_value call_int(napi_env env, napi_callback_info info, int (*f)(int)) {
  int32_t x, unused;
  if (!js_two_ints(env, info, &x, &unused)) return NULL;
  return mk_i32(env, f(x));
}
/* childStopped(pid) -> stop signal since the last call, 0, or -errno; never reaps */
static napi_value js_child_stopped(napi_env env, napi_callback_info info) { return call_int(env, info, child_stopped); }
/* stopSelf(signal) -> 0 once continued, or -errno */
static napi_value js_stop_self(napi_env env, napi_callback_info info) { return call_int(env, info, sig_stop_self); }
/* terminalForeground(pgid) -> 1/0 or -errno (tty_foreground) */
static napi_value js_tty_foreground(napi_env env, napi_callback_info info) { return call_int(env, info, tty_foreground); }
static napi_value js_subreaper(napi_env env, napi_callback_info info) {
  int32_t on, unused;
  if (!js_two_ints(env, info, &on, &unused)) return NULL;
  if (on >= 0 && prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) < 0) return mk_i32(env, -errno);
  int is = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &is, 0, 0, 0) < 0) return mk_i32(env, -errno);
  return mk_i32(env, is);
}
static napi_value js_pdeathsig(napi_env env, napi_callback_info info) {
  int32_t sig, unused;
  if (!js_two_ints(env, info, &sig, &unused)) return NULL;
  return mk_i32(env, prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0 ? 0 : -errno);
}
/* receiveBuffer(fd, bytes) -> 0 | -errno: SO_RCVBUF (sockets accepted on a listening socket inherit it). */
static napi_value js_rcvbuf(napi_env env, napi_callback_info info) {
  int32_t fd, bytes;
  if (!js_two_ints(env, info, &fd, &bytes)) return NULL;
  return mk_i32(env, setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0 ? 0 : -errno);
}
/* deferAccept(fd, seconds) -> 0 | -errno: TCP_DEFER_ACCEPT on a listening socket. A connection
 * that has sent nothing stays in the kernel's SYN queue (no descriptor, no accept) until its first
 * data, or for about `seconds` (then it is accepted as usual). */
static napi_value js_defer_accept(napi_env env, napi_callback_info info) {
  int32_t fd, secs;
  if (!js_two_ints(env, info, &fd, &secs)) return NULL;
  return mk_i32(env, setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) == 0 ? 0 : -errno);
}
/* The waiting room of the probe endpoint (issue 14). Past its connection cap, connections that
 * have not sent a complete request head are held here instead of in node:http: a descriptor
 * each and no JavaScript, watched by an epoll of their own (edge-triggered: a slow sender is
 * looked at when it sends, not on every check). Those whose head arrives go back to node:http;
 * those still quiet at their deadline are reset. A client held here does not reconnect: nothing
 * churns up to the room's size. Past it (more clients than descriptors) a newcomer still gets in
 * and the one that came in the longest ago makes room (reset): the newest may be a probe about to
 * send, the oldest has had its chance. That churn stays here, in C: no JavaScript socket each. */
static int room_ep = -1;
static int *room_fd, *room_pos; /* room_pos[fd] = index + 1 */
static double *room_deadline;
static struct peer *room_peer; /* who holds each (peers.c) */
static void queue_tick(int lfd, unsigned queued, unsigned max);
/* The accept queue of listening socket `fd`: how many connections wait in it, and its length
 * (TCP_INFO); 0 or -errno */
static int listen_queue(int fd, unsigned *queued, unsigned *max) {
  struct tcp_info ti;
  socklen_t tlen = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) < 0) return -errno;
  if (ti.tcpi_state != TCP_LISTEN) return -EINVAL;
  *queued = ti.tcpi_unacked;
  *max = ti.tcpi_sacked;
  return 0;
}
/* arrival order, by descriptor (-1: none): room_head came in first, room_tail last */
static int *room_prev, *room_next;
static int room_head = -1, room_tail = -1;
static int room_len, room_max, room_pos_max;
/* connections reset to make room since the last roomCheck (adopted ones; triage counts its own) */
static int room_pushed_out;
static double room_idle_ms, room_jitter_ms;
static char peek_buf[8192];

static double mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
/* 1: a complete request head is buffered (or 8 KiB without one: node:http answers 431);
 * 0: not yet; -1: the peer closed or the socket failed */
static int head_state(int fd) {
  ssize_t got = recv(fd, peek_buf, sizeof peek_buf, MSG_PEEK | MSG_DONTWAIT);
  if (got < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  if (got == 0) return -1;
  if (memmem(peek_buf, (size_t)got, "\r\n\r\n", 4) || memmem(peek_buf, (size_t)got, "\n\n", 2)) return 1;
  return got == (ssize_t)sizeof peek_buf ? 1 : 0;
}
static void reset_close(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}
/* takes entry i out of the room (swapping the last one in); the descriptor stays open. `keep`: it
 * goes on living (to node:http), so out of the epoll; one about to be closed leaves the epoll by
 * itself (the room holds the only descriptor of it): one system call less per connection reset */
static int room_take(int i, int keep) {
  int fd = room_fd[i];
  if (keep) epoll_ctl(room_ep, EPOLL_CTL_DEL, fd, NULL);
  room_pos[fd] = 0;
  int p = room_prev[fd], n = room_next[fd];
  if (p >= 0) room_next[p] = n;
  else room_head = n;
  if (n >= 0) room_prev[n] = p;
  else room_tail = p;
  room_len--;
  if (i != room_len) {
    room_fd[i] = room_fd[room_len];
    room_deadline[i] = room_deadline[room_len];
    room_peer[i] = room_peer[room_len];
    room_pos[room_fd[i]] = i + 1;
  }
  return fd;
}
/* 0: `fd` is in the room, 1: it is, and the one there the longest was reset to make room for it;
 * -1: no room at all (or it failed), `fd` untouched */
static int room_add(int fd) {
  if (room_ep < 0 || room_max <= 0 || fd >= room_pos_max) return -1;
  int out = 0;
  if (room_len >= room_max) {
    reset_close(room_take(room_pos[room_head] - 1, 0));
    out = 1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u32 = (uint32_t)fd};
  if (epoll_ctl(room_ep, EPOLL_CTL_ADD, fd, &ev) < 0) return -1;
  room_fd[room_len] = fd;
  peer_of(fd, &room_peer[room_len]);
  room_deadline[room_len] = mono_ms() + room_idle_ms + (room_jitter_ms > 0 ? (double)(rand() % (int)room_jitter_ms) : 0);
  room_pos[fd] = ++room_len;
  room_prev[fd] = room_tail;
  room_next[fd] = -1;
  if (room_tail >= 0) room_next[room_tail] = fd;
  else room_head = fd;
  room_tail = fd;
  return out;
}
/* roomInit(max, idleMs, jitterMs) -> 0 | -errno */
static napi_value js_room_init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (room_ep >= 0) return mk_i32(env, 0);
  int max = get_i32(env, a[0]);
  room_idle_ms = get_i32(env, a[1]);
  room_jitter_ms = get_i32(env, a[2]);
  struct rlimit rl;
  room_pos_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 21) ? (int)rl.rlim_cur : (1 << 21);
  room_fd = calloc((size_t)(max > 0 ? max : 1), sizeof *room_fd);
  room_deadline = calloc((size_t)(max > 0 ? max : 1), sizeof *room_deadline);
  room_peer = calloc((size_t)(max > 0 ? max : 1), sizeof *room_peer);
  room_pos = calloc((size_t)room_pos_max, sizeof *room_pos);
  room_prev = calloc((size_t)room_pos_max, sizeof *room_prev);
  room_next = calloc((size_t)room_pos_max, sizeof *room_next);
  if (!room_fd || !room_deadline || !room_peer || !room_pos || !room_prev || !room_next) return mk_i32(env, -ENOMEM);
  room_ep = epoll_create1(EPOLL_CLOEXEC);
  if (room_ep < 0) return mk_i32(env, -errno);
  room_max = max;
  srand((unsigned)getpid() ^ (unsigned)mono_ms());
  return mk_i32(env, 0);
}
/* triage(listenFd, maxReady) -> [reset, parked, fd...]: accepts the connections waiting when it
 * is called (the accept queue's length then, from TCP_INFO; at most TRIAGE_MAX, and for at most
 * TRIAGE_MS); those with a complete request head are returned for node:http (at most maxReady),
 * the others go to the waiting room (when it is full, the one there the longest is reset to make
 * room: `reset`). A probe that connected behind thousands is reached in one call, not one
 * event-loop turn each; those that arrive meanwhile (the ones reset, reconnecting) wait for the
 * next call, so the probe's answer does not wait behind them. */
#define TRIAGE_MAX 8192
#define TRIAGE_MS 10.0
static napi_value js_triage(napi_env env, napi_callback_info info) {
  int32_t lfd, max;
  if (!js_two_ints(env, info, &lfd, &max)) return NULL;
  napi_value arr;
  CHECK(napi_create_array(env, &arr));
  uint32_t n = 2;
  int reset = 0, parked = 0;
  int todo = 512;
  unsigned queued = 0, qmax = 0;
  if (listen_queue(lfd, &queued, &qmax) == 0) {
    todo = (int)queued + 1;
    queue_tick(lfd, queued, qmax);
  }
  if (todo > TRIAGE_MAX) todo = TRIAGE_MAX;
  double until = mono_ms() + TRIAGE_MS;
  for (int i = 0; i < todo && (int)n - 2 < max; i++) {
    if ((i & 127) == 127 && mono_ms() > until) break;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    int st = head_state(fd);
    if (st == 1) {
      napi_set_element(env, arr, n++, mk_i32(env, fd));
      continue;
    }
    if (st < 0) {
      close(fd);
      continue;
    }
    int r = room_add(fd);
    if (r >= 0) {
      parked++;
      reset += r;
    } else {
      reset_close(fd);
      reset++;
    }
  }
  napi_set_element(env, arr, 0, mk_i32(env, reset));
  napi_set_element(env, arr, 1, mk_i32(env, parked));
  return arr;
}
/* roomAdopt(fd) -> 1 (a complete head is there: keep it), 0 (a duplicate of it is in the room:
 * close the original), -1 (no room, or it failed) */
static napi_value js_room_adopt(napi_env env, napi_callback_info info) {
  int32_t fd, unused;
  if (!js_two_ints(env, info, &fd, &unused)) return NULL;
  int st = head_state(fd);
  if (st != 0) return mk_i32(env, st == 1 ? 1 : -1);
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return mk_i32(env, -1);
  int r = room_add(dup);
  if (r < 0) {
    close(dup);
    return mk_i32(env, -1);
  }
  room_pushed_out += r;
  return mk_i32(env, 0);
}
/* roomCheck(deadlines) -> [timedOut, remaining, pushedOut, fd...]: connections whose request head
 * has arrived (out of the room, for node:http); the closed ones are dropped, and with `deadlines`
 * those past their deadline too (reset); pushedOut: reset to make room for adopted ones since the
 * last call */
static napi_value js_room_check(napi_env env, napi_callback_info info) {
  int32_t deadlines, unused;
  if (!js_two_ints(env, info, &deadlines, &unused)) return NULL;
  napi_value arr;
  CHECK(napi_create_array(env, &arr));
  uint32_t n = 3;
  int reset = 0;
  if (room_ep >= 0 && room_len > 0) {
    struct epoll_event ev[256];
    int k;
    /* every head that arrived, not just 256: under churn the room's events outnumber that */
    do {
      k = epoll_wait(room_ep, ev, 256, 0);
      for (int j = 0; j < k; j++) {
        int fd = (int)ev[j].data.u32;
        if (fd >= room_pos_max || room_pos[fd] == 0) continue;
        int st = head_state(fd);
        if (st == 0) continue;
        room_take(room_pos[fd] - 1, st == 1);
        if (st == 1) napi_set_element(env, arr, n++, mk_i32(env, fd));
        else close(fd);
      }
    } while (k == 256);
    double now = deadlines ? mono_ms() : 0;
    for (int i = deadlines ? room_len - 1 : -1; i >= 0; i--) {
      if (room_deadline[i] > now) continue;
      reset_close(room_take(i, 0));
      reset++;
    }
  }
  unsigned queued = 0, qmax = 0;
  int lfd = peer_drop_lfd();
  if (lfd >= 0 && listen_queue(lfd, &queued, &qmax) == 0) queue_tick(lfd, queued, qmax);
  napi_set_element(env, arr, 0, mk_i32(env, reset));
  napi_set_element(env, arr, 1, mk_i32(env, room_len));
  napi_set_element(env, arr, 2, mk_i32(env, room_pushed_out));
  room_pushed_out = 0;
  return arr;
}
/* The accept queue of listening socket `lfd` as it is now (listen_queue). Over
 * half full, the peers that hold most of the waiting room (PEER_BURST_SHARE of it, and at least
 * PEER_BURST_MIN connections) are dropped too while it stays so: a burst (clients reset to make
 * room, coming back at once; a flood starting) would otherwise fill it, and past that the kernel
 * drops every SYN, a probe's too. Looked at again every PEER_BURST_MS at most. */
#define PEER_BURST_SHARE 16
#define PEER_BURST_MIN 8
#define PEER_BURST_MS 100.0
static void queue_tick(int lfd, unsigned q, unsigned max) {
  static double looked_at = -1e9;
  if (max && q * 2 >= max && room_len > 0 && mono_ms() - looked_at >= PEER_BURST_MS) {
    looked_at = mono_ms();
    struct peer top[PEER_DROP_MAX];
    int counts[PEER_DROP_MAX];
    int min = room_len / PEER_BURST_SHARE > PEER_BURST_MIN ? room_len / PEER_BURST_SHARE : PEER_BURST_MIN;
    int m = peer_top(room_peer, room_len, min, top, counts, PEER_DROP_MAX);
    peer_drop_burst(lfd, top, m);
  }
  peer_drop_tick(lfd, q, max);
}
/* acceptQueue(listenFd) -> [waiting, max] (TCP_INFO of a listening socket), or -errno */
static napi_value js_accept_queue(napi_env env, napi_callback_info info) {
  int32_t fd, unused;
  if (!js_two_ints(env, info, &fd, &unused)) return NULL;
  unsigned queued = 0, max = 0;
  int r = listen_queue(fd, &queued, &max);
  if (r < 0) return mk_i32(env, r);
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, mk_i32(env, (int32_t)queued));
  napi_set_element(env, arr, 1, mk_i32(env, (int32_t)max));
  return arr;
}
/* roomPeers(min) -> [peer, count, ...]: who holds at least `min` of the waiting room, most first
 * (at most PEER_DROP_MAX); a peer as "ADDRESS/BITS" */
static napi_value js_room_peers(napi_env env, napi_callback_info info) {
  int32_t min, unused;
  if (!js_two_ints(env, info, &min, &unused)) return NULL;
  napi_value arr;
  CHECK(napi_create_array(env, &arr));
  if (room_ep < 0) return arr;
  struct peer top[PEER_DROP_MAX];
  int counts[PEER_DROP_MAX];
  int m = peer_top(room_peer, room_len, min > 1 ? min : 1, top, counts, PEER_DROP_MAX);
  for (int i = 0; i < m; i++) {
    char buf[64];
    napi_value str;
    peer_format(&top[i], buf, sizeof buf);
    CHECK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &str));
    napi_set_element(env, arr, (uint32_t)(2 * i), str);
    napi_set_element(env, arr, (uint32_t)(2 * i + 1), mk_i32(env, counts[i]));
  }
  return arr;
}
/* peerDrop(listenFd, ["[~]ADDRESS/BITS"...]) -> 0 | -errno: the kernel drops SYNs from these peers,
 * those with "~" only while the accept queue is over half full (peers.c); an empty list ends it */
static napi_value js_peer_drop(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (argc < 2) return mk_i32(env, -EINVAL);
  uint32_t n = 0;
  if (napi_get_array_length(env, a[1], &n) != napi_ok || n > PEER_DROP_MAX) return mk_i32(env, -EINVAL);
  struct peer ps[PEER_DROP_MAX];
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    char buf[64];
    size_t len;
    CHECK(napi_get_element(env, a[1], i, &el));
    if (napi_get_value_string_utf8(env, el, buf, sizeof buf, &len) != napi_ok || peer_parse(buf, &ps[i]) < 0) return mk_i32(env, -EINVAL);
  }
  int r = peer_drop_set(get_i32(env, a[0]), ps, (int)n);
  unsigned queued = 0, qmax = 0;
  int lfd = get_i32(env, a[0]);
  if (r == 0 && listen_queue(lfd, &queued, &qmax) == 0) queue_tick(lfd, queued, qmax);
  return mk_i32(env, r);
}
/* peerDropState() -> [dropping now (0/1), times it began, ms it lasted in all] */
static napi_value js_peer_drop_state(napi_env env, napi_callback_info info) {
  int on, times;
  double ms;
  peer_drop_stats(&on, &times, &ms);
  napi_value arr, v;
  CHECK(napi_create_array_with_length(env, 3, &arr));
  napi_set_element(env, arr, 0, mk_i32(env, on));
  napi_set_element(env, arr, 1, mk_i32(env, times));
  CHECK(napi_create_double(env, ms, &v));
  napi_set_element(env, arr, 2, v);
  return arr;
}
/* The inherited descriptors still open as the same file: a number Node's start-up used and
 * closed may since have been reused by hainit (a listening socket), and must not leak. */
static napi_value js_inherited(napi_env env, napi_callback_info info) {
  napi_value arr;
  CHECK(napi_create_array(env, &arr));
  uint32_t n = 0;
  for (int i = 0; i < ninherited; i++) {
    struct stat st;
    if (fstat(inherited[i].fd, &st) < 0 || st.st_dev != inherited[i].dev || st.st_ino != inherited[i].ino) continue;
    napi_set_element(env, arr, n++, mk_i32(env, inherited[i].fd));
  }
  return arr;
}
/* pipe() -> [readFd, writeFd], both close-on-exec, or -errno */
static napi_value js_pipe(napi_env env, napi_callback_info info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return mk_i32(env, -errno);
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, mk_i32(env, fds[0]));
  napi_set_element(env, arr, 1, mk_i32(env, fds[1]));
  return arr;
}
/* sendNoWait(fd, buffer, offset) -> bytes sent or -errno: send(2) with MSG_DONTWAIT, so a socket
 * shared with the application (its stderr too) is written without blocking and without changing
 * the flags of the description the application writes through; MSG_NOSIGNAL: no SIGPIPE. */
static napi_value js_send_no_wait(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (argc < 3) return mk_i32(env, -EINVAL);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, a[1], &data, &len) != napi_ok) return mk_i32(env, -EINVAL);
  int32_t fd = get_i32(env, a[0]), off = get_i32(env, a[2]);
  if (off < 0 || (size_t)off > len) return mk_i32(env, -EINVAL);
  ssize_t n = send(fd, (char *)data + off, len - (size_t)off, MSG_DONTWAIT | MSG_NOSIGNAL);
  return mk_i32(env, n < 0 ? -errno : (int32_t)n);
}
/* exitNow(code): _exit(2). The caller flushes hainit's log queue first (bounded); skipping Node's
 * teardown (joining V8's threads, freeing the heap) saves start-to-exit time. */
static napi_value js_exit_now(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  _exit(get_i32(env, a[0]) & 0xff);
  return NULL;
}

/* The whole of a /proc file, or NULL (no /proc). */
static char *slurp(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n == cap) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  *len = n;
  return buf;
}

/* rawArgv() -> [Buffer] of NUL-separated entries exactly as the kernel holds them
 * (what hainit was exec'd with), or null without /proc. Node decodes process.argv and env as
 * UTF-8 and turns invalid bytes into U+FFFD; these keep them. */
static napi_value proc_list(napi_env env, const char *path) {
  size_t n = 0;
  char *buf = slurp(path, &n);
  napi_value out;
  if (!buf) {
    CHECK(napi_get_null(env, &out));
    return out;
  }
  CHECK(napi_create_array(env, &out));
  uint32_t k = 0;
  for (size_t i = 0; i < n;) {
    size_t len = strnlen(buf + i, n - i);
    napi_value b;
    void *data;
    if (napi_create_buffer_copy(env, len, buf + i, &data, &b) != napi_ok) break;
    napi_set_element(env, out, k++, b);
    i += len + 1;
  }
  free(buf);
  return out;
}
static napi_value js_raw_argv(napi_env env, napi_callback_info info) { return proc_list(env, "/proc/self/cmdline"); }
/* rawEnviron() -> /proc/self/environ as one latin1 string (a character a byte, NUL after each
 * entry), or null without /proc: one string where a Buffer an entry cost start-up 0.2 M
 * instructions (src/native/app-env.ts splits it and keeps the bytes). */
static napi_value js_raw_environ(napi_env env, napi_callback_info info) {
  size_t n = 0;
  char *buf = slurp("/proc/self/environ", &n);
  napi_value out;
  if (!buf) {
    CHECK(napi_get_null(env, &out));
    return out;
  }
  napi_status st = napi_create_string_latin1(env, buf, n, &out);
  free(buf);
  if (st != napi_ok) CHECK(napi_get_null(env, &out));
  return out;
}

/* [signals] of a set, bit N-1 for signal N */
static napi_value sig_list(napi_env env, uint64_t set) {
  napi_value arr;
  CHECK(napi_create_array(env, &arr));
  uint32_t n = 0;
  for (int s = 1; s < HAINIT_MAXSIG; s++)
    if ((set >> (s - 1)) & 1) napi_set_element(env, arr, n++, mk_i32(env, s));
  return arr;
}
/* startSignalState() -> {blocked: [signals], ignored: [signals]} as dist/hainit was started
 * with, or null when no entry stub left them (hainit run by a plain `node`). */
static napi_value js_start_state(napi_env env, napi_callback_info info) {
  uint64_t blocked, ignored;
  napi_value out;
  if (!startstate_get(&blocked, &ignored)) {
    CHECK(napi_get_null(env, &out));
    return out;
  }
  CHECK(napi_create_object(env, &out));
  napi_set_named_property(env, out, "blocked", sig_list(env, blocked));
  napi_set_named_property(env, out, "ignored", sig_list(env, ignored));
  return out;
}

/* signalsSkipped() -> [signals] whose handlers sig_install could not install */
static napi_value js_sig_skipped(napi_env env, napi_callback_info info) { return sig_list(env, sig_skipped()); }

static napi_value init(napi_env env, napi_value exports) {
  /* First, before anything installs a handler on signals 62-64. */
  startstate_take();
  snapshot_inherited();
  napi_property_descriptor props[] = {
    {"spawn", NULL, js_spawn, NULL, NULL, NULL, napi_default, NULL},
    {"reap", NULL, js_reap, NULL, NULL, NULL, napi_default, NULL},
    {"signalsInstall", NULL, js_sig_install, NULL, NULL, NULL, napi_default, NULL},
    {"signalsRead", NULL, js_sig_read, NULL, NULL, NULL, napi_default, NULL},
    {"signalsTarget", NULL, js_sig_target, NULL, NULL, NULL, napi_default, NULL},
    {"signalsRewrite", NULL, js_sig_rewrite, NULL, NULL, NULL, napi_default, NULL},
    {"signalsMode", NULL, js_sig_mode, NULL, NULL, NULL, napi_default, NULL},
    {"sendNoWait", NULL, js_send_no_wait, NULL, NULL, NULL, napi_default, NULL},
    {"signalsDropped", NULL, js_sig_dropped, NULL, NULL, NULL, napi_default, NULL},
    {"signalsWritten", NULL, js_sig_written, NULL, NULL, NULL, napi_default, NULL},
    {"kill", NULL, js_kill, NULL, NULL, NULL, napi_default, NULL},
    {"childStopped", NULL, js_child_stopped, NULL, NULL, NULL, napi_default, NULL},
    {"stopSelf", NULL, js_stop_self, NULL, NULL, NULL, napi_default, NULL},
    {"terminalForeground", NULL, js_tty_foreground, NULL, NULL, NULL, napi_default, NULL},
    {"subreaper", NULL, js_subreaper, NULL, NULL, NULL, napi_default, NULL},
    {"pdeathSignal", NULL, js_pdeathsig, NULL, NULL, NULL, napi_default, NULL},
    {"inheritedFds", NULL, js_inherited, NULL, NULL, NULL, napi_default, NULL},
    {"exitNow", NULL, js_exit_now, NULL, NULL, NULL, napi_default, NULL},
    {"pipe", NULL, js_pipe, NULL, NULL, NULL, napi_default, NULL},
    {"signalsSkipped", NULL, js_sig_skipped, NULL, NULL, NULL, napi_default, NULL},
    {"startSignalState", NULL, js_start_state, NULL, NULL, NULL, napi_default, NULL},
    {"rawArgv", NULL, js_raw_argv, NULL, NULL, NULL, napi_default, NULL},
    {"rawEnviron", NULL, js_raw_environ, NULL, NULL, NULL, napi_default, NULL},
    {"receiveBuffer", NULL, js_rcvbuf, NULL, NULL, NULL, napi_default, NULL},
    {"triage", NULL, js_triage, NULL, NULL, NULL, napi_default, NULL},
    {"deferAccept", NULL, js_defer_accept, NULL, NULL, NULL, napi_default, NULL},
    {"roomInit", NULL, js_room_init, NULL, NULL, NULL, napi_default, NULL},
    {"roomAdopt", NULL, js_room_adopt, NULL, NULL, NULL, napi_default, NULL},
    {"roomCheck", NULL, js_room_check, NULL, NULL, NULL, napi_default, NULL},
    {"roomPeers", NULL, js_room_peers, NULL, NULL, NULL, napi_default, NULL},
    {"acceptQueue", NULL, js_accept_queue, NULL, NULL, NULL, napi_default, NULL},
    {"peerDrop", NULL, js_peer_drop, NULL, NULL, NULL, napi_default, NULL},
    {"peerDropState", NULL, js_peer_drop_state, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
