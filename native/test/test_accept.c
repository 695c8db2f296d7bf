/* test_accept.c — the listener against strangers (protocol 2): floods of silent
 * connections from the peer's own address and from others, forged HELLOs (wrong key) and a
 * HELLO replayed from another connection cannot keep the real connector out; a silent
 * connection is closed at its hello deadline while the listener keeps going; T = 64 comes
 * up every time; and key hygiene: the process is hardened and the session key is wiped
 * once the streams are up (or the connect attempt is over). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "escp.h"
#include "frame.h" /* strangers speak the wire protocol by hand */

#include "xfer.h" /* nap, next_ev, connect_thread */

enum { HELLO_WIRE = ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG };
#define PER_SOURCE(t) (2 * ((t) + 1) + 8) /* net.h: ESCP_PENDING_PER_SOURCE(T + 1) */
#define TABLE 256                         /* net.h: ESCP_MAX_PENDING */

static uint8_t key[32], sid[16];

static void *session(int role, int threads, int64_t timeout_ms) {
  void *h = escp_session_new(role);
  CHECK(h);
  CHECK_EQ(escp_param_set(h, ESCP_P_THREADS, threads), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_TIMEOUT_MS, timeout_ms), ESCP_OK);
  CHECK_EQ(escp_session_key_set(h, key, sid), ESCP_OK);
  return h;
}

/* A blocking TCP connection to 127.0.0.1:port from address `from` (NULL: any). recv gives
 * up after 15 s, so a listener that never answers fails the test instead of hanging it. */
static int dial(const char *from, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  if (from) {
    CHECK(inet_pton(AF_INET, from, &a.sin_addr) == 1);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  }
  a.sin_port = htons((uint16_t)port);
  CHECK(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr) == 1);
  CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  struct timeval tv = {15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void read_challenge(int fd, uint8_t ch[ESCP_CHALLENGE_LEN]) {
  CHECK(recv(fd, ch, ESCP_CHALLENGE_LEN, MSG_WAITALL) == ESCP_CHALLENGE_LEN);
}

/* The listener closed this connection (EOF or reset); all it may have sent is a challenge. */
static void expect_eof(int fd) {
  uint8_t b[64];
  size_t got = 0;
  ssize_t r;
  while ((r = recv(fd, b, sizeof b, 0)) > 0) got += (size_t)r;
  CHECK(got <= ESCP_CHALLENGE_LEN);
  CHECK(r == 0 || (r < 0 && errno == ECONNRESET));
  close(fd);
}

/* A well-formed HELLO for `stream` of a T-stream sender session, sealed with key k for the
 * connection that got challenge ch. */
static void forge_hello(uint8_t out[HELLO_WIRE], const uint8_t *k, const uint8_t *ch, int stream, int t) {
  escp_chan c;
  CHECK_EQ(escp_chan_init(&c, k, sid, ch, ESCP_DIR_S2R, (uint16_t)stream, 1), ESCP_OK);
  escp_hello h = {ESCP_PROTOCOL_VERSION, (uint16_t)stream, (uint16_t)t, ESCP_ROLE_SENDER, {0}, {0}};
  memcpy(h.sid, sid, sizeof sid);
  memcpy(h.challenge, ch, ESCP_CHALLENGE_LEN);
  escp_hello_encode(&h, out + ESCP_FRAME_HDR);
  CHECK_EQ(escp_chan_seal(&c, ESCP_FT_HELLO, 0, out, out + ESCP_FRAME_HDR, ESCP_HELLO_LEN,
                          out + ESCP_FRAME_HDR + ESCP_HELLO_LEN), ESCP_OK);
  escp_chan_free(&c);
}


static uint64_t rejected(void *h) {
  uint64_t st[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(h, st, ESCP_S_COUNT), ESCP_S_COUNT);
  return st[ESCP_S_FRAMES_REJECTED];
}

/* The real sender connects all T+1 streams to the listener rx; both ends report them up
 * and both have wiped the session key. */
static void real_connect(void *rx, int port, int t) {
  void *tx = session(ESCP_ROLE_SENDER, t, 20000);
  conn_arg a = {tx, "127.0.0.1", port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  if (a.rc != ESCP_OK) {
    char d[256];
    escp_last_error_detail(tx, d, sizeof d);
    fprintf(stderr, "connect: %s\n", d);
  }
  CHECK_EQ(a.rc, ESCP_OK);
  escp_event ev = next_ev(rx);
  CHECK_EQ(ev.type, ESCP_EV_STREAMS_UP);
  CHECK_EQ(escp_test_key_wiped(rx), 1);
  CHECK_EQ(escp_test_key_wiped(tx), 1);
  escp_session_free(tx);
}

static void *listener(int t, int64_t timeout_ms, int *port) {
  void *rx = session(ESCP_ROLE_RECEIVER, t, timeout_ms);
  *port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(*port > 0);
  CHECK_EQ(escp_test_key_wiped(rx), 0); /* still needed for the HELLOs to come */
  return rx;
}

/* 200 silent connections from the real peer's own address arrive first: the per-source
 * cap evicts the oldest, so the real streams (the newest) get their slots. */
static void silent_flood(void) {
  fprintf(stderr, "-- 200 silent connections from 127.0.0.1 before the real connector\n");
  enum { N = 200, T = 4 };
  int port, fd[N];
  void *rx = listener(T, 20000, &port);
  for (int i = 0; i < N; i++) fd[i] = dial(NULL, port);
  real_connect(rx, port, T);
  for (int i = 0; i < N; i++) expect_eof(fd[i]);
  CHECK_EQ(rejected(rx), N); /* each evicted, or closed once the streams were up */
  escp_session_free(rx);
}

/* 300 silent connections from one other address hold at most its cap of slots (its oldest
 * are closed as newer ones come); 16 more addresses with 17 each overflow the table, which
 * then closes the oldest overall. The real connector still gets in. */
static void other_sources(void) {
  fprintf(stderr, "-- silent connections from 127.0.0.2 (300) and 127.0.1.1-16 (17 each)\n");
  enum { N = 300, T = 4, SRC = 16, EACH = PER_SOURCE(T) - 1 };
  int port, one[N], many[SRC * EACH];
  void *rx = listener(T, 20000, &port);
  for (int i = 0; i < N; i++) one[i] = dial("127.0.0.2", port);
  for (int i = 0; i < N - PER_SOURCE(T); i++) expect_eof(one[i]); /* evicted, oldest first */
  for (int s = 0; s < SRC; s++) {
    char from[16];
    snprintf(from, sizeof from, "127.0.1.%d", s + 1);
    for (int i = 0; i < EACH; i++) many[s * EACH + i] = dial(from, port);
  }
  /* PER_SOURCE(T) + SRC * EACH = 18 + 272 pending wanted a slot: the oldest 34 overall (all
   * of 127.0.0.2's, then 127.0.1.1's first 16) were closed to make room. */
  int over = PER_SOURCE(T) + SRC * EACH - TABLE;
  for (int i = N - PER_SOURCE(T); i < N; i++) expect_eof(one[i]);
  for (int i = 0; i < over - PER_SOURCE(T); i++) expect_eof(many[i]);
  real_connect(rx, port, T);
  for (int i = over - PER_SOURCE(T); i < SRC * EACH; i++) expect_eof(many[i]);
  CHECK_EQ(rejected(rx), N + SRC * EACH);
  escp_session_free(rx);
}

/* A stranger answers its challenge with a well-formed HELLO sealed with a wrong key. */
static void wrong_key(void) {
  fprintf(stderr, "-- a HELLO sealed with a wrong key\n");
  enum { T = 2 };
  int port;
  void *rx = listener(T, 20000, &port);
  uint8_t bad[32], ch[ESCP_CHALLENGE_LEN], hello[HELLO_WIRE];
  for (int i = 0; i < 32; i++) bad[i] = (uint8_t)(key[i] ^ 0x80);
  int fd = dial(NULL, port);
  read_challenge(fd, ch);
  forge_hello(hello, bad, ch, 0, T);
  CHECK(send(fd, hello, sizeof hello, 0) == sizeof hello);
  expect_eof(fd);
  CHECK_EQ(rejected(rx), 1);
  real_connect(rx, port, T);
  escp_session_free(rx);
}

/* A HELLO made (with the real key) for connection A's challenge, replayed on connection B:
 * B's keys come from B's challenge, so its tag fails, B is closed and stream 0 stays free. */
static void replay(void) {
  fprintf(stderr, "-- a HELLO for one connection replayed on another\n");
  enum { T = 2 };
  int port;
  void *rx = listener(T, 20000, &port);
  uint8_t ca[ESCP_CHALLENGE_LEN], cb[ESCP_CHALLENGE_LEN], hello[HELLO_WIRE], copy[HELLO_WIRE];
  int a = dial(NULL, port), b = dial(NULL, port);
  read_challenge(a, ca);
  read_challenge(b, cb);
  CHECK(memcmp(ca, cb, sizeof ca) != 0); /* fresh per connection */
  forge_hello(hello, key, ca, 0, T);
  memcpy(copy, hello, sizeof hello);
  escp_chan rxa; /* it is genuine: A's listener would accept it */
  CHECK_EQ(escp_chan_init(&rxa, key, sid, ca, ESCP_DIR_S2R, 0, 0), ESCP_OK);
  CHECK_EQ(escp_chan_open(&rxa, copy, copy + ESCP_FRAME_HDR, ESCP_HELLO_LEN, copy + ESCP_FRAME_HDR + ESCP_HELLO_LEN), ESCP_OK);
  escp_chan_free(&rxa);
  CHECK(send(b, hello, sizeof hello, 0) == sizeof hello);
  expect_eof(b);
  CHECK_EQ(rejected(rx), 1);
  real_connect(rx, port, T); /* needs stream 0's slot: the replay did not take it */
  expect_eof(a);             /* silent A was closed when the streams came up */
  CHECK_EQ(rejected(rx), 2);
  escp_session_free(rx);
}

/* A silent connection is closed at its hello deadline, min(timeout, 5 s) after accept,
 * while the listener keeps going. With the timeout above 5 s the listen deadline (timeout
 * after listen) cannot be what closed it: that would have pushed FATAL first. */
static void hello_deadline(void) {
  fprintf(stderr, "-- a silent connection meets its hello deadline (5 s)\n");
  enum { T = 1 };
  int port;
  void *rx = listener(T, 20000, &port);
  int fd = dial(NULL, port);
  expect_eof(fd);
  escp_event ev;
  CHECK_EQ(escp_event_poll(rx, &ev, 1), 0); /* no FATAL: the listener is still up */
  CHECK_EQ(rejected(rx), 1);
  real_connect(rx, port, T);
  escp_session_free(rx);
}

/* -t 64: T + 1 = 65 streams come up every time. */
static void t64(void) {
  fprintf(stderr, "-- T = 64, 20 times\n");
  for (int k = 0; k < 20; k++) {
    int port;
    void *rx = listener(64, 20000, &port);
    real_connect(rx, port, 64);
    CHECK_EQ(rejected(rx), 0);
    escp_session_free(rx);
  }
}

/* Key hygiene: key_set hardened the process; a failed connect wipes the key too, and the
 * session then needs a new key_set. */
static void hygiene(void) {
  fprintf(stderr, "-- process hardening and key wipe on a failed connect\n");
  CHECK_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_CORE, &rl) == 0);
  CHECK(rl.rlim_cur == 0 && rl.rlim_max == 0);
  CHECK_EQ(escp_process_harden(), ESCP_OK); /* idempotent */
  CHECK_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  int port;
  void *rx = listener(1, 20000, &port);
  escp_session_free(rx); /* the port is closed again: nothing listens there now */
  void *tx = session(ESCP_ROLE_SENDER, 1, 2000);
  CHECK_EQ(escp_test_key_wiped(tx), 0);
  CHECK_EQ(escp_connect(tx, "127.0.0.1", port), ESCP_E_CONNECT);
  CHECK_EQ(escp_test_key_wiped(tx), 1);
  CHECK_EQ(escp_connect(tx, "127.0.0.1", port), ESCP_E_STATE); /* no key any more */
  CHECK_EQ(escp_test_key_wiped(NULL), ESCP_E_INVAL);
  escp_session_free(tx);
}

/* With reconnect (ESCP_P_RETRIES) the listener stays open after all streams are up and
 * both sides keep the key (a stream may be re-established); a stranger's garbage HELLO is
 * still judged and closed; the key is wiped when the session ends. */
static void reconnect_listener(void) {
  fprintf(stderr, "-- reconnect on: the port stays open for the session, strangers still refused, key wiped at the end\n");
  enum { T = 2 };
  void *rx = session(ESCP_ROLE_RECEIVER, T, 20000), *tx = session(ESCP_ROLE_SENDER, T, 20000);
  CHECK_EQ(escp_param_set(rx, ESCP_P_RETRIES, 2), ESCP_OK);
  CHECK_EQ(escp_param_set(tx, ESCP_P_RETRIES, 2), ESCP_OK);
  int port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  conn_arg a = {tx, "127.0.0.1", port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.rc, ESCP_OK);
  CHECK_EQ(next_ev(rx).type, ESCP_EV_STREAMS_UP);
  CHECK_EQ(escp_test_key_wiped(rx), 0);
  CHECK_EQ(escp_test_key_wiped(tx), 0);
  uint64_t before = rejected(rx);
  int fd = dial(NULL, port); /* the port still answers, with a challenge */
  uint8_t ch[ESCP_CHALLENGE_LEN], junk[ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG];
  read_challenge(fd, ch);
  memset(junk, 0x5a, sizeof junk);
  CHECK(send(fd, junk, sizeof junk, MSG_NOSIGNAL) == (ssize_t)sizeof junk);
  expect_eof(fd);
  CHECK_EQ(rejected(rx), before + 1);
  CHECK_EQ(escp_session_stop(rx), ESCP_OK);
  CHECK_EQ(escp_session_join(rx), ESCP_OK);
  CHECK_EQ(escp_test_key_wiped(rx), 1);
  escp_session_free(tx);
  escp_session_free(rx);
}

int main(void) {
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)(0x11 * i + 7);
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)(0xe0 + i);
  wrong_key();
  replay();
  silent_flood();
  other_sources();
  t64();
  hello_deadline();
  hygiene();
  reconnect_listener();
  fprintf(stderr, "test_accept: OK\n");
  return 0;
}
