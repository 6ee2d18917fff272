/* Peers of the probe endpoint, and the kernel-side limit on the few that hold most of it (issue 14).
 *
 * Past what hainit can hold, the connections it has no room for live in the kernel: in the listen
 * socket's accept queue (4,096 at most) or on their way back into it after a reset. Once the queue
 * is full the kernel drops every SYN, a probe's among them, until hainit takes one out: the probe
 * then comes back a second later (TCP's first retransmission), and later still under a long flood.
 * A socket filter (classic BPF, on the listening socket) drops the SYNs of the peers that hold
 * most of the waiting room instead, so that theirs wait in their own retransmissions and the
 * queue keeps room for everyone else. "Hard" peers are dropped for as long as they are listed;
 * "soft" ones (and those of a burst) only while the queue is more than half full, until it is under
 * an eighth again: at those moments the kernel would soon drop every SYN anyway, so a probe that
 * shares its address with a flood (a NAT) loses nothing it would have had without the filter.
 *
 * A peer is an IPv4 address, all of 127.0.0.0/8 (a process on the loopback picks any source in it
 * at will), or an IPv6 /64. Which peers, and for how long, is decided by the caller
 * (src/health/server.ts, limitPeers; native/addon.c, queue_tick); here is only the mechanism.
 * Accepted connections inherit the listener's filter: it looks only at SYNs without ACK, which an
 * established connection never receives, and lets the rest through. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "hainit.h"

/* Classic BPF, as the kernel's uapi <linux/filter.h> defines it (a stable ABI), spelt out here:
 * musl's toolchain and Alpine without linux-headers have no kernel headers. */
struct sock_filter {
  uint16_t code;
  uint8_t jt, jf;
  uint32_t k;
};
struct sock_fprog {
  unsigned short len;
  struct sock_filter *filter;
};
enum {
  BPF_LD = 0x00, BPF_ALU = 0x04, BPF_JMP = 0x05, BPF_RET = 0x06,
  BPF_W = 0x00, BPF_B = 0x10, BPF_ABS = 0x20, BPF_K = 0x00,
  BPF_AND = 0x50, BPF_RSH = 0x70, BPF_JA = 0x00, BPF_JEQ = 0x10,
};
#define SKF_NET_OFF (-0x100000)
#define BPF_STMT(code, k) {(uint16_t)(code), 0, 0, (k)}
#define BPF_JUMP(code, k, jt, jf) {(uint16_t)(code), (jt), (jf), (k)}
#ifndef SO_ATTACH_FILTER
#define SO_ATTACH_FILTER 26
#define SO_DETACH_FILTER 27
#endif

int peer_of(int fd, struct peer *p) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(p, 0, sizeof *p);
  if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET6) {
    const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    uint32_t w[4];
    memcpy(w, a->s6_addr, 16);
    if (IN6_IS_ADDR_V4MAPPED(a)) {
      p->w[0] = ntohl(w[3]);
    } else {
      p->v6 = 1;
      p->bits = 64;
      p->w[0] = ntohl(w[0]);
      p->w[1] = ntohl(w[1]);
      return 0;
    }
  } else if (ss.ss_family == AF_INET) {
    p->w[0] = ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);
  } else {
    return -EAFNOSUPPORT;
  }
  p->bits = (p->w[0] >> 24) == 127 ? 8 : 32;
  if (p->bits == 8) p->w[0] = 0x7f000000;
  return 0;
}

int peer_same(const struct peer *a, const struct peer *b) {
  return a->v6 == b->v6 && a->bits == b->bits && a->w[0] == b->w[0] && a->w[1] == b->w[1];
}

int peer_format(const struct peer *p, char *buf, size_t len) {
  char a[INET6_ADDRSTRLEN];
  if (p->v6) {
    uint32_t w[4] = {htonl(p->w[0]), htonl(p->w[1]), 0, 0};
    inet_ntop(AF_INET6, w, a, sizeof a);
  } else {
    uint32_t w = htonl(p->w[0]);
    inet_ntop(AF_INET, &w, a, sizeof a);
  }
  return snprintf(buf, len, "%s/%d", a, p->bits);
}

/* "ADDRESS/BITS" as peer_format writes it; 0 or -EINVAL */
int peer_parse(const char *s, struct peer *p) {
  char a[INET6_ADDRSTRLEN + 4];
  int soft = *s == '~';
  s += soft;
  const char *slash = strchr(s, '/');
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (!slash || n >= sizeof a) return -EINVAL;
  memcpy(a, s, n);
  a[n] = 0;
  memset(p, 0, sizeof *p);
  uint32_t w[4];
  if (inet_pton(AF_INET, a, w) == 1) {
    p->w[0] = ntohl(w[0]);
  } else if (inet_pton(AF_INET6, a, w) == 1) {
    p->v6 = 1;
    p->w[0] = ntohl(w[0]);
    p->w[1] = ntohl(w[1]);
  } else {
    return -EINVAL;
  }
  int bits = atoi(slash + 1);
  if (p->v6 ? bits != 64 : bits != 8 && bits != 32) return -EINVAL;
  p->bits = (uint8_t)bits;
  p->soft = (uint8_t)soft;
  return 0;
}

/* The peers holding at least `min` of `n` connections, most first: at most `max` of them. */
#define SLOTS 32768
static struct { struct peer p; int count; } slot[SLOTS];
int peer_top(const struct peer *conns, int n, int min, struct peer *out, int *counts, int max) {
  memset(slot, 0, sizeof slot);
  for (int i = 0; i < n; i++) {
    const struct peer *p = &conns[i];
    uint32_t h = (p->w[0] * 2654435761u) ^ (p->w[1] * 40503u) ^ p->v6;
    for (int k = 0; k < 64; k++) {
      int j = (int)((h + (uint32_t)k) & (SLOTS - 1));
      if (slot[j].count == 0) slot[j].p = *p;
      else if (!peer_same(&slot[j].p, p)) continue;
      slot[j].count++;
      break;
    }
  }
  int m = 0;
  for (int j = 0; j < SLOTS; j++) {
    int c = slot[j].count;
    if (c < min || (m == max && counts[max - 1] >= c)) continue;
    int at = m < max ? m++ : max - 1;
    while (at > 0 && counts[at - 1] < c) {
      out[at] = out[at - 1];
      counts[at] = counts[at - 1];
      at--;
    }
    out[at] = slot[j].p;
    counts[at] = c;
  }
  return m;
}

/* The filters: accept everything but a SYN without ACK from one of the peers. The socket filter
 * of a TCP socket sees the packet from its TCP header on (flags at byte 13); the IP header is
 * reached through SKF_NET_OFF. Two programs: the hard peers alone, and every peer (the soft ones
 * and those of a burst too), for while the accept queue is over half full. */
struct prog {
  struct sock_filter f[10 + 4 * 2 * PEER_DROP_MAX];
  unsigned short len;
};
static struct prog hard, all;
static int sock = -1; /* the listening socket (one per process: hainit has one endpoint) */
static struct peer listed[PEER_DROP_MAX], burst[PEER_DROP_MAX];
static int nlisted, nburst, has_hard;
static struct prog *attached; /* the one on the socket now, or NULL */
static int episodes;
static double on_since, on_ms;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void build(struct prog *pr, const struct peer *ps, int n) {
  struct sock_filter *f = pr->f;
  int v4 = 0, v6 = 0;
  for (int i = 0; i < n; i++) {
    if (ps[i].v6) v6++;
    else v4++;
  }
  /* layout: header (6), v4 tests (3 each), ja, v6 tests (4 each), accept, drop */
  int accept_at = 6 + 3 * v4 + 1 + 4 * v6, drop_at = accept_at + 1;
  *f++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13);
  *f++ = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, TH_SYN | TH_ACK);
  *f++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TH_SYN, 0, (uint8_t)(accept_at - 3));
  *f++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, (uint32_t)SKF_NET_OFF);
  *f++ = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4);
  *f++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, (uint8_t)(3 * v4 + 1));
  for (int i = 0; i < n; i++) {
    if (ps[i].v6) continue;
    int at = (int)(f - pr->f);
    *f++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12);
    *f++ = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ps[i].bits == 8 ? 0xff000000u : 0xffffffffu);
    *f++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ps[i].w[0], (uint8_t)(drop_at - at - 3), 0);
  }
  *f = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)(accept_at - (int)(f - pr->f) - 1));
  f++;
  for (int i = 0; i < n; i++) {
    if (!ps[i].v6) continue;
    int at = (int)(f - pr->f);
    *f++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 8);
    *f++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ps[i].w[0], 0, 2);
    *f++ = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12);
    *f++ = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ps[i].w[1], (uint8_t)(drop_at - at - 4), 0);
  }
  *f++ = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
  *f++ = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
  pr->len = (unsigned short)(f - pr->f);
}

/* puts `pr` on the socket (NULL: none); 0 or -errno */
static int put(struct prog *pr) {
  if (pr) {
    struct sock_fprog fp = {.len = pr->len, .filter = pr->f};
    if (setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) < 0) return -errno;
    if (!attached) {
      episodes++;
      on_since = now_ms();
    }
  } else if (attached) {
    int unused = 0; /* the kernel wants an int's length for every socket option */
    if (setsockopt(sock, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) < 0 && errno != ENOENT) return -errno;
    on_ms += now_ms() - on_since;
  }
  attached = pr;
  return 0;
}

/* both programs from the lists, and the one in force put on again */
static int rebuild(int lfd) {
  if (sock >= 0 && sock != lfd) put(NULL);
  sock = lfd;
  struct peer hs[PEER_DROP_MAX] = {0}, every[2 * PEER_DROP_MAX] = {0};
  int nh = 0, n = 0;
  for (int i = 0; i < nlisted; i++) {
    if (!listed[i].soft) hs[nh++] = listed[i];
    every[n++] = listed[i];
  }
  for (int i = 0; i < nburst; i++) {
    int seen = 0;
    for (int j = 0; j < nlisted; j++) seen |= peer_same(&burst[i], &listed[j]);
    if (!seen) every[n++] = burst[i];
  }
  has_hard = nh > 0;
  build(&hard, hs, nh);
  build(&all, every, n);
  if (n == 0) return put(NULL);
  return put(attached == &all ? &all : has_hard ? &hard : NULL);
}

int peer_drop_set(int lfd, const struct peer *ps, int n) {
  if (n > PEER_DROP_MAX || n < 0) return -E2BIG;
  memcpy(listed, ps, (size_t)n * sizeof *ps);
  nlisted = n;
  return rebuild(lfd);
}

int peer_drop_burst(int lfd, const struct peer *ps, int n) {
  if (n > PEER_DROP_MAX || n < 0) return -E2BIG;
  memcpy(burst, ps, (size_t)n * sizeof *ps);
  nburst = n;
  return rebuild(lfd);
}

void peer_drop_tick(int lfd, unsigned queued, unsigned max) {
  if (lfd != sock || max == 0 || nlisted + nburst == 0) return;
  /* every peer while the queue is over half full, and until it is under an eighth again */
  int fill = queued * 2 >= max || (attached == &all && queued * 8 > max);
  struct prog *want = fill ? &all : has_hard ? &hard : NULL;
  if (want != attached) put(want);
}

int peer_drop_lfd(void) { return sock; }

void peer_drop_stats(int *on, int *times, double *ms) {
  *on = attached != NULL;
  *times = episodes;
  *ms = on_ms + (attached ? now_ms() - on_since : 0);
}
