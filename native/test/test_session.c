/* test_session.c — loopback end-to-end test of the session API in one process: one session
 * listens (the receiver, or the sender: roles say who sends file data, not who listens), the
 * other connects from a second thread, files of edge-case sizes move over T streams (direct
 * I/O on/off, dummy engine, sparse, IPv6), digests and bytes are compared, control messages
 * go both ways, and strangers / wrong keys are rejected harmlessly. The harness is xfer.h. */
#define _GNU_SOURCE
#include "xfer.h"

/* Strangers and a wrong-key peer first (as configured), then the real connector (con: the
 * receiver when the sender listens) connects from a second thread. Returns how many
 * rejections the listener must have counted. */
static int bring_up(const cfg *c, void *con, int port, const uint8_t *bad, const uint8_t *sid) {
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
    void *evil = new_session(c->sender_listens ? ESCP_ROLE_RECEIVER : ESCP_ROLE_SENDER, c, bad, sid);
    int rc = escp_connect(evil, c->addr, port);
    CHECK(rc == ESCP_E_CONNECT || rc == ESCP_E_AUTH);
    char d[256];
    CHECK(escp_last_error_detail(evil, d, sizeof d) > 0 && strstr(d, "[net.c:"));
    escp_session_free(evil);
    strangers += 1;
  }
  conn_arg a = {con, c->addr, port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  if (a.rc != ESCP_OK) {
    char d[256];
    escp_last_error_detail(con, d, sizeof d);
    fprintf(stderr, "connect: %s\n", d);
  }
  CHECK_EQ(a.rc, ESCP_OK);
  if (quiet >= 0) expect_closed(quiet);
  return strangers;
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
  void *lis = c->sender_listens ? tx : rx, *con = c->sender_listens ? rx : tx;
  int port = escp_listen(lis, c->addr, 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_rx_root(rx, dir, 0), ESCP_OK);
  CHECK_EQ(escp_rx_root(rx, dir, 0), ESCP_E_STATE); /* once */
  CHECK_EQ(escp_session_start(lis), ESCP_OK); /* before streams are up: threads wait */
  int strangers = bring_up(c, con, port, bad, sid);
  CHECK_EQ(escp_test_key_wiped(con), 1);
  CHECK_EQ(escp_session_start(con), ESCP_OK);
  CHECK_EQ(escp_session_start(con), ESCP_E_STATE);
  escp_event ev;
  while (escp_event_poll(lis, &ev, 1) == 0) nap();
  CHECK_EQ(ev.type, ESCP_EV_STREAMS_UP); /* the listener's first event, whatever its role */
  CHECK_EQ(escp_test_key_wiped(lis), 1);
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

  teardown(tx, rx, n, strangers, c->sender_listens);
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
  cfg c = {"rogue", "127.0.0.1", 1, 0, 1, 0, 1, 0, 0, 0, 0};
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
  CHECK_EQ(escp_param_bounds(ESCP_P_HELLO_ON_ACCEPT, &mn, &mx, &df), ESCP_OK);
  CHECK(mn == 0 && mx == 1 && df == 0);
  CHECK(escp_session_new(7) == NULL);
  escp_session_free(NULL);
  void *h = escp_session_new(ESCP_ROLE_RECEIVER);
  CHECK(h);
  CHECK_EQ(escp_param_set(h, ESCP_P_BLOCK_SIZE, 100000), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(h, ESCP_P_THREADS, 65), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(h, ESCP_P_IP_MODE, 5), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(h, ESCP_P_HELLO_ON_ACCEPT, 2), ESCP_E_RANGE);
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
  cfg c = {"rogue-sizes", "127.0.0.1", 1, 0, 0, 0, 1, 0, 0, 0, 0};
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
      {"T=1 direct strangers", "127.0.0.1", 1, 1, 0, 0, 1, 1, 0, 1, 0},
      {"T=4 direct wrong-key", "127.0.0.1", 4, 1, 0, 0, 1, 0, 1, 0, 0},
      {"T=4 buffered sparse ::1", "::1", 4, 0, 0, 1, 1, 0, 0, 1, 0},
      {"T=3 buffered no-checksum", "127.0.0.1", 3, 0, 0, 0, 0, 0, 0, 0, 0},
      {"T=4 dummy engine", "127.0.0.1", 4, 1, 1, 0, 1, 0, 0, 0, 0},
      /* The same with the roles' sockets swapped: the sender listens, the receiver connects. */
      {"T=1 direct strangers, sender listens", "127.0.0.1", 1, 1, 0, 0, 1, 1, 0, 1, 1},
      {"T=4 direct wrong-key, sender listens", "127.0.0.1", 4, 1, 0, 0, 1, 0, 1, 0, 1},
      {"T=4 buffered sparse ::1, sender listens", "::1", 4, 0, 0, 1, 1, 0, 0, 1, 1},
      {"T=3 buffered no-checksum, sender listens", "127.0.0.1", 3, 0, 0, 0, 0, 0, 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) run(&cfgs[i]);
  rogue(0);
  rogue(1);
  for (int m = 0; m < 3; m++) rogue_sizes(m);
  fprintf(stderr, "test_session: OK\n");
  return 0;
}
