/* test_three.c — relayed third-party transfers in one process: host2 is a receiver session
 * that listens and challenges, host1 a sender session that listens and answers challenges
 * (ESCP_P_HELLO_ON_ACCEPT), and the relay between them opens T+1 connections to each and
 * splices them. Checked: files of edge-case sizes arrive with equal digests (T = 1, T = 4),
 * control messages cross both ways, the sessions end as in a direct transfer; a tap (test
 * code between the relay and host2, so the library has no test-only path) sees every byte
 * host1 sends and never the plaintext of a marker file; strangers with fake challenges at
 * host1, holding every stream id at once from other addresses, get a HELLO but never a
 * stream, and one from the relay's own address only delays the last stream until its
 * deadline; an idle relayed session lives on keepalives; and a pair dropped mid-transfer
 * fails both sessions promptly (no hang). */
#define _GNU_SOURCE
#include "xfer.h"

#include "tap.h"

static uint64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define MARK_FILE (2u << 20) /* bytes of the marker file */

/* ---- the three parties ---- */

typedef struct three {
  void *tx, *rx, *relay;
  int port1, port2;
  int32_t timeout_ms; /* sessions and relay; 0: xfer.h's 8000 */
  tap tap;
} three;

static uint64_t rstat(void *r, int i) {
  uint64_t c[ESCP_R_COUNT];
  CHECK_EQ(escp_relay_stats_read(r, c, ESCP_R_COUNT), ESCP_R_COUNT);
  return c[i];
}

static escp_event next_event(void *h, int secs) {
  escp_event ev;
  for (time_t t0 = time(NULL); escp_event_poll(h, &ev, 1) == 0; nap()) CHECK(time(NULL) - t0 < secs);
  return ev;
}

/* Both sessions listen; host1's answers challenges. The relay is not connected yet. */
static void three_listen(three *z, const cfg *c, const uint8_t *key, const uint8_t *sid, const char *dir) {
  z->rx = new_session(ESCP_ROLE_RECEIVER, c, key, sid);
  z->tx = new_session(ESCP_ROLE_SENDER, c, key, sid);
  if (!z->timeout_ms) z->timeout_ms = 8000;
  CHECK_EQ(escp_param_set(z->rx, ESCP_P_TIMEOUT_MS, z->timeout_ms), ESCP_OK);
  CHECK_EQ(escp_param_set(z->tx, ESCP_P_TIMEOUT_MS, z->timeout_ms), ESCP_OK);
  CHECK_EQ(escp_param_set(z->tx, ESCP_P_HELLO_ON_ACCEPT, 1), ESCP_OK);
  z->port2 = escp_listen(z->rx, "127.0.0.1", 0, 1);
  z->port1 = escp_listen(z->tx, "127.0.0.1", 0, 1);
  CHECK(z->port1 > 0 && z->port2 > 0);
  CHECK_EQ(escp_param_set(z->tx, ESCP_P_HELLO_ON_ACCEPT, 0), ESCP_E_STATE); /* frozen */
  CHECK_EQ(escp_rx_root(z->rx, dir, 0), ESCP_OK);
  CHECK_EQ(escp_session_start(z->rx), ESCP_OK);
  CHECK_EQ(escp_session_start(z->tx), ESCP_OK);
}

/* The relay joins host1 to host2 (through the tap when tapped); both report STREAMS_UP. */
static void three_relay(three *z, const cfg *c, int tapped, uint64_t drop_after) {
  int to = z->port2;
  if (tapped) {
    tap_start(&z->tap, z->port2, c->threads + 1, drop_after);
    to = z->tap.port;
  }
  z->relay = escp_relay_new(z->timeout_ms);
  CHECK(z->relay);
  int rc = escp_relay_connect(z->relay, "127.0.0.1", z->port1, "127.0.0.1", to, c->threads + 1);
  CHECK_EQ(rc, ESCP_OK);
  CHECK_EQ(escp_relay_start(z->relay), ESCP_OK);
  CHECK_EQ(next_event(z->rx, 10).type, ESCP_EV_STREAMS_UP);
  CHECK_EQ(next_event(z->tx, 10).type, ESCP_EV_STREAMS_UP);
  CHECK_EQ(escp_test_key_wiped(z->tx), 1);
  CHECK_EQ(escp_test_key_wiped(z->rx), 1);
}

/* After both sessions are freed every pair ends (their FINs or resets cross it). */
static void relay_end(three *z, int pairs) {
  for (time_t t0 = time(NULL); rstat(z->relay, ESCP_R_PAIRS_UP) > 0; nap()) CHECK(time(NULL) - t0 < 10);
  CHECK_EQ(rstat(z->relay, ESCP_R_PAIRS_DONE) + rstat(z->relay, ESCP_R_PAIRS_FAILED), pairs);
  CHECK_EQ(escp_relay_join(z->relay), ESCP_OK);
  escp_relay_free(z->relay);
}

/* The same after a pair was reset: at least that one failed, and the relay says where. */
static void relay_end_failed(three *z, int pairs) {
  char d[160];
  for (time_t t0 = time(NULL); rstat(z->relay, ESCP_R_PAIRS_UP) > 0; nap()) CHECK(time(NULL) - t0 < 10);
  CHECK(rstat(z->relay, ESCP_R_PAIRS_FAILED) >= 1);
  CHECK(escp_relay_last_error(z->relay, d, sizeof d) > 0 && strstr(d, "host2"));
  relay_end(z, pairs);
}

static void keys(uint8_t key[32], uint8_t sid[16]) {
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
}

static void cleanup(const char *dir, tfile *f, int n) {
  for (int i = 0; i < n; i++) {
    char dst[600];
    snprintf(dst, sizeof dst, "%s/%s", dir, f[i].dst);
    unlink(f[i].src);
    unlink(dst);
  }
  CHECK(rmdir(dir) == 0); /* fails if anything (a temporary) was left behind */
}

/* The file set of xfer.h plus a marker file whose plaintext the tap must never see. */
static int files(const cfg *c, const char *dir, tfile *f) {
  int n = make_files(c, dir, f);
  tfile *m = &f[n];
  m->size = m->announced = MARK_FILE;
  m->fino = 1000 + (uint64_t)n;
  snprintf(m->src, sizeof m->src, "%s/marker", dir);
  snprintf(m->dst, sizeof m->dst, "dst_marker");
  uint8_t *b = malloc(MARK_FILE);
  CHECK(b);
  for (uint32_t i = 0; i < MARK_FILE; i++) b[i] = (uint8_t)MARK[i % 32];
  int fd = open(m->src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0 && write(fd, b, MARK_FILE) == (ssize_t)MARK_FILE);
  close(fd);
  free(b);
  return n + 1;
}

static void transfer(const cfg *c, int tapped) {
  fprintf(stderr, "-- %s\n", c->name);
  uint8_t key[32], sid[16];
  keys(key, sid);
  char dir[] = "/tmp/escp_test_three_XXXXXX";
  CHECK(mkdtemp(dir));
  tfile *f = calloc(MAXF, sizeof *f);
  CHECK(f);
  int n = files(c, dir, f);
  three z = {0};
  three_listen(&z, c, key, sid, dir);
  three_relay(&z, c, tapped, 0);
  ctl_exchange(z.tx, z.rx);
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  for (int i = 0; i < n; i++) CHECK_EQ(escp_tx_file_add(z.tx, f[i].fino, f[i].src, f[i].announced), ESCP_OK);
  CHECK_EQ(escp_tx_finish(z.tx), ESCP_OK);
  for (int i = 0; i < n; i++)
    CHECK_EQ(escp_rx_file_add(z.rx, f[i].fino, f[i].sink ? NULL : f[i].dst, f[i].size, meta), ESCP_OK);
  pump(c, z.tx, z.rx, f, n);
  verify(c, dir, f, n);
  uint64_t st[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(z.tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK(rstat(z.relay, ESCP_R_BYTES_12) >= st[ESCP_S_BYTES_WIRE] + ESCP_CTL_MAX); /* + control */
  CHECK(rstat(z.relay, ESCP_R_BYTES_21) > 0);
  teardown(z.tx, z.rx, n, 0, 1); /* as direct: the receiver winds down quietly */
  relay_end(&z, c->threads + 1);
  if (tapped) {
    tap_stop(&z.tap);
    CHECK(atomic_load(&z.tap.fwd) >= st[ESCP_S_BYTES_WIRE]); /* the tap saw all data... */
    CHECK(!atomic_load(&z.tap.found));                       /* ...as ciphertext only */
  }
  cleanup(dir, f, n);
  free(f);
}


/* ---- strangers at the answering listener ---- */

static int dial_from(const char *from, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  CHECK(fd >= 0 && inet_pton(AF_INET, from, &a.sin_addr) == 1);
  CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  a.sin_port = htons((uint16_t)port);
  CHECK(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr) == 1);
  CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Send a made-up challenge; the answering listener replies with a HELLO: return its id. */
static int fake_challenge(int fd, int streams) {
  uint8_t ch[ESCP_CHALLENGE_LEN], hello[ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG];
  for (size_t i = 0; i < sizeof ch; i++) ch[i] = (uint8_t)rnd();
  CHECK(send(fd, ch, sizeof ch, 0) == sizeof ch);
  CHECK(recv(fd, hello, sizeof hello, MSG_WAITALL) == sizeof hello);
  escp_frame_hdr fh;
  escp_frame_hdr_decode(hello, &fh);
  CHECK(fh.type == ESCP_FT_HELLO && fh.body_len == ESCP_HELLO_LEN && fh.seq == 0 && fh.stream < streams);
  return fh.stream;
}

/* The listener closed us (EOF or reset) and sent nothing more. */
static void closed_quietly(int fd) {
  uint8_t b[64];
  ssize_t r = recv(fd, b, sizeof b, 0);
  CHECK(r == 0 || (r < 0 && errno == ECONNRESET));
  close(fd);
}

static void strangers(void) {
  fprintf(stderr, "-- strangers with fake challenges hold every stream id at host1; the relay gets in\n");
  enum { T = 4 };
  cfg c = {"strangers", "127.0.0.1", T, 0, 1, 0, 1, 0, 0, 0, 1};
  uint8_t key[32], sid[16];
  keys(key, sid);
  char dir[] = "/tmp/escp_test_three_XXXXXX";
  CHECK(mkdtemp(dir));
  three z = {0};
  three_listen(&z, &c, key, sid, dir);
  int held[T + 1], ids = 0;
  for (int k = 0; k <= T; k++) { /* from 127.0.0.2: one HELLO per id, every id claimed */
    held[k] = dial_from("127.0.0.2", z.port1);
    int id = fake_challenge(held[k], T + 1);
    CHECK(!(ids & (1 << id)));
    ids |= 1 << id;
  }
  int junk = dial_from("127.0.0.3", z.port1); /* another source may claim a held id too */
  CHECK_EQ(fake_challenge(junk, T + 1), 0);
  uint8_t bad[ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG];
  for (size_t i = 0; i < sizeof bad; i++) bad[i] = (uint8_t)rnd();
  CHECK(send(junk, bad, sizeof bad, 0) == sizeof bad);
  closed_quietly(junk); /* a wrong HELLO_ACK: dropped at once */
  int quiet = dial_from("127.0.0.2", z.port1); /* never sends a challenge */
  three_relay(&z, &c, 0, 0); /* the relay's connections come from 127.0.0.1 */
  for (int k = 0; k <= T; k++) closed_quietly(held[k]); /* closed once the streams were up */
  closed_quietly(quiet);
  uint64_t st[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(z.tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(st[ESCP_S_FRAMES_REJECTED], T + 3);
  CHECK_EQ(st[ESCP_S_STREAMS_UP], T + 1);
  tfile *f = calloc(MAXF, sizeof *f); /* and the streams work */
  CHECK(f);
  int n = make_files(&c, dir, f);
  for (int i = 0; i < n; i++) CHECK_EQ(escp_tx_file_add(z.tx, f[i].fino, "/dummy", f[i].size), ESCP_OK);
  CHECK_EQ(escp_tx_finish(z.tx), ESCP_OK);
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  for (int i = 0; i < n; i++) CHECK_EQ(escp_rx_file_add(z.rx, f[i].fino, NULL, f[i].size, meta), ESCP_OK);
  pump(&c, z.tx, z.rx, f, n);
  teardown(z.tx, z.rx, n, T + 3, 1);
  relay_end(&z, T + 1);
  free(f);
  CHECK(rmdir(dir) == 0);
}

/* ---- a pair dropped mid-transfer ---- */

/* Events up to the first STREAM_DOWN or FATAL (within 10 s); a failed file may come first. */
static escp_event failure(void *h) {
  for (;;) {
    escp_event ev = next_event(h, 10);
    if (ev.type == ESCP_EV_STREAM_DOWN || ev.type == ESCP_EV_FATAL) return ev;
    CHECK(ev.type == ESCP_EV_FILE_ERROR || ev.type == ESCP_EV_LOG);
  }
}

static void stop_fast(void *h) {
  uint64_t t0 = ms_now();
  CHECK_EQ(escp_session_stop(h), ESCP_OK);
  CHECK_EQ(escp_session_join(h), ESCP_OK);
  CHECK(ms_now() - t0 < 1000);
  escp_session_free(h);
}

static void dropped_pair(void) {
  fprintf(stderr, "-- a relay pair reset mid-transfer: both sessions fail promptly, nothing hangs\n");
  enum { T = 4 };
  cfg c = {"drop", "127.0.0.1", T, 0, 1, 0, 0, 0, 0, 0, 1};
  uint8_t key[32], sid[16];
  keys(key, sid);
  char dir[] = "/tmp/escp_test_three_XXXXXX";
  CHECK(mkdtemp(dir));
  three z = {0};
  three_listen(&z, &c, key, sid, dir);
  three_relay(&z, &c, 1, 8u << 20); /* the tap resets the first data connection past 8 MiB */
  static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};
  CHECK_EQ(escp_rx_file_add(z.rx, 1, NULL, 1ull << 34, meta), ESCP_OK);
  CHECK_EQ(escp_tx_file_add(z.tx, 1, "/dummy", 1ull << 34), ESCP_OK); /* 16 GiB: never done */
  escp_event et = failure(z.tx), er = failure(z.rx);
  CHECK(et.stream >= 1 && et.stream <= T); /* a data stream, the same one at both ends */
  CHECK_EQ(er.stream, et.stream);
  CHECK(atomic_load(&z.tap.dropped));
  stop_fast(z.tx);
  stop_fast(z.rx);
  relay_end_failed(&z, T + 1);
  tap_stop(&z.tap);
  CHECK(rmdir(dir) == 0);
}

/* A stranger from the relay's own address claims id 0 first: the relay's last connection
 * finds no id free for its source and waits (no HELLO yet) until the stranger's hello
 * deadline (min(timeout 8 s, 5 s)) frees id 0; then it gets it, inside host2's own
 * deadline for it, which started later. Slow (5 s) by design. */
static void same_source_wait(void) {
  fprintf(stderr, "-- a stranger from the relay's address holds id 0: the last stream waits for it (5 s)\n");
  enum { T = 4 };
  cfg c = {"same-source", "127.0.0.1", T, 0, 1, 0, 1, 0, 0, 0, 1};
  uint8_t key[32], sid[16];
  keys(key, sid);
  char dir[] = "/tmp/escp_test_three_XXXXXX";
  CHECK(mkdtemp(dir));
  three z = {0};
  three_listen(&z, &c, key, sid, dir);
  int stranger = dial_from("127.0.0.1", z.port1);
  CHECK_EQ(fake_challenge(stranger, T + 1), 0);
  struct timespec gap = {1, 500000000}; /* host2 accepts the relay 1.5 s after the stranger */
  nanosleep(&gap, NULL);
  time_t t0 = time(NULL);
  three_relay(&z, &c, 0, 0);
  CHECK(time(NULL) - t0 >= 2); /* it did wait for the stranger's deadline (3.5 s) */
  closed_quietly(stranger);
  uint64_t st[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(z.tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(st[ESCP_S_FRAMES_REJECTED], 1);
  ctl_exchange(z.tx, z.rx); /* stream 0 works, whichever connection carries it */
  CHECK_EQ(escp_tx_finish(z.tx), ESCP_OK);
  escp_event ev = next_event(z.tx, 10);
  CHECK_EQ(ev.type, ESCP_EV_DRAINED); /* BYE on every data stream... */
  CHECK_EQ(next_event(z.rx, 10).type, ESCP_EV_DRAINED); /* ...received on every one */
  stop_fast(z.tx);
  stop_fast(z.rx);
  relay_end(&z, T + 1);
  CHECK(rmdir(dir) == 0);
}

/* Idle but alive across the relay: timeout 1 s everywhere, nothing to send for 2.5 s but
 * the sessions' keepalives (KEEPALIVE frames on data streams, control messages every
 * 300 ms as TS sends them): no FATAL, no STREAM_DOWN; then it ends cleanly. */
static void idle_alive(void) {
  fprintf(stderr, "-- idle relayed session, T = 4, timeout 1 s: stays up 2.5 s\n");
  enum { T = 4 };
  cfg c = {"idle", "127.0.0.1", T, 0, 1, 0, 1, 0, 0, 0, 1};
  uint8_t key[32], sid[16], buf[64];
  keys(key, sid);
  char dir[] = "/tmp/escp_test_three_XXXXXX";
  CHECK(mkdtemp(dir));
  three z = {0};
  z.timeout_ms = 1000;
  three_listen(&z, &c, key, sid, dir);
  three_relay(&z, &c, 0, 0);
  escp_event ev;
  for (uint64_t t0 = ms_now(), ka = 0; ms_now() - t0 < 2500; nap()) {
    if (ms_now() - ka >= 300) { /* a control keepalive each 300 ms, both ways, as TS does */
      CHECK_EQ(escp_ctl_send(z.tx, (const uint8_t *)"ka", 2), ESCP_OK);
      CHECK_EQ(escp_ctl_send(z.rx, (const uint8_t *)"ka", 2), ESCP_OK);
      ka = ms_now();
    }
    while (escp_ctl_recv(z.tx, buf, sizeof buf) > 0 || escp_ctl_recv(z.rx, buf, sizeof buf) > 0) {
    }
    CHECK_EQ(escp_event_poll(z.tx, &ev, 1), 0);
    CHECK_EQ(escp_event_poll(z.rx, &ev, 1), 0);
  }
  uint64_t sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(z.rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK(sr[ESCP_S_BYTES_WIRE] >= T * 5 * 32); /* KEEPALIVE frames (32 B) every 333 ms each */
  CHECK_EQ(escp_tx_finish(z.tx), ESCP_OK);
  CHECK_EQ(next_event(z.tx, 5).type, ESCP_EV_DRAINED);
  CHECK_EQ(next_event(z.rx, 5).type, ESCP_EV_DRAINED);
  stop_fast(z.tx);
  stop_fast(z.rx);
  relay_end(&z, T + 1);
  CHECK(rmdir(dir) == 0);
}

/* The tap's scanner finds the marker when it does cross in the clear, even split across
 * reads (so its silence in the transfers above means something). */
static void tap_self_check(void) {
  fprintf(stderr, "-- the tap sees plaintext when there is some\n");
  int port;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0);
  CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0);
  port = ntohs(a.sin_port);
  tap t;
  tap_start(&t, port, 1, 0);
  int in = raw_connect("127.0.0.1", t.port), out = accept(l, NULL, NULL);
  CHECK(out >= 0);
  uint8_t b[40];
  memset(b, 'x', sizeof b);
  CHECK(send(in, b, 30, 0) == 30); /* the marker straddles two sends */
  nap();
  memcpy(b, MARK, 32);
  CHECK(send(in, b, 32, 0) == 32);
  close(in);
  uint8_t sink[128];
  while (recv(out, sink, sizeof sink, 0) > 0) {
  }
  close(out);
  tap_stop(&t);
  close(l);
  CHECK(atomic_load(&t.found));
}

int main(void) {
  static const cfg cfgs[] = {
      {"relay, T=4, direct I/O, checksums, bad files", "127.0.0.1", 4, 1, 0, 0, 1, 0, 0, 1, 1},
      {"relay through a tap, T=1, buffered, checksums", "127.0.0.1", 1, 0, 0, 0, 1, 0, 0, 0, 1},
      {"relay through a tap, T=4, buffered, sparse", "127.0.0.1", 4, 0, 0, 1, 1, 0, 0, 0, 1},
  };
  transfer(&cfgs[0], 0);
  transfer(&cfgs[1], 1);
  transfer(&cfgs[2], 1);
  tap_self_check();
  strangers();
  dropped_pair();
  idle_alive();
  same_source_wait();
  fprintf(stderr, "test_three: OK\n");
  return 0;
}
