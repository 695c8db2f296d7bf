/* digest.c — per-file BLAKE3 merged from per-block subtree CVs arriving in any order:
 * contiguous blocks fold into a lazy-merge CV stack, early ones wait in a sorted array. */
#include "digest.h"

#include <stdlib.h>
#include <string.h>

#include "b3.h"
#include "escp.h"

/* One early block, or an early subtree of 2^log2 blocks. The array is kept sorted by
 * DESCENDING index so the next one wanted (the smallest index) sits at the end and is popped
 * without moving the rest. */
struct escp_digest_pending {
  uint64_t index;
  uint32_t log2;
  uint8_t cv[32];
};

void escp_digest_init(escp_digest *d) { memset(d, 0, sizeof *d); }

void escp_digest_free(escp_digest *d) {
  free(d->pending);
  d->pending = NULL;
  d->pending_len = d->pending_cap = 0;
}

/* Fold the subtree of 2^log2 blocks at `next_index` (a multiple of 2^log2) into the stack.
 * Block i is a complete subtree of the same size as every earlier block, so the reference
 * rule applies at block granularity: merge down to popcount(i) entries, then push. An aligned
 * subtree of 2^k blocks is the same as its 2^k blocks already merged: the stack's entries
 * stay the set bits of next_index (every one at least 2^k), so the rule holds unchanged. The
 * newest entry stays unmerged until more arrives, because only final() knows whether its
 * parent is the root. */
static void fold_next(escp_digest *d, const uint8_t cv[32], uint32_t log2) {
  uint32_t keep = (uint32_t)__builtin_popcountll(d->next_index);
  while (d->stack_len > keep) {
    escp_b3_parent(d->stack[d->stack_len - 2], d->stack[d->stack_len - 1], 0,
                   d->stack[d->stack_len - 2]);
    d->stack_len--;
  }
  memcpy(d->stack[d->stack_len++], cv, 32);
  d->next_index += (uint64_t)1 << log2;
}

/* Position in the descending array where `index` is or would be inserted. */
static uint32_t pending_find(const escp_digest *d, uint64_t index) {
  uint32_t lo = 0, hi = d->pending_len;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (d->pending[mid].index > index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static uint64_t span_end(const struct escp_digest_pending *p) { return p->index + ((uint64_t)1 << p->log2); }

static int pending_insert(escp_digest *d, uint64_t index, uint32_t log2, const uint8_t cv[32]) {
  uint32_t at = pending_find(d, index);
  /* Sorted descending: pending[at] is the first with index <= ours, pending[at-1] the next
   * above. Either overlapping our span is a repeat. */
  if (at < d->pending_len && span_end(&d->pending[at]) > index) return ESCP_E_DUP;
  if (at > 0 && d->pending[at - 1].index < index + ((uint64_t)1 << log2)) return ESCP_E_DUP;
  if (d->pending_len == d->pending_cap) {
    uint32_t cap = d->pending_cap ? d->pending_cap * 2 : 16;
    if (cap <= d->pending_cap) return ESCP_E_NOMEM; /* uint32 overflow: treat as OOM */
    struct escp_digest_pending *p = realloc(d->pending, (size_t)cap * sizeof *p);
    if (!p) return ESCP_E_NOMEM;
    d->pending = p;
    d->pending_cap = cap;
  }
  memmove(&d->pending[at + 1], &d->pending[at], (size_t)(d->pending_len - at) * sizeof *d->pending);
  d->pending[at].index = index;
  d->pending[at].log2 = log2;
  memcpy(d->pending[at].cv, cv, 32);
  d->pending_len++;
  return ESCP_OK;
}

/* Fold in what is now contiguous. */
static void drain(escp_digest *d) {
  while (d->pending_len && d->pending[d->pending_len - 1].index == d->next_index) {
    const struct escp_digest_pending *p = &d->pending[d->pending_len - 1];
    fold_next(d, p->cv, p->log2);
    d->pending_len--;
  }
}

static int add_span(escp_digest *d, uint64_t index, uint32_t log2, const uint8_t cv[32]) {
  if (index < d->next_index) return ESCP_E_DUP;
  if (index > d->next_index) return pending_insert(d, index, log2, cv);
  if (d->pending_len && d->pending[d->pending_len - 1].index < index + ((uint64_t)1 << log2)) return ESCP_E_DUP;
  fold_next(d, cv, log2);
  drain(d);
  return ESCP_OK;
}

int escp_digest_add(escp_digest *d, uint64_t index, const uint8_t cv[32], const uint8_t *root) {
  if (!d || !cv) return ESCP_E_INVAL;
  /* 2^64-1 blocks would overflow the 64-entry stack; unreachable for real files. */
  if (index == UINT64_MAX) return ESCP_E_INVAL;
  if (index == 0 && index == d->next_index) {
    if (!root) return ESCP_E_INVAL; /* block 0 must carry its root hash (1-block files) */
    memcpy(d->root0, root, 32);
    d->have_root0 = 1;
  }
  return add_span(d, index, 0, cv);
}

int escp_digest_add_tree(escp_digest *d, uint64_t index, uint32_t log2, const uint8_t cv[32]) {
  if (!d || !cv || log2 > 40 || (index & (((uint64_t)1 << log2) - 1)) != 0) return ESCP_E_INVAL;
  if (index > UINT64_MAX - ((uint64_t)1 << 41)) return ESCP_E_INVAL;
  return add_span(d, index, log2, cv);
}

int escp_digest_final(escp_digest *d, uint64_t nblocks, uint8_t out[32]) {
  if (!d || !out || nblocks == 0) return ESCP_E_INVAL;
  /* Missing blocks leave next_index short; extra ones push it past nblocks or stay pending. */
  if (d->next_index != nblocks || d->pending_len) return ESCP_E_DIGEST;
  if (nblocks == 1) {
    if (!d->have_root0) return ESCP_E_DIGEST;
    memcpy(out, d->root0, 32);
    return ESCP_OK;
  }
  /* >= 2 blocks leave >= 2 entries (popcount(n-1) + 1). Fold top-down without mutating the
   * stack, so final() may be called again; only the last parent gets ROOT. */
  uint8_t right[32];
  uint32_t i = d->stack_len - 1;
  memcpy(right, d->stack[i], 32);
  while (i-- > 0) escp_b3_parent(d->stack[i], right, i == 0, right);
  memcpy(out, right, 32);
  return ESCP_OK;
}

int escp_digest_cv(escp_digest *d, uint64_t nblocks, uint8_t out[32]) {
  if (!d || !out || nblocks == 0) return ESCP_E_INVAL;
  if (d->next_index != nblocks || d->pending_len || d->stack_len == 0) return ESCP_E_DIGEST;
  uint8_t right[32];
  uint32_t i = d->stack_len - 1;
  memcpy(right, d->stack[i], 32);
  while (i-- > 0) escp_b3_parent(d->stack[i], right, 0, right);
  memcpy(out, right, 32);
  return ESCP_OK;
}
