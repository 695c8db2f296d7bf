/* journal.c — encode and read the block journal of a resumable partial (journal.h). */
#define _GNU_SOURCE
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b3.h"
#include "le.h"

static const char MAGIC[8] = {'E', 'S', 'C', 'P', 'J', 'R', 'N', '1'};

void escp_jrn_names(const char *leaf, char part[256], char jrnl[256]) {
  size_t n = strlen(leaf);
  if (n + sizeof ".escp-journal" <= 255) { /* "." + leaf + ".escp-journal" + NUL */
    snprintf(part, 256, ".%s.escp-part", leaf);
    snprintf(jrnl, 256, ".%s.escp-journal", leaf);
    return;
  }
  uint8_t h[32];
  char hex[33];
  escp_b3_hash(leaf, n, h);
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
  snprintf(part, 256, ".escp-%s.part", hex);
  snprintf(jrnl, 256, ".escp-%s.journal", hex);
}

void escp_jrn_range_name(const char *leaf, uint64_t offset, char jrnl[256], char prefix[256]) {
  char base[64 + 256];
  size_t n = strlen(leaf);
  if (n + sizeof ".escp-journal." + 20 <= 255) snprintf(base, sizeof base, ".%s.escp-journal", leaf);
  else {
    uint8_t h[32];
    char hex[33];
    escp_b3_hash(leaf, n, h);
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(base, sizeof base, ".escp-%s.journal", hex);
  }
  size_t bl = strlen(base); /* <= 234: leaf short enough above, else 53 */
  memcpy(prefix, base, bl);
  prefix[bl] = '.';
  prefix[bl + 1] = 0;
  char num[24];
  int nl = snprintf(num, sizeof num, ".%llu", (unsigned long long)offset);
  memcpy(jrnl, base, bl);
  memcpy(jrnl + bl, num, (size_t)nl + 1);
}

static void header_bytes(uint8_t h[ESCP_JRN_HDR], const escp_jrn_ident *id, uint64_t part_ino, uint64_t part_dev) {
  memset(h, 0, ESCP_JRN_HDR);
  memcpy(h, MAGIC, 8);
  escp_put32(h + 8, ESCP_JRN_VERSION);
  escp_put32(h + 12, id->block_size);
  escp_put64(h + 16, id->size);
  escp_put64(h + 24, (uint64_t)id->mtime_ns);
  escp_put64(h + 32, id->ino);
  escp_put64(h + 40, part_ino);
  escp_put64(h + 48, part_dev);
  uint8_t sum[32];
  escp_b3_hash(h, 112, sum);
  memcpy(h + 112, sum, 16);
}

int escp_jrn_write_header(int jfd, const escp_jrn_ident *id, uint64_t part_ino, uint64_t part_dev,
                          uint8_t check_out[16]) {
  uint8_t h[ESCP_JRN_HDR];
  header_bytes(h, id, part_ino, part_dev);
  memcpy(check_out, h + 112, 16);
  ssize_t w;
  do w = pwrite(jfd, h, sizeof h, 0);
  while (w < 0 && errno == EINTR);
  if (w < 0) return errno;
  return w == (ssize_t)sizeof h ? 0 : EIO;
}

static uint32_t record_check(const uint8_t check[16], const uint8_t rec[ESCP_JRN_REC]) {
  uint8_t in[16 + 44], sum[32];
  memcpy(in, check, 16);
  memcpy(in + 16, rec, 44);
  escp_b3_hash(in, sizeof in, sum);
  return escp_get32(sum);
}

void escp_jrn_record(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint32_t kind, uint64_t a,
                     const uint8_t data[32]) {
  escp_put64(rec, a);
  if (data) memcpy(rec + 8, data, 32);
  else memset(rec + 8, 0, 32);
  escp_put32(rec + 40, kind);
  escp_put32(rec + 44, record_check(check, rec));
}

void escp_jrn_record_tree(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint64_t start, uint32_t log2,
                          const uint8_t cv[32]) {
  escp_jrn_record(rec, check, ESCP_JRN_TREE, start | ((uint64_t)log2 << 56), cv);
}

void escp_jrn_record_seal(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint64_t size, int64_t mtime_ns,
                          int64_t ctime_ns) {
  uint8_t d[32] = {0};
  escp_put64(d, (uint64_t)mtime_ns);
  escp_put64(d + 8, (uint64_t)ctime_ns);
  escp_jrn_record(rec, check, ESCP_JRN_SEAL, size, d);
}

void escp_jrn_record_range(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint64_t first, uint64_t count) {
  uint8_t d[32] = {0};
  escp_put64(d, count);
  escp_jrn_record(rec, check, ESCP_JRN_RANGE, first, d);
}

void escp_jrn_state_free(escp_jrn_state *st) {
  free(st->atoms);
  st->atoms = NULL;
  st->natoms = 0;
}

/* Sort by start; for equal starts the later record (higher position) wins; then drop any atom
 * that overlaps the one kept before it. */
typedef struct { escp_jrn_atom a; size_t pos; } pos_atom;

static int cmp_atom(const void *x, const void *y) {
  const pos_atom *a = x, *b = y;
  if (a->a.start != b->a.start) return a->a.start < b->a.start ? -1 : 1;
  return a->pos < b->pos ? 1 : a->pos > b->pos ? -1 : 0; /* latest first */
}

static int read_all(int fd, uint8_t *buf, size_t len, uint64_t off, size_t *got) {
  size_t n = 0;
  while (n < len) {
    ssize_t r = pread(fd, buf + n, len - n, (off_t)(off + n));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    if (r == 0) break;
    n += (size_t)r;
  }
  *got = n;
  return 0;
}

int escp_jrn_read(int jfd, escp_jrn_state *st, const char **why) {
  memset(st, 0, sizeof *st);
  *why = NULL; /* NULL unless a reason is given (callers test it: a read error has none) */
  uint8_t h[ESCP_JRN_HDR];
  size_t got;
  int err = read_all(jfd, h, sizeof h, 0, &got);
  if (err) return err;
  *why = "its journal has no header";
  if (got != sizeof h) return EIO;
  uint8_t sum[32];
  escp_b3_hash(h, 112, sum);
  *why = "its journal is not an escp journal or is damaged";
  if (memcmp(h, MAGIC, 8) != 0 || memcmp(h + 112, sum, 16) != 0) return EIO;
  *why = "its journal is of another escp version";
  if (escp_get32(h + 8) != ESCP_JRN_VERSION) return EIO;
  st->id.block_size = escp_get32(h + 12);
  st->id.size = escp_get64(h + 16);
  st->id.mtime_ns = (int64_t)escp_get64(h + 24);
  st->id.ino = escp_get64(h + 32);
  st->part_ino = escp_get64(h + 40);
  st->part_dev = escp_get64(h + 48);
  memcpy(st->check, h + 112, 16);
  *why = "its journal names an impossible block size";
  if (st->id.block_size < 4096 || (st->id.block_size & (st->id.block_size - 1)) != 0) return EIO;
  *why = NULL; /* a valid header: no reason stands unless reading fails below */
  uint64_t nblocks = st->id.size / st->id.block_size + (st->id.size % st->id.block_size != 0);
  size_t cap = 0;
  pos_atom *v = NULL;
  uint8_t buf[ESCP_JRN_REC * 256];
  uint64_t off = ESCP_JRN_HDR;
  st->end = off;
  for (int stop = 0; !stop;) {
    if ((err = read_all(jfd, buf, sizeof buf, off, &got)) != 0) {
      free(v);
      return err;
    }
    size_t n = got / ESCP_JRN_REC;
    stop = got < sizeof buf;
    for (size_t i = 0; i < n; i++) {
      const uint8_t *r = buf + i * ESCP_JRN_REC;
      uint32_t kind = escp_get32(r + 40);
      if (escp_get32(r + 44) != record_check(st->check, r) || kind < ESCP_JRN_BLOCK || kind > ESCP_JRN_RANGE) {
        stop = 1; /* a torn or foreign tail: everything from here on is ignored */
        break;
      }
      st->end = off + (uint64_t)(i + 1) * ESCP_JRN_REC;
      st->last_kind = (int)kind;
      if (kind == ESCP_JRN_SEAL) {
        st->seal_size = escp_get64(r);
        st->seal_mtime_ns = (int64_t)escp_get64(r + 8);
        st->seal_ctime_ns = (int64_t)escp_get64(r + 16);
      }
      if (kind == ESCP_JRN_RANGE) {
        st->range_done = 1;
        st->range_first = escp_get64(r);
        st->range_count = escp_get64(r + 8);
      }
      if (kind != ESCP_JRN_BLOCK && kind != ESCP_JRN_TREE) continue;
      uint64_t a = escp_get64(r);
      uint32_t lg = kind == ESCP_JRN_TREE ? (uint32_t)(a >> 56) : 0;
      uint64_t start = kind == ESCP_JRN_TREE ? a & ((UINT64_C(1) << 56) - 1) : a;
      /* Only whole runs inside the file, aligned (the writer never makes others). */
      if (lg > 40 || (start & ((UINT64_C(1) << lg) - 1)) != 0 || start >= nblocks ||
          (UINT64_C(1) << lg) > nblocks - start)
        continue;
      if (st->natoms == ESCP_JRN_MAX_ATOMS) continue;
      if (st->natoms == cap) {
        size_t nc = cap ? cap * 2 : 256;
        pos_atom *nv = realloc(v, nc * sizeof *nv);
        if (!nv) {
          free(v);
          *why = "no memory to read its journal";
          return EIO;
        }
        v = nv;
        cap = nc;
      }
      pos_atom *p = &v[st->natoms++];
      p->a.start = start;
      p->a.log2 = lg;
      memcpy(p->a.cv, r + 8, 32);
      p->pos = st->natoms;
    }
    off += (uint64_t)n * ESCP_JRN_REC;
  }
  if (st->natoms > 1) qsort(v, st->natoms, sizeof *v, cmp_atom);
  st->atoms = st->natoms ? malloc(st->natoms * sizeof *st->atoms) : NULL;
  if (st->natoms && !st->atoms) {
    free(v);
    *why = "no memory to read its journal";
    return EIO;
  }
  size_t k = 0;
  uint64_t covered = 0; /* first block not covered by what was kept */
  for (size_t i = 0; i < st->natoms; i++) {
    if (k > 0 && v[i].a.start < covered) continue; /* a repeat or an overlap: the first kept wins */
    st->atoms[k++] = v[i].a;
    covered = v[i].a.start + (UINT64_C(1) << v[i].a.log2);
  }
  st->natoms = k;
  free(v);
  return 0;
}
