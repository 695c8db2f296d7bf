/* rdigest.c — range digests (rdigest.h). */
#include "rdigest.h"

#include <stdlib.h>
#include <string.h>

#include "b3.h"
#include "escp.h"
#include "le.h"

int escp_rdigest_init(escp_rdigest *r, uint64_t first, uint64_t count) {
  memset(r, 0, sizeof *r);
  if (count == 0 || first > UINT64_MAX - count) return ESCP_E_INVAL;
  r->first = first;
  r->count = count;
  uint64_t p = first, end = first + count;
  while (p < end) {
    uint32_t k = p ? (uint32_t)__builtin_ctzll(p) : 63;
    if (k > 40) k = 40;
    while (k > 0 && ((uint64_t)1 << k) > end - p) k--;
    if (r->n == ESCP_RSUB_MAX) return ESCP_E_INVAL; /* unreachable: <= 2 runs per bit */
    r->sub[r->n].start = p;
    r->sub[r->n].log2 = k;
    r->n++;
    p += (uint64_t)1 << k;
  }
  return ESCP_OK;
}

static escp_rsub *sub_of(escp_rdigest *r, uint64_t idx) {
  uint32_t lo = 0, hi = r->n;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (r->sub[mid].start <= idx) lo = mid;
    else hi = mid;
  }
  return &r->sub[lo];
}

int escp_rdigest_add(escp_rdigest *r, uint64_t idx, uint32_t log2, const uint8_t cv[32]) {
  if (!r || !cv || log2 > 40 || r->n == 0) return ESCP_E_INVAL;
  uint64_t span = (uint64_t)1 << log2;
  if (idx < r->first || idx - r->first >= r->count || span > r->count - (idx - r->first)) return ESCP_E_RANGE;
  escp_rsub *u = sub_of(r, idx);
  uint64_t len = (uint64_t)1 << u->log2;
  if (idx + span > u->start + len) return ESCP_E_RANGE;
  if (u->done) return ESCP_E_DUP;
  if (!u->dg) {
    if (!(u->dg = malloc(sizeof *u->dg))) return ESCP_E_NOMEM;
    escp_digest_init(u->dg);
  }
  uint64_t rel = idx - u->start;
  int rc = log2 == 0 ? escp_digest_add(u->dg, rel, cv, cv) : escp_digest_add_tree(u->dg, rel, log2, cv);
  if (rc != ESCP_OK) return rc;
  u->added += span;
  if (u->added == len) {
    if (escp_digest_cv(u->dg, len, u->cv) != ESCP_OK) return ESCP_E_DIGEST;
    escp_digest_free(u->dg);
    free(u->dg);
    u->dg = NULL;
    u->done = 1;
  }
  return ESCP_OK;
}

uint32_t escp_rdigest_pending(const escp_rdigest *r) {
  uint32_t p = 0;
  for (uint32_t i = 0; i < r->n; i++)
    if (r->sub[i].dg) p += r->sub[i].dg->pending_len;
  return p;
}

int escp_rdigest_final(escp_rdigest *r, uint8_t *packed, uint32_t *n, uint8_t digest[32]) {
  for (uint32_t i = 0; i < r->n; i++) {
    if (!r->sub[i].done) return ESCP_E_DIGEST;
    uint8_t *p = packed + (size_t)i * ESCP_RSUB_REC;
    escp_put64(p, r->sub[i].start);
    escp_put32(p + 8, r->sub[i].log2);
    escp_put32(p + 12, 0);
    memcpy(p + 16, r->sub[i].cv, 32);
  }
  *n = r->n;
  escp_b3_hash(packed, (size_t)r->n * ESCP_RSUB_REC, digest);
  return ESCP_OK;
}

void escp_rdigest_free(escp_rdigest *r) {
  for (uint32_t i = 0; r && i < r->n; i++)
    if (r->sub[i].dg) {
      escp_digest_free(r->sub[i].dg);
      free(r->sub[i].dg);
      r->sub[i].dg = NULL;
    }
}
