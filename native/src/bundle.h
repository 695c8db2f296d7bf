/* bundle.h — small files packed into one DATA frame flagged ESCP_DF_BUNDLE (ESCP_P_BUNDLE,
 * protocol 2.6; escp.h "small files in bundles"). The body format is C-only (both ends are
 * libescp) and little-endian:
 *   header, 16 B:  u32 magic "ESCB" | u32 count (1..ESCP_BUNDLE_FILES_MAX) | u64 0
 *   count records, each:
 *     88 B: u64 dir_fino | u64 size | i64 mtime_s | i64 atime_s | u32 mtime_ns | u32 atime_ns |
 *           u32 mode (07777 bits) | u32 uid | u32 gid | u16 leaf_len | u16 0 | u8 digest[32]
 *     leaf (leaf_len bytes) | data (size bytes) | zero padding to a multiple of 8
 *   nothing after the last record: the body ends exactly there (<= the block size).
 * The receiver checks the whole body (escp__bundle_check) before acting on any record; names
 * (the leaf's contents) are checked per record by the receiver, which fails only that record.
 * Also the queue of per-bundle reports both roles hand to TypeScript (escp_*_bundle_take):
 * whole groups in the escp.h ESCP_BG_* layout, bounded in bytes. */
#ifndef ESCP_BUNDLE_H
#define ESCP_BUNDLE_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ESCP_BUNDLE_MAGIC 0x42435345u /* "ESCB" little-endian */
#define ESCP_BUNDLE_HDR 16
#define ESCP_BUNDLE_REC 88
#define ESCP_BUNDLE_PAD8(n) (((n) + 7u) & ~(size_t)7u)
/* Bytes a record of leaf_len and size takes in a body. */
#define ESCP_BUNDLE_REC_LEN(leaf_len, size) ESCP_BUNDLE_PAD8((size_t)ESCP_BUNDLE_REC + (size_t)(leaf_len) + (size_t)(size))
#define ESCP_REPORTS_MAX (16u << 20) /* bytes of groups ready for take, per role, before a stream waits */

/* One record's header fields (and, when parsed, where its leaf and data lie in the body). */
typedef struct escp_brec {
  uint64_t dir, size;
  int64_t mtime_s, atime_s;
  uint32_t mtime_ns, atime_ns, mode, uid, gid;
  uint16_t leaf_len;
  uint8_t digest[32];
  const uint8_t *leaf, *data;
} escp_brec;

/* Write the 88-byte header of r at out. */
void escp__brec_put(uint8_t out[ESCP_BUNDLE_REC], const escp_brec *r);
/* Write the body header (count records) at out. */
void escp__bundle_hdr_put(uint8_t out[ESCP_BUNDLE_HDR], uint32_t count);
/* The whole body's structure: magic, reserved zeros, count in range, every record header,
 * leaf (1..ESCP_MAX_SEGMENT bytes) and data (<= ESCP_BUNDLE_FILE_MAX) inside the body, mode
 * <= 07777, ns fields < 10^9, zero padding, exact end, len <= block_size. ESCP_OK (with
 * *count) or ESCP_E_PROTO. Reads nothing outside body[0..len). */
int escp__bundle_check(const uint8_t *body, size_t len, uint32_t block_size, uint32_t *count);
/* Record after *pos in a body escp__bundle_check accepted (*pos starts at ESCP_BUNDLE_HDR). */
void escp__bundle_next(const uint8_t *body, size_t *pos, escp_brec *r);

/* ---- ready groups for TypeScript ---- */
typedef struct escp_rq_ent {
  struct escp_rq_ent *next;
  size_t len;
  uint8_t b[]; /* one group: ESCP_BG_HDR then its entries */
} escp_rq_ent;

typedef struct escp_rq {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* take made room, or stop */
  escp_rq_ent *head, *tail;
  size_t bytes;
} escp_rq;

void escp__rq_init(escp_rq *q);
void escp__rq_free(escp_rq *q);
/* A zeroed group of len bytes (ESCP_BG_HDR + entries) with bundle and count filled in, or NULL. */
escp_rq_ent *escp__rq_alloc(size_t len, uint64_t bundle, uint32_t count);
/* Queue e (taken over). Waits while the queue holds ESCP_REPORTS_MAX bytes or more, until take
 * drains it or *stop. Stream threads. */
void escp__rq_push(escp_rq *q, escp_rq_ent *e, const atomic_int *stop);
/* Move whole groups into out (escp.h take): bytes written, 0, or ESCP_E_TOOBIG. JS thread. */
int32_t escp__rq_take(escp_rq *q, uint8_t *out, int32_t cap);
/* Wake a stream waiting in push (stop). */
void escp__rq_wake(escp_rq *q);

#endif
