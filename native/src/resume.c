/* resume.c — build, encode, decode and check resume offers (resume.h). */
#define _GNU_SOURCE
#include "resume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b3.h"
#include "le.h"
#include "escp.h"

static uint32_t lg2(uint32_t v) { return (uint32_t)__builtin_ctz(v); } /* v a power of two */
static uint64_t span(const escp_jrn_atom *a) { return (uint64_t)1 << a->log2; }

/* Append a run to v[0..*n) and merge buddies at the tail while the merged run stays within
 * max_log2: runs arrive sorted and aligned, so this yields the maximal aligned runs (binary
 * carry). */
static void push_merge(escp_jrn_atom *v, size_t *n, const escp_jrn_atom *a, uint32_t max_log2) {
  v[(*n)++] = *a;
  while (*n >= 2) {
    escp_jrn_atom *l = &v[*n - 2], *r = &v[*n - 1];
    uint32_t g = l->log2;
    if (r->log2 != g || g + 1 > max_log2 || (l->start & ((span(l) << 1) - 1)) != 0 || r->start != l->start + span(l)) break;
    escp_b3_parent(l->cv, r->cv, 0, l->cv);
    l->log2 = g + 1;
    (*n)--;
  }
}

int escp_offer_build(const escp_jrn_atom *atoms, size_t n, uint32_t bj, uint64_t size, uint32_t bs,
                     escp_jrn_atom **fine_out, size_t *nfine_out, escp_offer *out) {
  memset(out, 0, sizeof *out);
  *fine_out = NULL;
  *nfine_out = 0;
  uint64_t nbs = size / bs + (size % bs != 0);
  if (nbs < 2 || n == 0) return ESCP_OK; /* one block: nothing is ever held */
  uint64_t lim = (nbs - 1) * (uint64_t)bs; /* bytes before the last block */
  escp_jrn_atom *tmp = malloc(n * sizeof *tmp), *fine = malloc(n * sizeof *fine);
  if (!tmp || !fine) {
    free(tmp);
    free(fine);
    return ESCP_E_NOMEM;
  }
  size_t nt = 0, nf = 0;
  if (bj >= bs) {
    uint32_t d = lg2(bj / bs);
    for (size_t i = 0; i < n; i++) {
      const escp_jrn_atom *a = &atoms[i];
      if (a->log2 > 40 || (a->start + span(a)) * (uint64_t)bj > lim || span(a) * (uint64_t)bj > ESCP_FINE_MAX_BYTES) continue;
      fine[nf] = *a;
      fine[nf].start = a->start << d;
      fine[nf].log2 = a->log2 + d;
      nf++;
    }
  } else {
    uint32_t d = lg2(bs / bj);
    for (size_t i = 0; i < n; i++) { /* whole session blocks from journal blocks */
      const escp_jrn_atom *a = &atoms[i];
      if (a->log2 > 40 || (a->start + span(a)) * (uint64_t)bj > lim) continue;
      push_merge(tmp, &nt, a, d);
    }
    for (size_t i = 0; i < nt; i++) {
      const escp_jrn_atom *a = &tmp[i];
      if (a->log2 < d || span(a) * (uint64_t)bj > ESCP_FINE_MAX_BYTES) continue; /* part of a block, or too big to check */
      fine[nf] = *a;
      fine[nf].start = a->start >> d;
      fine[nf].log2 = a->log2 - d;
      nf++;
    }
  }
  nt = 0;
  for (size_t i = 0; i < nf; i++) push_merge(tmp, &nt, &fine[i], 40);
  if (nt > ESCP_OFFER_MAX_TREES) nt = ESCP_OFFER_MAX_TREES; /* the rest is sent again */
  if (nt == 0) {
    free(tmp);
    *fine_out = fine;
    *nfine_out = nf;
    return ESCP_OK;
  }
  uint64_t end = tmp[nt - 1].start + span(&tmp[nt - 1]), held = 0;
  for (size_t i = 0; i < nt; i++) held += span(&tmp[i]);
  out->trees = tmp;
  out->ntrees = nt;
  out->held_blocks = held;
  out->held_bytes = held * bs;
  out->check[0] = fine[0];
  for (size_t i = nf; i-- > 0;)
    if (fine[i].start < end) {
      out->check[1] = fine[i];
      break;
    }
  *fine_out = fine;
  *nfine_out = nf;
  return ESCP_OK;
}

size_t escp_offer_size(const escp_offer *o) { return ESCP_OFFER_HDR + o->ntrees * ESCP_OFFER_ITEM; }

static void put_item(uint8_t *p, const escp_jrn_atom *a) {
  memset(p, 0, ESCP_OFFER_ITEM);
  escp_put64(p, a->start);
  p[8] = (uint8_t)a->log2;
  memcpy(p + 16, a->cv, 32);
}

void escp_offer_encode(const escp_offer *o, uint8_t *out) {
  memset(out, 0, ESCP_OFFER_HDR);
  escp_put32(out, ESCP_OFFER_MAGIC);
  escp_put32(out + 4, ESCP_OFFER_VERSION);
  escp_put32(out + 8, (uint32_t)o->ntrees);
  escp_put64(out + 16, o->held_blocks);
  escp_put64(out + 24, o->held_bytes);
  put_item(out + 32, &o->check[0]);
  put_item(out + 80, &o->check[1]);
  for (size_t i = 0; i < o->ntrees; i++) put_item(out + ESCP_OFFER_HDR + i * ESCP_OFFER_ITEM, &o->trees[i]);
}

static int get_item(const uint8_t *p, escp_jrn_atom *a) {
  for (int i = 9; i < 16; i++)
    if (p[i]) return -1;
  a->start = escp_get64(p);
  a->log2 = p[8];
  memcpy(a->cv, p + 16, 32);
  return a->log2 <= 40 && (a->start & (span(a) - 1)) == 0 ? 0 : -1;
}

void escp_offer_free(escp_offer *o) {
  free(o->trees);
  o->trees = NULL;
  o->ntrees = 0;
}

long escp_trees_find(const escp_jrn_atom *t, size_t n, uint64_t idx) {
  size_t lo = 0, hi = n;
  while (lo < hi) { /* first tree starting after idx */
    size_t mid = lo + (hi - lo) / 2;
    if (t[mid].start <= idx) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return -1;
  const escp_jrn_atom *c = &t[lo - 1];
  return idx < c->start + span(c) ? (long)(lo - 1) : -1;
}

/* The check run lies inside one tree. */
static int inside(const escp_offer *o, const escp_jrn_atom *c) {
  long k = escp_trees_find(o->trees, o->ntrees, c->start);
  return k >= 0 && c->start + span(c) <= o->trees[k].start + span(&o->trees[k]);
}

int escp_offer_decode(const uint8_t *buf, size_t len, uint64_t size, uint32_t bs, escp_offer *out, const char **why) {
  memset(out, 0, sizeof *out);
  uint64_t nbs = size / bs + (size % bs != 0);
  *why = "malformed header";
  if (!buf || len < ESCP_OFFER_HDR || escp_get32(buf) != ESCP_OFFER_MAGIC || escp_get32(buf + 4) != ESCP_OFFER_VERSION || escp_get32(buf + 12))
    return ESCP_E_PROTO;
  size_t nt = escp_get32(buf + 8);
  *why = "wrong length or tree count";
  if (nt == 0 || nt > ESCP_OFFER_MAX_TREES || len != ESCP_OFFER_HDR + nt * ESCP_OFFER_ITEM) return ESCP_E_PROTO;
  out->held_blocks = escp_get64(buf + 16);
  out->held_bytes = escp_get64(buf + 24);
  *why = "malformed check run";
  if (get_item(buf + 32, &out->check[0]) || get_item(buf + 80, &out->check[1])) return ESCP_E_PROTO;
  if (!(out->trees = malloc(nt * sizeof *out->trees))) return ESCP_E_NOMEM;
  out->ntrees = nt;
  uint64_t held = 0, next = 0;
  for (size_t i = 0; i < nt; i++) {
    escp_jrn_atom *t = &out->trees[i];
    *why = "malformed tree";
    if (get_item(buf + ESCP_OFFER_HDR + i * ESCP_OFFER_ITEM, t)) goto bad;
    *why = "trees out of order, overlapping, or reaching the last block";
    if (t->start < next || nbs < 1 || t->start >= nbs - 1 || span(t) > nbs - 1 - t->start) goto bad;
    next = t->start + span(t);
    held += span(t);
  }
  *why = "held blocks or bytes do not add up";
  if (held != out->held_blocks || held > UINT64_MAX / bs || out->held_bytes != held * bs) goto bad;
  *why = "check runs are not the first and last held runs";
  for (int c = 0; c < 2; c++)
    if (!inside(out, &out->check[c]) || span(&out->check[c]) * (uint64_t)bs > ESCP_FINE_MAX_BYTES) goto bad;
  if (out->check[0].start != out->trees[0].start ||
      out->check[1].start + span(&out->check[1]) != out->trees[nt - 1].start + span(&out->trees[nt - 1]))
    goto bad;
  return ESCP_OK;
bad:
  escp_offer_free(out);
  return ESCP_E_PROTO;
}

int escp_run_cv(int fd, uint64_t start, uint32_t log2, uint32_t bs, uint8_t *buf, uint8_t out[32]) {
  uint8_t stack[41][32];
  uint32_t depth = 0;
  uint64_t n = (uint64_t)1 << log2;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t off = (start + i) * (uint64_t)bs;
    size_t got = 0;
    while (got < bs) {
      ssize_t r = pread(fd, buf + got, bs - got, (off_t)(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return errno;
      if (r == 0) return EIO;
      got += (size_t)r;
    }
    uint8_t cv[32];
    escp_b3_block(buf, bs, off / ESCP_B3_CHUNK, cv, NULL);
    /* Merge like a binary counter: block i completes the subtrees of its trailing one bits. */
    memcpy(stack[depth++], cv, 32);
    for (uint64_t k = i + 1; (k & 1) == 0 && depth >= 2; k >>= 1) {
      escp_b3_parent(stack[depth - 2], stack[depth - 1], 0, stack[depth - 2]);
      depth--;
    }
  }
  memcpy(out, stack[0], 32);
  return 0;
}
