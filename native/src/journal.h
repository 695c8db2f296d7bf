/* journal.h — the on-disk format of a resumable partial's block journal (docs/reliability.md).
 *
 * A file of more than one block is written to a hidden partial next to its target, named
 * from the destination name (escp_jrn_names), and described by a journal beside it:
 *   header (128 B): "ESCPJRN1" | u32 version 1 | u32 block size | u64 file size |
 *                   i64 source mtime ns | u64 source inode | u64 partial inode |
 *                   u64 partial device | 56 zero bytes | check[16]
 *   records (48 B): u64 a | 32 bytes | u32 kind | u32 check
 *     kind 1 BLOCK: a = block index, the block's BLAKE3 chaining value (CV)
 *     kind 2 TREE:  a = first block | (log2 << 56), the CV of that aligned subtree of 2^log2 blocks
 *     kind 3 SEAL:  a = partial size, then i64 mtime ns, i64 ctime ns of the partial, 16 zero
 *                   bytes: written when a session ended cleanly with the file unfinished
 *   header.check = BLAKE3(header bytes 0..111)[0..16); record.check = the first 4 bytes of
 *   BLAKE3(header.check || record bytes 0..43), so a record from another journal never passes.
 * A record is appended only after the write of the data it names returned (and after an
 * fdatasync of the partial for a SEAL, or for every group with ESCP_JOURNAL_SYNC=1; an
 * unsealed journal is re-checked against the partial before it is trusted: rx_journal.c),
 * and reading stops at the first record that is short or fails its check (a torn tail).
 * Pure format code: no session state, no threads. */
#ifndef ESCP_JOURNAL_H
#define ESCP_JOURNAL_H
#include <stddef.h>
#include <stdint.h>
#include "escp.h"

#define ESCP_JRN_HDR 128
#define ESCP_JRN_REC 48
#define ESCP_JRN_VERSION 1
#define ESCP_JRN_BLOCK 1
#define ESCP_JRN_TREE 2
#define ESCP_JRN_SEAL 3
/* kind 4 RANGE (issue #17 shards): a = the range's first block, data = u64 block count then
 * 24 zero bytes: the range journal's blocks were all written, made durable (fdatasync of the
 * partial first) and verified against the sender's range digest. */
#define ESCP_JRN_RANGE 4
/* Held blocks one journal may describe that are taken into account (records beyond are
 * ignored, their blocks sent again): bounds the memory a probe needs (40 B each). */
#define ESCP_JRN_MAX_ATOMS ((unsigned)ESCP_RANGE_BLOCKS_MAX) /* escp.h */

/* What a partial is a copy of: the source as the sender announced it, in this block size. */
typedef struct escp_jrn_ident {
  uint64_t size;
  int64_t mtime_ns;
  uint64_t ino;
  uint32_t block_size;
} escp_jrn_ident;

/* A held run: 2^log2 blocks (of the journal's block size) from `start`, and their CV. */
typedef struct escp_jrn_atom {
  uint64_t start;
  uint32_t log2;
  uint8_t cv[32];
} escp_jrn_atom;

typedef struct escp_jrn_state {
  escp_jrn_ident id;
  uint64_t part_ino, part_dev;
  uint8_t check[16];
  escp_jrn_atom *atoms; /* sorted by start, non-overlapping (malloc'd; escp_jrn_state_free) */
  size_t natoms;
  uint64_t end;         /* offset after the last valid record: appends go here */
  int last_kind;        /* kind of the last valid record (0: none) */
  uint64_t seal_size;   /* the SEAL record's values, when last_kind == ESCP_JRN_SEAL */
  int64_t seal_mtime_ns, seal_ctime_ns;
  int range_done;       /* a RANGE record was read: range_first, range_count verified */
  uint64_t range_first, range_count;
} escp_jrn_state;

/* Partial and journal names for destination leaf: ".<leaf>.escp-part" and
 * ".<leaf>.escp-journal", or ".escp-<32 hex of BLAKE3(leaf)>.part"/".journal" when those
 * would pass NAME_MAX. */
void escp_jrn_names(const char *leaf, char part[256], char jrnl[256]);
/* The journal of the range starting at byte `offset` (shards, issue #17): ".<leaf>.escp-journal.<offset>",
 * or ".escp-<32 hex>.journal.<offset>" past NAME_MAX. The prefix every range journal of leaf
 * starts with goes to prefix (".<leaf>.escp-journal." / ".escp-<hex>.journal."). */
void escp_jrn_range_name(const char *leaf, uint64_t offset, char jrnl[256], char prefix[256]);
void escp_jrn_record_range(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint64_t first, uint64_t count);
/* Write the header at offset 0 (pwrite, no sync). 0 or an errno value. */
int escp_jrn_write_header(int jfd, const escp_jrn_ident *id, uint64_t part_ino, uint64_t part_dev,
                          uint8_t check_out[16]);
/* Read and check a journal: 0 (st filled, st->atoms owned by st; *why NULL), or an errno
 * value (EIO with *why set: not a journal, a bad header, no memory). Torn tails are not
 * errors. */
int escp_jrn_read(int jfd, escp_jrn_state *st, const char **why);
void escp_jrn_state_free(escp_jrn_state *st);
/* Encode one record. */
void escp_jrn_record(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint32_t kind, uint64_t a,
                     const uint8_t data[32]);
void escp_jrn_record_tree(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint64_t start, uint32_t log2,
                          const uint8_t cv[32]);
void escp_jrn_record_seal(uint8_t rec[ESCP_JRN_REC], const uint8_t check[16], uint64_t size, int64_t mtime_ns,
                          int64_t ctime_ns);

#endif
