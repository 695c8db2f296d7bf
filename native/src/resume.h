/* resume.h — what a receiver holds of a file from an earlier run, as the ResumeOffer's packed
 * `held` bytes (docs/protocol.md §6), built from a journal (journal.h) by the receiver and
 * checked by the sender before it skips those blocks.
 *
 * Wire layout, little-endian, 128 + 48 x ntrees bytes:
 *   u32 magic "ESCR" | u32 version 1 | u32 ntrees | u32 0 | u64 held blocks | u64 held bytes |
 *   check[2] | trees[ntrees]
 * each check and tree: u64 first block | u8 log2 | 7 zero bytes | cv[32] — the aligned run of
 * 2^log2 blocks (of the session's block size) from `first block`, and its BLAKE3 chaining value.
 * Trees are sorted, disjoint, never include the file's last block (it is always sent, so the
 * digest's root is always computed and a file that grew is still caught), and sum to the held
 * blocks; held bytes = held blocks x block size. check[0] and check[1] are the first and last
 * held runs at the finest grain the receiver knows (each at most 64 MiB): the sender hashes
 * them from its file and refuses the offer unless both match. */
#ifndef ESCP_RESUME_H
#define ESCP_RESUME_H
#include <stddef.h>
#include <stdint.h>
#include "escp.h"
#include "journal.h"

#define ESCP_OFFER_MAGIC 0x52435345u /* "ESCR" little-endian */
#define ESCP_OFFER_VERSION 1
#define ESCP_OFFER_HDR 128
#define ESCP_OFFER_ITEM 48
#define ESCP_OFFER_MAX_TREES 8192     /* held runs offered per file at most (the rest is resent) */
_Static_assert(ESCP_OFFER_HDR + ESCP_OFFER_ITEM * ESCP_OFFER_MAX_TREES == ESCP_OFFER_MAX, "escp.h ESCP_OFFER_MAX");
#define ESCP_FINE_MAX_BYTES (64u << 20) /* a check run reads at most this much */

typedef struct escp_offer {
  uint64_t held_blocks, held_bytes;
  escp_jrn_atom check[2];
  escp_jrn_atom *trees; /* malloc'd; escp_offer_free */
  size_t ntrees;
} escp_offer;

/* Receiver: from a journal's runs (block size bj) to this session's block size bs for a file
 * of `size` bytes: the finest runs in session blocks (*fine, malloc'd: what a rewritten journal
 * records when bj != bs) and the offer (no trees: nothing to offer). ESCP_OK or E_NOMEM. */
int escp_offer_build(const escp_jrn_atom *atoms, size_t n, uint32_t bj, uint64_t size, uint32_t bs,
                     escp_jrn_atom **fine, size_t *nfine, escp_offer *out);
/* Bytes escp_offer_encode writes. */
size_t escp_offer_size(const escp_offer *o);
void escp_offer_encode(const escp_offer *o, uint8_t *out);
/* Sender (and tests): parse and check every rule above for a file of `size` bytes in blocks
 * of bs. ESCP_OK (out->trees malloc'd), ESCP_E_PROTO (why in *why), ESCP_E_NOMEM. */
int escp_offer_decode(const uint8_t *buf, size_t len, uint64_t size, uint32_t bs, escp_offer *out, const char **why);
void escp_offer_free(escp_offer *o);
/* Index of the tree holding block idx, or -1 (trees sorted and disjoint). */
long escp_trees_find(const escp_jrn_atom *t, size_t n, uint64_t idx);
/* CV of the run of 2^log2 whole blocks of bs bytes from block `start`, read from fd (buf holds
 * bs bytes). 0, or an errno value (EIO: the file is shorter). */
int escp_run_cv(int fd, uint64_t start, uint32_t log2, uint32_t bs, uint8_t *buf, uint8_t out[32]);

#endif
