/* test_bundle.c — small files packed into BUNDLE frames (escp.h "small files in bundles"):
 * a push of 300 small files (0 B, 1 B, 4 KiB, 60 KiB and odd sizes) in three directories
 * through escp_tx_small_add in several calls, with -p (modes, ns times) and the digests of
 * both sides against escp_digest_buffer; groups taken on both sides; bundles and normal
 * files in one session; a directory registered late (the stream waits); a refused directory;
 * bad leaves failing only their record; a source changed after small_add; -C; a receiver
 * without ESCP_P_BUNDLE (E_PROTO); the argument checks; malformed bodies through the parse
 * hook. Sessions over loopback (xfer.h). Reconnect with bundles: test_reliability.c. */
#define _GNU_SOURCE
#include <dirent.h>
#include "xfer.h"

static int tests;

static void ok(const char *what) { printf("ok %d - %s\n", ++tests, what); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- sessions ---- */

typedef struct opts {
  int preserve, compress, rx_bundle, checksum, threads, retries;
} opts;

static void up(sess *p, const char *dst, opts o) {
  cfg c = {"bundle", "127.0.0.1", o.threads ? o.threads : 3, 0, 0, 0, o.checksum, 0, 0, 0, 0};
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  p->rx = new_session(ESCP_ROLE_RECEIVER, &c, key, sid);
  p->tx = new_session(ESCP_ROLE_SENDER, &c, key, sid);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_PRESERVE, o.preserve), ESCP_OK);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_COMPRESS, o.compress), ESCP_OK);
  CHECK_EQ(escp_param_set(p->tx, ESCP_P_COMPRESS, o.compress), ESCP_OK);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_RETRIES, o.retries), ESCP_OK);
  CHECK_EQ(escp_param_set(p->tx, ESCP_P_RETRIES, o.retries), ESCP_OK);
  CHECK_EQ(escp_tx_small_add(p->tx, NULL, 0), ESCP_E_STATE); /* no ESCP_P_BUNDLE yet */
  int port = escp_listen(p->rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_BUNDLE, o.rx_bundle), ESCP_OK); /* settable until start */
  CHECK(mkdir(dst, 0755) == 0 || errno == EEXIST);
  CHECK_EQ(escp_rx_root(p->rx, dst, 0), ESCP_OK);
  CHECK_EQ(escp_session_start(p->rx), ESCP_OK);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_BUNDLE, 1), ESCP_E_STATE);
  conn_arg a = {p->tx, "127.0.0.1", port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.rc, ESCP_OK);
  CHECK_EQ(escp_param_set(p->tx, ESCP_P_BUNDLE, 1), ESCP_OK);
  CHECK_EQ(escp_session_start(p->tx), ESCP_OK);
  CHECK_EQ(escp_param_set(p->tx, ESCP_P_BUNDLE, 0), ESCP_E_STATE);
  CHECK_EQ(next_ev(p->rx).type, ESCP_EV_STREAMS_UP);
}

/* ---- small files and their entries ---- */

typedef struct sf {
  uint64_t seq, dir, size, listed;  /* listed: the size small_add says (a change test lies) */
  char src[300], rel[600], leaf[280];
  int32_t want_tx, want_rx;         /* expected statuses (want_rx 1: no receiver entry) */
  const char *want_what;
  int tx_got, rx_got;
  int32_t rx_st;
  uint8_t tx_dg[32], rx_dg[32];
  char rx_what[16];
  uint64_t bundle;
} sf;

static uint64_t seq_next = 1; /* per session: reset by each part */

/* Append f's record to a small_add buffer. */
static void sa_put(uint8_t *buf, int32_t *len, sf *f) {
  uint8_t *r = buf + *len;
  size_t pl = strlen(f->src), ll = strlen(f->leaf), n = (ESCP_SA_HDR + pl + ll + 7) & ~(size_t)7;
  memset(r, 0, n);
  f->seq = seq_next++;
  put64(r + ESCP_SA_SEQ, f->seq);
  put64(r + ESCP_SA_DIR, f->dir);
  put64(r + ESCP_SA_SIZE, f->listed);
  struct stat st;
  put64(r + ESCP_SA_INO, stat(f->src, &st) == 0 ? (uint64_t)st.st_ino : 0);
  put16(r + ESCP_SA_PATH_LEN, (uint16_t)pl);
  put16(r + ESCP_SA_LEAF_LEN, (uint16_t)ll);
  memcpy(r + ESCP_SA_HDR, f->src, pl);
  memcpy(r + ESCP_SA_HDR + pl, f->leaf, ll);
  *len += (int32_t)n;
}

/* Queue files f[0..n) in calls of `per` records. */
static void small_add(void *tx, sf *f, int n, int per) {
  uint8_t *buf = malloc((size_t)per * (ESCP_SA_HDR + 600));
  CHECK(buf);
  for (int i = 0; i < n; i += per) {
    int32_t len = 0;
    for (int k = i; k < n && k < i + per; k++) sa_put(buf, &len, &f[k]);
    CHECK_EQ(escp_tx_small_add(tx, buf, len), ESCP_OK);
  }
  free(buf);
}

static sf *by_seq(sf *f, int n, uint64_t seq) {
  for (int i = 0; i < n; i++)
    if (f[i].seq == seq) return &f[i];
  CHECK(!"sender entry for an unknown seq");
  return NULL;
}

static sf *by_name(sf *f, int n, uint64_t dir, const uint8_t *leaf, size_t ll) {
  for (int i = 0; i < n; i++)
    if (f[i].dir == dir && strlen(f[i].leaf) == ll && memcmp(f[i].leaf, leaf, ll) == 0 && !f[i].rx_got) return &f[i];
  CHECK(!"receiver entry for an unknown name");
  return NULL;
}

typedef struct tally {
  int tx, rx, tx_groups, rx_groups, reconnects;
  uint64_t tx_bundles[4096], rx_bundles[4096];
} tally;

static uint8_t *gbuf; /* big enough for either side's worst group */
#define GBUF (ESCP_BG_HDR + ESCP_BUNDLE_FILES_MAX * (ESCP_BR_ENT + 256))

/* Take whatever groups are ready on both sides; record each entry in its file. */
static void take(sess *p, sf *f, int n, tally *t) {
  int32_t got = escp_tx_bundle_take(p->tx, gbuf, GBUF);
  CHECK(got >= 0);
  for (int32_t at = 0; at < got;) {
    uint64_t b = get64(gbuf + at + ESCP_BG_BUNDLE);
    uint32_t cnt = get32(gbuf + at + ESCP_BG_COUNT);
    CHECK(cnt >= 1 && cnt <= ESCP_BUNDLE_FILES_MAX && get32(gbuf + at + 12) == 0);
    t->tx_bundles[t->tx_groups++ % 4096] = b;
    at += ESCP_BG_HDR;
    int oks = 0;
    for (uint32_t k = 0; k < cnt; k++, at += ESCP_BT_ENT) {
      const uint8_t *e = gbuf + at;
      sf *x = by_seq(f, n, get64(e + ESCP_BT_SEQ));
      CHECK(!x->tx_got);
      x->tx_got = 1;
      int32_t st = (int32_t)get32(e + ESCP_BT_STATUS);
      if (st != x->want_tx) fprintf(stderr, "%s: sender status %d (%.8s)\n", x->src, st, e + ESCP_BT_WHAT);
      CHECK_EQ(st, x->want_tx);
      oks += st == ESCP_OK;
      if (st == ESCP_OK) CHECK_EQ(get64(e + ESCP_BT_SIZE), x->size);
      else if (x->want_what) CHECK(strncmp((const char *)e + ESCP_BT_WHAT, x->want_what, 8) == 0);
      memcpy(x->tx_dg, e + ESCP_BT_DIGEST, 32);
      x->bundle = b;
      t->tx++;
    }
    CHECK((b == 0) == (oks == 0)); /* bundle 0: none of them went on the wire */
  }
  got = escp_rx_bundle_take(p->rx, gbuf, GBUF);
  CHECK(got >= 0);
  for (int32_t at = 0; at < got;) {
    uint64_t b = get64(gbuf + at + ESCP_BG_BUNDLE);
    uint32_t cnt = get32(gbuf + at + ESCP_BG_COUNT);
    CHECK(b != 0 && cnt >= 1 && get32(gbuf + at + 12) == 0);
    t->rx_bundles[t->rx_groups++ % 4096] = b;
    at += ESCP_BG_HDR;
    for (uint32_t k = 0; k < cnt; k++) {
      const uint8_t *e = gbuf + at;
      uint16_t ll = get16(e + ESCP_BR_LEAF_LEN);
      sf *x = by_name(f, n, get64(e + ESCP_BR_DIR), e + ESCP_BR_ENT, ll);
      x->rx_got = 1;
      x->rx_st = (int32_t)get32(e + ESCP_BR_STATUS);
      CHECK_EQ(get64(e + ESCP_BR_SIZE), x->size);
      memcpy(x->rx_dg, e + ESCP_BR_DIGEST, 32);
      memcpy(x->rx_what, e + ESCP_BR_WHAT, 14);
      if (x->rx_st != x->want_rx)
        fprintf(stderr, "%s: receiver status %d (%s) errno %d\n", x->leaf, x->rx_st, x->rx_what, (int)get32(e + ESCP_BR_ERRNO));
      CHECK_EQ(x->rx_st, x->want_rx);
      CHECK(x->bundle == 0 || x->bundle == b);
      for (size_t z = ll; z < ((ll + 7u) & ~7u); z++) CHECK_EQ(e[ESCP_BR_ENT + z], 0);
      at += ESCP_BR_ENT + (int32_t)((ll + 7u) & ~7u);
      t->rx++;
    }
  }
}

/* Normal files (xfer.h tfile) alongside: the control plane's part for them. */
typedef struct plain { tfile *f; int n, tx_left, rx_left; } plain;

/* Play the control plane until both sides drained and every entry is in. hold: take no group
 * before both drained (then the first group is known to be ready: a short buffer is TOOBIG). */
static void finish(sess *p, sf *f, int n, int rx_entries, plain *pl, tally *t, int hold) {
  CHECK_EQ(escp_tx_finish(p->tx), ESCP_OK);
  int txd = 0, rxd = 0;
  int tx_entries = n;
  time_t t0 = time(NULL);
  while (!txd || !rxd || t->tx < tx_entries || t->rx < rx_entries || (pl && (pl->tx_left || pl->rx_left))) {
    CHECK(time(NULL) - t0 < 60);
    escp_event ev;
    int moved = 0;
    while (escp_event_poll(p->tx, &ev, 1) == 1) {
      moved = 1;
      if (ev.type == ESCP_EV_DRAINED) txd = 1;
      else if (ev.type == ESCP_EV_RECONNECT || ev.type == ESCP_EV_LOG) t->reconnects += ev.type == ESCP_EV_RECONNECT;
      else if (ev.type == ESCP_EV_FILE_DONE && pl) {
        tfile *x = by_fino(pl->f, pl->n, ev.fino);
        memcpy(x->tx_dg, ev.digest, 32);
        CHECK_EQ(escp_rx_file_expect(p->rx, ev.fino, ev.blocks, 0, ev.digest), ESCP_OK);
        pl->tx_left--;
      } else {
        fprintf(stderr, "sender event %u status %d: %s\n", ev.type, ev.status, ev.text);
        CHECK(!"unexpected sender event");
      }
    }
    while (escp_event_poll(p->rx, &ev, 1) == 1) {
      moved = 1;
      if (ev.type == ESCP_EV_DRAINED) rxd = 1;
      else if (ev.type == ESCP_EV_RECONNECT || ev.type == ESCP_EV_LOG) t->reconnects += ev.type == ESCP_EV_RECONNECT;
      else if (ev.type == ESCP_EV_FILE_DONE && pl) {
        memcpy(by_fino(pl->f, pl->n, ev.fino)->rx_dg, ev.digest, 32);
        pl->rx_left--;
      } else {
        fprintf(stderr, "receiver event %u status %d: %s\n", ev.type, ev.status, ev.text);
        CHECK(!"unexpected receiver event");
      }
    }
    int before = t->tx + t->rx;
    if (hold && !(txd && rxd)) {
      if (!moved) nap();
      continue;
    }
    if (hold) {
      CHECK_EQ(escp_tx_bundle_take(p->tx, gbuf, ESCP_BG_HDR + ESCP_BT_ENT - 1), ESCP_E_TOOBIG);
      CHECK_EQ(escp_rx_bundle_take(p->rx, gbuf, ESCP_BG_HDR + ESCP_BR_ENT - 1), ESCP_E_TOOBIG);
      hold = 0;
    }
    take(p, f, n, t);
    if (!moved && before == t->tx + t->rx) nap();
  }
  CHECK_EQ(t->tx, tx_entries);
  CHECK_EQ(t->rx, rx_entries);
  CHECK_EQ(escp_tx_bundle_take(p->tx, gbuf, GBUF), 0);
  CHECK_EQ(escp_rx_bundle_take(p->rx, gbuf, GBUF), 0);
}

/* The destination holds exactly f's bytes (and, with -p, mode and times); digests agree. */
static void verify_small(const char *dst, sf *f, int n, int preserve, int checksum) {
  for (int i = 0; i < n; i++) {
    char d[700];
    snprintf(d, sizeof d, "%s/%s", dst, f[i].rel);
    if (f[i].want_rx != ESCP_OK) {
      struct stat st;
      if (f[i].rel[0] && !strstr(f[i].leaf, "/") && strcmp(f[i].leaf, "..") && strcmp(f[i].leaf, "."))
        CHECK(lstat(d, &st) != 0);
      continue;
    }
    uint64_t la, lb;
    uint8_t *a = slurp(f[i].src, &la), *b = slurp(d, &lb);
    CHECK_EQ(la, lb);
    CHECK(memcmp(a, b, la) == 0);
    uint8_t dg[32], zero[32] = {0};
    CHECK_EQ(escp_digest_buffer(a, la, B, 0, dg), ESCP_OK);
    if (checksum) {
      CHECK(memcmp(dg, f[i].tx_dg, 32) == 0);
      CHECK(memcmp(dg, f[i].rx_dg, 32) == 0);
    } else {
      CHECK(memcmp(zero, f[i].tx_dg, 32) == 0 && memcmp(zero, f[i].rx_dg, 32) == 0);
    }
    struct stat sa, sb;
    CHECK(stat(f[i].src, &sa) == 0 && stat(d, &sb) == 0);
    mode_t um = umask(0);
    umask(um);
    CHECK_EQ(sb.st_mode & 07777, preserve ? sa.st_mode & 07777 : sa.st_mode & 0777 & ~um);
    if (preserve) {
      CHECK_EQ(sb.st_mtim.tv_sec, sa.st_mtim.tv_sec);
      CHECK_EQ(sb.st_mtim.tv_nsec, sa.st_mtim.tv_nsec);
    }
    free(a);
    free(b);
  }
}

/* No temporary of ours is left in dir. */
static void no_temps(const char *dir) {
  DIR *d = opendir(dir);
  CHECK(d);
  for (struct dirent *e; (e = readdir(d));) CHECK(strncmp(e->d_name, ".escp-", 6) != 0);
  closedir(d);
}

/* A small file src/<name> of size bytes (pattern from seed), mode, mtime (s, ns). */
static void mkfile(sf *x, const char *name, uint64_t size, mode_t mode, int64_t mt, long ns, int text) {
  snprintf(x->src, sizeof x->src, "%s", P("src/%s", name));
  uint8_t *b = malloc(size + 1);
  CHECK(b);
  for (uint64_t i = 0; i < size; i++) b[i] = text ? (uint8_t)("escp bundles of small files\n"[i % 28]) : (uint8_t)rnd();
  int fd = open(x->src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK(write(fd, b, size) == (ssize_t)size);
  CHECK(fchmod(fd, mode) == 0);
  struct timespec ts[2] = {{mt - 5, 7}, {mt, ns}};
  CHECK(futimens(fd, ts) == 0);
  close(fd);
  free(b);
  x->size = x->listed = size;
}

/* Files i of a set spread over the directories dirs[] (fino 10 + k, names rels[k]). */
static void set_of(sf *f, int n, int ndirs, const char *const *rels, const char *tag, int text) {
  static const uint64_t sizes[] = {0, 1, 4096, 61440};
  static const mode_t modes[] = {0644, 0600, 0755, 0640, 0444};
  for (int i = 0; i < n; i++) {
    sf *x = &f[i];
    memset(x, 0, sizeof *x);
    int k = i % ndirs;
    char name[64];
    snprintf(name, sizeof name, "%s_%d", tag, i);
    uint64_t size = i % 5 < 4 ? sizes[i % 4] : rnd() % 9000;
    mkfile(x, name, size, modes[i % 5], 1600000000 + i, (long)(i * 7919) % 1000000000, text);
    x->dir = 10 + (uint64_t)k;
    snprintf(x->leaf, sizeof x->leaf, "f%d.dat", i);
    snprintf(x->rel, sizeof x->rel, "%s/%s", rels[k], x->leaf);
  }
}

static void add_dirs(void *rx, int ndirs, const char *const *rels) {
  int64_t m[ESCP_META_COUNT] = {0755};
  for (int k = 0; k < ndirs; k++) CHECK_EQ(escp_rx_dir_add(rx, 10 + (uint64_t)k, rels[k], m), ESCP_OK);
}

static const char *const dirs3[] = {"d0", "d1/sub", "d2"};

/* ---- parts ---- */

/* A part's n files (seq from 1) and its tally. */
static sf *part(int n, tally **t) {
  sf *f = calloc((size_t)n, sizeof *f);
  *t = calloc(1, sizeof **t);
  CHECK(f && *t);
  seq_next = 1;
  return f;
}

static void push_300(void) {
  fprintf(stderr, "-- 300 small files, 3 directories, -p\n");
  enum { N = 300 };
  tally *t;
  sf *f = part(N, &t);
  set_of(f, N, 3, dirs3, "p", 0);
  sess p;
  const char *dst = P("dst_push");
  up(&p, dst, (opts){.preserve = 1, .rx_bundle = 1, .checksum = 1});
  add_dirs(p.rx, 3, dirs3);
  int64_t m[ESCP_META_COUNT] = {0755};
  CHECK_EQ(escp_rx_dir_add(p.rx, 10, "d0", m), ESCP_E_DUP); /* once per fino */
  small_add(p.tx, f, 120, 120);
  small_add(p.tx, f + 120, 100, 7); /* several calls, odd batches */
  small_add(p.tx, f + 220, 80, 80);
  finish(&p, f, N, N, NULL, t, 1);
  verify_small(dst, f, N, 1, 1);
  for (int k = 0; k < 3; k++) no_temps(P("dst_push/%s", dirs3[k]));
  uint64_t st[ESCP_S_COUNT], sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(p.tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(escp_stats_read(p.rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(st[ESCP_S_BLOCKS], sr[ESCP_S_BLOCKS]);
  CHECK_EQ(st[ESCP_S_BLOCKS], (uint64_t)t->tx_groups);
  CHECK_EQ(sr[ESCP_S_FILES_DONE], N);
  CHECK_EQ(st[ESCP_S_FILES_DONE], N);
  uint64_t bytes = 0;
  for (int i = 0; i < N; i++) bytes += f[i].size;
  CHECK_EQ(st[ESCP_S_BYTES_FILE], bytes);
  CHECK_EQ(sr[ESCP_S_BYTES_FILE], bytes);
  CHECK(t->tx_groups < N / 2); /* packed: far fewer bundles than files */
  CHECK_EQ(t->tx_groups, t->rx_groups);
  for (int i = 0; i < t->tx_groups; i++) { /* numbers 1..groups, each once, on both sides */
    int a = 0, b = 0;
    for (int k = 0; k < t->tx_groups; k++) a += t->tx_bundles[k] == (uint64_t)i + 1, b += t->rx_bundles[k] == (uint64_t)i + 1;
    CHECK(a == 1 && b == 1);
  }
  sess_down(&p);
  free(f);
  free(t);
  ok("300 small files in bundles: bytes, modes, times, digests, groups on both sides");
}

static void mixed(void) {
  fprintf(stderr, "-- small files and normal files in one session, a late directory, -C\n");
  enum { N = 60, NP = 4 };
  tally *t;
  sf *f = part(N, &t);
  tfile *pf = calloc(NP, sizeof *pf);
  CHECK(pf);
  static const char *const rels[] = {"m0", "late"};
  set_of(f, N, 2, rels, "m", 1);
  sess p;
  const char *dst = P("dst_mixed");
  up(&p, dst, (opts){.compress = 3, .rx_bundle = 1, .checksum = 1, .threads = 2});
  int64_t m[ESCP_META_COUNT] = {0755};
  CHECK_EQ(escp_rx_dir_add(p.rx, 10, "m0", m), ESCP_OK);
  static const uint64_t psz[NP] = {0, 3 * B + 5, 100, B};
  for (int i = 0; i < NP; i++) {
    snprintf(pf[i].src, sizeof pf[i].src, "%s", P("src/plain_%d", i));
    write_file(pf[i].src, psz[i], 0);
    pf[i].size = pf[i].announced = psz[i];
    pf[i].fino = 1000 + (uint64_t)i;
    snprintf(pf[i].dst, sizeof pf[i].dst, "m0/plain_%d", i);
    CHECK_EQ(escp_rx_file_add(p.rx, pf[i].fino, pf[i].dst, psz[i], m), ESCP_OK);
  }
  CHECK_EQ(escp_tx_file_add(p.tx, pf[0].fino, pf[0].src, psz[0]), ESCP_OK);
  small_add(p.tx, f, 30, 30);
  CHECK_EQ(escp_tx_file_add(p.tx, pf[1].fino, pf[1].src, psz[1]), ESCP_OK);
  small_add(p.tx, f + 30, 30, 10);
  CHECK_EQ(escp_tx_file_add(p.tx, pf[2].fino, pf[2].src, psz[2]), ESCP_OK);
  CHECK_EQ(escp_tx_file_add(p.tx, pf[3].fino, pf[3].src, psz[3]), ESCP_OK);
  /* "late" (fino 11) is registered only now: a stream holding its records waits for it */
  struct timespec ts = {0, 300 * 1000000};
  nanosleep(&ts, NULL);
  take(&p, f, N, t);
  struct stat sl;
  for (int i = 0; i < N; i++) CHECK(f[i].dir != 11 || !f[i].rx_got);
  CHECK(lstat(P("dst_mixed/late"), &sl) != 0);
  CHECK_EQ(escp_rx_dir_add(p.rx, 11, "late", m), ESCP_OK);
  plain pl = {pf, NP, NP, NP};
  finish(&p, f, N, N, &pl, t, 0);
  verify_small(dst, f, N, 0, 1);
  for (int i = 0; i < NP; i++) {
    uint64_t la, lb;
    uint8_t *a = slurp(pf[i].src, &la), *b = slurp(P("dst_mixed/%s", pf[i].dst), &lb);
    CHECK(la == lb && memcmp(a, b, la) == 0 && memcmp(pf[i].tx_dg, pf[i].rx_dg, 32) == 0);
    free(a);
    free(b);
  }
  uint64_t st[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(p.tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK(st[ESCP_S_BYTES_WIRE] < st[ESCP_S_BYTES_FILE]); /* -C: the text-like bundles shrank */
  sess_down(&p);
  free(f);
  free(t);
  free(pf);
  ok("bundles and normal files in one session; a directory registered late; -C");
}

static void failures(void) {
  fprintf(stderr, "-- refused directory, bad leaves, changed sources, failed directory\n");
  enum { N = 16 };
  tally *t;
  sf *f = part(N, &t);
  static const char *const rels[] = {"ok", "refused", "blocked/x"};
  set_of(f, N, 1, rels, "x", 0);
  for (int i = 0; i < N; i++) f[i].want_tx = f[i].want_rx = ESCP_OK;
  /* 1, 2: in the refused directory */
  for (int i = 1; i <= 2; i++) {
    f[i].dir = 11;
    snprintf(f[i].rel, sizeof f[i].rel, "refused/%s", f[i].leaf);
    f[i].want_rx = ESCP_E_PATH;
  }
  /* 3..5: bad leaves */
  static const char *const bad[] = {"..", "a/b", "."};
  for (int i = 3; i <= 5; i++) {
    snprintf(f[i].leaf, sizeof f[i].leaf, "%s", bad[i - 3]);
    f[i].rel[0] = 0;
    f[i].want_rx = ESCP_E_PATH;
  }
  /* 6: grew after listing; 7: listed with another inode; 8: gone */
  f[6].listed = f[6].size;
  f[6].want_tx = ESCP_E_CHANGED, f[6].want_what = "changed", f[6].want_rx = 1;
  f[7].want_tx = ESCP_E_CHANGED, f[7].want_rx = 1;
  f[8].want_tx = ESCP_E_OPEN, f[8].want_what = "open", f[8].want_rx = 1;
  /* 9: a directory where its name is */
  f[9].want_rx = ESCP_E_WRITE;
  /* 10: in a directory that could not be made (a file in the way) */
  f[10].dir = 12;
  f[10].want_rx = ESCP_E_PATH;
  sess p;
  const char *dst = P("dst_fail");
  up(&p, dst, (opts){.rx_bundle = 1, .checksum = 1});
  int64_t m[ESCP_META_COUNT] = {0755};
  CHECK_EQ(escp_rx_dir_add(p.rx, 10, "ok", m), ESCP_OK);
  CHECK_EQ(escp_rx_dir_refuse(p.rx, 11), ESCP_OK);
  CHECK_EQ(escp_rx_dir_refuse(p.rx, 11), ESCP_E_DUP);
  CHECK_EQ(escp_rx_dir_refuse(p.rx, 0), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_dir_refuse(p.tx, 13), ESCP_E_STATE);
  int fd = open(P("dst_fail/blocked"), O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0);
  close(fd);
  CHECK(escp_rx_dir_add(p.rx, 12, "blocked/x", m) < 0);
  CHECK_EQ(escp_rx_dir_add(p.rx, 12, "blocked/x", m), ESCP_E_DUP);
  CHECK_EQ(mkdir(P("dst_fail/ok/%s", f[9].leaf), 0755), 0);
  /* listed, then changed */
  uint8_t *buf = malloc(N * (ESCP_SA_HDR + 600));
  CHECK(buf);
  int32_t len = 0;
  for (int i = 0; i < N; i++) {
    sa_put(buf, &len, &f[i]);
    if (i == 7) { /* another file under the name after listing: a new inode */
      write_file(P("src/x_7b"), f[i].size, 0);
      CHECK(rename(P("src/x_7b"), f[i].src) == 0);
    }
  }
  write_file(f[6].src, f[6].size + 50, 0);
  CHECK(unlink(f[8].src) == 0);
  CHECK_EQ(escp_tx_small_add(p.tx, buf, len), ESCP_OK);
  free(buf);
  int rx_entries = 0;
  for (int i = 0; i < N; i++) rx_entries += f[i].want_rx != 1;
  finish(&p, f, N, rx_entries, NULL, t, 0);
  for (int i = 0; i < N; i++) {
    if (f[i].want_rx == 1) CHECK(!f[i].rx_got);
    if (i >= 1 && i <= 2) CHECK(strcmp(f[i].rx_what, "directory") == 0);
    if (i >= 3 && i <= 5) CHECK(strcmp(f[i].rx_what, "name") == 0);
    if (i == 10) CHECK(strcmp(f[i].rx_what, "directory") == 0);
  }
  CHECK(strcmp(f[9].rx_what, "rename") == 0 || strcmp(f[9].rx_what, "link") == 0);
  f[6].want_rx = f[7].want_rx = f[8].want_rx = -1;
  f[9].rel[0] = 0; /* a directory is there, as before */
  verify_small(dst, f, N, 0, 1);
  struct stat st;
  CHECK(lstat(P("dst_fail/refused"), &st) != 0); /* nothing made for the refused directory */
  CHECK(lstat(P("dst_fail/ok/%s", f[9].leaf), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK(lstat(P("dst_fail/ok/%s", f[6].leaf), &st) != 0);
  no_temps(P("dst_fail/ok"));
  no_temps(P("dst_fail"));
  sess_down(&p);
  free(f);
  free(t);
  ok("refused directory, bad leaves, a directory at the name, a failed directory: only those records fail");
  ok("sources changed, replaced or removed after small_add: sender entries say so, not sent");
}

/* Past the receiver's directory limit (lowered to 1 with ESCP_DIRS_LIMIT): the second
 * directory is made but not remembered; its records fail at once ("too many dirs"), never
 * wait; the first directory's land. */
static void dirs_limit(void) {
  fprintf(stderr, "-- directories past the receiver's limit\n");
  enum { N = 10 };
  tally *t;
  sf *f = part(N, &t);
  static const char *const rels[] = {"kept", "past"};
  set_of(f, N, 2, rels, "lim", 0);
  for (int i = 0; i < N; i++) f[i].want_tx = ESCP_OK, f[i].want_rx = f[i].dir == 11 ? ESCP_E_PATH : ESCP_OK;
  CHECK(setenv("ESCP_DIRS_LIMIT", "1", 1) == 0);
  sess p;
  const char *dst = P("dst_limit");
  up(&p, dst, (opts){.rx_bundle = 1, .checksum = 1});
  CHECK(unsetenv("ESCP_DIRS_LIMIT") == 0);
  int64_t m[ESCP_META_COUNT] = {0755};
  CHECK_EQ(escp_rx_dir_add(p.rx, 10, "kept", m), ESCP_OK);
  CHECK_EQ(escp_rx_dir_add(p.rx, 11, "past", m), ESCP_OK); /* made, not remembered */
  CHECK_EQ(escp_rx_dir_add(p.rx, 11, "past", m), ESCP_OK); /* not remembered: not a duplicate either */
  struct stat st;
  CHECK(lstat(P("dst_limit/past"), &st) == 0 && S_ISDIR(st.st_mode));
  time_t t0 = time(NULL);
  small_add(p.tx, f, N, N);
  finish(&p, f, N, N, NULL, t, 0);
  CHECK(time(NULL) - t0 < 10); /* no record waited for the session's timeout */
  for (int i = 0; i < N; i++)
    if (f[i].dir == 11) CHECK(strcmp(f[i].rx_what, "too many dirs") == 0);
  verify_small(dst, f, N, 0, 1);
  no_temps(P("dst_limit/past"));
  sess_down(&p);
  free(f);
  free(t);
  ok("past the directory limit: the directory is made, its bundled files fail at once, the others land");
}

/* A lying sender (fault injection: the 3rd record packed carries a digest with a byte
 * flipped): the receiver refuses that record before anything of it is named; the rest land. */
static void wrong_digest(void) {
  fprintf(stderr, "-- a record whose digest does not match its bytes\n");
  enum { N = 8 };
  tally *t;
  sf *f = part(N, &t);
  static const char *const rels[] = {"w"};
  set_of(f, N, 1, rels, "wd", 0);
  for (int i = 0; i < N; i++) f[i].want_tx = ESCP_OK, f[i].want_rx = i == 2 ? ESCP_E_DIGEST : ESCP_OK;
  CHECK(setenv("ESCP_FI_DIGEST_FAIL_AT", "3", 1) == 0);
  sess p;
  const char *dst = P("dst_digest");
  /* one stream: the records are packed (and counted by the fault) in file order; with more,
   * two streams may pack at once and the 3rd record counted need not be f[2] */
  up(&p, dst, (opts){.rx_bundle = 1, .checksum = 1, .threads = 1});
  CHECK(unsetenv("ESCP_FI_DIGEST_FAIL_AT") == 0);
  add_dirs(p.rx, 1, rels);
  small_add(p.tx, f, N, N);
  finish(&p, f, N, N, NULL, t, 0);
  CHECK(strcmp(f[2].rx_what, "digest") == 0);
  CHECK(memcmp(f[2].tx_dg, f[2].rx_dg, 32) != 0); /* the receiver's own digest of the bytes, not the claim */
  verify_small(dst, f, N, 0, 1);
  no_temps(P("dst_digest/w"));
  sess_down(&p);
  free(f);
  free(t);
  ok("a record whose digest does not match its bytes is refused, nothing of it named; the rest land");
}

/* Reconnect (ESCP_P_RETRIES): the drop_at-th frame send shuts its connection down (fault
 * injection); the bundles the receiver had not consumed are rebuilt from their files and
 * resent; every file arrives whole and the reports of both sides are complete. A file
 * changed before a resend is FATAL ESCP_E_CHANGED (tx.c replay_bundle: the same check as the
 * first read, then identity, mtime and digest). */
static void reconnects(const char *drop_at, int compress) {
  fprintf(stderr, "-- bundles with reconnect, the connection dropped at send %s%s\n", drop_at, compress ? ", -C" : "");
  enum { N = 150 };
  tally *t;
  sf *f = part(N, &t);
  static const char *const rels[] = {"r0", "r1"};
  set_of(f, N, 2, rels, "r", compress);
  sess p;
  const char *dst = P("dst_re_%s_%d", drop_at, compress);
  setenv("ESCP_FI_SEND_FAIL_AT", drop_at, 1);
  up(&p, dst, (opts){.compress = compress, .rx_bundle = 1, .checksum = 1, .threads = 2, .retries = 3});
  unsetenv("ESCP_FI_SEND_FAIL_AT");
  add_dirs(p.rx, 2, rels);
  small_add(p.tx, f, N, 50);
  finish(&p, f, N, N, NULL, t, 0);
  CHECK(t->reconnects >= 1); /* the stream's RECONNECT events (counted by finish) */
  verify_small(dst, f, N, 0, 1);
  uint64_t st[ESCP_S_COUNT], sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(p.tx, st, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK_EQ(escp_stats_read(p.rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK(st[ESCP_S_RECONNECTS] >= 1);
  CHECK_EQ(sr[ESCP_S_FILES_DONE], N);
  CHECK_EQ(sr[ESCP_S_BLOCKS], (uint64_t)t->rx_groups); /* each bundle consumed once */
  CHECK_EQ(t->rx_groups, t->tx_groups);
  sess_down(&p);
  free(f);
  free(t);
  ok("bundles with reconnect: unacknowledged bundles rebuilt from their files and resent");
}

/* A receiver without ESCP_P_BUNDLE: the first BUNDLE frame is a session-scope E_PROTO. */
static void rx_without(void) {
  fprintf(stderr, "-- a receiver without ESCP_P_BUNDLE\n");
  sf f[1];
  memset(f, 0, sizeof f);
  seq_next = 1;
  mkfile(&f[0], "lonely", 10, 0644, 1600000000, 0, 0);
  f[0].dir = 10;
  snprintf(f[0].leaf, sizeof f[0].leaf, "lonely");
  sess p;
  up(&p, P("dst_without"), (opts){.rx_bundle = 0, .checksum = 1, .threads = 1});
  int64_t m[ESCP_META_COUNT] = {0755};
  CHECK_EQ(escp_rx_dir_add(p.rx, 10, "d", m), ESCP_OK); /* not remembered: no bundles */
  CHECK_EQ(escp_rx_dir_refuse(p.rx, 11), ESCP_E_STATE);
  small_add(p.tx, f, 1, 1);
  escp_event ev;
  do ev = next_ev(p.rx);
  while (ev.type == ESCP_EV_LOG);
  CHECK_EQ(ev.type, ESCP_EV_FATAL);
  CHECK_EQ(ev.status, ESCP_E_PROTO);
  uint64_t sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(p.rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  CHECK(sr[ESCP_S_FRAMES_REJECTED] >= 1);
  struct stat st;
  CHECK(lstat(P("dst_without/d/lonely"), &st) != 0);
  sess_down(&p);
  ok("a BUNDLE frame to a receiver without ESCP_P_BUNDLE is a session-scope E_PROTO");
}

/* small_add's argument checks: nothing is queued by a call that fails. */
static void args(void) {
  fprintf(stderr, "-- small_add checks\n");
  cfg c = {"bundle", "127.0.0.1", 1, 0, 0, 0, 1, 0, 0, 0, 0};
  uint8_t key[32] = {1}, sid[16] = {2};
  void *tx = new_session(ESCP_ROLE_SENDER, &c, key, sid);
  void *rx = new_session(ESCP_ROLE_RECEIVER, &c, key, sid);
  CHECK_EQ(escp_param_set(tx, ESCP_P_BUNDLE, 2), ESCP_E_RANGE);
  CHECK_EQ(escp_param_set(tx, ESCP_P_BUNDLE, 1), ESCP_OK);
  CHECK_EQ(escp_param_set(rx, ESCP_P_BUNDLE, 1), ESCP_OK);
  CHECK_EQ(escp_tx_small_add(rx, NULL, 0), ESCP_E_STATE);
  CHECK_EQ(escp_tx_bundle_take(rx, gbuf, 16), ESCP_E_STATE);
  CHECK_EQ(escp_rx_bundle_take(tx, gbuf, 16), ESCP_E_STATE);
  CHECK_EQ(escp_tx_bundle_take(tx, gbuf, 16), 0);
  CHECK_EQ(escp_tx_bundle_take(tx, NULL, 16), ESCP_E_INVAL);
  sf x;
  memset(&x, 0, sizeof x);
  snprintf(x.src, sizeof x.src, "/nonexistent/a");
  snprintf(x.leaf, sizeof x.leaf, "a");
  x.dir = 5;
  uint8_t buf[4 * (ESCP_SA_HDR + 600)];
  int32_t len;
  /* Each bad buffer: a good record, then the bad one. */
#define BAD(mutate)                                              \
  do {                                                           \
    seq_next = 1;                                                \
    len = 0;                                                     \
    sa_put(buf, &len, &x);                                       \
    int32_t at = len;                                            \
    sa_put(buf, &len, &x);                                       \
    uint8_t *r = buf + at;                                       \
    (void)r;                                                     \
    mutate;                                                      \
    CHECK_EQ(escp_tx_small_add(tx, buf, len), ESCP_E_INVAL);     \
  } while (0)
  BAD(put64(r + ESCP_SA_SEQ, 3));                                  /* a gap */
  BAD(put64(r + ESCP_SA_SEQ, 1));                                  /* a repeat */
  BAD(put64(r + ESCP_SA_DIR, 0));                                  /* no directory */
  BAD(put64(r + ESCP_SA_SIZE, ESCP_BUNDLE_FILE_MAX + 1));          /* too big for bundles */
  BAD(put64(r + ESCP_SA_SIZE, B - 16 - 88));                       /* fits no 64 KiB bundle with its leaf */
  BAD(len -= 8);                                                   /* runs past len */
  BAD(len += 8);                                                   /* a partial record after */
  BAD(put16(r + ESCP_SA_PATH_LEN, 0));
  BAD(put16(r + ESCP_SA_LEAF_LEN, 0));
  BAD(put16(r + ESCP_SA_LEAF_LEN, 256));
  BAD(r[ESCP_SA_HDR + 3] = 0);                                     /* a NUL in the path */
  /* all good: accepted; the next call continues at seq 3 */
  seq_next = 1;
  len = 0;
  sa_put(buf, &len, &x);
  sa_put(buf, &len, &x);
  CHECK_EQ(escp_tx_small_add(tx, buf, len), ESCP_OK);
  x.listed = B - 16 - 88 - 1; /* exactly fills a bundle */
  len = 0;
  sa_put(buf, &len, &x);
  CHECK_EQ(escp_tx_small_add(tx, buf, len), ESCP_OK);
  seq_next = 3;
  len = 0;
  sa_put(buf, &len, &x);
  CHECK_EQ(escp_tx_small_add(tx, buf, len), ESCP_E_INVAL); /* seq 3 again */
  CHECK_EQ(escp_tx_finish(tx), ESCP_OK);
  seq_next = 4;
  len = 0;
  sa_put(buf, &len, &x);
  CHECK_EQ(escp_tx_small_add(tx, buf, len), ESCP_E_STATE); /* after finish */
  escp_session_free(tx); /* never started: its queued small files are freed */
  escp_session_free(rx);
  ok("small_add refuses malformed batches whole and continues seq across calls");
}

/* ---- the body parser (escp_test_bundle_parse) ---- */

static int32_t body_rec(uint8_t *b, int32_t at, uint64_t dir, const char *leaf, const uint8_t *data, uint32_t size) {
  size_t ll = strlen(leaf), n = (88 + ll + size + 7) & ~(size_t)7;
  memset(b + at, 0, n);
  put64(b + at, dir);
  put64(b + at + 8, size);
  put16(b + at + 52, (uint16_t)ll);
  put32(b + at + 40, 0644);
  memcpy(b + at + 88, leaf, ll);
  if (size) memcpy(b + at + 88 + ll, data, size);
  return at + (int32_t)n;
}

static int32_t body_hdr(uint8_t *b, uint32_t count) {
  memset(b, 0, 16);
  memcpy(b, "ESCB", 4);
  put32(b + 4, count);
  return 16;
}

static void parser(void) {
  fprintf(stderr, "-- bundle body checks\n");
  uint8_t *b = calloc(1, 1 << 20);
  CHECK(b);
  const uint8_t data[] = "hello, bundle";
  int32_t n = body_hdr(b, 2);
  n = body_rec(b, n, 7, "a", data, 13);
  n = body_rec(b, n, 7, "bb", data, 0);
  CHECK_EQ(escp_test_bundle_parse(b, n, B), ESCP_OK);
  CHECK_EQ(escp_test_bundle_parse(b, n - 1, B), ESCP_E_PROTO);  /* cut */
  CHECK_EQ(escp_test_bundle_parse(b, n + 8, B), ESCP_E_PROTO);  /* trailing bytes */
  CHECK_EQ(escp_test_bundle_parse(b, n, n - 8), ESCP_E_PROTO);  /* longer than a block */
  CHECK_EQ(escp_test_bundle_parse(b, 15, B), ESCP_E_PROTO);
  CHECK_EQ(escp_test_bundle_parse(NULL, 5, B), ESCP_E_INVAL);
  struct { int off, width; uint64_t v; } bad[] = {
      {0, 4, 0x42435346},          /* magic */
      {4, 4, 0},                   /* count 0 */
      {4, 4, 3},                   /* count past the records */
      {4, 4, ESCP_BUNDLE_FILES_MAX + 1},
      {8, 8, 1},                   /* reserved */
      {16 + 52, 2, 0},             /* leaf_len 0 */
      {16 + 52, 2, 256},           /* leaf_len over 255 */
      {16 + 52, 2, 30},            /* leaf past its record: the end does not match */
      {16 + 54, 2, 1},             /* reserved u16 */
      {16 + 8, 8, 10000},          /* size past the end */
      {16 + 8, 8, ESCP_BUNDLE_FILE_MAX + 1},
      {16 + 8, 8, UINT64_MAX},     /* overflow */
      {16 + 8, 8, 20},             /* size past its record: the next one misplaced */
      {16 + 40, 4, 010000},        /* mode bits */
      {16 + 32, 4, 1000000000},    /* mtime_ns */
      {16 + 36, 4, 1000000000},    /* atime_ns */
      {16 + 88 + 1 + 13, 1, 1},    /* padding not zero */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t *c = malloc((size_t)n);
    CHECK(c);
    memcpy(c, b, (size_t)n);
    for (int k = 0; k < bad[i].width; k++) c[bad[i].off + k] = (uint8_t)(bad[i].v >> (8 * k));
    if (escp_test_bundle_parse(c, n, B) != ESCP_E_PROTO) fprintf(stderr, "bad body %zu accepted\n", i);
    CHECK_EQ(escp_test_bundle_parse(c, n, B), ESCP_E_PROTO);
    free(c);
  }
  /* the most records a bundle may hold, and one more */
  n = body_hdr(b, ESCP_BUNDLE_FILES_MAX);
  for (int i = 0; i < ESCP_BUNDLE_FILES_MAX; i++) n = body_rec(b, n, 7, "z", data, 0);
  CHECK_EQ(escp_test_bundle_parse(b, n, 2 * B), ESCP_E_PROTO); /* longer than the block */
  CHECK_EQ(escp_test_bundle_parse(b, n, 1 << 20), ESCP_OK);
  put32(b + 4, ESCP_BUNDLE_FILES_MAX + 1);
  n = body_rec(b, n, 7, "z", data, 0);
  CHECK_EQ(escp_test_bundle_parse(b, n, 1 << 20), ESCP_E_PROTO);
  /* random bytes never crash it (ASan) and are refused */
  for (int i = 0; i < 2000; i++) {
    int32_t len = (int32_t)(rnd() % 600);
    for (int32_t k = 0; k < len; k++) b[k] = (uint8_t)rnd();
    if (len >= 8 && i % 2) memcpy(b, "ESCB\1\0\0\0", 8);
    CHECK(escp_test_bundle_parse(b, len, B) == ESCP_E_PROTO || escp_test_bundle_parse(b, len, B) == ESCP_OK);
  }
  free(b);
  ok("malformed bundle bodies are refused whole (count, lengths, sizes, padding, end)");
}


int main(void) {
  scratch_init("bundle");
  CHECK(mkdir(P("src"), 0755) == 0);
  gbuf = malloc(GBUF);
  CHECK(gbuf);
  umask(022);
  parser();
  args();
  push_300();
  mixed();
  failures();
  dirs_limit();
  wrong_digest();
  rx_without();
  reconnects("3", 0);
  reconnects("1", 1);
  printf("1..%d\n", tests);
  free(gbuf);
  return 0;
}
