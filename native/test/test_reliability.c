/* test_reliability.c — reliability properties of the data plane, in one process:
 *  - sources that grow, shrink, are rewritten or replaced while sent → FILE_ERROR
 *    ESCP_E_CHANGED (made deterministic by holding the receiver: its stream thread waits
 *    for the fino to be registered, so the sender has opened the file and is blocked in
 *    send, far from its end, when the test changes it);
 *  - a frozen peer (raw socket: hello, then silence) → FATAL E_TIMEOUT within the timeout,
 *    on the send side ("send stalled", stream 0 silent) and on the receive side;
 *  - keepalives keep an idle session (T = 8, one small file, slow receiver) alive past
 *    2x the timeout, with the receiver or the sender listening;
 *  - open fds stay bounded while 1,000 files wait for their expect; no per-file memory;
 *  - fault injection (linked against the -DESCP_FAULT_INJECTION objects): the Nth pwrite
 *    fails with ENOSPC for exactly one file, the Nth pread with EIO, the Nth send drops
 *    the stream. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "escp.h"
#include "frame.h" /* the raw peers speak the handshake by hand */

#include "check.h"

#define B 65536u
#define SID_BYTE 0x5a

static uint8_t key[32], sid[16];
static char dir[64];
static const int64_t meta644[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};

static void nap(void) { /* the JS timer between polls; never in the library */
  struct timespec ts = {0, 1000000};
  nanosleep(&ts, NULL);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void write_file(const char *path, uint64_t size, uint8_t seed) {
  uint8_t *b = malloc(size + 1);
  CHECK(b);
  for (uint64_t i = 0; i < size; i++) b[i] = (uint8_t)(i * 31 + seed);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK(write(fd, b, size) == (ssize_t)size);
  close(fd);
  free(b);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  CHECK(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the DIR's own fd */
}

static void *new_session(int role, int threads, int64_t timeout_ms, int dummy) {
  void *h = escp_session_new(role);
  CHECK(h);
  CHECK_EQ(escp_param_set(h, ESCP_P_THREADS, threads), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_BLOCK_SIZE, B), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_DIRECT, 0), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_IO_ENGINE, dummy ? ESCP_IO_DUMMY : ESCP_IO_POSIX), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_TIMEOUT_MS, timeout_ms), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_SOCK_BUF, 65536), ESCP_OK); /* small: blocked sends come soon */
  if (role == ESCP_ROLE_RECEIVER) CHECK_EQ(escp_rx_root(h, dir, 0), ESCP_OK); /* names below are relative */
  CHECK_EQ(escp_session_key_set(h, key, sid), ESCP_OK);
  return h;
}

typedef struct conn_arg { void *h; int port, rc; } conn_arg;
static void *connect_thread(void *p) {
  conn_arg *a = p;
  a->rc = escp_connect(a->h, "127.0.0.1", a->port);
  return NULL;
}

static int next_event(void *h, escp_event *ev, uint64_t wait_ms) {
  for (uint64_t t0 = now_ms(); now_ms() - t0 < wait_ms; nap())
    if (escp_event_poll(h, ev, 1) == 1) return 1;
  return 0;
}

/* A started pair: lis listens, con connects (roles are the sessions' own). */
static void pair_up(void *lis, void *con) {
  int port = escp_listen(lis, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_session_start(lis), ESCP_OK);
  conn_arg a = {con, port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.rc, ESCP_OK);
  CHECK_EQ(escp_session_start(con), ESCP_OK);
  /* As the control plane does: the listener sends nothing before its STREAMS_UP (connect can
   * return a moment before the listener has installed the last stream). */
  escp_event ev;
  CHECK(next_event(lis, &ev, 10000));
  CHECK_EQ(ev.type, ESCP_EV_STREAMS_UP);
}

/* Next event other than STREAMS_UP / DRAINED / LOG, within 10 s. */
static escp_event file_event(void *h) {
  escp_event ev;
  do CHECK(next_event(h, &ev, 10000));
  while (ev.type == ESCP_EV_STREAMS_UP || ev.type == ESCP_EV_DRAINED || ev.type == ESCP_EV_LOG);
  if (ev.type != ESCP_EV_FILE_DONE && ev.type != ESCP_EV_FILE_ERROR)
    fprintf(stderr, "unexpected event %u status %d: %s\n", ev.type, ev.status, ev.text);
  CHECK(ev.type == ESCP_EV_FILE_DONE || ev.type == ESCP_EV_FILE_ERROR);
  return ev;
}

static uint64_t stat_of(void *h, int i) {
  uint64_t st[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(h, st, ESCP_S_COUNT), ESCP_S_COUNT);
  return st[i];
}

/* ---- changing sources ---- */

enum { CH_GREW, CH_SHRANK, CH_MODIFIED, CH_REPLACED, CH_LISTED_SMALLER };

static void change(int kind, const char *path) {
  int fd;
  char tmp[160];
  switch (kind) {
    case CH_GREW:
      fd = open(path, O_WRONLY | O_APPEND);
      CHECK(fd >= 0 && write(fd, "more", 4) == 4);
      close(fd);
      break;
    case CH_SHRANK:
      CHECK(truncate(path, 20 * B + 5) == 0);
      break;
    case CH_MODIFIED: /* same size; the file's mtime was set an hour back at creation */
      fd = open(path, O_WRONLY);
      CHECK(fd >= 0 && pwrite(fd, "x", 1, 50 * B) == 1);
      close(fd);
      break;
    case CH_REPLACED:
      snprintf(tmp, sizeof tmp, "%s.new", path);
      write_file(tmp, 64 * B, 9);
      CHECK(rename(tmp, path) == 0);
      break;
    default:
      break;
  }
}

static void changing_source(int kind, const char *word) {
  fprintf(stderr, "-- source changed while sent: %s\n", word);
  char big[128], small[128], out1[128], out2[128];
  snprintf(big, sizeof big, "%s/big", dir);
  snprintf(small, sizeof small, "%s/small", dir);
  snprintf(out1, sizeof out1, "out1");
  snprintf(out2, sizeof out2, "out2");
  uint64_t size = 64 * B; /* 4 MiB: far more than the ~0.5 MiB the socket buffers hold */
  write_file(big, kind == CH_LISTED_SMALLER ? size + 100 : size, 1);
  write_file(small, 1000, 2);
  struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
  CHECK(utimensat(AT_FDCWD, big, old, 0) == 0);
  void *rx = new_session(ESCP_ROLE_RECEIVER, 1, 8000, 0), *tx = new_session(ESCP_ROLE_SENDER, 1, 8000, 0);
  CHECK_EQ(escp_tx_file_add(tx, 1, big, size), ESCP_OK);
  CHECK_EQ(escp_tx_file_add(tx, 2, small, 1000), ESCP_OK);
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  pair_up(rx, tx);
  /* Block 0 was read (the file is open); the receiver holds fino 1 unregistered, so the
   * sender is stuck in send a few blocks in. Change the file now, then let data flow. */
  for (uint64_t t0 = now_ms(); stat_of(tx, ESCP_S_BYTES_FILE) < B; nap()) CHECK(now_ms() - t0 < 5000);
  CHECK(stat_of(tx, ESCP_S_BYTES_FILE) < 16 * B);
  change(kind, big);
  CHECK_EQ(escp_rx_file_add(rx, 1, out1, size, meta644), ESCP_OK);
  CHECK_EQ(escp_rx_file_add(rx, 2, out2, 1000, meta644), ESCP_OK);
  escp_event ev = file_event(tx);
  CHECK_EQ(ev.fino, 1);
  CHECK_EQ(ev.type, ESCP_EV_FILE_ERROR);
  CHECK_EQ(ev.status, ESCP_E_CHANGED);
  if (!strstr(ev.text, word)) fprintf(stderr, "text: %s\n", ev.text);
  CHECK(strstr(ev.text, "changed while sent") && strstr(ev.text, word));
  CHECK_EQ(escp_rx_file_expect(rx, 1, ev.blocks, ESCP_XF_ABORTED, NULL), ESCP_OK);
  ev = file_event(tx);
  CHECK(ev.fino == 2 && ev.type == ESCP_EV_FILE_DONE && ev.bytes == 1000);
  CHECK_EQ(escp_rx_file_expect(rx, 2, ev.blocks, 0, ev.digest), ESCP_OK);
  for (int k = 0; k < 2; k++) {
    ev = file_event(rx);
    CHECK_EQ(ev.type, ev.fino == 1 ? ESCP_EV_FILE_ERROR : ESCP_EV_FILE_DONE);
    if (ev.fino == 1) CHECK_EQ(ev.status, ESCP_E_ABORTED);
  }
  escp_session_free(tx);
  escp_session_free(rx);
  CHECK(unlinkat(AT_FDCWD, big, 0) == 0 && unlinkat(AT_FDCWD, small, 0) == 0);
  char o[160];
  snprintf(o, sizeof o, "%s/out1", dir);
  CHECK(access(o, F_OK) != 0); /* the changed file never got its name */
  snprintf(o, sizeof o, "%s/out2", dir);
  CHECK(unlink(o) == 0);
}

/* ---- raw peers that complete the handshake and then freeze ---- */

static void raw_hello(int fd, int i, int streams, int role, int connector) {
  enum { T0 = ESCP_FRAME_HDR + ESCP_HELLO_LEN }; /* tag offset */
  escp_chan tx, rx;
  uint32_t me = role == ESCP_ROLE_SENDER ? ESCP_DIR_S2R : ESCP_DIR_R2S;
  uint32_t peer = me == ESCP_DIR_S2R ? ESCP_DIR_R2S : ESCP_DIR_S2R;
  uint8_t hb[T0 + ESCP_TAG], ch[ESCP_CHALLENGE_LEN];
  if (connector) { /* the listener speaks first: its challenge keys this connection */
    CHECK(recv(fd, ch, sizeof ch, MSG_WAITALL) == sizeof ch);
  } else { /* listener: challenge, then learn the stream id from the HELLO header */
    for (size_t k = 0; k < sizeof ch; k++) ch[k] = (uint8_t)(0x3c + 7 * k + (size_t)fd);
    CHECK(send(fd, ch, sizeof ch, 0) == sizeof ch);
    CHECK(recv(fd, hb, sizeof hb, MSG_WAITALL) == sizeof hb);
    escp_frame_hdr fh;
    escp_frame_hdr_decode(hb, &fh);
    i = fh.stream;
  }
  CHECK_EQ(escp_chan_init(&tx, key, sid, ch, me, (uint16_t)i, 1), ESCP_OK);
  CHECK_EQ(escp_chan_init(&rx, key, sid, ch, peer, (uint16_t)i, 0), ESCP_OK);
  if (!connector) CHECK_EQ(escp_chan_open(&rx, hb, hb + 16, ESCP_HELLO_LEN, hb + T0), ESCP_OK);
  escp_hello h = {ESCP_PROTOCOL_VERSION, (uint16_t)i, (uint16_t)streams, (uint16_t)role, {0}, {0}};
  memcpy(h.sid, sid, 16);
  memcpy(h.challenge, ch, sizeof ch);
  escp_hello_encode(&h, hb + ESCP_FRAME_HDR);
  uint8_t type = connector ? ESCP_FT_HELLO : ESCP_FT_HELLO_ACK;
  CHECK_EQ(escp_chan_seal(&tx, type, 0, hb, hb + 16, ESCP_HELLO_LEN, hb + T0), ESCP_OK);
  CHECK(send(fd, hb, sizeof hb, 0) == sizeof hb);
  if (connector) {
    CHECK(recv(fd, hb, sizeof hb, MSG_WAITALL) == sizeof hb);
    CHECK_EQ(escp_chan_open(&rx, hb, hb + 16, ESCP_HELLO_LEN, hb + T0), ESCP_OK);
  }
  escp_chan_free(&tx);
  escp_chan_free(&rx);
}

typedef struct frozen { int lfd, n, fd[8]; } frozen;
static void *frozen_acceptor(void *p) {
  frozen *z = p;
  for (int i = 0; i < z->n; i++) {
    z->fd[i] = accept(z->lfd, NULL, NULL);
    CHECK(z->fd[i] >= 0);
    raw_hello(z->fd[i], -1, z->n - 1, ESCP_ROLE_RECEIVER, 0);
  }
  return NULL; /* from here on: never reads, never writes */
}

/* Collect FATAL E_TIMEOUT events for up to wait_ms; returns the ms of the first one since
 * t0 and sets *saw_a / *saw_b when a text contains a / b. */
static uint64_t timeouts(void *h, uint64_t t0, uint64_t wait_ms, const char *a, int *saw_a, const char *b, int *saw_b) {
  uint64_t first = 0;
  escp_event ev;
  while (!(*saw_a && *saw_b) && next_event(h, &ev, t0 + wait_ms > now_ms() ? t0 + wait_ms - now_ms() : 1)) {
    if (ev.type == ESCP_EV_STREAMS_UP || ev.type == ESCP_EV_LOG) continue;
    if (ev.type != ESCP_EV_FATAL || ev.status != ESCP_E_TIMEOUT)
      fprintf(stderr, "event %u status %d: %s\n", ev.type, ev.status, ev.text);
    CHECK_EQ(ev.type, ESCP_EV_FATAL);
    CHECK_EQ(ev.status, ESCP_E_TIMEOUT);
    if (!first) first = now_ms() - t0;
    *saw_a |= strstr(ev.text, a) != NULL;
    *saw_b |= strstr(ev.text, b) != NULL;
  }
  return first;
}

/* stop must wake every thread at once, whatever it is blocked in. */
static void stop_fast(void *h) {
  uint64_t t0 = now_ms();
  CHECK_EQ(escp_session_stop(h), ESCP_OK);
  CHECK_EQ(escp_session_join(h), ESCP_OK);
  CHECK(now_ms() - t0 < 500);
  escp_session_free(h);
}

static void frozen_receiver(void) {
  fprintf(stderr, "-- frozen receiver: the sender times out\n");
  frozen z = {socket(AF_INET, SOCK_STREAM, 0), 3, {0}};
  int small = 65536;
  setsockopt(z.lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* inherited by accept */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CHECK(bind(z.lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(z.lfd, 8) == 0);
  CHECK(getsockname(z.lfd, (struct sockaddr *)&a, &al) == 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, frozen_acceptor, &z) == 0);
  void *tx = new_session(ESCP_ROLE_SENDER, 2, 1000, 1);
  CHECK_EQ(escp_connect(tx, "127.0.0.1", ntohs(a.sin_port)), ESCP_OK);
  pthread_join(th, NULL);
  CHECK_EQ(escp_tx_file_add(tx, 1, "/dummy", 1ull << 30), ESCP_OK); /* dummy engine: no disk */
  uint64_t t0 = now_ms();
  CHECK_EQ(escp_session_start(tx), ESCP_OK);
  int stalled = 0, silent = 0;
  uint64_t first = timeouts(tx, t0, 4000, "send stalled on stream", &stalled, "no data from peer for 1 s on stream 0", &silent);
  CHECK(stalled && silent);
  CHECK(first >= 900 && first < 1800); /* the timeout is 1000 ms */
  stop_fast(tx);
  for (int i = 0; i < z.n; i++) close(z.fd[i]);
  close(z.lfd);
}

static void frozen_sender(void) {
  fprintf(stderr, "-- frozen sender: the receiver times out\n");
  void *rx = new_session(ESCP_ROLE_RECEIVER, 2, 1000, 0);
  int port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_session_start(rx), ESCP_OK);
  int fd[3];
  for (int i = 0; i < 3; i++) {
    fd[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd[i], (struct sockaddr *)&a, sizeof a) == 0);
    raw_hello(fd[i], i, 2, ESCP_ROLE_SENDER, 1);
  }
  escp_event ev;
  CHECK(next_event(rx, &ev, 5000) && ev.type == ESCP_EV_STREAMS_UP);
  uint64_t t0 = now_ms();
  int data = 0, ctl = 0;
  uint64_t first = timeouts(rx, t0, 3000, "no data from peer for 1 s on stream 1", &data,
                            "no data from peer for 1 s on stream 0", &ctl);
  CHECK(data && ctl);
  CHECK(first >= 800 && first < 1800);
  stop_fast(rx);
  for (int i = 0; i < 3; i++) close(fd[i]);
}

/* ---- an idle but alive session outlives 2x the timeout ---- */

static void idle_alive(int sender_listens) {
  fprintf(stderr, "-- idle session, T = 8, timeout 1 s, slow receiver: stays up 2.5 s (%s listens)\n",
          sender_listens ? "sender" : "receiver");
  char src[128], out[128];
  snprintf(src, sizeof src, "%s/idle", dir);
  snprintf(out, sizeof out, "idle.out");
  write_file(src, 5000, 3);
  void *rx = new_session(ESCP_ROLE_RECEIVER, 8, 1000, 0), *tx = new_session(ESCP_ROLE_SENDER, 8, 1000, 0);
  if (sender_listens) pair_up(tx, rx);
  else pair_up(rx, tx);
  CHECK_EQ(escp_rx_file_add(rx, 1, out, 5000, meta644), ESCP_OK);
  CHECK_EQ(escp_tx_file_add(tx, 1, src, 5000), ESCP_OK);
  escp_event ev, done = {0};
  uint64_t t0 = now_ms(), last_ka = 0;
  uint8_t buf[64];
  while (now_ms() - t0 < 2500) { /* what TS does: drain, and a control keepalive each 300 ms */
    if (now_ms() - last_ka >= 300) {
      CHECK_EQ(escp_ctl_send(tx, (const uint8_t *)"ka", 2), ESCP_OK);
      CHECK_EQ(escp_ctl_send(rx, (const uint8_t *)"ka", 2), ESCP_OK);
      last_ka = now_ms();
    }
    while (escp_ctl_recv(tx, buf, sizeof buf) > 0 || escp_ctl_recv(rx, buf, sizeof buf) > 0) {
    }
    if (escp_event_poll(tx, &ev, 1) == 1 && ev.type != ESCP_EV_STREAMS_UP) {
      CHECK_EQ(ev.type, ESCP_EV_FILE_DONE);
      done = ev;
    }
    if (escp_event_poll(rx, &ev, 1) == 1) CHECK_EQ(ev.type, ESCP_EV_STREAMS_UP);
    nap();
  }
  CHECK_EQ(done.fino, 1);
  /* 7 streams idle for 2.5 s at one 32-byte KEEPALIVE per 333 ms each, received. */
  CHECK(stat_of(rx, ESCP_S_BYTES_WIRE) >= 5000 + 7 * 5 * 32);
  CHECK_EQ(escp_rx_file_expect(rx, 1, done.blocks, 0, done.digest), ESCP_OK); /* the slow receiver finishes */
  ev = file_event(rx);
  CHECK(ev.type == ESCP_EV_FILE_DONE && memcmp(ev.digest, done.digest, 32) == 0);
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  CHECK(next_event(tx, &ev, 5000) && ev.type == ESCP_EV_DRAINED);
  CHECK(next_event(rx, &ev, 5000) && ev.type == ESCP_EV_DRAINED);
  escp_session_free(tx);
  CHECK(!next_event(rx, &ev, 50)); /* the sender said BYE everywhere: no FATAL, no DOWN */
  escp_session_free(rx);
  unlink(src);
  snprintf(src, sizeof src, "%s/idle.out", dir);
  CHECK(unlink(src) == 0);
}

/* ---- resource bounds: fds and memory do not grow with the file count ---- */

#define NFILES 1000

static void bounded(void) {
  fprintf(stderr, "-- %d files, expects withheld: fds and memory stay bounded\n", NFILES);
  setenv("ESCP_TMPFILE", "0", 1); /* named temporaries: closed at seal (unnamed ones are held, capped) */
  void *rx = new_session(ESCP_ROLE_RECEIVER, 4, 8000, 0), *tx = new_session(ESCP_ROLE_SENDER, 4, 8000, 0);
  unsetenv("ESCP_TMPFILE");
  pair_up(rx, tx);
  static uint64_t blocks[NFILES + 1];
  static uint8_t digests[NFILES + 1][32];
  char p[128];
  int base = count_fds(), peak = base; /* sockets, eventfds, listener: all in place */
  struct rlimit lim, tight = {(rlim_t)base + 48, (rlim_t)base + 48};
  CHECK(getrlimit(RLIMIT_NOFILE, &lim) == 0);
  tight.rlim_max = lim.rlim_max; /* soft limit only: any fd pile-up fails a file */
  CHECK(setrlimit(RLIMIT_NOFILE, &tight) == 0);
#ifndef __SANITIZE_ADDRESS__
  size_t heap0 = mallinfo2().uordblks;
#endif
  for (int i = 1; i <= NFILES; i++) {
    uint64_t size = i % 100 == 0 ? 3 * B + 17 : (uint64_t)(i * 7 % 3000);
    snprintf(p, sizeof p, "%s/f%d", dir, i);
    write_file(p, size, (uint8_t)i);
    CHECK_EQ(escp_tx_file_add(tx, (uint64_t)i, p, size), ESCP_OK);
    snprintf(p, sizeof p, "o%d", i);
    CHECK_EQ(escp_rx_file_add(rx, (uint64_t)i, p, size, meta644), ESCP_OK);
  }
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  /* The receiver gets no expect until the sender is done with every file: the data-plane
   * state of all 1,000 files is complete, yet nothing may stay open. */
  escp_event ev;
  for (int left = NFILES; left > 0;) {
    int c = count_fds();
    peak = c > peak ? c : peak;
    if (escp_event_poll(tx, &ev, 1) == 0) {
      nap();
      continue;
    }
    if (ev.type == ESCP_EV_DRAINED) continue;
    if (ev.type != ESCP_EV_FILE_DONE) fprintf(stderr, "event %u %d %s\n", ev.type, ev.status, ev.text);
    CHECK_EQ(ev.type, ESCP_EV_FILE_DONE);
    blocks[ev.fino] = ev.blocks;
    memcpy(digests[ev.fino], ev.digest, 32);
    left--;
  }
  for (uint64_t t0 = now_ms(); stat_of(rx, ESCP_S_BLOCKS) < stat_of(tx, ESCP_S_BLOCKS); nap())
    CHECK(now_ms() - t0 < 10000);
  CHECK(count_fds() <= base + 1);
  CHECK(peak <= base + 2 * (4 + 1)); /* sender <= T + 1 files, receiver per stream pipeline */
  for (int i = 1; i <= NFILES; i++) CHECK_EQ(escp_rx_file_expect(rx, (uint64_t)i, blocks[i], 0, digests[i]), ESCP_OK);
  for (int left = NFILES; left > 0; left--) CHECK_EQ(file_event(rx).type, ESCP_EV_FILE_DONE);
  CHECK(count_fds() <= base);
#ifndef __SANITIZE_ADDRESS__
  /* Every file record, path and digest is freed on completion: well under 1,000 x 100 B. */
  size_t heap1 = mallinfo2().uordblks;
  if (heap1 > heap0 + 64 * 1024) fprintf(stderr, "heap grew %zu -> %zu\n", heap0, heap1);
  CHECK(heap1 <= heap0 + 64 * 1024);
#endif
  CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
  escp_session_free(tx);
  escp_session_free(rx);
  for (int i = 1; i <= NFILES; i++) {
    snprintf(p, sizeof p, "%s/f%d", dir, i);
    unlink(p);
    snprintf(p, sizeof p, "%s/o%d", dir, i);
    unlink(p);
  }
}

/* ---- fault injection (this program links the -DESCP_FAULT_INJECTION objects) ---- */

/* n files of 1..n KiB over T = 1 (so the Nth file I/O is the Nth file); the env var is set
 * only while the chosen side starts (it is read once at session start). Returns the fino
 * of the one file that failed on `side` and the failing event. */
static void fault_run(const char *var, const char *val, int side, int n, escp_event *failed) {
  void *rx = new_session(ESCP_ROLE_RECEIVER, 1, 8000, 0), *tx = new_session(ESCP_ROLE_SENDER, 1, 8000, 0);
  int port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  if (side == ESCP_ROLE_RECEIVER) setenv(var, val, 1);
  CHECK_EQ(escp_session_start(rx), ESCP_OK);
  unsetenv(var);
  conn_arg a = {tx, port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.rc, ESCP_OK);
  if (side == ESCP_ROLE_SENDER) setenv(var, val, 1);
  CHECK_EQ(escp_session_start(tx), ESCP_OK);
  unsetenv(var);
  unsetenv("ESCP_FI_ERRNO");
  char p[128];
  for (int i = 1; i <= n; i++) {
    snprintf(p, sizeof p, "%s/fi%d", dir, i);
    write_file(p, (uint64_t)i * 1024, (uint8_t)i);
    CHECK_EQ(escp_tx_file_add(tx, (uint64_t)i, p, (uint64_t)i * 1024), ESCP_OK);
    snprintf(p, sizeof p, "fo%d", i);
    CHECK_EQ(escp_rx_file_add(rx, (uint64_t)i, p, (uint64_t)i * 1024, meta644), ESCP_OK);
  }
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  int bad = 0;
  for (int k = 0; k < n; k++) { /* sender verdicts, passed on as the TS would */
    escp_event ev = file_event(tx);
    if (ev.type == ESCP_EV_FILE_ERROR) *failed = ev, bad++;
    int abort = ev.type == ESCP_EV_FILE_ERROR;
    CHECK_EQ(escp_rx_file_expect(rx, ev.fino, ev.blocks, abort ? ESCP_XF_ABORTED : 0, abort ? NULL : ev.digest), ESCP_OK);
  }
  for (int k = 0; k < n; k++) {
    escp_event ev = file_event(rx);
    if (ev.type == ESCP_EV_FILE_ERROR && side == ESCP_ROLE_RECEIVER) *failed = ev, bad++;
    if (ev.type == ESCP_EV_FILE_DONE) CHECK_EQ(ev.bytes, ev.fino * 1024);
  }
  CHECK_EQ(bad, 1); /* exactly one file failed; every other one completed */
  escp_session_free(tx);
  escp_session_free(rx);
  for (int i = 1; i <= n; i++) {
    snprintf(p, sizeof p, "%s/fi%d", dir, i);
    unlink(p);
    snprintf(p, sizeof p, "%s/fo%d", dir, i);
    unlink(p);
  }
}

static void faults(void) {
  fprintf(stderr, "-- fault injection: 3rd pwrite ENOSPC, 2nd pread EACCES, 1st send dropped\n");
  escp_event ev;
  fault_run("ESCP_FI_PWRITE_FAIL_AT", "3", ESCP_ROLE_RECEIVER, 6, &ev);
  CHECK(ev.fino == 3 && ev.type == ESCP_EV_FILE_ERROR && ev.status == ESCP_E_WRITE);
  CHECK_EQ(ev.sys_errno, ENOSPC);
  setenv("ESCP_FI_ERRNO", "13", 1);
  fault_run("ESCP_FI_PREAD_FAIL_AT", "2", ESCP_ROLE_SENDER, 4, &ev);
  CHECK(ev.fino == 2 && ev.status == ESCP_E_READ && ev.sys_errno == EACCES);
  /* A dropped data stream: the sender reports it, the receiver sees EOF. */
  void *rx = new_session(ESCP_ROLE_RECEIVER, 1, 8000, 0), *tx = new_session(ESCP_ROLE_SENDER, 1, 8000, 0);
  CHECK_EQ(escp_tx_file_add(tx, 1, "/dev/null", 0), ESCP_OK);
  CHECK_EQ(escp_rx_file_add(rx, 1, NULL, 0, meta644), ESCP_OK);
  setenv("ESCP_FI_SEND_FAIL_AT", "1", 1);
  pair_up(rx, tx); /* both sessions count: the receiver sends nothing here */
  unsetenv("ESCP_FI_SEND_FAIL_AT");
  do CHECK(next_event(tx, &ev, 5000));
  while (ev.type == ESCP_EV_FILE_ERROR);
  CHECK(ev.type == ESCP_EV_STREAM_DOWN && ev.status == ESCP_E_CLOSED && ev.stream == 1);
  do CHECK(next_event(rx, &ev, 5000));
  while (ev.type == ESCP_EV_STREAMS_UP);
  CHECK(ev.type == ESCP_EV_STREAM_DOWN && ev.stream == 1);
  escp_session_free(tx);
  escp_session_free(rx);
}

/* ---- reconnect ---- */

/* The next event that is not LOG; RECONNECT events are counted into *rec. */
static escp_event event_skip(void *h, int *rec) {
  escp_event ev;
  for (;;) {
    CHECK(next_event(h, &ev, 20000));
    if (ev.type == ESCP_EV_RECONNECT) (*rec)++;
    else if (ev.type != ESCP_EV_LOG) return ev;
  }
}

/* A data connection drops mid-transfer (the drop_at-th frame send shuts the socket down)
 * with ESCP_P_RETRIES on both sides: the stream is re-established, the receiver's count
 * comes first, the sender resends what it lacks, and every file arrives whole, whichever
 * side listens; the sessions end with DRAINED on both sides and no fd left behind. */
static void reconnects(int sender_listens, const char *drop_at) {
  fprintf(stderr, "-- a data connection dropped at %s, %s listens: re-established, every file whole\n", drop_at,
          sender_listens ? "the sender" : "the receiver");
  int fds0 = count_fds();
  enum { N = 9 };
  void *rx = new_session(ESCP_ROLE_RECEIVER, 2, 8000, 0), *tx = new_session(ESCP_ROLE_SENDER, 2, 8000, 0);
  CHECK_EQ(escp_param_set(rx, ESCP_P_RETRIES, 3), ESCP_OK);
  CHECK_EQ(escp_param_set(tx, ESCP_P_RETRIES, 3), ESCP_OK);
  char src[N][128], dst[N][128];
  uint64_t size[N];
  for (int i = 0; i < N; i++) {
    size[i] = (uint64_t)i * 97531 + (i % 3 ? B * 3 : 0); /* 0 bytes, and up to ~15 blocks */
    snprintf(src[i], sizeof src[i], "%s/rc%d", dir, i);
    snprintf(dst[i], sizeof dst[i], "rco%d", i);
    write_file(src[i], size[i], (uint8_t)(i + 11));
    CHECK_EQ(escp_tx_file_add(tx, (uint64_t)i + 1, src[i], size[i]), ESCP_OK);
    CHECK_EQ(escp_rx_file_add(rx, (uint64_t)i + 1, dst[i], size[i], meta644), ESCP_OK);
  }
  /* "send N": the sender's Nth frame send; "ack N": the receiver's Nth ACK */
  const char *var = strncmp(drop_at, "ack ", 4) == 0 ? "ESCP_FI_ACK_FAIL_AT" : "ESCP_FI_SEND_FAIL_AT";
  setenv(var, strchr(drop_at, ' ') + 1, 1);
  if (sender_listens) pair_up(tx, rx);
  else pair_up(rx, tx);
  unsetenv(var);
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  int rec_tx = 0, rec_rx = 0;
  for (int k = 0; k < N; k++) { /* sender verdicts, passed on as the TS would */
    escp_event ev = event_skip(tx, &rec_tx);
    if (ev.type != ESCP_EV_FILE_DONE) fprintf(stderr, "sender event %u status %d: %s\n", ev.type, ev.status, ev.text);
    CHECK_EQ(ev.type, ESCP_EV_FILE_DONE);
    CHECK_EQ(escp_rx_file_expect(rx, ev.fino, ev.blocks, 0, ev.digest), ESCP_OK);
  }
  int drained = 0;
  for (int k = 0; k < N + 1; k++) { /* N files and the DRAINED, in any order */
    escp_event ev = event_skip(rx, &rec_rx);
    if (ev.type == ESCP_EV_DRAINED && !drained++) continue;
    if (ev.type != ESCP_EV_FILE_DONE) fprintf(stderr, "receiver event %u status %d: %s\n", ev.type, ev.status, ev.text);
    CHECK_EQ(ev.type, ESCP_EV_FILE_DONE);
    CHECK_EQ(ev.bytes, size[ev.fino - 1]);
  }
  escp_event ev = event_skip(tx, &rec_tx); /* every stream ended with its final ACK */
  CHECK_EQ(ev.type, ESCP_EV_DRAINED);
  /* A receiver whose final ACK was lost re-establishes the stream after its DRAINED (the BYE
   * was consumed): its RECONNECT may come last. */
  for (escp_event e; rec_rx < 1 && next_event(rx, &e, 10000);) rec_rx += e.type == ESCP_EV_RECONNECT;
  for (escp_event e; rec_tx < 1 && next_event(tx, &e, 10000);) rec_tx += e.type == ESCP_EV_RECONNECT;
  CHECK(rec_tx >= 1 && rec_rx >= 1);
  CHECK_EQ(stat_of(tx, ESCP_S_RECONNECTS), (uint64_t)rec_tx);
  CHECK_EQ(stat_of(rx, ESCP_S_RECONNECTS), (uint64_t)rec_rx);
  CHECK_EQ(stat_of(tx, ESCP_S_RECONNECTING), 0u);
  escp_session_free(tx);
  escp_session_free(rx);
  for (int i = 0; i < N; i++) {
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, dst[i]);
    uint64_t la, lb;
    uint8_t *a = slurp(src[i], &la), *b = slurp(p, &lb);
    CHECK(la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    unlink(src[i]);
    unlink(p);
  }
  CHECK_EQ(count_fds(), fds0);
}

/* ---- sparse sources (ESCP_P_HOLES) ---- */

/* A file of `blocks` blocks of B bytes with data (a pattern) only in the blocks whose
 * letter in `map` is 'd' ('h' = hole); 'p' = a partial block: 100 bytes of data in its
 * middle. The file is made by ftruncate and pwrite, so the holes are real. */
static void make_sparse(const char *path, const char *map, uint8_t seed) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  size_t n = strlen(map);
  CHECK(ftruncate(fd, (off_t)(n * B)) == 0);
  uint8_t *b = malloc(B);
  CHECK(b);
  for (size_t i = 0; i < n; i++) {
    for (uint32_t k = 0; k < B; k++) b[k] = (uint8_t)(k * 13 + i + seed) | 1; /* never zero */
    if (map[i] == 'd') CHECK(pwrite(fd, b, B, (off_t)(i * B)) == (ssize_t)B);
    if (map[i] == 'p') CHECK(pwrite(fd, b, 100, (off_t)(i * B + B / 2)) == 100);
  }
  free(b);
  close(fd);
}

/* A block of path is a hole: no data from its start to its end (SEEK_DATA). */
static int is_hole(const char *path, size_t i) {
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  off_t d = lseek(fd, (off_t)(i * B), SEEK_DATA);
  int hole = (d < 0 && errno == ENXIO) || (d >= 0 && (uint64_t)d >= (uint64_t)(i + 1) * B);
  close(fd);
  return hole;
}

/* Holes of a sparse source are neither read nor sent with ESCP_P_HOLES: a ZERO frame stands
 * for each block wholly in one (not the last); the receiver leaves a hole there, the bytes
 * and the digest equal the source's, and the wire carries only the data blocks. */
static void holes(int on) {
  fprintf(stderr, "-- sparse sources, ESCP_P_HOLES %d: holes at the start, middle, end, everywhere, none\n", on);
  static const char *maps[] = {"dhhhhhhhhhdhhhhhhhhd", "hhhhhhhhhhhhhhhh", "hhhhhhhhdddddddd", "ddddhhhhhhhhhhhh",
                               "dddddddd", "dhphhhhhd"};
  enum { N = sizeof maps / sizeof maps[0] };
  void *rx = new_session(ESCP_ROLE_RECEIVER, 2, 8000, 0), *tx = new_session(ESCP_ROLE_SENDER, 2, 8000, 0);
  CHECK_EQ(escp_param_set(tx, ESCP_P_HOLES, on), ESCP_OK);
  pair_up(rx, tx);
  CHECK_EQ(escp_param_set(tx, ESCP_P_HOLES, on), ESCP_E_STATE); /* settable until start only */
  uint64_t data_blocks = 0, blocks = 0;
  char src[N][128], dst[N][1400];
  for (int i = 0; i < N; i++) {
    snprintf(src[i], sizeof src[i], "%s/sp%d", dir, i);
    snprintf(dst[i], sizeof dst[i], "%s/spo%d", dir, i);
    make_sparse(src[i], maps[i], (uint8_t)i);
    size_t n = strlen(maps[i]);
    blocks += n;
    for (size_t k = 0; k < n; k++) data_blocks += maps[i][k] != 'h' || k + 1 == n; /* the last is always read */
    char rel[16];
    snprintf(rel, sizeof rel, "spo%d", i);
    CHECK_EQ(escp_tx_file_add(tx, (uint64_t)i + 1, src[i], n * B), ESCP_OK);
    CHECK_EQ(escp_rx_file_add(rx, (uint64_t)i + 1, rel, n * B, meta644), ESCP_OK);
  }
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  uint8_t dg[N][32];
  for (int k = 0; k < N; k++) {
    escp_event ev = file_event(tx);
    CHECK_EQ(ev.type, ESCP_EV_FILE_DONE);
    memcpy(dg[ev.fino - 1], ev.digest, 32);
    CHECK_EQ(escp_rx_file_expect(rx, ev.fino, ev.blocks, 0, ev.digest), ESCP_OK);
  }
  for (int k = 0; k < N; k++) CHECK_EQ(file_event(rx).type, ESCP_EV_FILE_DONE); /* digests matched */
  uint64_t wire = stat_of(tx, ESCP_S_BYTES_WIRE);
  escp_session_free(tx);
  escp_session_free(rx);
  uint64_t framing = blocks * (ESCP_FRAME_HDR + ESCP_DATA_SUBHDR + ESCP_TAG) + 4096;
  if (on) CHECK(wire <= data_blocks * B + framing); /* only the data blocks travelled */
  else CHECK(wire >= blocks * B);
  for (int i = 0; i < N; i++) {
    uint64_t la, lb;
    uint8_t *a = slurp(src[i], &la), *b = slurp(dst[i], &lb);
    CHECK(la == lb && memcmp(a, b, la) == 0);
    uint8_t want[32];
    CHECK_EQ(escp_digest_buffer(a, la, B, 0, want), ESCP_OK);
    CHECK(memcmp(want, dg[i], 32) == 0); /* the sender's digest is the b3sum of the bytes */
    size_t n = strlen(maps[i]);
    for (size_t k = 0; on && k + 1 < n; k++)
      if (maps[i][k] == 'h') CHECK(is_hole(dst[i], k)); /* recreated as holes */
    free(a);
    free(b);
    unlink(src[i]);
    unlink(dst[i]);
  }
}

/* ESCP_P_RETRIES may only be turned off after listen, and only until start (an older peer). */
static void retries_late_off(void) {
  fprintf(stderr, "-- --retries: turned off after listen until start, never on again\n");
  void *h = new_session(ESCP_ROLE_RECEIVER, 1, 8000, 1);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 3), ESCP_OK);
  CHECK(escp_listen(h, "127.0.0.1", 0, 1) > 0);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 2), ESCP_E_STATE);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 0), ESCP_OK);
  CHECK_EQ(escp_param_get(h, ESCP_P_RETRIES), 0);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 1), ESCP_E_STATE);
  CHECK_EQ(escp_session_start(h), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 0), ESCP_E_STATE);
  escp_session_free(h);
}

int main(void) {
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 7 + 1);
  memset(sid, SID_BYTE, sizeof sid);
  snprintf(dir, sizeof dir, "/tmp/escp_test_rel_XXXXXX");
  CHECK(mkdtemp(dir));
  uint64_t t0 = now_ms();
  changing_source(CH_GREW, "grew");
  changing_source(CH_SHRANK, "shrank");
  changing_source(CH_MODIFIED, "modified");
  changing_source(CH_REPLACED, "replaced");
  changing_source(CH_LISTED_SMALLER, "grew");
  faults();
  bounded();
  frozen_receiver();
  frozen_sender();
  idle_alive(0);
  idle_alive(1);
  holes(1);
  holes(0);
  retries_late_off();
  reconnects(0, "send 7");
  reconnects(1, "send 7");
  reconnects(0, "send 1");  /* the very first frame */
  reconnects(1, "send 76"); /* the first BYE: the 75 DATA frames went before it */
  reconnects(0, "send 77"); /* the second BYE */
  /* Under 64 frames a stream (64 KiB blocks: an ACK per 64), the first ACKs are the final
   * ones: the BYE was consumed, its ACK is lost, the stream must still end DRAINED. */
  reconnects(0, "ack 1");
  reconnects(1, "ack 2");
  CHECK(rmdir(dir) == 0);
  fprintf(stderr, "test_reliability: OK (%.1f s)\n", (double)(now_ms() - t0) / 1000);
  return 0;
}
