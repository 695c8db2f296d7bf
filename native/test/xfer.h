/* xfer.h — the file-transfer harness shared by the session-level C tests (test_session.c,
 * test_relay.c, test_archive.c, test_resume.c, test_bundle.c; test_accept.c takes its event wait and
 * connector thread): a file set of edge-case sizes, the event pump that plays the TS control
 * plane's part (FILE_DONE on the sender -> rx_file_expect with the sender's digest), byte
 * and digest verification, the control-message exchange and the teardown checks. Every
 * function works whichever side listens. Test programs only; never in the library. */
#ifndef ESCP_TEST_XFER_H
#define ESCP_TEST_XFER_H
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "escp.h"
#include "frame.h" /* rogue peers and strangers speak the wire protocol by hand */

#include "check.h"

/* Not every program uses every helper. */
#define XFN static __attribute__((unused))

#define B 65536u
#define NSMALL 300
#define MAXF (NSMALL + 16)

typedef struct cfg {
  const char *name, *addr;
  int threads, direct, dummy, sparse, checksum, strangers, wrongkey, bad_files;
  int sender_listens; /* the ESCP_ROLE_SENDER session listens, the receiver connects */
} cfg;

typedef struct tfile {
  uint64_t fino, size, announced;
  char src[256], dst[256]; /* dst: relative to the receiver's destination root (dir) */
  int expect_err;     /* sender reports FILE_ERROR (ESCP_E_OPEN / ESCP_E_SHORT) */
  int sink;           /* a refused name: the receiver discards its blocks (rel NULL) */
  int tx_done, rx_done;
  uint8_t tx_dg[32], rx_dg[32];
} tfile;

static uint64_t rng __attribute__((unused)) = 0x9E3779B97F4A7C15ull;
XFN uint64_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

XFN void nap(void) { /* stands in for the JS timer between polls; never in the library */
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
}

/* The next event of h, waiting for it (at most 30 s). */
XFN escp_event next_ev(void *h) {
  escp_event ev;
  time_t t0 = time(NULL);
  while (escp_event_poll(h, &ev, 1) == 0) {
    CHECK(time(NULL) - t0 < 30);
    nap();
  }
  return ev;
}

/* A test's scratch tree: scratch_init(tag) makes /tmp/escp-test-<tag>-XXXXXX (removed at
 * exit, links not followed); P(...) is base/<formatted> in one of a few rotating buffers. */
static char base[64] __attribute__((unused));
static int scratch_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(p);
  return 0;
}
static void scratch_remove(void) {
  if (base[0]) nftw(base, scratch_rm, 16, FTW_DEPTH | FTW_PHYS);
}
XFN void scratch_init(const char *tag) {
  snprintf(base, sizeof base, "/tmp/escp-test-%s-XXXXXX", tag);
  CHECK(mkdtemp(base));
  atexit(scratch_remove);
}
XFN const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
XFN const char *P(const char *fmt, ...) {
  static char buf[8][600];
  static int next;
  char *b = buf[next++ % 8];
  int n = snprintf(b, 600, "%s/", base);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, (size_t)(600 - n), fmt, ap);
  va_end(ap);
  return b;
}

/* A sender and a receiver session of one test. */
typedef struct sess { void *tx, *rx; } sess;

/* The sender stops first, the receiver's streams wind down, then it stops; both are freed. */
XFN void sess_down(sess *p) {
  CHECK_EQ(escp_session_stop(p->tx), ESCP_OK);
  CHECK_EQ(escp_session_join(p->tx), ESCP_OK);
  uint64_t sr[ESCP_S_COUNT];
  for (time_t t0 = time(NULL); escp_stats_read(p->rx, sr, ESCP_S_COUNT) && sr[ESCP_S_STREAMS_UP] > 0;) {
    CHECK(time(NULL) - t0 < 10);
    nap();
  }
  CHECK_EQ(escp_session_stop(p->rx), ESCP_OK);
  CHECK_EQ(escp_session_join(p->rx), ESCP_OK);
  escp_session_free(p->tx);
  escp_session_free(p->rx);
}

XFN void write_file(const char *path, uint64_t size, int zeros) {
  uint8_t *b = malloc(size + 1);
  CHECK(b);
  for (uint64_t i = 0; i < size; i++) b[i] = zeros ? 0 : (uint8_t)rnd();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK(write(fd, b, size) == (ssize_t)size);
  close(fd);
  free(b);
}

/* ---- connection helpers ---- */

typedef struct conn_arg { void *h; const char *addr; int port, rc; } conn_arg;
XFN void *connect_thread(void *p) {
  conn_arg *a = p;
  a->rc = escp_connect(a->h, a->addr, a->port);
  return NULL;
}

XFN int raw_connect(const char *addr, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
  if (fam == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6, a->sin6_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET6, addr, &a->sin6_addr) == 1);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET, a->sin_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET, addr, &a->sin_addr) == 1);
    sl = sizeof *a;
  }
  int fd = socket(fam, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  CHECK(connect(fd, (struct sockaddr *)&ss, sl) == 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* The listener must close the connection on us (recv sees EOF or a reset); the only bytes
 * it may have sent first are its 16-byte challenge. */
XFN void expect_closed(int fd) {
  uint8_t b[64];
  size_t got = 0;
  ssize_t r;
  while ((r = recv(fd, b, sizeof b, 0)) > 0) got += (size_t)r;
  CHECK(got <= ESCP_CHALLENGE_LEN);
  CHECK(r == 0 || (r < 0 && errno == ECONNRESET));
  close(fd);
}

XFN void *new_session(int role, const cfg *c, const uint8_t *key, const uint8_t *sid) {
  void *h = escp_session_new(role);
  CHECK(h);
  CHECK_EQ(escp_param_set(h, ESCP_P_THREADS, c->threads), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_BLOCK_SIZE, B), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_DIRECT, c->direct), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_IO_ENGINE, c->dummy ? ESCP_IO_DUMMY : ESCP_IO_POSIX), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_SPARSE, c->sparse), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_CHECKSUM, c->checksum), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_TIMEOUT_MS, 8000), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_SOCK_BUF, 1 << 20), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_RATE_LIMIT, 1ll << 32), ESCP_OK);
  CHECK_EQ(escp_session_key_set(h, key, sid), ESCP_OK);
  return h;
}

/* ---- the file set ---- */

XFN int make_files(const cfg *c, const char *dir, tfile *f) {
  static const uint64_t edge[] = {0, 1, B - 1, B, B + 1, 5 * B + 3};
  int n = 0;
  for (int i = 0; i < 6 + NSMALL; i++, n++) {
    f[n].size = f[n].announced = i < 6 ? edge[i] : rnd() % 5000;
    snprintf(f[n].src, sizeof f[n].src, "%s/src_%d", dir, n);
  }
  if (c->sparse) { /* all-zero blocks: skipped, the tail comes back by ftruncate */
    f[n].size = f[n].announced = 3 * B + 5;
    snprintf(f[n].src, sizeof f[n].src, "%s/src_%d", dir, n);
    n++;
  }
  for (int i = 0; i < n; i++)
    if (!c->dummy) write_file(f[i].src, f[i].size, c->sparse && i == n - 1);
  if (c->bad_files) {
    f[n].announced = 100, f[n].expect_err = ESCP_E_OPEN; /* never created */
    snprintf(f[n].src, sizeof f[n].src, "%s/missing", dir);
    n++;
    f[n].size = B + 10, f[n].announced = 2 * B, f[n].expect_err = ESCP_E_SHORT;
    snprintf(f[n].src, sizeof f[n].src, "%s/shrunk", dir);
    write_file(f[n].src, f[n].size, 0);
    n++;
    f[n].size = f[n].announced = 2 * B + 7, f[n].sink = 1; /* a refused file: blocks discarded */
    snprintf(f[n].src, sizeof f[n].src, "%s/sunk", dir);
    write_file(f[n].src, f[n].size, 0);
    n++;
  }
  for (int i = 0; i < n; i++) {
    f[i].fino = 1000 + (uint64_t)i;
    snprintf(f[i].dst, sizeof f[i].dst, "dst_%d", i);
  }
  return n;
}

XFN tfile *by_fino(tfile *f, int n, uint64_t fino) {
  for (int i = 0; i < n; i++)
    if (f[i].fino == fino) return &f[i];
  CHECK(!"event for an unknown fino");
  return NULL;
}

/* ---- control messages ---- */

XFN void ctl_exchange(void *tx, void *rx) {
  static const char a[] = "sender says hi", b[] = "receiver answers";
  CHECK_EQ(escp_ctl_send(tx, (const uint8_t *)a, sizeof a), ESCP_OK);
  CHECK_EQ(escp_ctl_send(rx, (const uint8_t *)b, sizeof b), ESCP_OK);
  uint8_t *big = malloc(ESCP_CTL_MAX), *got = malloc(ESCP_CTL_MAX);
  CHECK(big && got);
  for (int i = 0; i < ESCP_CTL_MAX; i++) big[i] = (uint8_t)rnd();
  CHECK_EQ(escp_ctl_send(tx, big, ESCP_CTL_MAX), ESCP_OK);
  CHECK_EQ(escp_ctl_send(tx, big, ESCP_CTL_MAX + 1), ESCP_E_TOOBIG);
  CHECK_EQ(escp_ctl_send(tx, big, 0), ESCP_E_INVAL);
  int32_t r;
  while ((r = escp_ctl_recv(rx, got, 4)) == 0) nap();
  CHECK_EQ(r, ESCP_E_TOOBIG); /* too small a buffer: the message must stay queued */
  CHECK_EQ(escp_ctl_recv(rx, got, ESCP_CTL_MAX), sizeof a);
  CHECK(memcmp(got, a, sizeof a) == 0);
  while ((r = escp_ctl_recv(rx, got, ESCP_CTL_MAX)) == 0) nap();
  CHECK_EQ(r, ESCP_CTL_MAX);
  CHECK(memcmp(got, big, ESCP_CTL_MAX) == 0);
  while ((r = escp_ctl_recv(tx, got, ESCP_CTL_MAX)) == 0) nap();
  CHECK_EQ(r, sizeof b);
  CHECK(memcmp(got, b, sizeof b) == 0);
  free(big);
  free(got);
}

/* ---- pump: drain both event rings until every file and both DRAINEDs are in ---- */

/* One sender event, handled as the TS control plane does. 2 = DRAINED, 1 = a file's verdict,
 * 0 = STREAMS_UP (a listening sender). */
XFN int tx_event(const cfg *c, void *rx, tfile *f, int n, const escp_event *e) {
  if (e->type == ESCP_EV_DRAINED || e->type == ESCP_EV_STREAMS_UP) return e->type == ESCP_EV_DRAINED ? 2 : 0;
  if (e->type != ESCP_EV_FILE_DONE && e->type != ESCP_EV_FILE_ERROR) {
    fprintf(stderr, "sender event %u status %d text %s\n", e->type, e->status, e->text);
    CHECK(!"unexpected sender event");
  }
  tfile *t = by_fino(f, n, e->fino);
  CHECK(!t->tx_done);
  t->tx_done = 1;
  if (t->expect_err) {
    CHECK_EQ(e->type, ESCP_EV_FILE_ERROR);
    CHECK_EQ(e->status, t->expect_err);
    CHECK_EQ(escp_rx_file_expect(rx, t->fino, e->blocks, ESCP_XF_ABORTED, NULL), ESCP_OK);
    return 1;
  }
  CHECK_EQ(e->type, ESCP_EV_FILE_DONE);
  CHECK_EQ(e->bytes, t->size);
  CHECK_EQ(e->blocks, t->size == 0 ? 1 : (t->size + B - 1) / B);
  memcpy(t->tx_dg, e->digest, 32);
  /* What the TS control plane does: tell the receiver how many blocks were sent and the
   * sender's digest, which the receiver checks before naming the file. */
  CHECK_EQ(escp_rx_file_expect(rx, t->fino, e->blocks + 1, 0, NULL), ESCP_E_PROTO);
  CHECK_EQ(escp_rx_file_expect(rx, t->fino, e->blocks, 0, c->checksum ? e->digest : NULL), ESCP_OK);
  return 1;
}

/* One receiver event: 2 = DRAINED, 1 = a file's verdict, 0 = STREAMS_UP. */
XFN int rx_event(tfile *f, int n, const escp_event *e) {
  if (e->type == ESCP_EV_DRAINED || e->type == ESCP_EV_STREAMS_UP) return e->type == ESCP_EV_DRAINED ? 2 : 0;
  if (e->type != ESCP_EV_FILE_DONE && e->type != ESCP_EV_FILE_ERROR) {
    fprintf(stderr, "receiver event %u status %d text %s\n", e->type, e->status, e->text);
    CHECK(!"unexpected receiver event");
  }
  tfile *t = by_fino(f, n, e->fino);
  CHECK(!t->rx_done);
  t->rx_done = 1;
  if (t->expect_err) {
    CHECK_EQ(e->type, ESCP_EV_FILE_ERROR);
    CHECK_EQ(e->status, ESCP_E_ABORTED);
    return 1;
  }
  if (e->type != ESCP_EV_FILE_DONE)
    fprintf(stderr, "fino %llu: %d %s errno %d\n", (unsigned long long)t->fino, e->status, e->text, e->sys_errno);
  CHECK_EQ(e->type, ESCP_EV_FILE_DONE);
  CHECK_EQ(e->bytes, t->size);
  memcpy(t->rx_dg, e->digest, 32);
  return 1;
}

XFN void pump(const cfg *c, void *tx, void *rx, tfile *f, int n) {
  escp_event ev[64];
  int tx_left = n, rx_left = n, tx_drained = 0, rx_drained = 0;
  time_t t0 = time(NULL);
  while (tx_left || rx_left || !tx_drained || !rx_drained) {
    CHECK(time(NULL) - t0 < 60);
    int k = escp_event_poll(tx, ev, 64);
    for (int i = 0; i < k; i++) {
      int r = tx_event(c, rx, f, n, &ev[i]);
      tx_left -= r == 1;
      tx_drained |= r == 2;
    }
    int m = escp_event_poll(rx, ev, 64);
    for (int i = 0; i < m; i++) {
      int r = rx_event(f, n, &ev[i]);
      rx_left -= r == 1;
      rx_drained |= r == 2;
    }
    if (k == 0 && m == 0) nap();
  }
}

XFN void verify(const cfg *c, const char *dir, tfile *f, int n) {
  for (int i = 0; i < n; i++) {
    char dst[600];
    snprintf(dst, sizeof dst, "%s/%s", dir, f[i].dst);
    if (f[i].expect_err || f[i].sink) { /* nothing of it may exist under its name */
      CHECK(access(dst, F_OK) != 0);
      continue;
    }
    CHECK(memcmp(f[i].tx_dg, f[i].rx_dg, 32) == 0);
    if (c->dummy) continue;
    uint64_t la, lb;
    uint8_t *a = slurp(f[i].src, &la), *b = slurp(dst, &lb);
    CHECK_EQ(lb, la);
    CHECK(memcmp(a, b, la) == 0);
    if (c->checksum) {
      uint8_t d1[32], d2[32];
      CHECK_EQ(escp_digest_buffer(a, la, B, 0, d1), ESCP_OK);
      CHECK_EQ(escp_digest_buffer(a, la, B, 1, d2), ESCP_OK);
      CHECK(memcmp(d1, f[i].tx_dg, 32) == 0);
      CHECK(memcmp(d2, f[i].tx_dg, 32) == 0);
    }
    free(a);
    free(b);
  }
}

/* Counters agree, then the sender stops first: the receiver must wind down quietly.
 * `strangers`: rejections the listening session must have counted. */
XFN void teardown(void *tx, void *rx, int n, int strangers, int sender_listens) {
  escp_event ev;
  uint64_t st[ESCP_S_COUNT], sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(escp_stats_read(rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(st[ESCP_S_BLOCKS], sr[ESCP_S_BLOCKS]);
  CHECK_EQ(st[ESCP_S_BYTES_WIRE], sr[ESCP_S_BYTES_WIRE]);
  CHECK_EQ(sr[ESCP_S_FILES_DONE], n);
  CHECK((sender_listens ? st : sr)[ESCP_S_FRAMES_REJECTED] >= (uint64_t)strangers);
  CHECK_EQ(escp_session_join(tx), ESCP_E_STATE); /* join needs stop first */
  CHECK_EQ(escp_session_stop(tx), ESCP_OK);
  CHECK_EQ(escp_session_join(tx), ESCP_OK);
  /* The sender said BYE on every stream (data: after its queue, control: in stop), so the
   * receiver's threads all end quietly: no STREAM_DOWN, no FATAL. */
  for (time_t t0 = time(NULL); escp_stats_read(rx, sr, ESCP_S_COUNT) && sr[ESCP_S_STREAMS_UP] > 0;) {
    CHECK(time(NULL) - t0 < 10);
    nap();
  }
  CHECK_EQ(escp_event_poll(rx, &ev, 1), 0);
  CHECK_EQ(escp_session_stop(rx), ESCP_OK);
  CHECK_EQ(escp_session_join(rx), ESCP_OK);
  escp_session_free(tx);
  escp_session_free(rx);
}

#endif
