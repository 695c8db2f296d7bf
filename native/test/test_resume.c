/* test_resume.c — resume end to end over loopback sessions in one process (ESCP_P_RESUME,
 * escp.h "Resume"): a first run is cut short deterministically (the sender reads a copy of
 * the source that holds only its first blocks, so it fails the file after exactly those, and
 * this test — playing the control plane — never gives the receiver its verdict), which
 * leaves a sealed partial and journal; a second run is offered what they hold, checks the
 * offer against the source, sends only the rest, and the file verifies. Also: a changed
 * source, a damaged partial or journal, --no-resume (level 1), E_BUSY, another block size,
 * misuse and protocol violations, and sessions stopped while a probe or decision is
 * pending. No sleeps: every wait polls events or counters. */
#define _GNU_SOURCE
#include <sys/file.h>
#include "xfer.h"
#include "journal.h"
#include "resume.h"

#define FINO 7
#define LEAF "big"

static char g_dir[64], g_dst[128], g_src[160], g_cut[160];
static char g_part[192], g_jrnl[192], g_target[192];
static uint8_t *g_data;
static uint64_t g_size;
static uint8_t g_b3[32]; /* b3sum of g_data */
static uint64_t g_ino;

static uint64_t nblk(uint32_t bs) { return g_size / bs + (g_size % bs != 0); }

static int exists(const char *p) { return access(p, F_OK) == 0; }

static void clean_dst(void) {
  unlink(g_target);
  unlink(g_part);
  unlink(g_jrnl);
}

/* ---- sessions ---- */


static void up(sess *p, int threads, uint32_t bs, int level) {
  cfg c = {"resume", "127.0.0.1", threads, 0, 0, 0, 1, 0, 0, 0, 0};
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  p->rx = new_session(ESCP_ROLE_RECEIVER, &c, key, sid);
  p->tx = new_session(ESCP_ROLE_SENDER, &c, key, sid);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_BLOCK_SIZE, bs), ESCP_OK);
  CHECK_EQ(escp_param_set(p->tx, ESCP_P_BLOCK_SIZE, bs), ESCP_OK);
  CHECK_EQ(escp_param_set(p->rx, ESCP_P_RESUME, level), ESCP_OK);
  CHECK_EQ(escp_param_get(p->rx, ESCP_P_RESUME), level);
  int port = escp_listen(p->rx, "127.0.0.1", 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_rx_root(p->rx, g_dst, 0), ESCP_OK);
  CHECK_EQ(escp_session_start(p->rx), ESCP_OK);
  conn_arg a = {p->tx, "127.0.0.1", port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.rc, ESCP_OK);
  CHECK_EQ(escp_session_start(p->tx), ESCP_OK);
  escp_event ev = next_ev(p->rx);
  CHECK_EQ(ev.type, ESCP_EV_STREAMS_UP);
}


/* Stop both at once, whatever they are doing (a failed or abandoned run). */
static void kill_both(sess *p) {
  escp_session_stop(p->tx);
  escp_session_stop(p->rx);
  escp_session_free(p->tx);
  escp_session_free(p->rx);
}

static void meta_of(int64_t m[ESCP_META_COUNT], int64_t mtime_s, uint64_t ino) {
  memset(m, 0, ESCP_META_COUNT * sizeof *m);
  m[ESCP_META_MODE] = 0644;
  m[ESCP_META_MTIME_S] = mtime_s;
  m[ESCP_META_MTIME_NS] = 123456789;
  m[ESCP_META_SRC_INO] = (int64_t)ino;
}

/* ---- one run of the file ---- */

typedef struct opts {
  int threads;
  uint32_t bs;
  int level;
  const int64_t *meta;
  uint64_t have;   /* bytes the sender can read (< g_size: the run is cut short) */
  int refuse;      /* refuse an offer even when the source passes the check */
  int no_verdict;  /* never tell the receiver (the file stays unfinished) */
  void (*before_decide)(void); /* run between the offer and the decision */
} opts;

typedef struct outcome {
  int add_rc;
  int offered;            /* an ESCP_EV_OFFER came */
  escp_event offer;       /* ... this one */
  int32_t olen;           /* escp_rx_offer's result */
  int32_t check_rc;       /* escp_tx_offer_check's (1: not called) */
  int accepted;
  escp_event txe, rxe;    /* the file's events (type 0: none) */
  uint64_t rx_blocks;     /* data frames the receiver got */
} outcome;

static void write_cut(uint64_t have) {
  int fd = open(g_cut, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK(write(fd, g_data, have) == (ssize_t)have);
  close(fd);
}

static outcome run(const opts *o) {
  outcome r;
  memset(&r, 0, sizeof r);
  r.check_rc = 1;
  const char *src = g_src;
  if (o->have < g_size) {
    write_cut(o->have);
    src = g_cut;
  }
  sess p;
  up(&p, o->threads, o->bs, o->level);
  r.add_rc = escp_rx_file_add(p.rx, FINO, LEAF, g_size, o->meta);
  CHECK(r.add_rc == 0 || r.add_rc == 1);
  int queued = 0;
  if (r.add_rc == 1) {
    CHECK_EQ(escp_rx_file_expect(p.rx, FINO, nblk(o->bs), 0, g_b3), ESCP_E_PROTO); /* undecided */
    r.offer = next_ev(p.rx);
    CHECK_EQ(r.offer.type, ESCP_EV_OFFER);
    CHECK_EQ(r.offer.fino, FINO);
    r.offered = 1;
    if (getenv("ESCP_TEST_DEBUG")) fprintf(stderr, "offer: blocks %llu text '%s'\n", (unsigned long long)r.offer.blocks, r.offer.text);
    uint8_t *blob = malloc(ESCP_OFFER_HDR + 8192 * ESCP_OFFER_ITEM);
    CHECK(blob);
    r.olen = escp_rx_offer(p.rx, FINO, blob, ESCP_OFFER_HDR + 8192 * ESCP_OFFER_ITEM);
    CHECK(r.olen >= 0);
    if (r.olen > 0) {
      CHECK_EQ(r.offer.blocks * o->bs, r.offer.bytes);
      CHECK_EQ(r.offer.text[0], 0);
      CHECK_EQ(escp_rx_offer(p.rx, FINO, blob, r.olen - 1), ESCP_E_TOOBIG);
      CHECK_EQ(escp_rx_offer(p.rx, FINO, NULL, 0), ESCP_E_TOOBIG);
      CHECK_EQ(escp_rx_file_expect(p.rx, FINO, nblk(o->bs) - r.offer.blocks, 0, g_b3), ESCP_E_PROTO);
      int32_t err = -1;
      r.check_rc = escp_tx_offer_check(g_src, g_size, (int32_t)o->bs, blob, r.olen, &err);
      r.accepted = r.check_rc == ESCP_OK && !o->refuse;
      if (r.accepted) CHECK_EQ(escp_tx_file_add_held(p.tx, FINO, src, g_size, blob, r.olen, NULL), ESCP_OK);
      else CHECK_EQ(escp_tx_file_add(p.tx, FINO, src, g_size), ESCP_OK);
      queued = 1;
      if (o->before_decide) o->before_decide();
      CHECK_EQ(escp_rx_file_decide(p.rx, FINO, r.accepted), ESCP_OK);
      CHECK_EQ(escp_rx_file_decide(p.rx, FINO, r.accepted), ESCP_E_STATE); /* once */
      CHECK_EQ(escp_rx_offer(p.rx, FINO, blob, r.olen), 0); /* decided: nothing on offer */
    } else {
      CHECK_EQ(r.offer.blocks, 0);
      CHECK_EQ(escp_rx_file_decide(p.rx, FINO, 1), ESCP_E_STATE); /* nothing to decide */
    }
    free(blob);
  }
  if (!queued) CHECK_EQ(escp_tx_file_add(p.tx, FINO, src, g_size), ESCP_OK);
  CHECK_EQ(escp_tx_finish(p.tx), ESCP_OK);
  uint64_t rest = nblk(o->bs) - (r.accepted ? r.offer.blocks : 0);
  int told = 0, txd = 0, rxd = 0;
  time_t t0 = time(NULL);
  while (!txd || !rxd || !r.txe.type || (told && !r.rxe.type)) {
    CHECK(time(NULL) - t0 < 60);
    escp_event ev;
    int k = escp_event_poll(p.tx, &ev, 1);
    if (k) {
      if (ev.type == ESCP_EV_DRAINED) txd = 1;
      else if (ev.type == ESCP_EV_FILE_DONE || ev.type == ESCP_EV_FILE_ERROR) {
        CHECK(!r.txe.type);
        r.txe = ev;
        if (ev.type == ESCP_EV_FILE_DONE && !o->no_verdict) {
          CHECK_EQ(ev.blocks, rest);
          CHECK_EQ(escp_rx_file_expect(p.rx, FINO, ev.blocks + 1, 0, ev.digest), ESCP_E_PROTO);
          CHECK_EQ(escp_rx_file_expect(p.rx, FINO, ev.blocks, 0, ev.digest), ESCP_OK);
          told = 1;
        }
      } else {
        fprintf(stderr, "sender event %u status %d %s\n", ev.type, ev.status, ev.text);
        CHECK(!"unexpected sender event");
      }
    }
    int m = escp_event_poll(p.rx, &ev, 1);
    if (m) {
      if (ev.type == ESCP_EV_DRAINED) rxd = 1;
      else if (ev.type == ESCP_EV_FILE_DONE || ev.type == ESCP_EV_FILE_ERROR) {
        CHECK(!r.rxe.type);
        r.rxe = ev;
      } else {
        fprintf(stderr, "receiver event %u status %d %s\n", ev.type, ev.status, ev.text);
        CHECK(!"unexpected receiver event");
      }
    }
    if (!k && !m) nap();
  }
  uint64_t sr[ESCP_S_COUNT];
  CHECK_EQ(escp_stats_read(p.rx, sr, ESCP_S_COUNT), ESCP_S_COUNT);
  r.rx_blocks = sr[ESCP_S_BLOCKS];
  sess_down(&p);
  if (o->have < g_size) unlink(g_cut);
  return r;
}

/* A run cut short after the first `blocks` blocks of bs (one stream: exactly those arrive).
 * Leaves the partial and its sealed journal. */
static void run_cut(uint32_t bs, uint64_t blocks, const int64_t *meta) {
  opts o = {1, bs, 2, meta, blocks * bs, 0, 1, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.add_rc, 0);
  CHECK_EQ(r.txe.type, ESCP_EV_FILE_ERROR);
  CHECK_EQ(r.txe.status, ESCP_E_SHORT);
  CHECK_EQ(r.txe.blocks, blocks);
  CHECK_EQ(r.rxe.type, 0);
  CHECK_EQ(r.rx_blocks, blocks);
  CHECK(exists(g_part) && exists(g_jrnl) && !exists(g_target));
}

/* The journal as it is now. */
static void jread(escp_jrn_state *st) {
  int fd = open(g_jrnl, O_RDONLY);
  CHECK(fd >= 0);
  const char *why = NULL;
  CHECK_EQ(escp_jrn_read(fd, st, &why), 0);
  close(fd);
}

/* The file arrived whole and right, and nothing of the partial is left. */
static void check_done(const outcome *r, uint64_t sent) {
  if (r->rxe.type != ESCP_EV_FILE_DONE)
    fprintf(stderr, "receiver: %u %d %s\n", r->rxe.type, r->rxe.status, r->rxe.text);
  CHECK_EQ(r->txe.type, ESCP_EV_FILE_DONE);
  CHECK_EQ(r->rxe.type, ESCP_EV_FILE_DONE);
  CHECK_EQ(r->txe.blocks, sent);
  CHECK_EQ(r->rx_blocks, sent);
  CHECK_EQ(r->rxe.bytes, g_size - (r->accepted ? r->offer.bytes : 0));
  CHECK_EQ(r->txe.bytes, g_size - (r->accepted ? r->offer.bytes : 0));
  CHECK(memcmp(r->txe.digest, g_b3, 32) == 0);
  CHECK(memcmp(r->rxe.digest, g_b3, 32) == 0);
  uint64_t len;
  uint8_t *got = slurp(g_target, &len);
  CHECK_EQ(len, g_size);
  CHECK(memcmp(got, g_data, g_size) == 0);
  free(got);
  struct stat st;
  CHECK(stat(g_target, &st) == 0);
  mode_t um = umask(0);
  umask(um);
  CHECK_EQ(st.st_mode & 07777, 0644 & ~um);
  CHECK(!exists(g_part) && !exists(g_jrnl));
}

/* Nothing but the target (and what the test put there) in the destination. */
static int dst_entries(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", g_dst);
  FILE *fp = popen(cmd, "r");
  CHECK(fp);
  int n = -1;
  CHECK(fscanf(fp, "%d", &n) == 1);
  pclose(fp);
  return n;
}

/* ---- the cases ---- */

/* (a) cut after 20 of 38 blocks; the next run (3 streams) is offered 0..19 and sends 18. */
static void test_resume_basic(void) {
  fprintf(stderr, "-- resume after a cut run\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000000, g_ino);
  run_cut(B, 20, meta);
  struct stat ps;
  CHECK(stat(g_part, &ps) == 0);
  CHECK_EQ(ps.st_size, g_size); /* sized up front */
  CHECK_EQ(ps.st_mode & 0777, 0600); /* owner-only until sealed */
  escp_jrn_state st;
  jread(&st);
  CHECK_EQ(st.natoms, 20);
  for (size_t i = 0; i < 20; i++) CHECK(st.atoms[i].start == i && st.atoms[i].log2 == 0);
  CHECK_EQ(st.last_kind, ESCP_JRN_SEAL); /* ended cleanly: sealed */
  CHECK_EQ(st.id.size, g_size);
  CHECK_EQ(st.id.ino, g_ino);
  CHECK_EQ(st.id.mtime_ns, 1600000000 * 1000000000ll + 123456789);
  CHECK_EQ(st.id.block_size, B);
  CHECK_EQ(st.part_ino, ps.st_ino);
  escp_jrn_state_free(&st);
  CHECK_EQ(dst_entries(), 2);

  opts o = {3, B, 2, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.add_rc, 1);
  CHECK_EQ(r.offer.blocks, 20);
  CHECK_EQ(r.offer.bytes, 20ull * B);
  CHECK_EQ(r.olen, ESCP_OFFER_HDR + 2 * ESCP_OFFER_ITEM); /* [0,16) [16,20) */
  CHECK_EQ(r.check_rc, ESCP_OK);
  CHECK(r.accepted);
  check_done(&r, nblk(B) - 20);
  CHECK_EQ(dst_entries(), 1);
  clean_dst();
}

/* (a') every block arrived but the verdict never came: sealed with all of them; the next run
 * sends only the last block. */
static void test_resume_all_but_verdict(void) {
  fprintf(stderr, "-- resume a complete but unverified partial\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000001, g_ino);
  opts o1 = {2, B, 2, meta, g_size, 0, 1, NULL};
  outcome r = run(&o1);
  CHECK_EQ(r.txe.type, ESCP_EV_FILE_DONE);
  CHECK_EQ(r.rxe.type, 0);
  CHECK(exists(g_part) && exists(g_jrnl) && !exists(g_target));
  escp_jrn_state st;
  jread(&st);
  CHECK_EQ(st.natoms, nblk(B));
  CHECK_EQ(st.last_kind, ESCP_JRN_SEAL);
  escp_jrn_state_free(&st);
  opts o2 = {2, B, 2, meta, g_size, 0, 0, NULL};
  r = run(&o2);
  CHECK_EQ(r.offer.blocks, nblk(B) - 1); /* never the last block */
  check_done(&r, 1);
  clean_dst();
}

/* (b) the source changed: other content (the sender's check fails, the offer is refused),
 * another mtime, no inode, another size (the probe refuses it itself). */
static void test_changed_source(void) {
  fprintf(stderr, "-- changed sources\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000002, g_ino);
  /* other content in the first held block */
  run_cut(B, 12, meta);
  uint8_t keep = g_data[100];
  g_data[100] ^= 0xFF;
  int fd = open(g_src, O_WRONLY);
  CHECK(fd >= 0 && pwrite(fd, &g_data[100], 1, 100) == 1);
  close(fd);
  CHECK_EQ(escp_digest_buffer(g_data, g_size, B, 0, g_b3), ESCP_OK);
  opts o = {2, B, 2, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.add_rc, 1);
  CHECK_EQ(r.offer.blocks, 12);
  CHECK_EQ(r.check_rc, ESCP_E_CHANGED);
  CHECK(!r.accepted);
  check_done(&r, nblk(B));
  clean_dst();
  g_data[100] = keep;
  fd = open(g_src, O_WRONLY);
  CHECK(fd >= 0 && pwrite(fd, &g_data[100], 1, 100) == 1);
  close(fd);
  CHECK_EQ(escp_digest_buffer(g_data, g_size, B, 0, g_b3), ESCP_OK);

  /* identity: mtime, inode unknown, inode other */
  for (int v = 0; v < 3; v++) {
    run_cut(B, 12, meta);
    int64_t m2[ESCP_META_COUNT];
    memcpy(m2, meta, sizeof m2);
    if (v == 0) m2[ESCP_META_MTIME_NS]++;
    if (v == 1) m2[ESCP_META_SRC_INO] = 0;
    if (v == 2) m2[ESCP_META_SRC_INO] ^= 1;
    opts o2 = {2, B, 2, m2, g_size, 0, 0, NULL};
    r = run(&o2);
    CHECK_EQ(r.add_rc, 1);
    CHECK_EQ(r.olen, 0);
    CHECK(strstr(r.offer.text, "another version of the source"));
    check_done(&r, nblk(B));
    clean_dst();
  }
  /* A refused offer (the control plane's choice) starts over too. */
  run_cut(B, 12, meta);
  opts o3 = {1, B, 2, meta, g_size, 1, 0, NULL};
  r = run(&o3);
  CHECK_EQ(r.check_rc, ESCP_OK);
  CHECK(!r.accepted);
  check_done(&r, nblk(B));
  clean_dst();
}

static void flip_part_byte(uint64_t off) {
  int fd = open(g_part, O_RDWR);
  CHECK(fd >= 0);
  uint8_t b;
  CHECK(pread(fd, &b, 1, (off_t)off) == 1);
  b ^= 0x40;
  CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
  close(fd);
}

static void jrnl_truncate_by(off_t n) {
  struct stat st;
  CHECK(stat(g_jrnl, &st) == 0);
  CHECK(truncate(g_jrnl, st.st_size - n) == 0);
}

/* (c) a damaged partial or journal: the probe re-hashes and offers only what still matches. */
static void test_damaged(void) {
  fprintf(stderr, "-- damaged partials and journals\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000003, g_ino);
  /* 1: the SEAL torn off (an unclean end), block 5 overwritten: 19 of 20 offered. */
  run_cut(B, 20, meta);
  jrnl_truncate_by(ESCP_JRN_REC);
  escp_jrn_state st;
  jread(&st);
  CHECK_EQ(st.last_kind, ESCP_JRN_BLOCK);
  escp_jrn_state_free(&st);
  flip_part_byte(5ull * B + 1000);
  opts o = {2, B, 2, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.offer.blocks, 19);
  CHECK_EQ(r.olen, ESCP_OFFER_HDR + 5 * ESCP_OFFER_ITEM); /* [0,4) 4 [6,8) [8,16) [16,20) */
  CHECK(r.accepted);
  check_done(&r, nblk(B) - 19);
  clean_dst();
  /* 2: sealed, but the partial was written since (its mtime differs from the SEAL): block 0
   * and block 19 overwritten — the check runs move inward. */
  run_cut(B, 20, meta);
  flip_part_byte(0);
  flip_part_byte(19ull * B + B - 1);
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
  CHECK(utimensat(AT_FDCWD, g_part, ts, 0) == 0);
  r = run(&o);
  CHECK_EQ(r.offer.blocks, 18);
  CHECK(r.accepted);
  check_done(&r, nblk(B) - 18);
  clean_dst();
  /* 3: a flipped byte in the 11th record: records 0..9 only, unsealed, all still good. */
  run_cut(B, 20, meta);
  int fd = open(g_jrnl, O_RDWR);
  CHECK(fd >= 0);
  uint8_t b;
  off_t at = ESCP_JRN_HDR + 10 * ESCP_JRN_REC + 12;
  CHECK(pread(fd, &b, 1, at) == 1);
  b ^= 1;
  CHECK(pwrite(fd, &b, 1, at) == 1);
  close(fd);
  r = run(&o);
  CHECK_EQ(r.offer.blocks, 10);
  check_done(&r, nblk(B) - 10);
  clean_dst();
  /* 4: a torn record in the middle of the tail (mid-record cut): 7 records survive. */
  run_cut(B, 20, meta);
  CHECK(truncate(g_jrnl, ESCP_JRN_HDR + 7 * ESCP_JRN_REC + 30) == 0);
  r = run(&o);
  CHECK_EQ(r.offer.blocks, 7);
  check_done(&r, nblk(B) - 7);
  clean_dst();
  /* 5: the partial truncated below the file size: not used, replaced, the reason told. */
  run_cut(B, 20, meta);
  CHECK(truncate(g_part, 10 * B) == 0);
  r = run(&o);
  CHECK_EQ(r.add_rc, 1);
  CHECK_EQ(r.olen, 0);
  CHECK(strstr(r.offer.text, "truncated"));
  check_done(&r, nblk(B));
  clean_dst();
  /* 6: the journal is garbage, or missing. */
  for (int v = 0; v < 2; v++) {
    run_cut(B, 20, meta);
    if (v == 0) {
      fd = open(g_jrnl, O_WRONLY);
      CHECK(fd >= 0 && pwrite(fd, "NOTAJRNL", 8, 0) == 8);
      close(fd);
    } else {
      CHECK(unlink(g_jrnl) == 0);
    }
    r = run(&o);
    CHECK_EQ(r.olen, 0);
    CHECK(strstr(r.offer.text, v == 0 ? "not an escp journal" : "no journal"));
    check_done(&r, nblk(B));
    clean_dst();
  }
  /* 7: the partial replaced by another file (another inode than the journal names). */
  run_cut(B, 20, meta);
  char tmp[220];
  snprintf(tmp, sizeof tmp, "%s/x", g_dst);
  uint64_t len;
  uint8_t *copy = slurp(g_part, &len);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK(fd >= 0 && write(fd, copy, len) == (ssize_t)len);
  close(fd);
  free(copy);
  CHECK(rename(tmp, g_part) == 0);
  r = run(&o);
  CHECK_EQ(r.olen, 0);
  CHECK(strstr(r.offer.text, "not the file its journal describes"));
  check_done(&r, nblk(B));
  clean_dst();
  /* 8: every held block damaged, unsealed: nothing kept, started over without a reason. */
  run_cut(B, 3, meta);
  jrnl_truncate_by(ESCP_JRN_REC);
  for (int k = 0; k < 3; k++) flip_part_byte((uint64_t)k * B + 7);
  r = run(&o);
  CHECK_EQ(r.olen, 0);
  CHECK_EQ(r.offer.text[0], 0);
  check_done(&r, nblk(B));
  clean_dst();
}

/* (d) ESCP_P_RESUME 1: the earlier partial goes at file_add, everything is sent. */
static void test_no_resume(void) {
  fprintf(stderr, "-- level 1 replaces an earlier partial\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000004, g_ino);
  run_cut(B, 20, meta);
  sess p;
  up(&p, 2, B, 1);
  CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), 0);
  CHECK(!exists(g_part) && !exists(g_jrnl)); /* gone before any block */
  kill_both(&p);
  run_cut(B, 20, meta);
  opts o = {2, B, 1, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.add_rc, 0);
  CHECK(!r.offered);
  check_done(&r, nblk(B));
  clean_dst();
  /* Level 0 leaves someone's partial alone and writes no journal. */
  run_cut(B, 20, meta);
  opts o0 = {2, B, 0, meta, g_size, 0, 0, NULL};
  r = run(&o0);
  CHECK_EQ(r.add_rc, 0);
  CHECK_EQ(r.rxe.type, ESCP_EV_FILE_DONE);
  CHECK(exists(g_part) && exists(g_jrnl));
  clean_dst();
}

/* (e) E_BUSY: another process holds the partial: file_add refuses (levels 1 and 2) and
 * touches nothing; once released, it resumes. Also a partial made by another run between
 * file_add and the first block: the file fails with E_BUSY and that partial is left. */
static void test_busy(void) {
  fprintf(stderr, "-- E_BUSY\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000005, g_ino);
  run_cut(B, 20, meta);
  uint64_t lp, lj;
  uint8_t *p0 = slurp(g_part, &lp), *j0 = slurp(g_jrnl, &lj);
  int lfd = open(g_part, O_RDWR);
  CHECK(lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0);
  for (int level = 1; level <= 2; level++) {
    sess p;
    up(&p, 1, B, level);
    CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), ESCP_E_BUSY);
    CHECK_EQ(escp_last_errno(p.rx), EWOULDBLOCK);
    CHECK_EQ(escp_rx_offer(p.rx, FINO, NULL, 0), ESCP_E_UNKNOWN_FILE); /* not registered */
    kill_both(&p);
    uint64_t l1, l2;
    uint8_t *p1 = slurp(g_part, &l1), *j1 = slurp(g_jrnl, &l2);
    CHECK(l1 == lp && memcmp(p0, p1, lp) == 0);
    CHECK(l2 == lj && memcmp(j0, j1, lj) == 0);
    free(p1);
    free(j1);
  }
  close(lfd); /* released: the next run resumes */
  free(p0);
  free(j0);
  opts o = {2, B, 2, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.offer.blocks, 20);
  check_done(&r, nblk(B) - 20);
  clean_dst();

  /* Made by another escp after file_add, before the first block. */
  sess p;
  up(&p, 1, B, 2);
  CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), 0);
  int fd = open(g_part, O_RDWR | O_CREAT | O_EXCL, 0600);
  CHECK(fd >= 0 && write(fd, "theirs", 6) == 6);
  close(fd);
  CHECK_EQ(escp_tx_file_add(p.tx, FINO, g_src, g_size), ESCP_OK);
  CHECK_EQ(escp_tx_finish(p.tx), ESCP_OK);
  escp_event ev = next_ev(p.tx);
  CHECK_EQ(ev.type, ESCP_EV_FILE_DONE); /* the sender sent it all */
  CHECK_EQ(escp_rx_file_expect(p.rx, FINO, ev.blocks, 0, ev.digest), ESCP_OK);
  for (;;) {
    ev = next_ev(p.rx);
    if (ev.type == ESCP_EV_DRAINED) continue;
    break;
  }
  CHECK_EQ(ev.type, ESCP_EV_FILE_ERROR);
  CHECK_EQ(ev.status, ESCP_E_BUSY);
  kill_both(&p);
  uint64_t l;
  uint8_t *t = slurp(g_part, &l);
  CHECK(l == 6 && memcmp(t, "theirs", 6) == 0);
  free(t);
  CHECK(!exists(g_target));
  CHECK(!exists(g_jrnl));
  clean_dst();
}

/* (f) another block size in the next run: 64 KiB -> 128 KiB and 128 KiB -> 64 KiB, and a
 * three-run chain 64 -> 128 (cut again, on a rewritten journal) -> 64. */
static void test_block_sizes(void) {
  fprintf(stderr, "-- another block size\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000006, g_ino);
  uint32_t K128 = 2 * B;
  /* 64 -> 128: journal blocks 0..20 held; 128 KiB blocks 0..9 whole (20 is half of 10). */
  run_cut(B, 21, meta);
  opts o = {2, K128, 2, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.offer.blocks, 10);
  CHECK(r.accepted);
  check_done(&r, nblk(K128) - 10);
  clean_dst();
  /* 128 -> 64: 7 blocks of 128 KiB are 14 of 64 KiB. */
  run_cut(K128, 7, meta);
  o.bs = B;
  r = run(&o);
  CHECK_EQ(r.offer.blocks, 14);
  CHECK(r.accepted);
  check_done(&r, nblk(B) - 14);
  clean_dst();
  /* 64 (11 blocks) -> 128 resumed and cut at 13 blocks of 128 KiB -> 64 resumed. */
  run_cut(B, 11, meta);
  opts o2 = {1, K128, 2, meta, 13ull * K128, 0, 1, NULL};
  r = run(&o2);
  CHECK_EQ(r.offer.blocks, 5);
  CHECK(r.accepted);
  CHECK_EQ(r.txe.type, ESCP_EV_FILE_ERROR);
  CHECK_EQ(r.txe.blocks, 13 - 5);
  escp_jrn_state st;
  jread(&st);
  CHECK_EQ(st.id.block_size, K128); /* rewritten in the new block size */
  CHECK_EQ(st.last_kind, ESCP_JRN_SEAL);
  uint64_t held = 0;
  for (size_t i = 0; i < st.natoms; i++) held += UINT64_C(1) << st.atoms[i].log2;
  CHECK_EQ(held, 13);
  escp_jrn_state_free(&st);
  o.bs = B;
  r = run(&o);
  CHECK_EQ(r.offer.blocks, 26);
  check_done(&r, nblk(B) - 26);
  clean_dst();
}

/* (g) misuse and failures: statuses, no leaks (ASan), no hangs. */
static void test_misuse(void) {
  fprintf(stderr, "-- misuse, protocol violations, stops mid-probe\n");
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000007, g_ino);
  run_cut(B, 20, meta);
  /* Stopped right after file_add (the probe may or may not have run), then after the
   * offer without a decision: the partial stays, resumable. */
  for (int v = 0; v < 2; v++) {
    sess p;
    up(&p, 2, B, 2);
    CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), 1);
    CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), ESCP_E_DUP);
    if (v == 1) {
      escp_event ev = next_ev(p.rx);
      CHECK_EQ(ev.type, ESCP_EV_OFFER);
      CHECK_EQ(ev.blocks, 20);
      /* the sender already sends: its blocks wait for the decision that never comes */
      CHECK_EQ(escp_tx_file_add(p.tx, FINO, g_src, g_size), ESCP_OK);
    }
    kill_both(&p);
    CHECK(exists(g_part) && exists(g_jrnl) && !exists(g_target));
  }
  /* Statuses. */
  sess p;
  up(&p, 1, B, 2);
  CHECK_EQ(escp_rx_offer(p.tx, FINO, NULL, 0), ESCP_E_STATE);
  CHECK_EQ(escp_rx_file_decide(p.tx, FINO, 1), ESCP_E_STATE);
  CHECK_EQ(escp_rx_offer(p.rx, FINO, NULL, 0), ESCP_E_UNKNOWN_FILE);
  CHECK_EQ(escp_rx_offer(p.rx, FINO, NULL, -1), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_offer(p.rx, FINO, NULL, 5), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_file_decide(p.rx, FINO, 1), ESCP_E_UNKNOWN_FILE);
  CHECK_EQ(escp_rx_offer(NULL, FINO, NULL, 0), ESCP_E_INVAL);
  CHECK_EQ(escp_rx_file_decide(NULL, FINO, 1), ESCP_E_INVAL);
  uint8_t junk[ESCP_OFFER_HDR + ESCP_OFFER_ITEM] = {0};
  CHECK_EQ(escp_tx_file_add_held(p.tx, 99, g_src, g_size, junk, sizeof junk, NULL), ESCP_E_PROTO);
  CHECK_EQ(escp_tx_file_add_held(p.tx, 99, g_src, g_size, NULL, 0, NULL), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_file_add_held(p.tx, 99, g_src, g_size, junk, -1, NULL), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_file_add_held(p.rx, 99, g_src, g_size, junk, sizeof junk, NULL), ESCP_E_STATE);
  CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), 1);
  escp_event ev = next_ev(p.rx);
  CHECK_EQ(ev.type, ESCP_EV_OFFER);
  uint8_t blob[ESCP_OFFER_HDR + 4 * ESCP_OFFER_ITEM];
  int32_t len = escp_rx_offer(p.rx, FINO, blob, sizeof blob);
  CHECK_EQ(len, ESCP_OFFER_HDR + 2 * ESCP_OFFER_ITEM);
  /* the offer in another block size or for another size is malformed for the sender */
  CHECK_EQ(escp_tx_file_add_held(p.tx, FINO, g_src, g_size - (g_size % B) - 19 * B, blob, len, NULL), ESCP_E_PROTO);
  /* a valid offer for a valid file but with an invalid fino, then a path of NULL: freed */
  CHECK_EQ(escp_tx_file_add_held(p.tx, 0, g_src, g_size, blob, len, NULL), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_file_add_held(p.tx, FINO, NULL, g_size, blob, len, NULL), ESCP_E_INVAL);
  /* Accepted, but the sender sends every block anyway: block 0 is one the receiver holds,
   * a session-scope protocol error; the failed file loses its partial. */
  CHECK_EQ(escp_rx_file_decide(p.rx, FINO, 1), ESCP_OK);
  CHECK_EQ(escp_rx_file_expect(p.rx, FINO, nblk(B), 0, g_b3), ESCP_E_PROTO); /* held ones are not expected */
  CHECK_EQ(escp_tx_file_add(p.tx, FINO, g_src, g_size), ESCP_OK);
  for (;;) {
    ev = next_ev(p.rx);
    if (ev.type != ESCP_EV_FATAL) continue;
    CHECK_EQ(ev.status, ESCP_E_PROTO);
    CHECK(strstr(ev.text, "holds already"));
    break;
  }
  kill_both(&p);
  CHECK(!exists(g_part) && !exists(g_jrnl) && !exists(g_target));
  /* After a finished file_add-then-finish sender: add_held once finished is E_STATE. */
  run_cut(B, 4, meta);
  up(&p, 1, B, 2);
  CHECK_EQ(escp_rx_file_add(p.rx, FINO, LEAF, g_size, meta), 1);
  ev = next_ev(p.rx);
  len = escp_rx_offer(p.rx, FINO, blob, sizeof blob);
  CHECK(len > 0);
  CHECK_EQ(escp_tx_finish(p.tx), ESCP_OK);
  CHECK_EQ(escp_tx_file_add_held(p.tx, FINO, g_src, g_size, blob, len, NULL), ESCP_E_STATE);
  CHECK_EQ(escp_rx_file_decide(p.rx, FINO, 0), ESCP_OK); /* refused: the partial goes */
  CHECK(!exists(g_part) && !exists(g_jrnl));
  kill_both(&p);
  clean_dst();
}

/* A name planted where the journal goes — a hard link to a file of the user's — is never
 * written through: not when a new partial's journal is made, not when a resumed one is
 * reopened after the decision (the name swapped since the probe read it). */
static char g_victim[192];

static void plant_journal_link(void) {
  unlink(g_jrnl);
  CHECK(link(g_victim, g_jrnl) == 0);
}

static char g_newj[220]; /* the name a journal rewritten in another block size is made under */

static void plant_newj_link(void) {
  struct stat st;
  CHECK(stat(g_part, &st) == 0);
  snprintf(g_newj, sizeof g_newj, "%s/.escp-%llx.journal-new", g_dst, (unsigned long long)st.st_ino);
  CHECK(link(g_victim, g_newj) == 0);
}

static void check_victim(void) {
  uint64_t l;
  uint8_t *v = slurp(g_victim, &l);
  CHECK(l == 8 && memcmp(v, "precious", 8) == 0);
  free(v);
}

static void test_planted_journal(void) {
  fprintf(stderr, "-- a hard link planted at the journal's name\n");
  snprintf(g_victim, sizeof g_victim, "%s/victim", g_dir);
  int fd = open(g_victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0 && write(fd, "precious", 8) == 8);
  close(fd);
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000008, g_ino);
  /* no partial, a new journal */
  plant_journal_link();
  opts o = {2, B, 2, meta, g_size, 0, 0, NULL};
  outcome r = run(&o);
  CHECK_EQ(r.add_rc, 0);
  check_done(&r, nblk(B));
  check_victim();
  clean_dst();
  /* a resumed partial's journal, swapped between the probe and the decision */
  run_cut(B, 20, meta);
  o.before_decide = plant_journal_link;
  r = run(&o);
  CHECK_EQ(r.offer.blocks, 20);
  check_done(&r, nblk(B) - 20);
  check_victim();
  clean_dst();
  /* ... and the journal rewritten in another block size */
  run_cut(B, 20, meta);
  opts o2 = {2, 2 * B, 2, meta, g_size, 0, 0, plant_newj_link};
  r = run(&o2);
  CHECK_EQ(r.offer.blocks, 10);
  check_done(&r, nblk(2 * B) - 10);
  check_victim();
  CHECK(!exists(g_newj));
  clean_dst();
  struct stat st;
  CHECK(stat(g_victim, &st) == 0 && st.st_nlink == 1);
  CHECK(unlink(g_victim) == 0);
}

/* The decision and the offer asked for before ESCP_EV_OFFER (misuse): E_STATE and 0 until
 * the probe is done, never a half-made offer, and a decision taken as soon as it is allowed
 * works (no use of what the probe is still making). Partials made by hand, sealed, of 8192
 * held runs (a large offer to encode), on a sparse file of 16385 blocks. Any interleaving
 * must pass; the tight loop only makes the early calls land while the probe works. */
static void test_early_decide(void) {
  fprintf(stderr, "-- decisions asked for before the offer is ready\n");
  enum { NT = ESCP_OFFER_MAX_TREES, N = 24 };
  uint64_t size = (2ull * NT + 1) * B;
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000009, g_ino);
  escp_jrn_atom *at = calloc(NT, sizeof *at);
  CHECK(at);
  for (uint64_t k = 0; k < NT; k++) at[k].start = 2 * k, at[k].cv[0] = (uint8_t)k, at[k].cv[1] = (uint8_t)(k >> 8);
  escp_jrn_atom *fine;
  size_t nf;
  escp_offer off;
  CHECK_EQ(escp_offer_build(at, NT, B, size, B, &fine, &nf, &off), ESCP_OK);
  size_t olen = escp_offer_size(&off);
  uint8_t *want = malloc(olen), *got = malloc(olen);
  CHECK(want && got);
  escp_offer_encode(&off, want);
  free(fine);
  escp_offer_free(&off);
  char part[N][400], jr[N][400];
  for (int i = 0; i < N; i++) {
    char leaf[16], pn[256], jn[256];
    snprintf(leaf, sizeof leaf, "e%d", i);
    escp_jrn_names(leaf, pn, jn);
    snprintf(part[i], sizeof part[i], "%s/%s", g_dst, pn);
    snprintf(jr[i], sizeof jr[i], "%s/%s", g_dst, jn);
    int pfd = open(part[i], O_RDWR | O_CREAT | O_EXCL, 0600), jfd = open(jr[i], O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(pfd >= 0 && jfd >= 0);
    CHECK(ftruncate(pfd, (off_t)size) == 0);
    struct stat ps;
    CHECK(fstat(pfd, &ps) == 0);
    escp_jrn_ident id = {size, meta[ESCP_META_MTIME_S] * 1000000000 + meta[ESCP_META_MTIME_NS], g_ino, B};
    uint8_t chk[16];
    CHECK_EQ(escp_jrn_write_header(jfd, &id, (uint64_t)ps.st_ino, (uint64_t)ps.st_dev, chk), 0);
    uint8_t *recs = malloc((NT + 1) * (size_t)ESCP_JRN_REC);
    CHECK(recs);
    for (size_t k = 0; k < NT; k++) escp_jrn_record(recs + k * ESCP_JRN_REC, chk, ESCP_JRN_BLOCK, at[k].start, at[k].cv);
    escp_jrn_record_seal(recs + NT * (size_t)ESCP_JRN_REC, chk, (uint64_t)ps.st_size,
                         (int64_t)ps.st_mtim.tv_sec * 1000000000 + ps.st_mtim.tv_nsec,
                         (int64_t)ps.st_ctim.tv_sec * 1000000000 + ps.st_ctim.tv_nsec);
    CHECK(pwrite(jfd, recs, (NT + 1) * (size_t)ESCP_JRN_REC, ESCP_JRN_HDR) == (ssize_t)((NT + 1) * ESCP_JRN_REC));
    free(recs);
    close(pfd);
    close(jfd);
  }
  sess p;
  up(&p, 1, B, 2);
  long early = 0;
  for (int i = 0; i < N; i++) {
    char leaf[16];
    snprintf(leaf, sizeof leaf, "e%d", i);
    uint64_t fino = 100 + (uint64_t)i;
    CHECK_EQ(escp_rx_file_add(p.rx, fino, leaf, size, meta), 1);
    for (time_t t0 = time(NULL);;) {
      CHECK(time(NULL) - t0 < 30);
      int32_t n = escp_rx_offer(p.rx, fino, got, (int32_t)olen);
      CHECK(n == 0 || n == (int32_t)olen);
      if (n > 0) CHECK(memcmp(got, want, olen) == 0);
      int32_t rc = escp_rx_file_decide(p.rx, fino, i % 2);
      if (rc == ESCP_OK) break;
      CHECK_EQ(rc, ESCP_E_STATE);
      early++;
    }
    escp_event ev = next_ev(p.rx);
    CHECK_EQ(ev.type, ESCP_EV_OFFER);
    CHECK_EQ(ev.fino, fino);
    CHECK_EQ(escp_rx_file_decide(p.rx, fino, 1), ESCP_E_STATE);
    CHECK(exists(part[i]) == (i % 2)); /* refused: the partial went */
  }
  kill_both(&p);
  for (int i = 0; i < N; i++) {
    unlink(part[i]);
    unlink(jr[i]);
  }
  free(at);
  free(want);
  free(got);
  fprintf(stderr, "  %ld early calls refused\n", early);
}

/* Small files (one block, empty) never get a partial; neither do discarded files. */
static void test_small(void) {
  fprintf(stderr, "-- one-block files are not journaled\n");
  sess p;
  up(&p, 1, B, 2);
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1, g_ino);
  CHECK_EQ(escp_rx_file_add(p.rx, 1, "one", B, meta), 0);
  CHECK_EQ(escp_rx_file_add(p.rx, 2, "empty", 0, meta), 0);
  CHECK_EQ(escp_rx_file_add(p.rx, 3, NULL, 3 * B, meta), 0);
  CHECK_EQ(dst_entries(), 0);
  kill_both(&p);
  CHECK_EQ(dst_entries(), 0);
}

/* ---- byte ranges (shards, escp.h "Byte ranges") ---- */

/* One range [first, first+count) sent and received whole: the receiver's range result. */
static void range_run(uint64_t first, uint64_t count, const int64_t *meta, uint8_t *res, int32_t *rlen) {
  sess p;
  up(&p, 2, B, 2);
  int rc = escp_rx_file_add_range(p.rx, FINO, LEAF, g_size, meta, first, count);
  CHECK(rc == 0 || rc == 1);
  if (rc == 1) { /* an earlier journal of this range: nothing held here (the tests send whole ranges) */
    escp_event ev = next_ev(p.rx);
    CHECK_EQ(ev.type, ESCP_EV_OFFER);
    if (ev.blocks > 0) CHECK_EQ(escp_rx_file_decide(p.rx, FINO, 0), ESCP_OK);
  }
  CHECK_EQ(escp_tx_file_add_range(p.tx, FINO, g_src, g_size, first, count, NULL, 0, NULL), ESCP_OK);
  CHECK_EQ(escp_tx_finish(p.tx), ESCP_OK);
  escp_event te;
  do te = next_ev(p.tx);
  while (te.type != ESCP_EV_FILE_DONE && te.type != ESCP_EV_FILE_ERROR);
  CHECK_EQ(te.type, ESCP_EV_FILE_DONE);
  CHECK_EQ(te.blocks, count);
  CHECK_EQ(escp_rx_file_expect(p.rx, FINO, te.blocks, 0, te.digest), ESCP_OK);
  escp_event re;
  do re = next_ev(p.rx);
  while (re.type != ESCP_EV_FILE_DONE && re.type != ESCP_EV_FILE_ERROR);
  CHECK_EQ(re.type, ESCP_EV_FILE_DONE);
  CHECK(memcmp(re.digest, te.digest, 32) == 0); /* the range digest, both sides */
  *rlen = escp_rx_range_take(p.rx, FINO, res, ESCP_RANGE_TAKE_MAX);
  CHECK(*rlen >= 40);
  CHECK_EQ(escp_rx_range_take(p.rx, FINO, res + ESCP_RANGE_TAKE_MAX, 0), 0); /* taken once */
  kill_both(&p);
}

static void test_ranges(void) {
  fprintf(stderr, "-- byte ranges: bounds, a block outside the range, three ranges commit the file\n");
  clean_dst();
  int64_t meta[ESCP_META_COUNT];
  meta_of(meta, 1600000011, g_ino);
  uint64_t nb = nblk(B);
  sess p;
  up(&p, 1, B, 2);
  /* the receiver's own limits: a proper part of the file, inside it */
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, g_size, meta, 0, 0), ESCP_E_RANGE);
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, g_size, meta, nb, 1), ESCP_E_RANGE);
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, g_size, meta, 2, nb - 1), ESCP_E_RANGE);
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, g_size, meta, 0, nb), ESCP_E_RANGE);
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, (uint64_t)ESCP_MAX_FILE_SIZE + 1, meta, 0, 1), ESCP_E_RANGE);
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, ESCP_SIZE_STREAM, meta, 0, 1), ESCP_E_RANGE);
  CHECK_EQ(escp_tx_file_add_range(p.tx, FINO, g_src, g_size, nb - 1, 2, NULL, 0, NULL), ESCP_E_RANGE);
  CHECK_EQ(escp_tx_file_add_range(p.tx, FINO, g_src, g_size, 0, 0, NULL, 0, NULL), ESCP_E_RANGE);
  CHECK(!exists(g_part));
  /* a sender that sends a block outside the announced range: session-scope E_PROTO; the
   * shared partial is never longer than the file */
  CHECK_EQ(escp_rx_file_add_range(p.rx, FINO, LEAF, g_size, meta, 4, 4), 0);
  CHECK_EQ(escp_tx_file_add(p.tx, FINO, g_src, g_size), ESCP_OK);
  for (;;) {
    escp_event ev = next_ev(p.rx);
    if (ev.type != ESCP_EV_FATAL) continue;
    CHECK_EQ(ev.status, ESCP_E_PROTO);
    CHECK(strstr(ev.text, "outside its announced range"));
    break;
  }
  kill_both(&p);
  struct stat st;
  CHECK(stat(g_part, &st) == 0 && (uint64_t)st.st_size == g_size);
  CHECK(!exists(g_target));
  clean_dst();
  /* names that only start like a range journal (another file's partial, say) are never
   * touched by the committer */
  char other[2][256];
  snprintf(other[0], sizeof other[0], "%s/." LEAF ".escp-journal.5.escp-part", g_dst);
  snprintf(other[1], sizeof other[1], "%s/." LEAF ".escp-journal.x7", g_dst);
  for (int i = 0; i < 2; i++) {
    int ofd = open(other[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(ofd >= 0);
    close(ofd);
  }
  /* three ranges, one after another: only the last names the file, b3sum-equal */
  uint8_t res[2 * ESCP_RANGE_TAKE_MAX];
  int32_t len;
  const uint64_t cut[4] = {0, 16, 32, nb};
  for (int i = 0; i < 3; i++) {
    range_run(cut[i], cut[i + 1] - cut[i], meta, res, &len);
    uint32_t committed = res[0], n = res[4];
    CHECK_EQ(committed, i == 2);
    CHECK_EQ(len, 40 + 48 * (int32_t)n);
    CHECK_EQ(exists(g_target), i == 2);
    if (i == 0) CHECK_EQ(n, 1); /* blocks 0..15: one run of 2^4 */
    if (i == 2) CHECK(memcmp(res + 8, g_b3, 32) == 0);
  }
  CHECK(exists(g_target) && !exists(g_part));
  uint8_t *got = malloc(g_size);
  int fd = open(g_target, O_RDONLY);
  CHECK(fd >= 0 && got && read(fd, got, g_size) == (ssize_t)g_size);
  close(fd);
  CHECK(memcmp(got, g_data, g_size) == 0);
  free(got);
  CHECK_EQ(dst_entries(), 3); /* the file and the two look-alikes: no journal left */
  for (int i = 0; i < 2; i++) CHECK(unlink(other[i]) == 0);
  clean_dst();
}

int main(void) {
  setenv("ESCP_JOURNAL_BYTES", "65536", 1); /* a group commit per block: the journal thread works */
  snprintf(g_dir, sizeof g_dir, "/tmp/escp_test_resume_XXXXXX");
  CHECK(mkdtemp(g_dir));
  snprintf(g_dst, sizeof g_dst, "%s/dst", g_dir);
  CHECK(mkdir(g_dst, 0755) == 0);
  snprintf(g_src, sizeof g_src, "%s/src.bin", g_dir);
  snprintf(g_cut, sizeof g_cut, "%s/cut.bin", g_dir);
  snprintf(g_part, sizeof g_part, "%s/." LEAF ".escp-part", g_dst);
  snprintf(g_jrnl, sizeof g_jrnl, "%s/." LEAF ".escp-journal", g_dst);
  snprintf(g_target, sizeof g_target, "%s/" LEAF, g_dst);
  g_size = 37ull * B + 1000; /* 38 blocks of 64 KiB, the last cut */
  g_data = malloc(g_size);
  CHECK(g_data);
  for (uint64_t i = 0; i < g_size; i++) g_data[i] = (uint8_t)rnd();
  int fd = open(g_src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0 && write(fd, g_data, g_size) == (ssize_t)g_size);
  close(fd);
  struct stat st;
  CHECK(stat(g_src, &st) == 0);
  g_ino = (uint64_t)st.st_ino;
  CHECK_EQ(escp_digest_buffer(g_data, g_size, B, 0, g_b3), ESCP_OK);

  test_resume_basic();
  test_resume_all_but_verdict();
  test_changed_source();
  test_damaged();
  test_no_resume();
  test_busy();
  test_block_sizes();
  test_misuse();
  test_planted_journal();
  test_early_decide();
  test_small();
  test_ranges();

  CHECK_EQ(dst_entries(), 0);
  CHECK(rmdir(g_dst) == 0);
  CHECK(unlink(g_src) == 0);
  CHECK(rmdir(g_dir) == 0);
  free(g_data);
  printf("test_resume: all passed\n");
  return 0;
}
