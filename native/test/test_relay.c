/* test_relay.c — the relay splicer on raw TCP, in one process: two plain listeners stand in
 * for host1 and host2, the relay connects N connections to each and splices them. Checked:
 * pairs are 1:1 (every host1 connection reaches exactly one host2 connection, both ways),
 * bytes arrive intact and in order, a FIN crosses as a half-close (the other direction keeps
 * flowing), a reset on one side resets the other side of that pair only, stop resets what
 * is left, the counters add up, and misuse returns a status. Sessions over the relay are
 * test_three.c's. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "escp.h"

#include "check.h"

#define N 5                    /* pairs (T + 1 with T = 4) */
#define PAYLOAD (3u << 20)     /* bytes each host1 connection sends: several pipe loads */

static void nap(void) { /* the JS timer between polls */
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
}

static int listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 64) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static int accept_one(int lfd) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  CHECK(fd >= 0);
  struct timeval tv = {10, 0}; /* a relay that stops forwarding fails the test, never hangs it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

static void send_all(int fd, const uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
    CHECK(r > 0);
    b += r, n -= (size_t)r;
  }
}

static void recv_all(int fd, uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, b, n, 0);
    CHECK(r > 0);
    b += r, n -= (size_t)r;
  }
}

typedef struct sender { int fd; const uint8_t *b; size_t n; } sender;
static void *send_then_fin(void *p) { /* host1's side, while the test reads host2's */
  sender *a = p;
  send_all(a->fd, a->b, a->n);
  CHECK(shutdown(a->fd, SHUT_WR) == 0);
  return NULL;
}

static void expect_eof(int fd) {
  uint8_t x;
  CHECK_EQ(recv(fd, &x, 1, 0), 0);
}

static void expect_reset(int fd) {
  uint8_t b[4096];
  ssize_t r;
  while ((r = recv(fd, b, sizeof b, 0)) > 0) {
  }
  CHECK(r < 0 && errno == ECONNRESET); /* a reset, not a clean-looking FIN */
}

static uint64_t ctr(void *r, int i) {
  uint64_t c[ESCP_R_COUNT];
  CHECK_EQ(escp_relay_stats_read(r, c, ESCP_R_COUNT), ESCP_R_COUNT);
  return c[i];
}

/* Wait (<= 10 s) until no pair is up. */
static void pairs_ended(void *r) {
  for (time_t t0 = time(NULL); ctr(r, ESCP_R_PAIRS_UP) > 0; nap()) CHECK(time(NULL) - t0 < 10);
}

typedef struct rig { void *r; int l1, l2, a[N], b[N]; } rig; /* a: host1's ends, b: host2's */

/* A started relay between two fresh listeners, the host2 ends of pair k matched to the host1
 * ends by a 4-byte tag each host1 end sends first (the relay's k is not visible outside). */
static void rig_up(rig *g) {
  int p1, p2;
  g->l1 = listener(&p1);
  g->l2 = listener(&p2);
  g->r = escp_relay_new(5000);
  CHECK(g->r);
  CHECK_EQ(escp_relay_connect(g->r, "127.0.0.1", p1, "127.0.0.1", p2, N), ESCP_OK);
  CHECK_EQ(escp_relay_connect(g->r, "127.0.0.1", p1, "127.0.0.1", p2, N), ESCP_E_STATE);
  CHECK_EQ(escp_relay_start(g->r), ESCP_OK);
  CHECK_EQ(escp_relay_start(g->r), ESCP_E_STATE);
  CHECK_EQ(ctr(g->r, ESCP_R_PAIRS_UP), N);
  int b[N];
  for (int k = 0; k < N; k++) g->a[k] = accept_one(g->l1);
  for (int k = 0; k < N; k++) b[k] = accept_one(g->l2);
  for (int k = 0; k < N; k++) {
    uint32_t tag = 0x7a000000u + (uint32_t)k;
    send_all(g->a[k], (const uint8_t *)&tag, sizeof tag);
  }
  int seen = 0;
  for (int k = 0; k < N; k++) { /* every tag exactly once: the pairing is 1:1 */
    uint32_t tag;
    recv_all(b[k], (uint8_t *)&tag, sizeof tag);
    int j = (int)(tag - 0x7a000000u);
    CHECK(j >= 0 && j < N && !(seen & (1 << j)));
    seen |= 1 << j;
    g->b[j] = b[k];
  }
}

static void rig_down(rig *g) {
  escp_relay_free(g->r);
  close(g->l1);
  close(g->l2);
}

/* Bytes both ways, in order; host1 half-closes first and host2 still answers after it;
 * then host2 closes: every pair ends DONE, the counters match what was sent. */
static void intact_and_half_close(void) {
  fprintf(stderr, "-- %d pairs: bytes both ways, half-close forwarded, pairs end DONE\n", N);
  rig g;
  rig_up(&g);
  uint8_t *out = malloc(PAYLOAD), *in = malloc(PAYLOAD);
  CHECK(out && in);
  for (uint32_t i = 0; i < PAYLOAD; i++) out[i] = (uint8_t)(i * 2654435761u >> 13);
  for (int k = 0; k < N; k++) {
    out[0] = (uint8_t)k;
    sender a = {g.a[k], out, PAYLOAD};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, send_then_fin, &a) == 0);
    recv_all(g.b[k], in, PAYLOAD);
    pthread_join(th, NULL);
    CHECK(memcmp(in, out, PAYLOAD) == 0);
    expect_eof(g.b[k]); /* host1's FIN arrived as host2's EOF, after the data */
    send_all(g.b[k], out, 1000); /* the other direction still flows */
    recv_all(g.a[k], in, 1000);
    CHECK(memcmp(in, out, 1000) == 0);
  }
  CHECK_EQ(ctr(g.r, ESCP_R_PAIRS_UP), N); /* half-closed pairs are still up */
  for (int k = 0; k < N; k++) close(g.b[k]);
  for (int k = 0; k < N; k++) expect_eof(g.a[k]);
  pairs_ended(g.r);
  CHECK_EQ(ctr(g.r, ESCP_R_PAIRS_DONE), N);
  CHECK_EQ(ctr(g.r, ESCP_R_PAIRS_FAILED), 0);
  CHECK_EQ(ctr(g.r, ESCP_R_BYTES_12), N * (4 + (uint64_t)PAYLOAD));
  CHECK_EQ(ctr(g.r, ESCP_R_BYTES_21), N * 1000);
  char d[128];
  CHECK_EQ(escp_relay_last_error(g.r, d, sizeof d), 0);
  CHECK_EQ(escp_relay_join(g.r), ESCP_OK); /* no pair left: join needs no stop */
  for (int k = 0; k < N; k++) close(g.a[k]);
  rig_down(&g);
  free(out);
  free(in);
}

/* Reset one side of one pair: the other side of that pair is reset too (in either
 * direction of the relay); the other pairs carry on; stop resets the rest. */
static void resets(void) {
  fprintf(stderr, "-- a reset crosses the relay (both ways), other pairs live on, stop resets the rest\n");
  rig g;
  rig_up(&g);
  struct linger lg = {1, 0};
  setsockopt(g.a[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(g.a[1]); /* host1 end resets */
  expect_reset(g.b[1]);
  setsockopt(g.b[3], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  send_all(g.b[3], (const uint8_t *)"unread", 6);
  close(g.b[3]); /* host2 end resets */
  expect_reset(g.a[3]);
  for (time_t t0 = time(NULL); ctr(g.r, ESCP_R_PAIRS_FAILED) < 2; nap()) CHECK(time(NULL) - t0 < 10);
  char d[128];
  CHECK(escp_relay_last_error(g.r, d, sizeof d) > 0 && strstr(d, "pair ") && strstr(d, "reset"));
  send_all(g.a[0], (const uint8_t *)"still", 5); /* pair 0 is unaffected */
  uint8_t b[5];
  recv_all(g.b[0], b, 5);
  CHECK(memcmp(b, "still", 5) == 0);
  CHECK_EQ(escp_relay_join(g.r), ESCP_E_STATE); /* pairs still up: stop first */
  CHECK_EQ(escp_relay_stop(g.r), ESCP_OK);
  CHECK_EQ(escp_relay_join(g.r), ESCP_OK);
  CHECK_EQ(ctr(g.r, ESCP_R_PAIRS_UP), 0);
  CHECK_EQ(ctr(g.r, ESCP_R_PAIRS_FAILED), N);
  for (int k = 0; k < N; k++) {
    if (k == 1 || k == 3) continue;
    expect_reset(g.a[k]);
    expect_reset(g.b[k]);
  }
  for (int k = 0; k < N; k++) {
    if (k != 1) close(g.a[k]);
    if (k != 3) close(g.b[k]);
  }
  rig_down(&g);
}

/* A relay that never gets its pairs: bad arguments, refused ports, a stop during connect. */
static void misuse(void) {
  fprintf(stderr, "-- misuse: bounds, states, refused connections\n");
  CHECK(escp_relay_new(999) == NULL);
  CHECK(escp_relay_new(86400001) == NULL);
  escp_relay_free(NULL);
  uint64_t c[ESCP_R_COUNT];
  char d[160];
  CHECK_EQ(escp_relay_stats_read(NULL, c, 1), ESCP_E_INVAL);
  CHECK_EQ(escp_relay_start(NULL), ESCP_E_INVAL);
  void *r = escp_relay_new(2000);
  CHECK(r);
  CHECK_EQ(escp_relay_start(r), ESCP_E_STATE); /* not connected */
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", 1, "", 1, 1), ESCP_E_INVAL);
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", 0, "127.0.0.1", 1, 1), ESCP_E_INVAL);
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", 1, "127.0.0.1", 1, 0), ESCP_E_INVAL);
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", 1, "127.0.0.1", 1, 66), ESCP_E_INVAL);
  CHECK_EQ(escp_relay_stats_read(r, c, -1), ESCP_E_INVAL);
  int p1, p2;
  int l1 = listener(&p1), l2 = listener(&p2);
  close(l2); /* nothing listens at p2 now: refused */
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", p1, "127.0.0.1", p2, 3), ESCP_E_CONNECT);
  CHECK(escp_relay_last_error(r, d, sizeof d) > 0 && strstr(d, "host2") && strstr(d, "refused"));
  CHECK_EQ(escp_relay_connect(r, "no-such-host.invalid", p1, "127.0.0.1", p1, 1), ESCP_E_CONNECT);
  CHECK_EQ(escp_relay_stats_read(r, c, ESCP_R_COUNT), ESCP_R_COUNT);
  CHECK_EQ(c[ESCP_R_PAIRS_UP] + c[ESCP_R_PAIRS_DONE] + c[ESCP_R_PAIRS_FAILED], 0);
  CHECK_EQ(escp_relay_stop(r), ESCP_OK);
  CHECK_EQ(escp_relay_stop(r), ESCP_OK);
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", p1, "127.0.0.1", p1, 1), ESCP_E_STATE); /* stopped */
  CHECK_EQ(escp_relay_join(r), ESCP_OK);
  escp_relay_free(r);
  r = escp_relay_new(2000); /* connected, never started: free resets and closes */
  CHECK_EQ(escp_relay_connect(r, "127.0.0.1", p1, "127.0.0.1", p1, 2), ESCP_OK);
  escp_relay_free(r);
  /* 4 never started, plus up to 3 of the refused attempt (those whose handshake completed
   * before the reset): every one is reset, none ends cleanly. */
  int got = 0;
  for (struct pollfd pf = {l1, POLLIN, 0}; poll(&pf, 1, 1000) == 1; got++) {
    int fd = accept_one(l1);
    expect_reset(fd);
    close(fd);
  }
  CHECK(got >= 4 && got <= 7);
  close(l1);
}

int main(void) {
  misuse();
  intact_and_half_close();
  resets();
  fprintf(stderr, "test_relay: OK\n");
  return 0;
}
