/* test_stream.c — streams of unknown length (escp.h "streams") over loopback in one process:
 * tx_stream_add from pipes fed by writer threads (whole writes and slow small chunks, a pause
 * longer than the silence limit), lengths 0, 1, B-1, B, B+1, 5B+7 over T = 1 and 4; the
 * receiver writes each to a file and to a pipe drained by a reader thread (order and bytes);
 * the block API with out-of-order submits from two threads and its refusals; errors: a read
 * error (a directory fd: EISDIR), a consumer that closes early (EPIPE, no hang), RETRIES and
 * HOLES refused; a rogue sender's second short block (session-scope ESCP_E_PROTO); and the
 * example program build/stream_send, its digest checked against the file it wrote. */
#define _GNU_SOURCE
#include <sys/wait.h>
#include "xfer.h"

enum { TO_FILE = 1, TO_FD, BLK };

/* One stream of a test: its bytes, how it travels, what each side must report. */
typedef struct item {
  uint64_t fino, len;
  int kind;
  uint8_t *data;
  int pfd[2];                /* the pipe: sender side (writer thread -> tx) or receiver side (rx -> reader) */
  int slow, pause, close_at; /* writer: small chunks; one pause past the silence limit. reader: close after close_at bytes */
  pthread_t thr;
  int thr_live;
  uint8_t *got;              /* TO_FD: what the reader thread read */
  uint64_t ngot;
  int32_t tx_status, rx_status, rx_errno; /* expected */
  int tx_done, rx_done;
} item;

static void gen(uint8_t *p, uint64_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = (uint8_t)(x >> 24);
  }
}

static void *writer(void *arg) {
  item *it = arg;
  uint64_t off = 0;
  while (off < it->len) {
    size_t n = it->slow ? 777 : (size_t)(it->len - off);
    if (n > it->len - off) n = (size_t)(it->len - off);
    ssize_t w = write(it->pfd[1], it->data + off, n);
    CHECK(w > 0);
    off += (uint64_t)w;
    if (it->pause && off >= it->len / 2) { /* the producer goes quiet for longer than the timeout */
      struct timespec ts = {1, 300000000};
      nanosleep(&ts, NULL);
      it->pause = 0;
    }
  }
  close(it->pfd[1]); /* EOF ends the stream */
  return NULL;
}

static void *reader(void *arg) {
  item *it = arg;
  it->got = malloc(it->len + 1);
  CHECK(it->got);
  for (;;) {
    uint64_t cap = (it->close_at ? (uint64_t)it->close_at : it->len) - it->ngot;
    if (cap == 0) break;
    ssize_t r = read(it->pfd[0], it->got + it->ngot, cap);
    CHECK(r >= 0);
    if (r == 0) break;
    it->ngot += (uint64_t)r;
  }
  close(it->pfd[0]); /* early, with close_at: the receiver's next write is EPIPE */
  return NULL;
}

static void *new_side(int role, int threads, int timeout, const uint8_t *key, const uint8_t *sid) {
  cfg c = {"stream", "127.0.0.1", threads, 0, 0, 0, 1, 0, 0, 0, 0};
  void *h = new_session(role, &c, key, sid);
  CHECK_EQ(escp_param_set(h, ESCP_P_TIMEOUT_MS, timeout), ESCP_OK);
  return h;
}

/* A receiver listening on loopback, a sender connected to it, both started. */
static sess pair_up(int threads, int timeout, const char *root) {
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  sess p = {new_side(ESCP_ROLE_SENDER, threads, timeout, key, sid), new_side(ESCP_ROLE_RECEIVER, threads, timeout, key, sid)};
  int port = escp_listen(p.rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  if (root) CHECK_EQ(escp_rx_root(p.rx, root, 0), ESCP_OK);
  CHECK_EQ(escp_session_start(p.rx), ESCP_OK);
  CHECK_EQ(escp_connect(p.tx, "127.0.0.1", port), ESCP_OK);
  CHECK_EQ(escp_session_start(p.tx), ESCP_OK);
  CHECK_EQ(next_ev(p.rx).type, ESCP_EV_STREAMS_UP);
  return p;
}

static item *find_item(item *v, int n, uint64_t fino) {
  for (int i = 0; i < n; i++)
    if (v[i].fino == fino) return &v[i];
  CHECK(!"event for an unknown fino");
  return NULL;
}

/* What the TS control plane does: the sender's verdict becomes the receiver's stream_expect. */
static void on_tx(sess *p, item *v, int n, const escp_event *e) {
  if (e->type == ESCP_EV_STREAMS_UP || e->type == ESCP_EV_DRAINED) return;
  if (e->type != ESCP_EV_FILE_DONE && e->type != ESCP_EV_FILE_ERROR)
    fprintf(stderr, "sender event %u status %d text %s\n", e->type, e->status, e->text);
  CHECK(e->type == ESCP_EV_FILE_DONE || e->type == ESCP_EV_FILE_ERROR);
  item *it = find_item(v, n, e->fino);
  CHECK(!it->tx_done);
  it->tx_done = 1;
  if (e->status != it->tx_status) fprintf(stderr, "fino %llu: %d %s\n", (unsigned long long)e->fino, e->status, e->text);
  CHECK_EQ(e->status, it->tx_status);
  if (e->type == ESCP_EV_FILE_ERROR) {
    if (it->tx_status == ESCP_E_READ) CHECK_EQ(e->sys_errno, EISDIR);
    CHECK_EQ(escp_rx_stream_expect(p->rx, e->fino, 0, e->blocks, ESCP_XF_ABORTED, NULL), ESCP_OK);
    return;
  }
  uint64_t nb = it->len == 0 ? 1 : (it->len + B - 1) / B;
  CHECK_EQ(e->bytes, it->len);
  CHECK_EQ(e->blocks, nb);
  uint8_t d[32];
  CHECK_EQ(escp_digest_buffer(it->data, it->len, B, 0, d), ESCP_OK);
  CHECK(memcmp(d, e->digest, 32) == 0);
  /* a count or size that disagrees with the stream's shape is refused, then the real one */
  CHECK_EQ(escp_rx_stream_expect(p->rx, e->fino, e->bytes, nb + 1, 0, e->digest), ESCP_E_PROTO);
  CHECK_EQ(escp_rx_file_expect(p->rx, e->fino, nb, 0, e->digest), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_stream_expect(p->rx, e->fino, e->bytes, nb, 0, e->digest), ESCP_OK);
}

static void on_rx(item *v, int n, const escp_event *e) {
  if (e->type == ESCP_EV_STREAMS_UP || e->type == ESCP_EV_DRAINED) return;
  if (e->type != ESCP_EV_FILE_DONE && e->type != ESCP_EV_FILE_ERROR)
    fprintf(stderr, "receiver event %u status %d text %s\n", e->type, e->status, e->text);
  CHECK(e->type == ESCP_EV_FILE_DONE || e->type == ESCP_EV_FILE_ERROR);
  item *it = find_item(v, n, e->fino);
  CHECK(!it->rx_done);
  it->rx_done = 1;
  if (e->status != it->rx_status) fprintf(stderr, "fino %llu: %d %s\n", (unsigned long long)e->fino, e->status, e->text);
  CHECK_EQ(e->status, it->rx_status);
  if (it->rx_errno) CHECK_EQ(e->sys_errno, it->rx_errno);
  if (e->type == ESCP_EV_FILE_DONE) {
    uint8_t d[32];
    CHECK_EQ(escp_digest_buffer(it->data, it->len, B, 1, d), ESCP_OK);
    CHECK(memcmp(d, e->digest, 32) == 0);
    CHECK_EQ(e->bytes, it->len);
  }
}

/* Drain both rings until every item has both verdicts; control keepalives both ways every
 * 200 ms, as the TS control plane sends them (a producer may pause past the timeout). */
static void spump(sess *p, item *v, int n) {
  escp_event ev[32];
  uint64_t last = 0;
  for (time_t t0 = time(NULL);;) {
    int left = 0;
    for (int i = 0; i < n; i++) left += !v[i].tx_done + !v[i].rx_done;
    if (!left) break;
    if (time(NULL) - t0 >= 60)
      for (int i = 0; i < n; i++)
        if (!v[i].tx_done || !v[i].rx_done)
          fprintf(stderr, "fino %llu: tx %d rx %d\n", (unsigned long long)v[i].fino, v[i].tx_done, v[i].rx_done);
    CHECK(time(NULL) - t0 < 60);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (now - last >= 200) {
      uint8_t k = 'k', junk[8];
      CHECK_EQ(escp_ctl_send(p->tx, &k, 1), ESCP_OK);
      CHECK_EQ(escp_ctl_send(p->rx, &k, 1), ESCP_OK);
      while (escp_ctl_recv(p->tx, junk, sizeof junk) > 0) {
      }
      while (escp_ctl_recv(p->rx, junk, sizeof junk) > 0) {
      }
      last = now;
    }
    int a = escp_event_poll(p->tx, ev, 32);
    for (int i = 0; i < a; i++) on_tx(p, v, n, &ev[i]);
    int b = escp_event_poll(p->rx, ev, 32);
    for (int i = 0; i < b; i++) on_rx(v, n, &ev[i]);
    if (a == 0 && b == 0) nap();
  }
}

/* Every item's bytes where they went, its threads joined, its memory freed. */
static void check_items(const char *root, item *v, int n) {
  for (int i = 0; i < n; i++) {
    item *it = &v[i];
    if (it->thr_live) pthread_join(it->thr, NULL);
    if (it->kind == TO_FD && !it->close_at) {
      CHECK_EQ(it->ngot, it->len);
      CHECK(memcmp(it->got, it->data, it->len) == 0);
    }
    if (it->kind == TO_FD && it->close_at) CHECK(memcmp(it->got, it->data, it->ngot) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/s%llu", root, (unsigned long long)it->fino);
    if (it->kind != TO_FD && it->rx_status == ESCP_OK) {
      uint64_t l;
      uint8_t *b = slurp(path, &l);
      CHECK_EQ(l, it->len);
      CHECK(memcmp(b, it->data, l) == 0);
      free(b);
      unlink(path);
    } else if (it->kind != TO_FD) {
      CHECK(access(path, F_OK) != 0); /* nothing of a failed stream under its name */
    }
    free(it->data);
    free(it->got);
  }
}

static const int64_t meta[ESCP_META_COUNT] = {0644, 0, 0, 0, 0};

/* ---- T streams: the fd cases ---- */
static void run_fd(int threads) {
  fprintf(stderr, "-- tx_stream_add, T = %d\n", threads);
  static const uint64_t lens[] = {0, 1, B - 1, B, B + 1, 5 * B + 7};
  char root[] = "/tmp/escp_test_stream_XXXXXX";
  CHECK(mkdtemp(root));
  sess p = pair_up(threads, 8000, root);
  enum { N = 12 };
  item v[N + 2];
  int rfd[N + 2][2];
  int n = 0;
  for (int k = 0; k < 6; k++)
    for (int kind = TO_FILE; kind <= TO_FD; kind++, n++) {
      item *it = &v[n];
      memset(it, 0, sizeof *it);
      it->fino = 100 + (uint64_t)n, it->len = lens[k], it->kind = kind, it->slow = (k + kind) % 2;
      it->data = malloc(it->len + 1);
      CHECK(it->data);
      gen(it->data, it->len, it->fino);
    }
  /* a read error: a directory is no stream (EISDIR) */
  int dfd = open(root, O_RDONLY | O_DIRECTORY);
  CHECK(dfd >= 0);
  item *bad = &v[n++];
  memset(bad, 0, sizeof *bad);
  bad->fino = 900, bad->kind = TO_FILE, bad->tx_status = ESCP_E_READ, bad->rx_status = ESCP_E_ABORTED;
  bad->data = malloc(1);
  /* a consumer that reads 1000 bytes then closes its end: EPIPE on the receiver, no hang */
  item *epipe = &v[n++];
  memset(epipe, 0, sizeof *epipe);
  epipe->fino = 901, epipe->len = 8 * B, epipe->kind = TO_FD, epipe->close_at = 1000;
  epipe->rx_status = ESCP_E_WRITE, epipe->rx_errno = EPIPE;
  epipe->data = malloc(epipe->len);
  gen(epipe->data, epipe->len, 901);
  /* the sender: the producer threads write into pipes the sender reads */
  item prod[N + 2];
  for (int i = 0; i < n; i++) {
    if (v[i].fino == 900) {
      CHECK_EQ(escp_tx_stream_add(p.tx, 900, dfd), ESCP_OK);
      continue;
    }
    prod[i] = v[i];
    prod[i].close_at = 0;
    CHECK(pipe(prod[i].pfd) == 0);
    CHECK_EQ(escp_tx_stream_add(p.tx, v[i].fino, prod[i].pfd[0]), ESCP_OK);
    CHECK(pthread_create(&prod[i].thr, NULL, writer, &prod[i]) == 0);
  }
  CHECK_EQ(escp_tx_finish(p.tx), ESCP_OK);
  /* the receiver: files below the root, or pipes drained by reader threads */
  for (int i = 0; i < n; i++) {
    char rel[32];
    snprintf(rel, sizeof rel, "s%llu", (unsigned long long)v[i].fino);
    if (v[i].kind == TO_FILE) {
      CHECK_EQ(escp_rx_file_add(p.rx, v[i].fino, rel, ESCP_SIZE_STREAM, meta), ESCP_OK);
      continue;
    }
    CHECK(pipe(rfd[i]) == 0);
    v[i].pfd[0] = rfd[i][0];
    CHECK_EQ(escp_rx_stream_fd(p.rx, v[i].fino, rfd[i][1]), ESCP_OK);
    CHECK_EQ(escp_rx_stream_fd(p.rx, v[i].fino, rfd[i][1]), ESCP_E_DUP);
    CHECK(pthread_create(&v[i].thr, NULL, reader, &v[i]) == 0);
    v[i].thr_live = 1;
  }
  spump(&p, v, n);
  for (int i = 0; i < n; i++) {
    if (v[i].fino != 900) {
      pthread_join(prod[i].thr, NULL);
      close(prod[i].pfd[0]);
    }
    if (v[i].kind == TO_FD) {
      pthread_join(v[i].thr, NULL);
      v[i].thr_live = 0;
      close(rfd[i][1]);
    }
  }
  close(dfd);
  check_items(root, v, n);
  sess_down(&p);
  CHECK(rmdir(root) == 0); /* nothing left behind */
}

/* A producer that pauses past the silence limit: the waiting data streams send KEEPALIVEs. */
static void run_pause(void) {
  fprintf(stderr, "-- a producer pausing 1.3 s, timeout 1 s, T = 2\n");
  char root[] = "/tmp/escp_test_stream_XXXXXX";
  CHECK(mkdtemp(root));
  sess p = pair_up(2, 1000, root);
  item v[1], prod;
  memset(v, 0, sizeof v);
  v[0].fino = 5, v[0].len = 3 * B + 11, v[0].kind = TO_FILE;
  v[0].data = malloc(v[0].len);
  gen(v[0].data, v[0].len, 5);
  prod = v[0];
  prod.pause = 1;
  CHECK(pipe(prod.pfd) == 0);
  CHECK_EQ(escp_tx_stream_add(p.tx, 5, prod.pfd[0]), ESCP_OK);
  CHECK(pthread_create(&prod.thr, NULL, writer, &prod) == 0);
  CHECK_EQ(escp_rx_file_add(p.rx, 5, "s5", ESCP_SIZE_STREAM, meta), ESCP_OK);
  spump(&p, v, 1);
  pthread_join(prod.thr, NULL);
  close(prod.pfd[0]);
  check_items(root, v, 1);
  sess_down(&p);
  CHECK(rmdir(root) == 0);
}

/* ---- the block API ---- */

typedef struct blk_arg {
  void *tx;
  uint64_t fino, len;
  const uint8_t *data;
  int me;                 /* this thread takes pairs me, me + 2, ... */
  pthread_mutex_t *mu;
  pthread_cond_t *cv;
  uint64_t *turn;         /* the pair whose submits are next */
} blk_arg;

/* Pairs of blocks (2k, 2k+1), every other pair this thread's: the second block of the pair is
 * submitted before the first. A pair starts once the one before it was submitted (the pool
 * must hold the blocks ahead of a gap: escp.h). */
static void *blk_producer(void *arg) {
  blk_arg *a = arg;
  uint64_t nb = a->len == 0 ? 1 : (a->len + B - 1) / B;
  for (uint64_t pr = (uint64_t)a->me; pr * 2 < nb; pr += 2) {
    pthread_mutex_lock(a->mu);
    while (*a->turn != pr) pthread_cond_wait(a->cv, a->mu);
    pthread_mutex_unlock(a->mu);
    for (int k = 1; k >= 0; k--) {
      uint64_t idx = pr * 2 + (uint64_t)k;
      if (idx >= nb) continue;
      uint8_t *buf = escp_tx_block_claim(a->tx, -1);
      CHECK(buf);
      CHECK(((uintptr_t)buf & 4095) == 0);
      uint64_t off = idx * B, n = a->len - off < B ? a->len - off : B;
      memcpy(buf, a->data + off, n);
      CHECK_EQ(escp_tx_block_submit(a->tx, a->fino, buf, off, (uint32_t)n), ESCP_OK);
    }
    pthread_mutex_lock(a->mu);
    (*a->turn)++;
    pthread_cond_broadcast(a->cv);
    pthread_mutex_unlock(a->mu);
  }
  return NULL;
}

/* Claim a buffer (it must come within 10 s). */
static uint8_t *claim(void *tx) {
  uint8_t *b = escp_tx_block_claim(tx, 10000);
  CHECK(b);
  return b;
}

static void run_blocks(int threads) {
  fprintf(stderr, "-- block API, T = %d\n", threads);
  char root[] = "/tmp/escp_test_stream_XXXXXX";
  CHECK(mkdtemp(root));
  sess p = pair_up(threads, 8000, root);
  item v[4];
  memset(v, 0, sizeof v);
  uint64_t lens[2] = {9 * B + 123, 0};
  for (int i = 0; i < 2; i++) { /* two streams from two producer threads each */
    v[i].fino = 300 + (uint64_t)i, v[i].len = lens[i], v[i].kind = BLK;
    v[i].data = malloc(v[i].len + 1);
    gen(v[i].data, v[i].len, v[i].fino);
    CHECK_EQ(escp_tx_stream_open(p.tx, v[i].fino), ESCP_OK);
    char rel[32];
    snprintf(rel, sizeof rel, "s%llu", (unsigned long long)v[i].fino);
    CHECK_EQ(escp_rx_file_add(p.rx, v[i].fino, rel, ESCP_SIZE_STREAM, meta), ESCP_OK);
  }
  CHECK_EQ(escp_tx_stream_open(p.tx, 300), ESCP_E_DUP);
  for (int i = 0; i < 2; i++) {
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    uint64_t turn = 0;
    blk_arg a[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
      a[k] = (blk_arg){p.tx, v[i].fino, v[i].len, v[i].data, k, &mu, &cv, &turn};
      CHECK(pthread_create(&th[k], NULL, blk_producer, &a[k]) == 0);
    }
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    CHECK_EQ(escp_tx_stream_end(p.tx, v[i].fino, v[i].len), ESCP_OK);
    CHECK_EQ(escp_tx_stream_end(p.tx, v[i].fino, v[i].len), ESCP_E_STATE);
  }
  spump(&p, v, 2);

  /* refusals (this stream heads the queue now: block 0 goes out at once) */
  uint64_t f = 310;
  v[2] = (item){.fino = f, .len = 2 * B + 100, .kind = BLK};
  v[2].data = malloc(v[2].len);
  gen(v[2].data, v[2].len, f);
  CHECK_EQ(escp_rx_file_add(p.rx, f, "s310", ESCP_SIZE_STREAM, meta), ESCP_OK);
  CHECK_EQ(escp_tx_stream_open(p.tx, f), ESCP_OK);
  uint8_t *b0 = claim(p.tx), junk[16];
  CHECK_EQ(escp_tx_block_submit(p.tx, f, junk, 0, 1), ESCP_E_INVAL);     /* not a claimed buffer */
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0 + 1, 0, 1), ESCP_E_INVAL);   /* not a buffer's start */
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0, 1, 1), ESCP_E_INVAL);       /* misaligned offset */
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0, B / 2, 1), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0, 0, B + 1), ESCP_E_INVAL);   /* len > B */
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0, B, 0), ESCP_E_INVAL);       /* empty, not at 0 */
  CHECK_EQ(escp_tx_block_submit(p.tx, 999, b0, 0, B), ESCP_E_STATE);     /* not an open stream */
  memcpy(b0, v[2].data, B);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0, 0, B), ESCP_OK);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b0, B, B), ESCP_E_INVAL);       /* no longer claimed */
  uint8_t *b1 = claim(p.tx);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b1, 0, B), ESCP_E_DUP);         /* that offset twice */
  memcpy(b1, v[2].data + 2 * B, 100);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b1, 2 * B, 100), ESCP_OK);      /* the short last block, early */
  uint8_t *b2 = claim(p.tx);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b2, 3 * B, B), ESCP_E_INVAL);   /* past the short one */
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b2, B, 50), ESCP_E_INVAL);      /* a second short one */
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b2, 2 * B, 100), ESCP_E_DUP);
  memcpy(b2, v[2].data + B, B);
  CHECK_EQ(escp_tx_block_submit(p.tx, f, b2, B, B), ESCP_OK);
  CHECK_EQ(escp_tx_stream_end(p.tx, f, v[2].len), ESCP_OK);
  /* a stream whose end contradicts its blocks fails (FILE_ERROR ESCP_E_INVAL) */
  v[3] = (item){.fino = 311, .len = 100, .kind = BLK, .tx_status = ESCP_E_INVAL, .rx_status = ESCP_E_ABORTED};
  v[3].data = malloc(100);
  gen(v[3].data, 100, 311);
  CHECK_EQ(escp_rx_file_add(p.rx, 311, "s311", ESCP_SIZE_STREAM, meta), ESCP_OK);
  CHECK_EQ(escp_tx_stream_open(p.tx, 311), ESCP_OK);
  uint8_t *b3 = claim(p.tx);
  memcpy(b3, v[3].data, 100);
  CHECK_EQ(escp_tx_block_submit(p.tx, 311, b3, 0, 100), ESCP_OK);
  CHECK_EQ(escp_tx_stream_end(p.tx, 311, 5000), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_stream_end(p.tx, 311, 100), ESCP_E_STATE);
  uint8_t *b4 = claim(p.tx);
  CHECK_EQ(escp_tx_block_submit(p.tx, 311, b4, B, 10), ESCP_E_STATE);    /* failed */
  CHECK_EQ(escp_tx_finish(p.tx), ESCP_OK);
  spump(&p, &v[2], 2);
  check_items(root, v, 4);
  sess_down(&p);
  CHECK(rmdir(root) == 0);
}

/* RETRIES > 0 and HOLES refuse streams; a receiver's misuse. */
static void run_refused(void) {
  fprintf(stderr, "-- refused\n");
  void *h = escp_session_new(ESCP_ROLE_SENDER);
  CHECK(h);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 2), ESCP_OK);
  CHECK_EQ(escp_tx_stream_add(h, 1, 0), ESCP_E_STATE);
  CHECK_EQ(escp_tx_stream_open(h, 1), ESCP_E_STATE);
  CHECK_EQ(escp_param_set(h, ESCP_P_RETRIES, 0), ESCP_OK);
  CHECK_EQ(escp_param_set(h, ESCP_P_HOLES, 1), ESCP_OK);
  CHECK_EQ(escp_tx_stream_add(h, 1, 0), ESCP_E_STATE);
  CHECK_EQ(escp_param_set(h, ESCP_P_HOLES, 0), ESCP_OK);
  CHECK_EQ(escp_tx_stream_add(h, 0, 0), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_stream_add(h, 1, -1), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_stream_fd(h, 1, 1), ESCP_E_STATE);
  CHECK_EQ(escp_rx_stream_expect(h, 1, 0, 1, 0, NULL), ESCP_E_STATE);
  CHECK(escp_tx_block_claim(h, -2) == NULL);
  escp_session_free(h);
  h = escp_session_new(ESCP_ROLE_RECEIVER);
  CHECK_EQ(escp_tx_stream_open(h, 1), ESCP_E_STATE);
  CHECK(escp_tx_block_claim(h, 0) == NULL);
  CHECK_EQ(escp_rx_stream_expect(h, 1, 0, 1, 0, NULL), ESCP_E_UNKNOWN_FILE);
  CHECK_EQ(escp_rx_stream_fd(h, 1, 1), ESCP_OK);
  CHECK_EQ(escp_rx_stream_expect(h, 1, 0, 2, 0, NULL), ESCP_E_PROTO);   /* 0 bytes is one block */
  CHECK_EQ(escp_rx_stream_expect(h, 1, B + 1, 2, 4, NULL), ESCP_E_INVAL); /* unknown flag */
  escp_session_free(h);
}

/* ---- a rogue sender: a second short block of a stream is a session-scope ESCP_E_PROTO ---- */

/* Connect stream i to the listener at port as a sender holding the key: challenge, HELLO, ACK. */
static int rogue_stream(int port, escp_chan *tx, escp_chan *rxc, const uint8_t *key, const uint8_t *sid, int i) {
  int fd = raw_connect("127.0.0.1", port);
  uint8_t ch[ESCP_CHALLENGE_LEN], hb[ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG];
  CHECK(recv(fd, ch, sizeof ch, MSG_WAITALL) == sizeof ch);
  CHECK_EQ(escp_chan_init(tx, key, sid, ch, ESCP_DIR_S2R, (uint16_t)i, 1), ESCP_OK);
  CHECK_EQ(escp_chan_init(rxc, key, sid, ch, ESCP_DIR_R2S, (uint16_t)i, 0), ESCP_OK);
  escp_hello h = {ESCP_PROTOCOL_VERSION, (uint16_t)i, 1, ESCP_ROLE_SENDER, {0}, {0}};
  memcpy(h.sid, sid, 16);
  memcpy(h.challenge, ch, sizeof ch);
  escp_hello_encode(&h, hb + ESCP_FRAME_HDR);
  CHECK_EQ(escp_chan_seal(tx, ESCP_FT_HELLO, 0, hb, hb + ESCP_FRAME_HDR, ESCP_HELLO_LEN, hb + ESCP_FRAME_HDR + ESCP_HELLO_LEN), ESCP_OK);
  CHECK(send(fd, hb, sizeof hb, 0) == sizeof hb);
  CHECK(recv(fd, hb, sizeof hb, MSG_WAITALL) == sizeof hb); /* HELLO_ACK */
  return fd;
}

/* A DATA frame of fino: len bytes at off. */
static void rogue_data(int fd, escp_chan *tx, uint64_t fino, uint64_t off, uint32_t len) {
  size_t wire = ESCP_FRAME_HDR + ESCP_DATA_SUBHDR + len + ESCP_TAG;
  uint8_t *fr = calloc(1, wire);
  CHECK(fr);
  escp_data_hdr dh = {fino, off, len, 0};
  escp_data_hdr_encode(&dh, fr + ESCP_FRAME_HDR);
  CHECK_EQ(escp_chan_seal(tx, ESCP_FT_DATA, 0, fr, fr + ESCP_FRAME_HDR, ESCP_DATA_SUBHDR + len,
                          fr + ESCP_FRAME_HDR + ESCP_DATA_SUBHDR + len), ESCP_OK);
  CHECK(send(fd, fr, wire, 0) == (ssize_t)wire);
  free(fr);
}

static void run_rogue(int mode) {
  fprintf(stderr, "-- rogue stream sender, mode %d\n", mode);
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  void *rx = new_side(ESCP_ROLE_RECEIVER, 1, 8000, key, sid);
  int port = escp_listen(rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_session_start(rx), ESCP_OK);
  int fd[2];
  escp_chan tx[2], rxc[2];
  for (int i = 0; i < 2; i++) fd[i] = rogue_stream(port, &tx[i], &rxc[i], key, sid, i);
  CHECK_EQ(next_ev(rx).type, ESCP_EV_STREAMS_UP);
  CHECK_EQ(escp_rx_file_add(rx, 7, NULL, ESCP_SIZE_STREAM, meta), ESCP_OK);
  const char *why;
  if (mode == 0) { /* a short block, then an earlier short one */
    rogue_data(fd[1], &tx[1], 7, 2 * B, 100);
    rogue_data(fd[1], &tx[1], 7, 0, 50);
    why = "a second short block";
  } else { /* a short block, then one past it */
    rogue_data(fd[1], &tx[1], 7, 0, 100);
    rogue_data(fd[1], &tx[1], 7, B, B);
    why = "a block past the stream's end";
  }
  escp_event ev = next_ev(rx);
  CHECK_EQ(ev.type, ESCP_EV_FATAL);
  CHECK_EQ(ev.status, ESCP_E_PROTO);
  CHECK_EQ(ev.fino, 7);
  CHECK(strcmp(ev.text, why) == 0);
  escp_session_free(rx);
  for (int i = 0; i < 2; i++) {
    close(fd[i]);
    escp_chan_free(&tx[i]);
    escp_chan_free(&rxc[i]);
  }
}

/* ---- the example program: its digest is BLAKE3 of the file it wrote ---- */

static void run_example(void) {
  fprintf(stderr, "-- example build/stream_send\n");
  scratch_init("stream");
  const char *out = P("example.out"), *log = P("example.log");
  uint64_t n = 3 * B + 4321;
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)n);
    int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (lf < 0 || dup2(lf, 1) < 0) _exit(126);
    execl("build/stream_send", "stream_send", num, out, (char *)NULL);
    _exit(127);
  }
  int wst = 0;
  CHECK(waitpid(pid, &wst, 0) == pid);
  CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
  uint64_t len, ll;
  uint8_t *b = slurp(out, &len), *l = slurp(log, &ll);
  CHECK_EQ(len, n);
  uint8_t d[32];
  CHECK_EQ(escp_digest_buffer(b, len, 1 << 20, 0, d), ESCP_OK); /* one BLAKE3 whatever the block size */
  char want[200], hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  snprintf(want, sizeof want, "stream_send: %llu bytes, digest %s\n", (unsigned long long)n, hex);
  l[ll] = 0;
  if (strcmp((char *)l, want) != 0) fputs(want, stderr); /* what was expected */
  CHECK(strcmp((char *)l, want) == 0);
  free(b);
  free(l);
}

int main(void) {
  run_refused();
  run_rogue(0);
  run_rogue(1);
  run_fd(1);
  run_fd(4);
  run_blocks(1);
  run_blocks(4);
  run_pause();
  run_example();
  fprintf(stderr, "test_stream: ok\n");
  return 0;
}
