/* digest.h — per-file BLAKE3 assembled from per-block results that arrive in any order
 * (blocks are striped over streams). Memory is bounded by the reorder window, not the file
 * size: contiguous blocks fold into a BLAKE3 chaining-value stack (lazy merging, exactly as
 * the reference hasher does per chunk), out-of-order ones wait in a small sorted list.
 * Not thread-safe: the caller holds the owning file's lock. */
#ifndef ESCP_DIGEST_H
#define ESCP_DIGEST_H
#include <stdint.h>

typedef struct escp_digest {
  uint8_t stack[64][32];   /* CV stack: at most 64 levels (entries are complete subtrees) */
  uint32_t stack_len;
  uint64_t next_index;     /* blocks folded into the stack so far */
  uint8_t root0[32];       /* block 0 hashed as the whole input (for 1-block files) */
  int have_root0;
  struct escp_digest_pending *pending; /* sorted out-of-order CVs (heap-allocated array) */
  uint32_t pending_len, pending_cap;
} escp_digest;

void escp_digest_init(escp_digest *d);
/* Add the CV of block `index` (0-based). For index 0, `root` must be the block's root hash
 * (escp_b3_block with root != NULL); for others it is ignored and may be NULL.
 * Returns 0, ESCP_E_DUP for an index already added (or inside a subtree added), ESCP_E_NOMEM. */
int escp_digest_add(escp_digest *d, uint64_t index, const uint8_t cv[32], const uint8_t *root);
/* Add the CV of the complete subtree of 2^log2 blocks starting at `index` (a multiple of
 * 2^log2), as the parent merges of its blocks' CVs give it (resume: blocks an earlier run
 * holds). Only for files of more blocks than the subtree (its parent is never the root) and
 * never block 0 of a one-block file. Returns 0, ESCP_E_INVAL (misaligned, log2 > 40),
 * ESCP_E_DUP (overlaps blocks or subtrees already added), ESCP_E_NOMEM. */
int escp_digest_add_tree(escp_digest *d, uint64_t index, uint32_t log2, const uint8_t cv[32]);
/* Final BLAKE3 of a file of `nblocks` blocks (>= 1; an empty file is one empty block).
 * Returns 0, or ESCP_E_DIGEST if some block 0..nblocks-1 was never added or extra ones were. */
int escp_digest_final(escp_digest *d, uint64_t nblocks, uint8_t out[32]);
/* The chaining value (never ROOT-flagged) of the complete subtree the `nblocks` added blocks
 * form (nblocks a power of two; for 1 block: its CV). 0 or ESCP_E_DIGEST as final. */
int escp_digest_cv(escp_digest *d, uint64_t nblocks, uint8_t out[32]);
void escp_digest_free(escp_digest *d);

#endif
