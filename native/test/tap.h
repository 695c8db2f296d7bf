/* tap.h — a TCP forwarder for test_three.c, placed between the relay and host2 so the test
 * sees every byte the relay passes on (the library keeps no test-only data path): it scans
 * host1 -> host2 bytes for a plaintext marker, counts them, and can reset the first
 * connection that carries more than drop_after bytes (a pair dropped mid-transfer).
 * Test programs only. */
#ifndef ESCP_TEST_TAP_H
#define ESCP_TEST_TAP_H
#include <poll.h>
#include <stdatomic.h>
#include "xfer.h"

#define MARK "escp-relay-plaintext-marker-0123" /* 32 bytes; the tap looks for 16 of them */

/* ---- the tap: a TCP forwarder between the relay and host2 ---- */

typedef struct tap {
  int lfd, port, target, n;   /* listens on port, forwards to 127.0.0.1:target, n connections */
  uint64_t drop_after;        /* > 0: reset the first connection to carry more than this */
  pthread_t acc;
  _Atomic uint64_t fwd;       /* bytes seen host1 -> host2 */
  atomic_int found, dropped;  /* the marker was seen; a connection was dropped */
  atomic_int live;            /* forwarding threads running */
} tap;

typedef struct tconn { tap *t; int a, b; } tconn; /* a: from the relay, b: to host2 */

static void reset_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static int write_all(int fd, const uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
    if (r <= 0) return -1;
    b += r, n -= (size_t)r;
  }
  return 0;
}

/* Forward both ways; scan host1 -> host2 bytes for the marker across read boundaries. */
static void *tap_fwd(void *p) {
  tconn *c = p;
  tap *t = c->t;
  uint8_t *buf = malloc(15 + 65536), *data = buf + 15;
  CHECK(buf);
  size_t keep = 0; /* bytes of the previous read kept in front of data (<= 15) */
  uint64_t mine = 0;
  int open_in[2] = {1, 1}, bad = 0;
  while ((open_in[0] || open_in[1]) && !bad) {
    struct pollfd pf[2] = {{open_in[0] ? c->a : -1, POLLIN, 0}, {open_in[1] ? c->b : -1, POLLIN, 0}};
    if (poll(pf, 2, 20000) <= 0) break; /* the sessions' keepalives come every few seconds */
    for (int x = 0; x < 2 && !bad; x++) {
      if (!pf[x].revents) continue;
      int from = x ? c->b : c->a, to = x ? c->a : c->b;
      ssize_t r = recv(from, data, 65536, 0);
      if (r < 0) bad = 1;
      else if (r == 0) open_in[x] = 0, shutdown(to, SHUT_WR);
      else if (write_all(to, data, (size_t)r) < 0) bad = 1;
      if (r <= 0 || x) continue;
      if (memmem(data - keep, keep + (size_t)r, MARK, 16)) atomic_store(&t->found, 1);
      keep = r >= 15 ? 15 : (size_t)r; /* a marker split by this boundary is found next time */
      memmove(data - keep, data + r - keep, keep);
      atomic_fetch_add(&t->fwd, (uint64_t)r);
      mine += (uint64_t)r;
      int no = 0;
      if (t->drop_after && mine > t->drop_after && atomic_compare_exchange_strong(&t->dropped, &no, 1)) bad = 2;
    }
  }
  if (bad) reset_close(c->a), reset_close(c->b);
  else close(c->a), close(c->b);
  free(buf);
  free(c);
  atomic_fetch_sub(&t->live, 1);
  return NULL;
}

static void *tap_accept(void *p) {
  tap *t = p;
  for (int k = 0; k < t->n; k++) {
    tconn *c = malloc(sizeof *c);
    CHECK(c);
    c->t = t;
    c->a = accept(t->lfd, NULL, NULL);
    CHECK(c->a >= 0);
    c->b = raw_connect("127.0.0.1", t->target);
    struct timeval tv = {0, 0}; /* raw_connect's receive timeout: poll bounds the wait here */
    setsockopt(c->b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_t th;
    atomic_fetch_add(&t->live, 1);
    CHECK(pthread_create(&th, NULL, tap_fwd, c) == 0);
    pthread_detach(th);
  }
  return NULL;
}

static void tap_start(tap *t, int target, int n, uint64_t drop_after) {
  memset(t, 0, sizeof *t);
  t->target = target, t->n = n, t->drop_after = drop_after;
  t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CHECK(bind(t->lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(t->lfd, 64) == 0);
  CHECK(getsockname(t->lfd, (struct sockaddr *)&a, &al) == 0);
  t->port = ntohs(a.sin_port);
  CHECK(pthread_create(&t->acc, NULL, tap_accept, t) == 0);
}

static void tap_stop(tap *t) { /* once both sessions are gone every forwarder ends */
  pthread_join(t->acc, NULL);
  for (time_t t0 = time(NULL); atomic_load(&t->live) > 0; nap()) CHECK(time(NULL) - t0 < 10);
  close(t->lfd);
}

#endif
