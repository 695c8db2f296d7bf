/* rdigest.h — the digest of a byte range of a file (shards, issue #17): the range's blocks
 * [first, first+count) cut into maximal aligned power-of-two runs ("subtrees", in order), each
 * run's BLAKE3 chaining value folded from its blocks' CVs (non-root parents), and the range
 * digest = BLAKE3 of the packed subtree list (ESCP_RSUB_* records). Blocks arrive in any order;
 * one escp_digest per subtree lives only while that subtree is filled (at most
 * ESCP_RSUB_MAX of them). Not thread-safe: the caller holds the owning file's lock. */
#ifndef ESCP_RDIGEST_H
#define ESCP_RDIGEST_H
#include <stdint.h>

#include "digest.h"

#define ESCP_RSUB_MAX 128 /* maximal aligned runs of any range of < 2^64 blocks */
/* packed subtree record (48 bytes): u64 first block | u32 log2 | u32 0 | cv[32] */
#define ESCP_RSUB_REC 48

typedef struct escp_rsub {
  uint64_t start;
  uint32_t log2;
  int done;
  uint64_t added;    /* blocks added so far */
  escp_digest *dg;   /* while filling */
  uint8_t cv[32];
} escp_rsub;

typedef struct escp_rdigest {
  uint64_t first, count;
  uint32_t n;
  escp_rsub sub[ESCP_RSUB_MAX];
} escp_rdigest;

/* Cut [first, first+count) (count >= 1) into its subtrees. 0 or ESCP_E_INVAL. */
int escp_rdigest_init(escp_rdigest *r, uint64_t first, uint64_t count);
/* Add block idx's CV, or an aligned run of 2^log2 blocks (held from an earlier run). 0,
 * ESCP_E_RANGE (outside the range or across subtrees), ESCP_E_DUP, ESCP_E_NOMEM. */
int escp_rdigest_add(escp_rdigest *r, uint64_t idx, uint32_t log2, const uint8_t cv[32]);
/* Out-of-order records held by the live subtree trackers. */
uint32_t escp_rdigest_pending(const escp_rdigest *r);
/* Every block in: packed subtrees to packed (n * ESCP_RSUB_REC bytes, capacity
 * ESCP_RSUB_MAX * ESCP_RSUB_REC), *n, and the range digest. 0 or ESCP_E_DIGEST. */
int escp_rdigest_final(escp_rdigest *r, uint8_t *packed, uint32_t *n, uint8_t digest[32]);
void escp_rdigest_free(escp_rdigest *r);

#endif
