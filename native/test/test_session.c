/* test_session.c — loopback end-to-end test of the session API in one process: a receiver
 * listens, a sender connects from a second thread, files of edge-case sizes move over T
 * streams (direct I/O on/off, dummy engine, sparse, IPv6), digests and bytes are compared,
 * control messages go both ways, and strangers / wrong keys are rejected harmlessly. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "escp.h"
#include "frame.h" /* the rogue peer below speaks the wire protocol by hand */

#include "check.h"

#define B 65536u
#define NSMALL 300
#define MAXF (NSMALL + 16)

typedef struct cfg {
  const char *name, *addr;
  int threads, direct, dummy, sparse, checksum, strangers, wrongkey, bad_files;
} cfg;

typedef struct tfile {
  uint64_t fino, size, announced;
  char src[256], dst[256]; /* dst: relative to the receiver's destination root (dir) */
  int expect_err;     /* sender reports FILE_ERROR (ESCP_E_OPEN / ESCP_E_SHORT) */
  int sink;           /* a refused name: the receiver discards its blocks (rel NULL) */
  int tx_done, rx_done;
  uint8_t tx_dg[32], rx_dg[32];
} tfile;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

static void nap(void) { /* stands in for the JS timer between polls; never in the library */
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
}

static uint8_t *slurp(const char *path, uint64_t *len) {
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  uint8_t *b = malloc((size_t)st.st_size + 1);
  CHECK(b);
  CHECK(read(fd, b, (size_t)st.st_size) == st.st_size);
  close(fd);
  *len = (uint64_t)st.st_size;
  return b;
}

static void write_file(const char *path, uint64_t size, int zeros) {
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
static void *connect_thread(void *p) {
  conn_arg *a = p;
  a->rc = escp_connect(a->h, a->addr, a->port);
  return NULL;
}

static int raw_connect(const char *addr, int port) {
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
static void expect_closed(int fd) {
  uint8_t b[64];
  size_t got = 0;
  ssize_t r;
  while ((r = recv(fd, b, sizeof b, 0)) > 0) got += (size_t)r;
  CHECK(got <= ESCP_CHALLENGE_LEN);
  CHECK(r == 0 || (r < 0 && errno == ECONNRESET));
  close(fd);
}

static void *new_session(int role, const cfg *c, const uint8_t *key, const uint8_t *sid) {
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

static int make_files(const cfg *c, const char *dir, tfile *f) {
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

static tfile *by_fino(tfile *f, int n, uint64_t fino) {
  for (int i = 0; i < n; i++)
    if (f[i].fino == fino) return &f[i];
  CHECK(!"event for an unknown fino");
  return NULL;
}

/* ---- control messages ---- */

static void ctl_exchange(void *tx, void *rx) {
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

static void pump(const cfg *c, void *tx, void *rx, tfile *f, int n) {
  escp_event ev[64];
  int tx_left = n, rx_left = n, tx_drained = 0, rx_drained = 0;
  time_t t0 = time(NULL);
  while (tx_left || rx_left || !tx_drained || !rx_drained) {
    CHECK(time(NULL) - t0 < 60);
    int k = escp_event_poll(tx, ev, 64);
    for (int i = 0; i < k; i++) {
      if (ev[i].type == ESCP_EV_DRAINED) {
        tx_drained = 1;
        continue;
      }
      if (ev[i].type != ESCP_EV_FILE_DONE && ev[i].type != ESCP_EV_FILE_ERROR) {
        fprintf(stderr, "sender event %u status %d text %s\n", ev[i].type, ev[i].status, ev[i].text);
        CHECK(!"unexpected sender event");
      }
      tfile *t = by_fino(f, n, ev[i].fino);
      CHECK(!t->tx_done);
      t->tx_done = 1;
      tx_left--;
      if (t->expect_err) {
        CHECK_EQ(ev[i].type, ESCP_EV_FILE_ERROR);
        CHECK_EQ(ev[i].status, t->expect_err);
        CHECK_EQ(escp_rx_file_expect(rx, t->fino, ev[i].blocks, ESCP_XF_ABORTED, NULL), ESCP_OK);
        continue;
      }
      CHECK_EQ(ev[i].type, ESCP_EV_FILE_DONE);
      CHECK_EQ(ev[i].bytes, t->size);
      CHECK_EQ(ev[i].blocks, t->size == 0 ? 1 : (t->size + B - 1) / B);
      memcpy(t->tx_dg, ev[i].digest, 32);
      /* What the TS control plane does: tell the receiver how many blocks were sent and the
       * sender's digest, which the receiver checks before naming the file. */
      CHECK_EQ(escp_rx_file_expect(rx, t->fino, ev[i].blocks + 1, 0, NULL), ESCP_E_PROTO);
      CHECK_EQ(escp_rx_file_expect(rx, t->fino, ev[i].blocks, 0, c->checksum ? ev[i].digest : NULL), ESCP_OK);
    }
    int m = escp_event_poll(rx, ev, 64);
    for (int i = 0; i < m; i++) {
      if (ev[i].type == ESCP_EV_DRAINED || ev[i].type == ESCP_EV_STREAMS_UP) {
        rx_drained |= ev[i].type == ESCP_EV_DRAINED;
        continue;
      }
      if (ev[i].type != ESCP_EV_FILE_DONE && ev[i].type != ESCP_EV_FILE_ERROR) {
        fprintf(stderr, "receiver event %u status %d text %s\n", ev[i].type, ev[i].status, ev[i].text);
        CHECK(!"unexpected receiver event");
      }
      tfile *t = by_fino(f, n, ev[i].fino);
      CHECK(!t->rx_done);
      t->rx_done = 1;
      rx_left--;
      if (t->expect_err) {
        CHECK_EQ(ev[i].type, ESCP_EV_FILE_ERROR);
        CHECK_EQ(ev[i].status, ESCP_E_ABORTED);
        continue;
      }
      if (ev[i].type != ESCP_EV_FILE_DONE) fprintf(stderr, "fino %llu: %d %s errno %d\n", (unsigned long long)t->fino, ev[i].status, ev[i].text, ev[i].sys_errno);
      CHECK_EQ(ev[i].type, ESCP_EV_FILE_DONE);
      CHECK_EQ(ev[i].bytes, t->size);
      memcpy(t->rx_dg, ev[i].digest, 32);
    }
    if (k == 0 && m == 0) nap();
  }
  (void)c;
}

static void verify(const cfg *c, const char *dir, tfile *f, int n) {
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

/* Strangers and a wrong-key peer first (as configured), then the real sender connects
 * from a second thread. Returns how many rejections the listener must have counted. */
static int bring_up(const cfg *c, void *tx, int port, const uint8_t *bad, const uint8_t *sid) {
  int strangers = 0, quiet = -1;
  if (c->strangers) {
    int g = raw_connect(c->addr, port), p = raw_connect(c->addr, port);
    quiet = raw_connect(c->addr, port); /* says nothing: dropped once the streams are up */
    uint8_t junk[ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)rnd();
    CHECK(send(g, junk, sizeof junk, 0) == sizeof junk);
    expect_closed(g); /* garbage hello: closed at once */
    CHECK(send(p, junk, 10, 0) == 10);
    close(p);         /* partial hello, then gone */
    strangers = 3;
  }
  if (c->wrongkey) {
    void *evil = new_session(ESCP_ROLE_SENDER, c, bad, sid);
    int rc = escp_connect(evil, c->addr, port);
    CHECK(rc == ESCP_E_CONNECT || rc == ESCP_E_AUTH);
    char d[256];
    CHECK(escp_last_error_detail(evil, d, sizeof d) > 0 && strstr(d, "[net.c:"));
    escp_session_free(evil);
    strangers += 1;
  }
  conn_arg a = {tx, c->addr, port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  if (a.rc != ESCP_OK) {
    char d[256];
    escp_last_error_detail(tx, d, sizeof d);
    fprintf(stderr, "connect: %s\n", d);
  }
  CHECK_EQ(a.rc, ESCP_OK);
  if (quiet >= 0) expect_closed(quiet);
  return strangers;
}

/* Counters agree, then the sender stops first: the receiver must wind down quietly. */
static void teardown(void *tx, void *rx, int n, int strangers) {
  escp_event ev;
  uint64_t st[ESCP_S_COUNT], sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(escp_stats_read(rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(st[ESCP_S_BLOCKS], sr[ESCP_S_BLOCKS]);
  CHECK_EQ(st[ESCP_S_BYTES_WIRE], sr[ESCP_S_BYTES_WIRE]);
  CHECK_EQ(sr[ESCP_S_FILES_DONE], n);
  CHECK(sr[ESCP_S_FRAMES_REJECTED] >= (uint64_t)strangers);
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

static void run(const cfg *c) {
  fprintf(stderr, "-- %s\n", c->name);
  uint8_t key[32], sid[16], bad[32];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd(), bad[i] = (uint8_t)(key[i] ^ 1);
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  char dir[] = "/tmp/escp_test_session_XXXXXX";
  CHECK(mkdtemp(dir));
  tfile *f = calloc(MAXF, sizeof *f);
  CHECK(f);
  int n = make_files(c, dir, f);

  void *rx = new_session(ESCP_ROLE_RECEIVER, c, key, sid);
  void *tx = new_session(ESCP_ROLE_SENDER, c, key, sid);
  int port = escp_listen(rx, c->addr, 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_rx_root(rx, dir, 0), ESCP_OK);
  CHECK_EQ(escp_rx_root(rx, dir, 0), ESCP_E_STATE); /* once */
  CHECK_EQ(escp_session_start(rx), ESCP_OK); /* before streams are up: threads wait */
  int strangers = bring_up(c, tx, port, bad, sid);
  CHECK_EQ(escp_session_start(tx), ESCP_OK);
  CHECK_EQ(escp_session_start(tx), ESCP_E_STATE);
  escp_event ev;
  while (escp_event_poll(rx, &ev, 1) == 0) nap();
  CHECK_EQ(ev.type, ESCP_EV_STREAMS_UP);
  ctl_exchange(tx, rx);

  for (int i = 0; i < n; i++) /* data may arrive before rx_file_add: the receiver waits */
    CHECK_EQ(escp_tx_file_add(tx, f[i].fino, f[i].src, f[i].announced), ESCP_OK);
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  CHECK_EQ(escp_tx_file_add(tx, 99999, "/x", 1), ESCP_E_STATE);
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  for (int i = 0; i < n; i++) CHECK_EQ(escp_rx_file_add(rx, f[i].fino, f[i].sink ? NULL : f[i].dst, f[i].size, meta), ESCP_OK);
  CHECK_EQ(escp_rx_file_add(rx, f[0].fino, f[0].dst, 0, meta), ESCP_E_DUP);
  pump(c, tx, rx, f, n);
  verify(c, dir, f, n);

  teardown(tx, rx, n, strangers);
  for (int i = 0; i < n; i++) {
    char dst[600];
    snprintf(dst, sizeof dst, "%s/%s", dir, f[i].dst);
    unlink(f[i].src);
    unlink(dst);
  }
  CHECK(rmdir(dir) == 0); /* fails if anything (a temporary) was left behind */
  free(f);
}

/* ---- a rogue peer that holds the key but misbehaves after the handshake ---- */

/* Read the listener's challenge, derive this connection's channels from it, send the
 * HELLO and check the HELLO_ACK (which echoes the challenge). */
static void send_hello(int fd, escp_chan *tx, escp_chan *rxc, const uint8_t *key, const uint8_t *sid, int i) {
  enum { T0 = ESCP_FRAME_HDR + ESCP_HELLO_LEN }; /* tag offset */
  uint8_t hb[T0 + ESCP_TAG], ch[ESCP_CHALLENGE_LEN];
  CHECK(recv(fd, ch, sizeof ch, MSG_WAITALL) == sizeof ch);
  CHECK_EQ(escp_chan_init(tx, key, sid, ch, ESCP_DIR_S2R, (uint16_t)i, 1), ESCP_OK);
  CHECK_EQ(escp_chan_init(rxc, key, sid, ch, ESCP_DIR_R2S, (uint16_t)i, 0), ESCP_OK);
  escp_hello h = {ESCP_PROTOCOL_VERSION, (uint16_t)i, 1, ESCP_ROLE_SENDER, {0}, {0}};
  memcpy(h.sid, sid, 16);
  memcpy(h.challenge, ch, sizeof ch);
  escp_hello_encode(&h, hb + ESCP_FRAME_HDR);
  CHECK_EQ(escp_chan_seal(tx, ESCP_FT_HELLO, 0, hb, hb + 16, ESCP_HELLO_LEN, hb + T0), ESCP_OK);
  CHECK(send(fd, hb, sizeof hb, 0) == sizeof hb);
  CHECK(recv(fd, hb, sizeof hb, MSG_WAITALL) == sizeof hb);
  escp_frame_hdr fh;
  CHECK_EQ(escp_chan_check(rxc, hb, ESCP_HELLO_LEN, &fh), ESCP_OK);
  CHECK_EQ(fh.type, ESCP_FT_HELLO_ACK);
  CHECK_EQ(escp_chan_open(rxc, hb, hb + 16, ESCP_HELLO_LEN, hb + T0), ESCP_OK);
  CHECK(escp_hello_decode(hb + 16, &h) == ESCP_OK && memcmp(h.challenge, ch, sizeof ch) == 0);
}

static escp_event wait_event(void *h) {
  escp_event ev;
  time_t t0 = time(NULL);
  while (escp_event_poll(h, &ev, 1) == 0) {
    CHECK(time(NULL) - t0 < 10);
    nap();
  }
  return ev;
}

/* mode 0: tampered DATA ciphertext (E_AUTH) + skipped control seq (E_REPLAY);
 * mode 1: DATA header announcing a body larger than 24 + B (E_PROTO, body never read). */
static void rogue(int mode) {
  fprintf(stderr, "-- rogue peer, mode %d\n", mode);
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  cfg c = {"rogue", "127.0.0.1", 1, 0, 1, 0, 1, 0, 0, 0};
  void *rx = new_session(ESCP_ROLE_RECEIVER, &c, key, sid);
  int port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_session_start(rx), ESCP_OK);
  int fd[2];
  escp_chan tx[2], rxc[2];
  for (int i = 0; i < 2; i++) {
    fd[i] = raw_connect("127.0.0.1", port);
    send_hello(fd[i], &tx[i], &rxc[i], key, sid, i);
  }
  CHECK_EQ(wait_event(rx).type, ESCP_EV_STREAMS_UP);
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  CHECK_EQ(escp_rx_file_add(rx, 7, NULL, 100, meta), ESCP_OK);
  uint8_t fr[16 + 24 + 100 + 16];
  memset(fr, 0, sizeof fr);
  if (mode == 0) {
    escp_data_hdr dh = {7, 0, 100, 0};
    escp_data_hdr_encode(&dh, fr + 16);
    CHECK_EQ(escp_chan_seal(&tx[1], ESCP_FT_DATA, 0, fr, fr + 16, 124, fr + 140), ESCP_OK);
    fr[60] ^= 1;
  } else {
    escp_frame_hdr fh = {24 + B + 1, ESCP_FT_DATA, 0, 1, 1};
    escp_frame_hdr_encode(&fh, fr);
  }
  CHECK(send(fd[1], fr, sizeof fr, 0) == sizeof fr);
  escp_event ev = wait_event(rx);
  CHECK_EQ(ev.type, ESCP_EV_FATAL);
  CHECK_EQ(ev.status, mode == 0 ? ESCP_E_AUTH : ESCP_E_PROTO);
  CHECK_EQ(ev.stream, 1);
  if (mode == 0) { /* control frame sealed at seq 2 while the receiver expects 1 */
    uint8_t cf[16 + 4 + 16] = {0};
    CHECK_EQ(escp_chan_seal(&tx[0], ESCP_FT_CTL, 0, cf, cf + 16, 4, cf + 20), ESCP_OK);
    CHECK_EQ(escp_chan_seal(&tx[0], ESCP_FT_CTL, 0, cf, cf + 16, 4, cf + 20), ESCP_OK);
    CHECK(send(fd[0], cf, sizeof cf, 0) == sizeof cf);
    ev = wait_event(rx);
    CHECK_EQ(ev.type, ESCP_EV_FATAL);
    CHECK_EQ(ev.status, ESCP_E_REPLAY);
    CHECK_EQ(ev.stream, 0);
  }
  uint64_t st[ESCP_S_COUNT];
  escp_stats_read(rx, st, ESCP_S_COUNT);
  CHECK_EQ(st[ESCP_S_FRAMES_REJECTED], mode == 0 ? 2 : 1);
  escp_session_free(rx); /* without stop/join: free does both */
  for (int i = 0; i < 2; i++) {
    close(fd[i]);
    escp_chan_free(&tx[i]);
    escp_chan_free(&rxc[i]);
  }
}

static void misuse(void) {
  CHECK_EQ(escp_event_size(), 128);
  CHECK_EQ(escp_abi_version(), ESCP_ABI_VERSION);
  CHECK(strcmp(escp_status_name(ESCP_E_AUTH), "ESCP_E_AUTH") == 0);
  CHECK(strcmp(escp_status_name(ESCP_E_DUP), "ESCP_E_DUP") == 0);
  CHECK(strcmp(escp_status_name(-999), "ESCP_E_UNKNOWN") == 0);
  int64_t mn, mx, df;
  CHECK_EQ(escp_param_bounds(ESCP_P_BLOCK_SIZE, &mn, &mx, &df), ESCP_OK);
  CHECK(mn == 65536 && mx == 67108864 && df == 1048576);
  CHECK_EQ(escp_param_bounds(999, NULL, NULL, NULL), ESCP_E_INVAL);
  CHECK(escp_session_new(7) == NULL);
  escp_session_free(NULL);
  void *h = escp_session_new(ESCP_ROLE_RECEIVER);
  CHECK(h);
  CHECK_EQ(escp_param_set(h, ESCP_P_BLOCK_SIZE, 100000), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(h, ESCP_P_THREADS, 65), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(h, ESCP_P_IP_MODE, 5), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(h, 999, 1), ESCP_E_INVAL);
  CHECK_EQ(escp_param_get(h, ESCP_P_THREADS), 4);
  CHECK_EQ(escp_tx_file_add(h, 1, "/x", 1), ESCP_E_STATE);
  CHECK_EQ(escp_tx_finish(h), ESCP_E_STATE);
  CHECK_EQ(escp_rx_file_expect(h, 5, 1, 0, NULL), ESCP_E_UNKNOWN_FILE);
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  CHECK_EQ(escp_rx_file_add(h, 0, "x", 1, meta), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_file_add(h, 1, "x", 1, NULL), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_file_add(h, 1, "x", (uint64_t)ESCP_MAX_FILE_SIZE + 1, meta), ESCP_E_RANGE);
  for (const char *bad = "/x\0../x\0a/../b\0a//b\0./x\0a/.\0\0"; *bad; bad += strlen(bad) + 1)
    CHECK_EQ(escp_rx_file_add(h, 1, bad, 1, meta), ESCP_E_PATH);
  CHECK_EQ(escp_rx_file_add(h, 1, "x", 1, meta), ESCP_E_STATE); /* no destination root yet */
  CHECK_EQ(escp_session_start(h), ESCP_E_STATE);
  CHECK_EQ(escp_listen(h, "127.0.0.1", 0, 1), ESCP_E_STATE); /* no key yet */
  CHECK_EQ(escp_ctl_send(h, (const uint8_t *)"x", 1), ESCP_E_STATE);
  uint8_t b[8];
  CHECK_EQ(escp_ctl_recv(h, b, sizeof b), 0);
  CHECK_EQ(escp_event_poll(h, (escp_event *)b, 0), 0);
  char d[128];
  CHECK(escp_last_error_detail(h, d, sizeof d) > 0 && strstr(d, "[accept.c:"));
  CHECK_EQ(escp_session_stop(h), ESCP_OK);
  CHECK_EQ(escp_session_join(h), ESCP_OK);
  escp_session_free(h);
  void *s = escp_session_new(ESCP_ROLE_SENDER);
  CHECK_EQ(escp_rx_file_add(s, 1, "x", 1, meta), ESCP_E_STATE);
  CHECK_EQ(escp_connect(s, "127.0.0.1", 1), ESCP_E_STATE); /* no key */
  escp_session_free(s); /* free without stop/join */
}

/* A rogue sender breaking a file's announced shape: mode 0 a block at offset 2^40 of a
 * 10-byte file, 1 a 100-byte block for it, 2 its one block twice. Each is a FATAL E_PROTO
 * naming the file, and nothing appears in the destination (no name, no temporary). */
static void rogue_sizes(int mode) {
  static const char *what[] = {"block at 2^40", "block of the wrong length", "block twice"};
  fprintf(stderr, "-- rogue sender, sizes: %s\n", what[mode]);
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  char dir[] = "/tmp/escp_test_sizes_XXXXXX";
  CHECK(mkdtemp(dir));
  cfg c = {"rogue-sizes", "127.0.0.1", 1, 0, 0, 0, 1, 0, 0, 0};
  void *rx = new_session(ESCP_ROLE_RECEIVER, &c, key, sid);
  CHECK_EQ(escp_rx_root(rx, dir, 0), ESCP_OK);
  int port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_session_start(rx), ESCP_OK);
  int fd[2];
  escp_chan tx[2], rxc[2];
  for (int i = 0; i < 2; i++) {
    fd[i] = raw_connect("127.0.0.1", port);
    send_hello(fd[i], &tx[i], &rxc[i], key, sid, i);
  }
  CHECK_EQ(wait_event(rx).type, ESCP_EV_STREAMS_UP);
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  CHECK_EQ(escp_rx_file_add(rx, 7, "f", 10, meta), ESCP_OK);
  uint8_t fr[16 + 24 + 100 + 16];
  uint32_t len = mode == 1 ? 100 : 10;
  escp_data_hdr dh = {7, mode == 0 ? (uint64_t)1 << 40 : 0, len, 0};
  for (int k = 0; k < (mode == 2 ? 2 : 1); k++) {
    memset(fr, 0, sizeof fr);
    escp_data_hdr_encode(&dh, fr + 16);
    CHECK_EQ(escp_chan_seal(&tx[1], ESCP_FT_DATA, 0, fr, fr + 16, 24 + len, fr + 16 + 24 + len), ESCP_OK);
    CHECK(send(fd[1], fr, 16 + 24 + len + 16, 0) == (ssize_t)(16 + 24 + len + 16));
  }
  escp_event ev = wait_event(rx);
  CHECK_EQ(ev.type, ESCP_EV_FATAL);
  CHECK_EQ(ev.status, ESCP_E_PROTO);
  CHECK_EQ(ev.stream, 1);
  CHECK_EQ(ev.fino, 7);
  CHECK(strstr(ev.text, mode == 0 ? "past its announced size" : mode == 1 ? "wrong length" : "a block"));
  escp_session_free(rx); /* the failed file is freed: its unnamed or named temporary goes */
  for (int i = 0; i < 2; i++) {
    close(fd[i]);
    escp_chan_free(&tx[i]);
    escp_chan_free(&rxc[i]);
  }
  CHECK(rmdir(dir) == 0); /* empty: nothing was named, no temporary was left */
}

int main(void) {
  misuse();
  static const cfg cfgs[] = {
      {"T=1 direct strangers", "127.0.0.1", 1, 1, 0, 0, 1, 1, 0, 1},
      {"T=4 direct wrong-key", "127.0.0.1", 4, 1, 0, 0, 1, 0, 1, 0},
      {"T=4 buffered sparse ::1", "::1", 4, 0, 0, 1, 1, 0, 0, 1},
      {"T=3 buffered no-checksum", "127.0.0.1", 3, 0, 0, 0, 0, 0, 0, 0},
      {"T=4 dummy engine", "127.0.0.1", 4, 1, 1, 0, 1, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) run(&cfgs[i]);
  rogue(0);
  rogue(1);
  for (int m = 0; m < 3; m++) rogue_sizes(m);
  fprintf(stderr, "test_session: OK\n");
  return 0;
}
