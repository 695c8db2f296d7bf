/* test_journal.c — the resume formats, without sessions: the block journal of a partial
 * (journal.c: names, header, BLOCK/TREE/SEAL records, torn and foreign tails, bad headers,
 * dedup of repeated and overlapping runs, the atom cap) and the resume offer (resume.c:
 * build from a journal in the same and in other block sizes, encode/decode and every
 * malformed variant decode must refuse, escp_run_cv against the per-block BLAKE3 tree,
 * escp_trees_find, escp_tx_offer_check). Property loops use a seeded xorshift PRNG. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b3.h"
#include "check.h"
#include "digest.h"
#include "escp.h"
#include "journal.h"
#include "rdigest.h"
#include "resume.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}
static void fill(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

static char g_dir[64];
static int g_seq;

/* A new empty file in the test directory, open read-write; its path in path. */
static int new_file(char path[128]) {
  snprintf(path, 128, "%s/f%d", g_dir, g_seq++);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  return fd;
}

static void pwrite_all(int fd, const void *b, size_t n, uint64_t off) {
  CHECK(pwrite(fd, b, n, (off_t)off) == (ssize_t)n);
}

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- a journal under construction ---- */

typedef struct jrn {
  int fd;
  char path[128];
  uint8_t check[16];
  uint64_t end;
} jrn;

static void jrn_open(jrn *j, uint64_t size, int64_t mtime, uint64_t ino, uint32_t bs) {
  j->fd = new_file(j->path);
  escp_jrn_ident id = {size, mtime, ino, bs};
  CHECK_EQ(escp_jrn_write_header(j->fd, &id, 77, 88, j->check), 0);
  j->end = ESCP_JRN_HDR;
}
static void jrn_put(jrn *j, const uint8_t rec[ESCP_JRN_REC]) {
  pwrite_all(j->fd, rec, ESCP_JRN_REC, j->end);
  j->end += ESCP_JRN_REC;
}
static void jrn_block(jrn *j, uint64_t idx, const uint8_t cv[32]) {
  uint8_t rec[ESCP_JRN_REC];
  escp_jrn_record(rec, j->check, ESCP_JRN_BLOCK, idx, cv);
  jrn_put(j, rec);
}
static void jrn_tree(jrn *j, uint64_t start, uint32_t lg, const uint8_t cv[32]) {
  uint8_t rec[ESCP_JRN_REC];
  escp_jrn_record_tree(rec, j->check, start, lg, cv);
  jrn_put(j, rec);
}
static void jrn_close(jrn *j) {
  close(j->fd);
  unlink(j->path);
}
/* Success leaves no reason behind (the probe takes any reason as a refusal). */
static int jrn_read(jrn *j, escp_jrn_state *st, const char **why) {
  *why = "stale";
  int rc = escp_jrn_read(j->fd, st, why);
  if (rc == 0) CHECK(*why == NULL);
  return rc;
}

/* A CV that names (idx, tag): lets a test see which record an atom came from. */
static void tag_cv(uint8_t cv[32], uint64_t idx, uint32_t tag) {
  memset(cv, 0, 32);
  put64(cv, idx);
  put32(cv + 8, tag);
  cv[31] = 0xA5;
}

/* ---- names ---- */

static void test_names(void) {
  char part[256], jr[256];
  escp_jrn_names("big.bin", part, jr);
  CHECK(strcmp(part, ".big.bin.escp-part") == 0);
  CHECK(strcmp(jr, ".big.bin.escp-journal") == 0);
  char leaf[256];
  /* The longest leaf that keeps readable names: "." + leaf + ".escp-journal" is 255 bytes. */
  memset(leaf, 'a', 241);
  leaf[241] = 0;
  escp_jrn_names(leaf, part, jr);
  CHECK_EQ(strlen(jr), 255);
  CHECK(part[0] == '.' && strncmp(part + 1, leaf, 241) == 0 && strcmp(part + 242, ".escp-part") == 0);
  CHECK(jr[0] == '.' && strncmp(jr + 1, leaf, 241) == 0 && strcmp(jr + 242, ".escp-journal") == 0);
  /* One byte more, and NAME_MAX itself: hashed names of BLAKE3(leaf). */
  for (int n = 242; n <= 255; n += 13) {
    memset(leaf, 'b', (size_t)n);
    leaf[n] = 0;
    escp_jrn_names(leaf, part, jr);
    uint8_t h[32];
    escp_b3_hash(leaf, (size_t)n, h);
    char want_p[64], want_j[64], hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(want_p, sizeof want_p, ".escp-%s.part", hex);
    snprintf(want_j, sizeof want_j, ".escp-%s.journal", hex);
    CHECK(strcmp(part, want_p) == 0);
    CHECK(strcmp(jr, want_j) == 0);
    CHECK(strlen(part) <= 255 && strlen(jr) <= 255);
  }
  /* Two long leaves differing in their last byte get different names. */
  char p2[256], j2[256];
  memset(leaf, 'c', 250);
  leaf[250] = 0;
  escp_jrn_names(leaf, part, jr);
  leaf[249] = 'd';
  escp_jrn_names(leaf, p2, j2);
  CHECK(strcmp(part, p2) != 0 && strcmp(jr, j2) != 0);
  /* Names are never the leaf itself, and always hidden. */
  escp_jrn_names("x", part, jr);
  CHECK(strcmp(part, ".x.escp-part") == 0 && strcmp(jr, ".x.escp-journal") == 0);
  fprintf(stderr, "  names: ok\n");
}

/* ---- header and records ---- */

static void test_header(void) {
  jrn j;
  jrn_open(&j, 12345678901ull, -5000000001ll, 0xFEEDFACECAFEull, 1u << 20);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.id.size, 12345678901ull);
  CHECK_EQ(st.id.mtime_ns, -5000000001ll);
  CHECK_EQ(st.id.ino, 0xFEEDFACECAFEull);
  CHECK_EQ(st.id.block_size, 1u << 20);
  CHECK_EQ(st.part_ino, 77);
  CHECK_EQ(st.part_dev, 88);
  CHECK(memcmp(st.check, j.check, 16) == 0);
  CHECK_EQ(st.natoms, 0);
  CHECK(st.atoms == NULL);
  CHECK_EQ(st.end, ESCP_JRN_HDR);
  CHECK_EQ(st.last_kind, 0);
  escp_jrn_state_free(&st);
  escp_jrn_state_free(&st); /* twice: harmless */
  /* The header is exactly 128 bytes, the magic first. */
  struct stat sb;
  CHECK(fstat(j.fd, &sb) == 0 && sb.st_size == ESCP_JRN_HDR);
  uint8_t h[ESCP_JRN_HDR];
  CHECK(pread(j.fd, h, sizeof h, 0) == (ssize_t)sizeof h);
  CHECK(memcmp(h, "ESCPJRN1", 8) == 0);
  for (int i = 56; i < 112; i++) CHECK(h[i] == 0);
  /* Another identity (only the inode differs) gives another check. */
  jrn k;
  jrn_open(&k, 12345678901ull, -5000000001ll, 0xFEEDFACECAFFull, 1u << 20);
  CHECK(memcmp(k.check, j.check, 16) != 0);
  jrn_close(&k);
  jrn_close(&j);
  /* A header write to a read-only fd reports its errno. */
  char p[128];
  int fd = new_file(p);
  close(fd);
  fd = open(p, O_RDONLY);
  escp_jrn_ident id = {1, 2, 3, 65536};
  uint8_t c[16];
  CHECK_EQ(escp_jrn_write_header(fd, &id, 1, 1, c), EBADF);
  close(fd);
  unlink(p);
  fprintf(stderr, "  header round trip: ok\n");
}

static void test_records(void) {
  jrn j;
  uint64_t size = 100 * 65536ull + 7; /* 101 blocks */
  jrn_open(&j, size, 42, 43, 65536);
  uint8_t cv[32];
  for (uint64_t i = 10; i > 0; i--) { /* out of order on purpose */
    tag_cv(cv, i, 1);
    jrn_block(&j, i, cv);
  }
  tag_cv(cv, 32, 2);
  jrn_tree(&j, 32, 4, cv); /* 32..47 */
  tag_cv(cv, 64, 3);
  jrn_tree(&j, 64, 5, cv); /* 64..95 */
  tag_cv(cv, 100, 1);
  jrn_block(&j, 100, cv); /* the last block: a journal may record it */
  uint8_t rec[ESCP_JRN_REC];
  escp_jrn_record_seal(rec, j.check, size + 4096, 1700000000123456789ll, -3);
  jrn_put(&j, rec);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.natoms, 13);
  for (size_t i = 0; i < 10; i++) {
    CHECK_EQ(st.atoms[i].start, i + 1);
    CHECK_EQ(st.atoms[i].log2, 0);
    tag_cv(cv, i + 1, 1);
    CHECK(memcmp(st.atoms[i].cv, cv, 32) == 0);
  }
  CHECK_EQ(st.atoms[10].start, 32);
  CHECK_EQ(st.atoms[10].log2, 4);
  tag_cv(cv, 32, 2);
  CHECK(memcmp(st.atoms[10].cv, cv, 32) == 0);
  CHECK_EQ(st.atoms[11].start, 64);
  CHECK_EQ(st.atoms[11].log2, 5);
  CHECK_EQ(st.atoms[12].start, 100);
  CHECK_EQ(st.last_kind, ESCP_JRN_SEAL);
  CHECK_EQ(st.seal_size, size + 4096);
  CHECK_EQ(st.seal_mtime_ns, 1700000000123456789ll);
  CHECK_EQ(st.seal_ctime_ns, -3);
  CHECK_EQ(st.end, j.end);
  escp_jrn_state_free(&st);
  /* Records after a SEAL (a resumed run appends): still read, and the last kind says the
   * partial is no longer as sealed. */
  tag_cv(cv, 20, 4);
  jrn_block(&j, 20, cv);
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.natoms, 14);
  CHECK_EQ(st.last_kind, ESCP_JRN_BLOCK);
  CHECK_EQ(st.end, j.end);
  escp_jrn_state_free(&st);
  jrn_close(&j);
  fprintf(stderr, "  BLOCK/TREE/SEAL round trip: ok\n");
}

/* Records that name runs outside the file, misaligned or oversized are skipped, and the
 * records after them are still read. */
static void test_out_of_range(void) {
  jrn j;
  jrn_open(&j, 10 * 4096ull, 1, 1, 4096); /* 10 blocks of 4 KiB */
  uint8_t cv[32];
  tag_cv(cv, 0, 0);
  jrn_block(&j, 10, cv);                 /* past the end */
  jrn_block(&j, UINT64_MAX, cv);         /* far past */
  jrn_tree(&j, 2, 2, cv);                /* misaligned: 2 is no multiple of 4 */
  jrn_tree(&j, 8, 2, cv);                /* 8..11 reaches past block 9 */
  jrn_tree(&j, 0, 41, cv);               /* log2 > 40 */
  jrn_tree(&j, 0, 4, cv);                /* 16 blocks: more than the file */
  jrn_block(&j, 9, cv);                  /* fine */
  jrn_tree(&j, 4, 2, cv);                /* fine: 4..7 */
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.natoms, 2);
  CHECK(st.atoms[0].start == 4 && st.atoms[0].log2 == 2);
  CHECK(st.atoms[1].start == 9 && st.atoms[1].log2 == 0);
  CHECK_EQ(st.end, j.end); /* skipped records are valid records: reading went on */
  escp_jrn_state_free(&st);
  jrn_close(&j);
  /* An empty file: nothing is ever an atom. */
  jrn_open(&j, 0, 1, 1, 4096);
  jrn_block(&j, 0, cv);
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.natoms, 0);
  CHECK_EQ(st.last_kind, ESCP_JRN_BLOCK);
  escp_jrn_state_free(&st);
  jrn_close(&j);
  fprintf(stderr, "  out-of-range records skipped: ok\n");
}

/* A journal of n BLOCK records 0..n-1 for a file of 64 blocks. */
static void make_blocks(jrn *j, int n) {
  jrn_open(j, 64 * 4096ull, 5, 6, 4096);
  for (int i = 0; i < n; i++) {
    uint8_t cv[32];
    tag_cv(cv, (uint64_t)i, 9);
    jrn_block(j, (uint64_t)i, cv);
  }
}

static void test_torn_tail(void) {
  for (int cut = 1; cut < ESCP_JRN_REC; cut += 5) { /* 5 records, the 6th torn at `cut` bytes */
    jrn j;
    make_blocks(&j, 6);
    CHECK(ftruncate(j.fd, (off_t)(ESCP_JRN_HDR + 5 * ESCP_JRN_REC + cut)) == 0);
    escp_jrn_state st;
    const char *why;
    CHECK_EQ(jrn_read(&j, &st, &why), 0);
    CHECK_EQ(st.natoms, 5);
    for (size_t i = 0; i < 5; i++) CHECK_EQ(st.atoms[i].start, i);
    CHECK_EQ(st.end, ESCP_JRN_HDR + 5 * ESCP_JRN_REC);
    CHECK_EQ(st.last_kind, ESCP_JRN_BLOCK);
    escp_jrn_state_free(&st);
    /* Appending at end overwrites the torn bytes: the journal is whole again. */
    j.end = ESCP_JRN_HDR + 5 * ESCP_JRN_REC;
    uint8_t cv[32];
    tag_cv(cv, 40, 9);
    jrn_block(&j, 40, cv);
    CHECK_EQ(jrn_read(&j, &st, &why), 0);
    CHECK_EQ(st.natoms, 6);
    CHECK_EQ(st.atoms[5].start, 40);
    escp_jrn_state_free(&st);
    jrn_close(&j);
  }
  /* A journal cut inside its header is not a journal. */
  jrn j;
  make_blocks(&j, 1);
  CHECK(ftruncate(j.fd, ESCP_JRN_HDR - 1) == 0);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), EIO);
  CHECK(why && strstr(why, "no header"));
  CHECK(ftruncate(j.fd, 0) == 0);
  CHECK_EQ(jrn_read(&j, &st, &why), EIO);
  CHECK(why && strstr(why, "no header"));
  jrn_close(&j);
  /* More records than one read buffer (256), the tail torn in the second buffer. */
  make_blocks(&j, 60);
  for (int i = 0; i < 300; i++) {
    uint8_t cv[32];
    tag_cv(cv, (uint64_t)(i % 64), 10);
    jrn_block(&j, (uint64_t)(i % 64), cv);
  }
  CHECK(ftruncate(j.fd, (off_t)(j.end - 30)) == 0);
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.end, j.end - ESCP_JRN_REC);
  CHECK_EQ(st.natoms, 64);
  escp_jrn_state_free(&st);
  jrn_close(&j);
  fprintf(stderr, "  torn tails: ok\n");
}

/* A flipped byte anywhere in record k: reading stops at k, whatever follows. */
static void test_flipped_byte(void) {
  for (int pos = 0; pos < ESCP_JRN_REC; pos++) {
    jrn j;
    make_blocks(&j, 8);
    uint64_t at = ESCP_JRN_HDR + 3 * ESCP_JRN_REC + (uint64_t)pos;
    uint8_t b;
    CHECK(pread(j.fd, &b, 1, (off_t)at) == 1);
    b ^= (uint8_t)(1u << (pos % 8));
    pwrite_all(j.fd, &b, 1, at);
    escp_jrn_state st;
    const char *why;
    CHECK_EQ(jrn_read(&j, &st, &why), 0);
    CHECK_EQ(st.natoms, 3);
    CHECK_EQ(st.end, ESCP_JRN_HDR + 3 * ESCP_JRN_REC);
    escp_jrn_state_free(&st);
    jrn_close(&j);
  }
  /* A record of a valid check but an unknown kind also ends the journal. */
  jrn j;
  make_blocks(&j, 2);
  uint8_t rec[ESCP_JRN_REC], cv[32];
  tag_cv(cv, 5, 1);
  escp_jrn_record(rec, j.check, ESCP_JRN_RANGE + 1, 5, cv);
  jrn_put(&j, rec);
  escp_jrn_record(rec, j.check, 0, 6, cv);
  jrn_put(&j, rec);
  jrn_block(&j, 7, cv);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.natoms, 2);
  CHECK_EQ(st.end, ESCP_JRN_HDR + 2 * ESCP_JRN_REC);
  escp_jrn_state_free(&st);
  jrn_close(&j);
  fprintf(stderr, "  flipped bytes end the journal: ok\n");
}

/* A record from another journal (another header check) never passes, even one of a journal
 * that differs only in the partial's inode. */
static void test_foreign(void) {
  jrn a, b;
  make_blocks(&a, 4);
  jrn_open(&b, 64 * 4096ull, 5, 6, 4096); /* same identity... */
  escp_jrn_ident id = {64 * 4096ull, 5, 6, 4096};
  CHECK_EQ(escp_jrn_write_header(b.fd, &id, 78, 88, b.check), 0); /* ...another partial */
  CHECK(memcmp(a.check, b.check, 16) != 0);
  uint8_t cv[32], rec[ESCP_JRN_REC];
  tag_cv(cv, 30, 2);
  escp_jrn_record(rec, b.check, ESCP_JRN_BLOCK, 30, cv);
  jrn_put(&a, rec); /* b's record in a */
  jrn_block(&a, 31, cv);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&a, &st, &why), 0);
  CHECK_EQ(st.natoms, 4);
  CHECK_EQ(st.end, ESCP_JRN_HDR + 4 * ESCP_JRN_REC);
  escp_jrn_state_free(&st);
  /* And a's whole record tail under b's header: nothing of it. */
  uint8_t buf[8 * ESCP_JRN_REC];
  CHECK(pread(a.fd, buf, 4 * ESCP_JRN_REC, ESCP_JRN_HDR) == 4 * ESCP_JRN_REC);
  pwrite_all(b.fd, buf, 4 * ESCP_JRN_REC, ESCP_JRN_HDR);
  CHECK_EQ(jrn_read(&b, &st, &why), 0);
  CHECK_EQ(st.natoms, 0);
  CHECK_EQ(st.end, ESCP_JRN_HDR);
  escp_jrn_state_free(&st);
  jrn_close(&a);
  jrn_close(&b);
  fprintf(stderr, "  foreign records rejected: ok\n");
}

/* Rewrite header field bytes [off, off+n) and re-seal the header check. */
static void patch_header(int fd, int off, const uint8_t *v, int n) {
  uint8_t h[ESCP_JRN_HDR], sum[32];
  CHECK(pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h);
  memcpy(h + off, v, (size_t)n);
  escp_b3_hash(h, 112, sum);
  memcpy(h + 112, sum, 16);
  pwrite_all(fd, h, sizeof h, 0);
}

static void test_bad_header(void) {
  escp_jrn_state st;
  const char *why;
  /* Bad magic, with its check re-sealed (so it is the magic that is refused). */
  jrn j;
  make_blocks(&j, 2);
  patch_header(j.fd, 0, (const uint8_t *)"ESCPJRN2", 8);
  CHECK_EQ(jrn_read(&j, &st, &why), EIO);
  CHECK(why && strstr(why, "not an escp journal"));
  CHECK(st.atoms == NULL);
  jrn_close(&j);
  /* Any header byte flipped: the check fails. */
  for (int pos = 0; pos < ESCP_JRN_HDR; pos += 7) {
    make_blocks(&j, 2);
    uint8_t b;
    CHECK(pread(j.fd, &b, 1, pos) == 1);
    b ^= 0x10;
    pwrite_all(j.fd, &b, 1, (uint64_t)pos);
    CHECK_EQ(jrn_read(&j, &st, &why), EIO);
    CHECK(why && strstr(why, "damaged"));
    jrn_close(&j);
  }
  /* Another version. */
  make_blocks(&j, 2);
  uint8_t v[8];
  put32(v, 2);
  patch_header(j.fd, 8, v, 4);
  CHECK_EQ(jrn_read(&j, &st, &why), EIO);
  CHECK(why && strstr(why, "another escp version"));
  jrn_close(&j);
  /* Impossible block sizes. */
  static const uint32_t bad_bs[] = {0, 1, 2048, 4095, 3 * 4096, 65536 + 4096, 0x80000001u};
  for (size_t i = 0; i < sizeof bad_bs / sizeof *bad_bs; i++) {
    make_blocks(&j, 2);
    put32(v, bad_bs[i]);
    patch_header(j.fd, 12, v, 4);
    CHECK_EQ(jrn_read(&j, &st, &why), EIO);
    CHECK(why && strstr(why, "block size"));
    jrn_close(&j);
  }
  /* A re-sealed header with other values is a different journal: its old records fail. */
  make_blocks(&j, 3);
  put64(v, 65 * 4096ull);
  patch_header(j.fd, 16, v, 8);
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.id.size, 65 * 4096ull);
  CHECK_EQ(st.natoms, 0);
  escp_jrn_state_free(&st);
  jrn_close(&j);
  /* Not readable at all: the errno. */
  int fd = open(g_dir, O_RDONLY | O_DIRECTORY);
  CHECK(fd >= 0);
  CHECK_EQ(escp_jrn_read(fd, &st, &why), EISDIR);
  close(fd);
  fprintf(stderr, "  bad headers refused with a reason: ok\n");
}

/* Repeats and overlaps: sorted by start, the later of two records at one start wins, and a
 * run overlapping one kept before it is dropped. */
static void test_dedup(void) {
  jrn j;
  jrn_open(&j, 64 * 4096ull, 5, 6, 4096);
  uint8_t cv[32];
  tag_cv(cv, 5, 1), jrn_block(&j, 5, cv);
  tag_cv(cv, 5, 2), jrn_block(&j, 5, cv);    /* repeat: this one wins */
  tag_cv(cv, 8, 1), jrn_tree(&j, 8, 2, cv);  /* 8..11 */
  tag_cv(cv, 9, 1), jrn_block(&j, 9, cv);    /* inside 8..11: dropped */
  tag_cv(cv, 16, 1), jrn_block(&j, 16, cv);  /* 16, then... */
  tag_cv(cv, 16, 2), jrn_tree(&j, 16, 3, cv); /* 16..23, later: wins over block 16 */
  tag_cv(cv, 20, 1), jrn_block(&j, 20, cv);  /* inside: dropped */
  tag_cv(cv, 33, 1), jrn_block(&j, 33, cv);  /* 33, earlier than... */
  tag_cv(cv, 32, 1), jrn_tree(&j, 32, 2, cv); /* 32..35: starts first, kept; 33 dropped */
  tag_cv(cv, 40, 1), jrn_tree(&j, 40, 2, cv); /* 40..43 */
  tag_cv(cv, 40, 2), jrn_block(&j, 40, cv);  /* later at the same start: wins; the tree goes */
  tag_cv(cv, 41, 1), jrn_block(&j, 41, cv);  /* kept (not covered by block 40) */
  tag_cv(cv, 0, 1), jrn_block(&j, 0, cv);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  struct { uint64_t start; uint32_t lg, tag; } want[] = {{0, 0, 1}, {5, 0, 2}, {8, 2, 1}, {16, 3, 2}, {32, 2, 1}, {40, 0, 2}, {41, 0, 1}};
  CHECK_EQ(st.natoms, sizeof want / sizeof *want);
  for (size_t i = 0; i < st.natoms; i++) {
    CHECK_EQ(st.atoms[i].start, want[i].start);
    CHECK_EQ(st.atoms[i].log2, want[i].lg);
    tag_cv(cv, want[i].start, want[i].tag);
    CHECK(memcmp(st.atoms[i].cv, cv, 32) == 0);
  }
  escp_jrn_state_free(&st);
  jrn_close(&j);

  /* Property: random records; the result is sorted, disjoint, each atom is a record, the
   * latest one of its start, and every record is either kept or overlaps a kept atom. */
  for (int iter = 0; iter < 300; iter++) {
    uint64_t nb = 1 + rnd() % 200;
    jrn_open(&j, nb * 4096, 5, 6, 4096);
    int nr = (int)(rnd() % 150);
    struct { uint64_t start; uint32_t lg; } *rv = calloc((size_t)nr + 1, sizeof *rv);
    CHECK(rv);
    for (int i = 0; i < nr; i++) {
      uint32_t lg = rnd() % 3 ? 0 : (uint32_t)(rnd() % 5);
      uint64_t start = (rnd() % nb) & ~((UINT64_C(1) << lg) - 1);
      if ((UINT64_C(1) << lg) > nb - start) lg = 0;
      rv[i].start = start, rv[i].lg = lg;
      tag_cv(cv, start, (uint32_t)i);
      if (lg) jrn_tree(&j, start, lg, cv);
      else jrn_block(&j, start, cv);
    }
    CHECK_EQ(jrn_read(&j, &st, &why), 0);
    CHECK(st.natoms <= (size_t)nr);
    for (size_t i = 0; i < st.natoms; i++) {
      const escp_jrn_atom *a = &st.atoms[i];
      if (i) CHECK(st.atoms[i - 1].start + (UINT64_C(1) << st.atoms[i - 1].log2) <= a->start);
      int latest = -1;
      for (int r = 0; r < nr; r++)
        if (rv[r].start == a->start) latest = r;
      CHECK(latest >= 0);
      CHECK_EQ(a->log2, rv[latest].lg);
      tag_cv(cv, a->start, (uint32_t)latest);
      CHECK(memcmp(a->cv, cv, 32) == 0);
    }
    for (int r = 0; r < nr; r++) {
      int hit = 0;
      for (size_t i = 0; i < st.natoms && !hit; i++) {
        uint64_t s0 = st.atoms[i].start, e0 = s0 + (UINT64_C(1) << st.atoms[i].log2);
        hit = rv[r].start < e0 && s0 < rv[r].start + (UINT64_C(1) << rv[r].lg);
      }
      CHECK(hit);
    }
    escp_jrn_state_free(&st);
    free(rv);
    jrn_close(&j);
  }
  fprintf(stderr, "  repeats and overlaps: sorted, latest wins, dedup'd: ok\n");
}

/* At most ESCP_JRN_MAX_ATOMS records are taken; the rest are read (end, last kind) but
 * ignored. */
static void test_cap(void) {
  uint64_t n = ESCP_JRN_MAX_ATOMS + 5, nb = n + 10;
  jrn j;
  jrn_open(&j, nb * 4096, 5, 6, 4096);
  size_t chunk = 4096, len = chunk * ESCP_JRN_REC;
  uint8_t *buf = malloc(len), cv[32];
  CHECK(buf);
  memset(cv, 0x5A, 32);
  for (uint64_t i = 0; i < n;) {
    size_t k = 0;
    for (; k < chunk && i < n; k++, i++) escp_jrn_record(buf + k * ESCP_JRN_REC, j.check, ESCP_JRN_BLOCK, i, cv);
    pwrite_all(j.fd, buf, k * ESCP_JRN_REC, j.end);
    j.end += k * ESCP_JRN_REC;
  }
  free(buf);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.natoms, ESCP_JRN_MAX_ATOMS);
  CHECK_EQ(st.atoms[0].start, 0);
  CHECK_EQ(st.atoms[ESCP_JRN_MAX_ATOMS - 1].start, ESCP_JRN_MAX_ATOMS - 1);
  CHECK_EQ(st.end, j.end);
  escp_jrn_state_free(&st);
  jrn_close(&j);
  fprintf(stderr, "  %u-atom cap: ok\n", ESCP_JRN_MAX_ATOMS);
}

/* ---- CVs from a buffer (the reference for runs) ---- */

/* CV of the aligned run of 2^lg whole blocks of bs bytes from block start: blocks hashed as
 * complete subtrees, halves merged recursively (the BLAKE3 tree over power-of-two blocks). */
static void ref_cv(const uint8_t *data, uint64_t start, uint32_t lg, uint32_t bs, uint8_t out[32]) {
  if (lg == 0) {
    escp_b3_block(data + start * bs, bs, start * bs / ESCP_B3_CHUNK, out, NULL);
    return;
  }
  uint8_t l[32], r[32];
  ref_cv(data, start, lg - 1, bs, l);
  ref_cv(data, start + (UINT64_C(1) << (lg - 1)), lg - 1, bs, r);
  escp_b3_parent(l, r, 0, out);
}

static void test_run_cv(void) {
  static const uint32_t bss[] = {1024, 4096, 65536};
  for (size_t b = 0; b < 3; b++) {
    uint32_t bs = bss[b];
    uint64_t nb = 16;
    size_t len = (size_t)(nb * bs);
    uint8_t *data = malloc(len), *buf = malloc(bs);
    CHECK(data && buf);
    fill(data, len);
    char p[128];
    int fd = new_file(p);
    pwrite_all(fd, data, len, 0);
    for (uint32_t lg = 0; lg <= 4; lg++)
      for (uint64_t s = 0; s + (UINT64_C(1) << lg) <= nb; s += UINT64_C(1) << lg) {
        uint8_t a[32], w[32];
        CHECK_EQ(escp_run_cv(fd, s, lg, bs, buf, a), 0);
        ref_cv(data, s, lg, bs, w);
        CHECK(memcmp(a, w, 32) == 0);
      }
    /* The two halves of a 2^k-block file make its b3sum. */
    uint8_t l[32], r[32], root[32], want[32];
    CHECK_EQ(escp_run_cv(fd, 0, 3, bs, buf, l), 0);
    CHECK_EQ(escp_run_cv(fd, 8, 3, bs, buf, r), 0);
    escp_b3_parent(l, r, 1, root);
    escp_b3_hash(data, len, want);
    CHECK(memcmp(root, want, 32) == 0);
    CHECK_EQ(escp_digest_buffer(data, len, bs < 1024 ? 1024 : bs, 0, want), ESCP_OK);
    CHECK(memcmp(root, want, 32) == 0);
    /* Short file: EIO (a run past the end, and one whose last block is cut). */
    CHECK_EQ(escp_run_cv(fd, 16, 0, bs, buf, l), EIO);
    CHECK_EQ(escp_run_cv(fd, 8, 4, bs, buf, l), EIO);
    CHECK(ftruncate(fd, (off_t)(len - 1)) == 0);
    CHECK_EQ(escp_run_cv(fd, 8, 3, bs, buf, l), EIO);
    CHECK_EQ(escp_run_cv(fd, 14, 0, bs, buf, l), 0); /* whole blocks before the cut still hash */
    ref_cv(data, 14, 0, bs, want);
    CHECK(memcmp(l, want, 32) == 0);
    close(fd);
    /* A bad fd: its errno. */
    CHECK_EQ(escp_run_cv(fd, 0, 0, bs, buf, l), EBADF);
    unlink(p);
    free(data);
    free(buf);
  }
  fprintf(stderr, "  escp_run_cv = the BLAKE3 subtree, EIO when short: ok\n");
}

static void test_trees_find(void) {
  CHECK_EQ(escp_trees_find(NULL, 0, 0), -1);
  for (int iter = 0; iter < 500; iter++) {
    escp_jrn_atom t[64];
    size_t n = 0;
    uint64_t at = rnd() % 4;
    while (n < 64 && rnd() % 16) {
      uint32_t lg = (uint32_t)(rnd() % 4);
      at = (at + (UINT64_C(1) << lg) - 1) & ~((UINT64_C(1) << lg) - 1); /* aligned */
      t[n].start = at, t[n].log2 = lg;
      at += (UINT64_C(1) << lg) + rnd() % 3;
      n++;
    }
    for (uint64_t idx = 0; idx < at + 3; idx++) {
      long want = -1;
      for (size_t i = 0; i < n; i++)
        if (idx >= t[i].start && idx < t[i].start + (UINT64_C(1) << t[i].log2)) want = (long)i;
      CHECK_EQ(escp_trees_find(t, n, idx), want);
    }
  }
  fprintf(stderr, "  escp_trees_find: ok\n");
}

/* ---- offers ---- */

static uint64_t nblk(uint64_t size, uint32_t bs) { return size / bs + (size % bs != 0); }

/* Check an offer built from atoms (block size bj) for a file of `size` bytes (data) in blocks
 * of bs: `want[j]` says which session blocks must be held (the caller's model). Every rule of
 * resume.h, every CV against the data, the round trip, the sender's check, and the digest
 * made from the held trees plus the other blocks equals the b3sum of the data. */
static void check_offer(const uint8_t *data, uint64_t size, const escp_jrn_atom *atoms, size_t n, uint32_t bj,
                        uint32_t bs, const uint8_t *want, const char *file) {
  escp_jrn_atom *fine;
  size_t nfine;
  escp_offer o;
  CHECK_EQ(escp_offer_build(atoms, n, bj, size, bs, &fine, &nfine, &o), ESCP_OK);
  uint64_t nbs = nblk(size, bs), held = 0;
  uint8_t *got = calloc(nbs + 1, 1);
  CHECK(got);
  for (size_t i = 0; i < o.ntrees; i++) {
    const escp_jrn_atom *t = &o.trees[i];
    uint64_t sp = UINT64_C(1) << t->log2;
    CHECK((t->start & (sp - 1)) == 0);
    CHECK(t->start + sp <= nbs - 1); /* never the last block */
    if (i) {
      const escp_jrn_atom *p = &o.trees[i - 1];
      uint64_t ps = UINT64_C(1) << p->log2;
      CHECK(p->start + ps <= t->start);
      /* maximal: two adjacent buddies would have been one tree */
      CHECK(!(p->log2 == t->log2 && p->start + ps == t->start && (p->start & (2 * ps - 1)) == 0));
    }
    for (uint64_t k = t->start; k < t->start + sp; k++) got[k] = 1;
    held += sp;
    uint8_t cv[32];
    ref_cv(data, t->start, t->log2, bs, cv);
    CHECK(memcmp(cv, t->cv, 32) == 0);
  }
  for (uint64_t k = 0; k < nbs; k++) CHECK_EQ(got[k], want[k]);
  CHECK_EQ(o.held_blocks, held);
  CHECK_EQ(o.held_bytes, held * bs);
  for (size_t i = 0; i < nfine; i++) { /* the finest runs: right CVs, sorted, disjoint */
    uint8_t cv[32];
    ref_cv(data, fine[i].start, fine[i].log2, bs, cv);
    CHECK(memcmp(cv, fine[i].cv, 32) == 0);
    CHECK((uint64_t)bs << fine[i].log2 <= ESCP_FINE_MAX_BYTES);
    if (i) CHECK(fine[i - 1].start + (UINT64_C(1) << fine[i - 1].log2) <= fine[i].start);
  }
  if (o.ntrees == 0) {
    CHECK_EQ(held, 0);
  } else {
    const escp_jrn_atom *last = &o.trees[o.ntrees - 1];
    CHECK_EQ(o.check[0].start, o.trees[0].start);
    CHECK_EQ(o.check[1].start + (UINT64_C(1) << o.check[1].log2), last->start + (UINT64_C(1) << last->log2));
    for (int c = 0; c < 2; c++) {
      CHECK((uint64_t)bs << o.check[c].log2 <= ESCP_FINE_MAX_BYTES);
      uint8_t cv[32];
      ref_cv(data, o.check[c].start, o.check[c].log2, bs, cv);
      CHECK(memcmp(cv, o.check[c].cv, 32) == 0);
    }
    /* wire round trip */
    size_t len = escp_offer_size(&o);
    CHECK_EQ(len, ESCP_OFFER_HDR + o.ntrees * ESCP_OFFER_ITEM);
    uint8_t *blob = malloc(len);
    CHECK(blob);
    escp_offer_encode(&o, blob);
    escp_offer d;
    const char *why = NULL;
    CHECK_EQ(escp_offer_decode(blob, len, size, bs, &d, &why), ESCP_OK);
    CHECK_EQ(d.ntrees, o.ntrees);
    CHECK_EQ(d.held_blocks, o.held_blocks);
    CHECK_EQ(d.held_bytes, o.held_bytes);
    for (size_t i = 0; i < d.ntrees; i++) {
      CHECK_EQ(d.trees[i].start, o.trees[i].start);
      CHECK_EQ(d.trees[i].log2, o.trees[i].log2);
      CHECK(memcmp(d.trees[i].cv, o.trees[i].cv, 32) == 0);
    }
    for (int c = 0; c < 2; c++) {
      CHECK_EQ(d.check[c].start, o.check[c].start);
      CHECK_EQ(d.check[c].log2, o.check[c].log2);
      CHECK(memcmp(d.check[c].cv, o.check[c].cv, 32) == 0);
    }
    escp_offer_free(&d);
    /* the sender's check against the source file */
    if (file) {
      int32_t err = -1;
      CHECK_EQ(escp_tx_offer_check(file, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_OK);
      CHECK_EQ(err, 0);
    }
    free(blob);
  }
  /* The digest the sender (and receiver) make: held trees + every other block. */
  escp_digest dg;
  escp_digest_init(&dg);
  for (size_t i = 0; i < o.ntrees; i++) CHECK_EQ(escp_digest_add_tree(&dg, o.trees[i].start, o.trees[i].log2, o.trees[i].cv), ESCP_OK);
  for (uint64_t k = nbs; k-- > 0;) { /* backwards: the merger takes any order */
    if (got[k]) continue;
    uint64_t off = k * bs, len = size - off < bs ? size - off : bs;
    uint8_t cv[32], root[32];
    escp_b3_block(data + off, (size_t)len, off / ESCP_B3_CHUNK, cv, k == 0 ? root : NULL);
    CHECK_EQ(escp_digest_add(&dg, k, cv, k == 0 ? root : NULL), ESCP_OK);
  }
  uint8_t dgst[32], want_d[32];
  CHECK_EQ(escp_digest_final(&dg, nbs, dgst), ESCP_OK);
  escp_digest_free(&dg);
  escp_b3_hash(data, (size_t)size, want_d);
  CHECK(memcmp(dgst, want_d, 32) == 0);
  free(got);
  free(fine);
  escp_offer_free(&o);
}

/* The model: which session blocks an offer must hold, from journal atoms (bj) in a file of
 * size bytes, session blocks bs: atoms reaching into the last session block are dropped
 * whole; bj >= bs: each kept atom's session blocks; bj < bs: the session blocks all of whose
 * journal blocks kept atoms hold. */
static uint8_t *model(const escp_jrn_atom *atoms, size_t n, uint32_t bj, uint64_t size, uint32_t bs) {
  uint64_t nbs = nblk(size, bs), nbj = nblk(size, bj), lim = nbs ? (nbs - 1) * (uint64_t)bs : 0;
  uint8_t *hj = calloc(nbj + 1, 1), *w = calloc(nbs + 1, 1);
  CHECK(hj && w);
  for (size_t i = 0; i < n; i++) {
    uint64_t sp = UINT64_C(1) << atoms[i].log2;
    if ((atoms[i].start + sp) * bj > lim) continue;
    for (uint64_t k = atoms[i].start; k < atoms[i].start + sp; k++) hj[k] = 1;
  }
  for (uint64_t j = 0; j + 1 < nbs; j++) {
    uint64_t b0 = j * bs / bj, b1 = ((j + 1) * bs + bj - 1) / bj;
    int all = 1;
    for (uint64_t k = b0; k < b1; k++) all &= hj[k];
    w[j] = (uint8_t)all;
  }
  free(hj);
  return w;
}

/* Atoms from a set of held journal blocks: BLOCK records, or (mix) some aligned runs as TREE
 * records the way a rewritten journal has them; CVs from the data. */
static size_t atoms_of(const uint8_t *data, const uint8_t *heldj, uint64_t nbj, uint64_t size, uint32_t bj, int mix,
                       escp_jrn_atom *out) {
  size_t n = 0;
  for (uint64_t k = 0; k < nbj;) {
    if (!heldj[k]) {
      k++;
      continue;
    }
    uint32_t lg = 0;
    if (mix)
      while (lg < 4 && (k & ((UINT64_C(2) << lg) - 1)) == 0 && (k + (UINT64_C(2) << lg)) * bj <= size && rnd() % 2) {
        int all = 1;
        for (uint64_t q = k; q < k + (UINT64_C(2) << lg); q++) all &= heldj[q];
        if (!all) break;
        lg++;
      }
    out[n].start = k, out[n].log2 = lg;
    uint64_t end = (k + (UINT64_C(1) << lg)) * bj;
    if (end <= size) ref_cv(data, k, lg, bj, out[n].cv);
    else { /* the cut last block: its CV as the writer records it */
      CHECK_EQ(lg, 0);
      escp_b3_block(data + k * bj, (size_t)(size - k * bj), k * bj / ESCP_B3_CHUNK, out[n].cv, NULL);
    }
    n++;
    k += UINT64_C(1) << lg;
  }
  return n;
}

static void test_offer_build_sizes(void) {
  /* The brief's file: 37 blocks of 64 KiB and a tail, journal in 64 KiB blocks; offered to
   * sessions of 64, 128 and 32 KiB (and a journal of 128 KiB offered in 64 KiB). */
  uint64_t size = 37 * 65536ull + 1000;
  uint8_t *data = malloc(size);
  CHECK(data);
  fill(data, size);
  char p[128];
  int fd = new_file(p);
  pwrite_all(fd, data, size, 0);
  close(fd);
  uint64_t nbj = nblk(size, 65536);
  CHECK_EQ(nbj, 38);
  uint8_t heldj[64] = {0};
  for (int k = 0; k < 20; k++) heldj[k] = 1;
  for (int k = 25; k <= 30; k++) heldj[k] = 1;
  heldj[36] = heldj[37] = 1; /* the last full block, and the cut last one */
  escp_jrn_atom atoms[64];
  size_t n = atoms_of(data, heldj, nbj, size, 65536, 0, atoms);
  static const uint32_t bss[] = {65536, 131072, 32768, 262144};
  for (int i = 0; i < 4; i++) {
    uint8_t *w = model(atoms, n, 65536, size, bss[i]);
    check_offer(data, size, atoms, n, 65536, bss[i], w, p);
    free(w);
  }
  /* Spot checks of the model against the hand computation. */
  {
    escp_jrn_atom *fine;
    size_t nf;
    escp_offer o;
    CHECK_EQ(escp_offer_build(atoms, n, 65536, size, 65536, &fine, &nf, &o), ESCP_OK);
    CHECK_EQ(o.held_blocks, 20 + 6 + 1); /* 0..19, 25..30, 36; never 37 */
    CHECK_EQ(o.ntrees, 2 + 4 + 1);       /* [0,16) [16,20) 25 [26,28) [28,30) 30 36 */
    CHECK(o.check[0].start == 0 && o.check[0].log2 == 0);
    CHECK(o.check[1].start == 36 && o.check[1].log2 == 0);
    free(fine);
    escp_offer_free(&o);
    CHECK_EQ(escp_offer_build(atoms, n, 65536, size, 131072, &fine, &nf, &o), ESCP_OK);
    CHECK_EQ(o.held_blocks, 10 + 2); /* 0..9 and 13..14 of 19; 18 is the last */
    CHECK(o.check[0].start == 0 && o.check[0].log2 == 0);
    CHECK(o.check[1].start == 14 && o.check[1].log2 == 0);
    free(fine);
    escp_offer_free(&o);
    CHECK_EQ(escp_offer_build(atoms, n, 65536, size, 32768, &fine, &nf, &o), ESCP_OK);
    CHECK_EQ(o.held_blocks, 2 * 27); /* each journal block is 2; block 74 (journal 37) is the last */
    CHECK(o.check[0].start == 0 && o.check[0].log2 == 1);   /* a journal block: the finest known */
    CHECK(o.check[1].start == 72 && o.check[1].log2 == 1);
    free(fine);
    escp_offer_free(&o);
  }
  /* A journal of 128 KiB blocks, offered in 64 KiB and 32 KiB. */
  uint64_t nbj2 = nblk(size, 131072);
  uint8_t heldj2[32] = {0};
  for (int k = 0; k < 19; k++) heldj2[k] = k % 7 != 3;
  n = atoms_of(data, heldj2, nbj2, size, 131072, 0, atoms);
  for (int i = 0; i < 3; i++) {
    uint8_t *w = model(atoms, n, 131072, size, bss[i]);
    check_offer(data, size, atoms, n, 131072, bss[i], w, p);
    free(w);
  }
  /* Nothing to offer: a one-block file, no atoms, or only the last block held. */
  {
    escp_jrn_atom *fine;
    size_t nf;
    escp_offer o;
    CHECK_EQ(escp_offer_build(atoms, n, 131072, 65536, 65536, &fine, &nf, &o), ESCP_OK);
    CHECK(o.ntrees == 0 && o.held_blocks == 0 && fine == NULL && nf == 0);
    CHECK_EQ(escp_offer_build(atoms, 0, 65536, size, 65536, &fine, &nf, &o), ESCP_OK);
    CHECK(o.ntrees == 0 && fine == NULL);
    escp_jrn_atom last = atoms[0];
    last.start = 37, last.log2 = 0;
    CHECK_EQ(escp_offer_build(&last, 1, 65536, size, 65536, &fine, &nf, &o), ESCP_OK);
    CHECK(o.ntrees == 0 && o.held_blocks == 0 && o.trees == NULL);
    free(fine);
    escp_offer_free(&o);
  }
  unlink(p);
  free(data);
  fprintf(stderr, "  offer build: 64 KiB journal to 64/128/32/256 KiB, 128 KiB to 64/128/32: ok\n");
}

/* Property: random files, held sets, journal and session block sizes. */
static void test_offer_build_random(void) {
  static const uint32_t sizes[] = {1024, 4096, 8192, 16384, 32768};
  int offered = 0;
  for (int iter = 0; iter < 400; iter++) {
    uint32_t bj = sizes[rnd() % 5], bs = sizes[rnd() % 5];
    uint64_t size = 1 + rnd() % (100 * 4096);
    if (rnd() % 4 == 0) size = (size / bj + 1) * bj; /* whole blocks */
    uint8_t *data = malloc(size);
    CHECK(data);
    fill(data, size);
    uint64_t nbj = nblk(size, bj);
    uint8_t *heldj = calloc(nbj, 1);
    escp_jrn_atom *atoms = calloc(nbj, sizeof *atoms);
    CHECK(heldj && atoms);
    int dens = (int)(rnd() % 4);
    for (uint64_t k = 0; k < nbj;) { /* runs of held and missing blocks */
      uint64_t run = 1 + rnd() % 12;
      int h = (int)(rnd() % 4) <= dens;
      for (uint64_t q = 0; q < run && k < nbj; q++, k++) heldj[k] = (uint8_t)h;
    }
    size_t n = atoms_of(data, heldj, nbj, size, bj, (int)(rnd() % 2), atoms);
    uint8_t *w = model(atoms, n, bj, size, bs);
    check_offer(data, size, atoms, n, bj, bs, w, NULL);
    for (uint64_t j = 0; j < nblk(size, bs); j++) offered += w[j];
    free(w);
    free(atoms);
    free(heldj);
    free(data);
  }
  CHECK(offered > 1000); /* the loop did offer things */
  fprintf(stderr, "  offer build, 400 random files and block sizes: ok (%d blocks offered)\n", offered);
}

/* Limits: runs larger than 64 MiB are never check-able so never offered; at most 8192 trees. */
static void test_offer_limits(void) {
  escp_jrn_atom a[3];
  memset(a, 0, sizeof a);
  uint32_t bs = 65536;
  uint64_t size = 4100 * (uint64_t)bs;
  a[0].start = 0, a[0].log2 = 11;    /* 128 MiB: too big to check */
  a[1].start = 2048, a[1].log2 = 10; /* 64 MiB: fine */
  a[2].start = 3072, a[2].log2 = 9;  /* 32 MiB */
  escp_jrn_atom *fine;
  size_t nf;
  escp_offer o;
  CHECK_EQ(escp_offer_build(a, 3, bs, size, bs, &fine, &nf, &o), ESCP_OK);
  CHECK_EQ(nf, 2);
  CHECK_EQ(o.ntrees, 2); /* 2048+1024 and 3072+512 are not buddies */
  CHECK_EQ(o.held_blocks, 1024 + 512);
  CHECK(o.check[0].start == 2048 && o.check[0].log2 == 10);
  CHECK(o.check[1].start == 3072 && o.check[1].log2 == 9);
  free(fine);
  escp_offer_free(&o);
  /* A 4 KiB journal offered in 64 MiB session blocks: runs merge up to one session block. */
  uint64_t nbj = 3 * 16384 + 1; /* 3 session blocks of 64 MiB and a bit */
  escp_jrn_atom *many = calloc(nbj, sizeof *many);
  CHECK(many);
  for (uint64_t k = 0; k < nbj; k++) many[k].start = k, many[k].cv[0] = (uint8_t)k;
  CHECK_EQ(escp_offer_build(many, nbj, 4096, nbj * 4096, 64u << 20, &fine, &nf, &o), ESCP_OK);
  CHECK_EQ(o.held_blocks, 3); /* 0, 1 and 2; block 3 (the 4 KiB tail) is the last */
  CHECK_EQ(nf, 3);
  CHECK(o.check[0].log2 == 0 && o.check[1].start == 2);
  free(fine);
  escp_offer_free(&o);
  free(many);
  /* Every other block held: 10000 single-block trees, capped at 8192. */
  uint64_t nh = 10000;
  escp_jrn_atom *alt = calloc(nh, sizeof *alt);
  CHECK(alt);
  for (uint64_t k = 0; k < nh; k++) alt[k].start = 2 * k, alt[k].cv[1] = (uint8_t)k;
  CHECK_EQ(escp_offer_build(alt, nh, 4096, (2 * nh + 1) * 4096, 4096, &fine, &nf, &o), ESCP_OK);
  CHECK_EQ(o.ntrees, ESCP_OFFER_MAX_TREES);
  CHECK_EQ(o.held_blocks, ESCP_OFFER_MAX_TREES);
  CHECK_EQ(o.check[1].start, 2 * (ESCP_OFFER_MAX_TREES - 1));
  size_t len = escp_offer_size(&o);
  uint8_t *blob = malloc(len);
  CHECK(blob);
  escp_offer_encode(&o, blob);
  escp_offer d;
  const char *why;
  CHECK_EQ(escp_offer_decode(blob, len, (2 * nh + 1) * 4096, 4096, &d, &why), ESCP_OK);
  escp_offer_free(&d);
  free(blob);
  free(fine);
  escp_offer_free(&o);
  free(alt);
  fprintf(stderr, "  offer limits (64 MiB check runs, 8192 trees): ok\n");
}

/* ---- decode refuses every malformed offer ---- */

static uint8_t *g_good;
static size_t g_len;
static const uint64_t G_SIZE = 20 * 4096ull + 100; /* 21 blocks of 4 KiB */

static void item(uint8_t *p, uint64_t start, uint8_t lg) {
  memset(p, 0, ESCP_OFFER_ITEM);
  put64(p, start);
  p[8] = lg;
  memset(p + 16, 0x33 + lg, 32);
}

/* trees [0,4) [4,6) [8,16) [16,17); checks [0,1) and [16,17). */
static void make_good(void) {
  g_len = ESCP_OFFER_HDR + 4 * ESCP_OFFER_ITEM;
  g_good = calloc(1, g_len + 2 * ESCP_OFFER_ITEM);
  CHECK(g_good);
  put32(g_good, ESCP_OFFER_MAGIC);
  put32(g_good + 4, ESCP_OFFER_VERSION);
  put32(g_good + 8, 4);
  put64(g_good + 16, 4 + 2 + 8 + 1);
  put64(g_good + 24, 15 * 4096ull);
  item(g_good + 32, 0, 0);
  item(g_good + 80, 16, 0);
  item(g_good + 128, 0, 2);
  item(g_good + 176, 4, 1);
  item(g_good + 224, 8, 3);
  item(g_good + 272, 16, 0);
}

static void expect_bad(const uint8_t *b, size_t len, uint64_t size, uint32_t bs, const char *what) {
  escp_offer o;
  memset(&o, 0xEE, sizeof o);
  const char *why = NULL;
  int rc = escp_offer_decode(b, len, size, bs, &o, &why);
  if (rc != ESCP_E_PROTO) fprintf(stderr, "decode accepted: %s\n", what);
  CHECK_EQ(rc, ESCP_E_PROTO);
  CHECK(why && *why);
  CHECK(o.trees == NULL && o.ntrees == 0);
  escp_offer_free(&o);
  /* The sender's check and add_held refuse it the same way. */
  char p[128];
  int fd = new_file(p);
  CHECK(ftruncate(fd, (off_t)size) == 0);
  close(fd);
  int32_t err = 0;
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, b, (int32_t)len, &err), ESCP_E_PROTO);
  unlink(p);
}

static void test_offer_decode(void) {
  make_good();
  escp_offer o;
  const char *why;
  CHECK_EQ(escp_offer_decode(g_good, g_len, G_SIZE, 4096, &o, &why), ESCP_OK);
  CHECK_EQ(o.ntrees, 4);
  CHECK_EQ(o.held_blocks, 15);
  escp_offer_free(&o);
  uint8_t *b = malloc(ESCP_OFFER_HDR + (ESCP_OFFER_MAX_TREES + 1) * (size_t)ESCP_OFFER_ITEM);
  CHECK(b);
#define MUT(stmt, what)                 \
  do {                                  \
    memcpy(b, g_good, g_len);           \
    size_t len = g_len;                 \
    uint64_t size = G_SIZE;             \
    uint32_t bs = 4096;                 \
    stmt;                               \
    expect_bad(b, len, size, bs, what); \
  } while (0)
  MUT(b[0] ^= 1, "bad magic");
  MUT(put32(b + 4, 2), "bad version");
  MUT(put32(b + 12, 1), "reserved field set");
  MUT(len = g_len - 1, "one byte short");
  MUT(len = g_len + 1, "one byte long");
  MUT(len = ESCP_OFFER_HDR - 1, "shorter than a header");
  MUT(len = 0, "empty");
  MUT((put32(b + 8, 0), len = ESCP_OFFER_HDR), "no trees");
  MUT(put32(b + 8, 3), "tree count says 3, length 4");
  MUT(put32(b + 8, 5), "tree count says 5, length 4");
  MUT(put32(b + 8, 0xFFFFFFFFu), "tree count huge");
  MUT((item(b + 128 + 48, 2, 1)), "overlapping trees");
  MUT((item(b + 128, 4, 1), item(b + 128 + 48, 0, 2)), "unsorted trees");
  MUT((item(b + 128 + 3 * 48, 20, 0), item(b + 80, 20, 0)), "a tree holding the last block");
  MUT((item(b + 128 + 3 * 48, 16, 3), item(b + 80, 23, 0), put64(b + 16, 22), put64(b + 24, 22 * 4096ull)),
      "a tree reaching past the last block");
  MUT(size = 17 * 4096, "a file whose last block is held");
  MUT(size = 0, "an empty file");
  MUT(size = 4096, "a one-block file");
  MUT(put64(b + 16, 16), "held blocks too many");
  MUT(put64(b + 16, 14), "held blocks too few");
  MUT(put64(b + 24, 15 * 4096ull + 1), "held bytes off");
  MUT(bs = 8192, "another block size (trees past its last block)");
  MUT(item(b + 32, 1, 0), "check[0] not the first run");
  MUT(item(b + 32, 0, 3), "check[0] larger than its tree");
  MUT(item(b + 80, 15, 0), "check[1] not the last run");
  MUT(item(b + 80, 6, 0), "check[1] outside every tree");
  MUT(item(b + 32, 6, 1), "check[0] in the gap");
  MUT(item(b + 128 + 48, 4, 2), "a tree grown: held blocks no longer add up");
  MUT(item(b + 128 + 2 * 48, 9, 3), "tree start 9 misaligned for log2 3");
  MUT(item(b + 32, 1, 1), "check run misaligned");
  MUT(b[128 + 9] = 1, "tree padding set");
  MUT(b[32 + 15] = 1, "check padding set");
  MUT(b[128 + 8] = 41, "log2 over 40");
  MUT(b[80 + 8] = 64, "check log2 64");
  /* A check run of more than 64 MiB (a valid tree of 2048 blocks of 64 KiB). */
  memcpy(b, g_good, g_len);
  put32(b + 8, 1);
  put64(b + 16, 2048);
  put64(b + 24, 2048 * 65536ull);
  item(b + 128, 0, 11);
  item(b + 32, 0, 10);
  item(b + 80, 1024, 10);
  CHECK_EQ(escp_offer_decode(b, ESCP_OFFER_HDR + ESCP_OFFER_ITEM, 2049 * 65536ull, 65536, &o, &why), ESCP_OK);
  escp_offer_free(&o);
  item(b + 32, 0, 11);
  expect_bad(b, ESCP_OFFER_HDR + ESCP_OFFER_ITEM, 2049 * 65536ull, 65536, "check run of 128 MiB");
  /* More than 8192 trees (8193 single blocks, every other one). */
  size_t nt = ESCP_OFFER_MAX_TREES + 1, len = ESCP_OFFER_HDR + nt * ESCP_OFFER_ITEM;
  memset(b, 0, ESCP_OFFER_HDR);
  put32(b, ESCP_OFFER_MAGIC);
  put32(b + 4, ESCP_OFFER_VERSION);
  put32(b + 8, (uint32_t)nt);
  put64(b + 16, nt);
  put64(b + 24, nt * 4096);
  item(b + 32, 0, 0);
  item(b + 80, 2 * (nt - 1), 0);
  for (size_t i = 0; i < nt; i++) item(b + ESCP_OFFER_HDR + i * ESCP_OFFER_ITEM, 2 * i, 0);
  expect_bad(b, len, (2 * nt + 1) * 4096, 4096, "8193 trees");
  /* ... and exactly 8192 is fine. */
  nt--;
  put32(b + 8, (uint32_t)nt);
  put64(b + 16, nt);
  put64(b + 24, nt * 4096);
  item(b + 80, 2 * (nt - 1), 0);
  CHECK_EQ(escp_offer_decode(b, len - ESCP_OFFER_ITEM, (2 * nt + 1) * 4096, 4096, &o, &why), ESCP_OK);
  escp_offer_free(&o);
  /* NULL buffer */
  CHECK_EQ(escp_offer_decode(NULL, 0, G_SIZE, 4096, &o, &why), ESCP_E_PROTO);
  /* Property: random single-byte corruptions of the good offer are refused, or decode to
   * an offer that still keeps every rule (a CV byte may change: that is the sender's check). */
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(b, g_good, g_len);
    size_t at = rnd() % g_len;
    b[at] ^= (uint8_t)(1 + rnd() % 255);
    int rc = escp_offer_decode(b, g_len, G_SIZE, 4096, &o, &why);
    int in_cv = (at >= 32 && (at - 32) % 48 >= 16);
    if (in_cv) CHECK_EQ(rc, ESCP_OK);
    if (rc == ESCP_OK) {
      uint64_t h = 0, next = 0;
      for (size_t i = 0; i < o.ntrees; i++) {
        CHECK(o.trees[i].start >= next);
        next = o.trees[i].start + (UINT64_C(1) << o.trees[i].log2);
        CHECK(next <= 20);
        h += UINT64_C(1) << o.trees[i].log2;
      }
      CHECK_EQ(h, o.held_blocks);
      escp_offer_free(&o);
    } else {
      CHECK_EQ(rc, ESCP_E_PROTO);
    }
  }
#undef MUT
  free(b);
  free(g_good);
  fprintf(stderr, "  offer decode refuses every malformed variant: ok\n");
}

/* The sender's side: escp_tx_offer_check and its statuses. */
static void test_offer_check(void) {
  uint32_t bs = 65536;
  uint64_t size = 9 * (uint64_t)bs + 5;
  uint8_t *data = malloc(size);
  CHECK(data);
  fill(data, size);
  char p[128];
  int fd = new_file(p);
  pwrite_all(fd, data, size, 0);
  escp_jrn_atom at[10];
  uint8_t heldj[10] = {0, 1, 1, 1, 0, 0, 1, 1, 0, 1};
  size_t n = atoms_of(data, heldj, 10, size, bs, 0, at);
  escp_jrn_atom *fine;
  size_t nf;
  escp_offer o;
  CHECK_EQ(escp_offer_build(at, n, bs, size, bs, &fine, &nf, &o), ESCP_OK);
  CHECK_EQ(o.held_blocks, 5); /* 1 2 3 6 7 (9 is the last) */
  size_t len = escp_offer_size(&o);
  uint8_t *blob = malloc(len);
  CHECK(blob);
  escp_offer_encode(&o, blob);
  int32_t err = -1;
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_OK);
  CHECK_EQ(err, 0);
  /* another size: changed (decode may refuse first for a much smaller one) */
  CHECK_EQ(escp_tx_offer_check(p, size + 1, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_CHANGED);
  CHECK_EQ(escp_tx_offer_check(p, size - 1, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_CHANGED);
  /* a byte of the first check run (block 1), then of the last (block 7): changed */
  uint8_t x = data[bs + 17] ^ 1;
  pwrite_all(fd, &x, 1, bs + 17);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_CHANGED);
  pwrite_all(fd, &data[bs + 17], 1, bs + 17);
  x = data[7 * bs + 65535] ^ 0x80;
  pwrite_all(fd, &x, 1, 7 * bs + 65535);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_CHANGED);
  pwrite_all(fd, &data[7 * bs + 65535], 1, 7 * bs + 65535);
  /* a byte of a block between (2): only the first and last runs are read, so it passes here
   * (the digest catches it at the end) */
  x = data[2 * bs] ^ 1;
  pwrite_all(fd, &x, 1, 2 * bs);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_OK);
  pwrite_all(fd, &data[2 * bs], 1, 2 * bs);
  /* a file that is now shorter on disk but announced with the old size: changed */
  CHECK(ftruncate(fd, (off_t)(5 * bs)) == 0);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_CHANGED);
  close(fd);
  /* missing: E_OPEN with its errno; a directory: not a regular file, changed */
  char missing[160];
  snprintf(missing, sizeof missing, "%s/nope", g_dir);
  CHECK_EQ(escp_tx_offer_check(missing, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_OPEN);
  CHECK_EQ(err, ENOENT);
  CHECK_EQ(escp_tx_offer_check(g_dir, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_CHANGED);
  /* misuse */
  CHECK_EQ(escp_tx_offer_check(NULL, size, (int32_t)bs, blob, (int32_t)len, &err), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, NULL, (int32_t)len, &err), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, -1, &err), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len, NULL), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_offer_check(p, size, 0, blob, (int32_t)len, &err), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_offer_check(p, size, -65536, blob, (int32_t)len, &err), ESCP_E_INVAL);
  CHECK_EQ(escp_tx_offer_check(p, size, 3 * 65536, blob, (int32_t)len, &err), ESCP_E_INVAL); /* no power of two */
  CHECK_EQ(escp_tx_offer_check(p, size, (int32_t)bs, blob, (int32_t)len - 1, &err), ESCP_E_PROTO);
  unlink(p);
  free(blob);
  free(fine);
  escp_offer_free(&o);
  free(data);
  fprintf(stderr, "  escp_tx_offer_check: ok\n");
}

/* ---- byte ranges (shards): names, the RANGE record, subtree digests ---- */

static void test_ranges(void) {
  char jr[256], prefix[256];
  escp_jrn_range_name("big.bin", 131072, jr, prefix);
  CHECK(strcmp(jr, ".big.bin.escp-journal.131072") == 0);
  CHECK(strcmp(prefix, ".big.bin.escp-journal.") == 0);
  char leaf[256];
  memset(leaf, 'x', 250);
  leaf[250] = 0;
  escp_jrn_range_name(leaf, UINT64_MAX, jr, prefix);
  CHECK(strncmp(jr, ".escp-", 6) == 0 && strlen(jr) <= 255);
  CHECK(strncmp(jr, prefix, strlen(prefix)) == 0);
  CHECK(strcmp(jr + strlen(prefix), "18446744073709551615") == 0);

  /* A RANGE record is read (first, count) and ends nothing: records after it still count. */
  jrn j;
  make_blocks(&j, 4);
  uint8_t rec[ESCP_JRN_REC], cv[32];
  escp_jrn_record_range(rec, j.check, 0, 4);
  jrn_put(&j, rec);
  tag_cv(cv, 9, 9);
  jrn_block(&j, 9, cv);
  escp_jrn_state st;
  const char *why;
  CHECK_EQ(jrn_read(&j, &st, &why), 0);
  CHECK_EQ(st.range_done, 1);
  CHECK_EQ(st.range_first, 0);
  CHECK_EQ(st.range_count, 4);
  CHECK_EQ(st.natoms, 5);
  CHECK_EQ(st.end, ESCP_JRN_HDR + 6 * ESCP_JRN_REC);
  escp_jrn_state_free(&st);
  jrn_close(&j);

  /* Subtrees of blocks [3, 12) of a 13-block file: 3, 4..7, 8..11, each the reference CV of
   * its run; blocks added backwards, one run as a held tree; the digest is BLAKE3 of the list. */
  const uint32_t bs = 4096;
  const uint64_t nb = 13;
  uint8_t *data = malloc(nb * bs);
  CHECK(data != NULL);
  fill(data, nb * bs);
  escp_rdigest r;
  CHECK_EQ(escp_rdigest_init(&r, 3, 9), ESCP_OK);
  CHECK_EQ(r.n, 3);
  uint8_t held[32];
  ref_cv(data, 8, 2, bs, held);
  CHECK_EQ(escp_rdigest_add(&r, 8, 2, held), ESCP_OK);
  for (uint64_t i = 7; i >= 3; i--) {
    escp_b3_block(data + i * bs, bs, i * bs / ESCP_B3_CHUNK, cv, NULL);
    CHECK_EQ(escp_rdigest_add(&r, i, 0, cv), ESCP_OK);
  }
  CHECK_EQ(escp_rdigest_add(&r, 5, 0, cv), ESCP_E_DUP);
  CHECK_EQ(escp_rdigest_add(&r, 12, 0, cv), ESCP_E_RANGE);
  CHECK_EQ(escp_rdigest_add(&r, 2, 0, cv), ESCP_E_RANGE);
  uint8_t packed[ESCP_RSUB_MAX * ESCP_RSUB_REC], d[32], want[32];
  uint32_t n = 0;
  CHECK_EQ(escp_rdigest_final(&r, packed, &n, d), ESCP_OK);
  CHECK_EQ(n, 3);
  static const uint64_t starts[3] = {3, 4, 8};
  static const uint32_t lgs[3] = {0, 2, 2};
  for (uint32_t i = 0; i < 3; i++) {
    CHECK_EQ(packed[i * ESCP_RSUB_REC], starts[i]);
    CHECK_EQ(packed[i * ESCP_RSUB_REC + 8], lgs[i]);
    ref_cv(data, starts[i], lgs[i], bs, want);
    CHECK(memcmp(packed + i * ESCP_RSUB_REC + 16, want, 32) == 0);
  }
  escp_b3_hash(packed, 3 * ESCP_RSUB_REC, want);
  CHECK(memcmp(d, want, 32) == 0);
  escp_rdigest_free(&r);
  /* Missing a block: no digest. */
  CHECK_EQ(escp_rdigest_init(&r, 0, 2), ESCP_OK);
  CHECK_EQ(escp_rdigest_add(&r, 0, 0, cv), ESCP_OK);
  CHECK_EQ(escp_rdigest_final(&r, packed, &n, d), ESCP_E_DIGEST);
  escp_rdigest_free(&r);
  CHECK_EQ(escp_rdigest_init(&r, 0, 0), ESCP_E_INVAL);
  free(data);
  fprintf(stderr, "  ranges: names, RANGE record, subtrees: ok\n");
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/escp_test_journal_XXXXXX");
  CHECK(mkdtemp(g_dir));
  test_names();
  test_header();
  test_records();
  test_out_of_range();
  test_torn_tail();
  test_flipped_byte();
  test_foreign();
  test_bad_header();
  test_dedup();
  test_cap();
  test_run_cv();
  test_trees_find();
  test_offer_build_sizes();
  test_offer_build_random();
  test_offer_limits();
  test_offer_decode();
  test_offer_check();
  test_ranges();
  CHECK(rmdir(g_dir) == 0); /* every file was removed */
  printf("test_journal: all passed\n");
  return 0;
}
