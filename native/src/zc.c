/* zc.c — per-stream streaming zstd codec (zc.h has the RAW/reset rule) and the one-shot
 * per-block baseline escp_zstd_block.
 * EScp differs: the original compresses every block as an independent frame; here each
 * stream keeps one zstd session, so a block may refer back into earlier blocks. */
#include "zc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

/* RFC 8878 §3.1.1.2: a zstd block header is 3 bytes. ZSTD_decompressStream's return value
 * is its "next input size" hint: exactly this many bytes when the decoder sits at a clean
 * block boundary inside a frame (nothing of the next block buffered). Our compressor never
 * ends a frame (only flushes), so 0 (frame ended: a last-block flag) is refused as well. */
#define ZC_BLOCK_HDR 3

struct escp_zc {
  ZSTD_CCtx *c;          /* compressor, or NULL */
  ZSTD_DCtx *d;          /* decompressor, or NULL */
  int dirty;             /* c: input fed since the last reset */
  uint32_t skip;         /* c: blocks still to send RAW without trying */
  uint32_t backoff;      /* c: skip length after the next failed try (0 = none yet) */
  uint64_t n[4];         /* ESCP_ZC_N_* (atomic: the profiler may read from another thread) */
  uint64_t tries;        /* c: blocks fed to zstd */
};

static void count(escp_zc *z, int raw, uint64_t plain, uint64_t wire) {
  __atomic_fetch_add(&z->n[raw ? ESCP_ZC_N_RAW : ESCP_ZC_N_ZBLOCKS], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&z->n[ESCP_ZC_N_PLAIN], plain, __ATOMIC_RELAXED);
  __atomic_fetch_add(&z->n[ESCP_ZC_N_WIRE], wire, __ATOMIC_RELAXED);
}

void escp__zc_counts(const void *zv, uint64_t out[4]) {
  const escp_zc *z = zv;
  for (int i = 0; i < 4; i++) out[i] = z ? __atomic_load_n(&z->n[i], __ATOMIC_RELAXED) : 0;
}

uint64_t escp__zc_tries(const void *zv) {
  const escp_zc *z = zv;
  return z ? __atomic_load_n(&z->tries, __ATOMIC_RELAXED) : 0;
}

void *escp__zc_new_wlog(int32_t level, int32_t window_log) {
  if (level < ESCP_ZC_LEVEL_MIN || level > ESCP_ZC_LEVEL_MAX) return NULL;
  if (window_log < 10 || window_log > 27) return NULL;
  escp_zc *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->c = ZSTD_createCCtx();
  /* No zstd checksum: the AEAD tag already authenticates every payload. */
  if (!z->c || ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, level)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_windowLog, window_log)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 0))) {
    escp_zc_free(z);
    return NULL;
  }
  return z;
}

ESCP_API void *escp_zc_new(int32_t level) { return escp__zc_new_wlog(level, ESCP_ZC_WINDOW_LOG); }

ESCP_API void *escp_zc_new_rx(void) {
  escp_zc *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->d = ZSTD_createDCtx();
  if (!z->d || ZSTD_isError(ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax, ESCP_ZC_WINDOW_LOG))) {
    escp_zc_free(z);
    return NULL;
  }
  return z;
}

ESCP_API void escp_zc_free(void *zv) {
  escp_zc *z = zv;
  if (!z) return;
  ZSTD_freeCCtx(z->c);
  ZSTD_freeDCtx(z->d);
  free(z);
}

static void c_reset(escp_zc *z) {
  if (z->dirty) ZSTD_CCtx_reset(z->c, ZSTD_reset_session_only);
  z->dirty = 0;
}

ESCP_API void escp_zc_raw(void *zv) {
  escp_zc *z = zv;
  if (!z) return;
  if (z->c) c_reset(z);
  if (z->d) ZSTD_DCtx_reset(z->d, ZSTD_reset_session_only);
}

/* Largest compressed size still worth sending for `n` plaintext bytes (n <= INT32_MAX). */
static size_t keep_limit(size_t n) { return n * ESCP_ZC_KEEP_NUM / ESCP_ZC_KEEP_DEN; }

/* Feed in[0..n) with ZSTD_e_flush into ob (whose size is the caller's limit). Returns 1 when
 * all of it was consumed and flushed, 0 when ob filled first, <0 ESCP_E_* on a zstd error. */
static int flush_into(ZSTD_CCtx *c, const uint8_t *in, size_t n, ZSTD_outBuffer *ob) {
  ZSTD_inBuffer ib = {in, n, 0};
  for (;;) {
    size_t before = ob->pos + ib.pos;
    size_t r = ZSTD_compressStream2(c, ob, &ib, ZSTD_e_flush);
    if (ZSTD_isError(r))
      return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? ESCP_E_NOMEM : ESCP_E_INVAL;
    if (r == 0 && ib.pos == ib.size) return 1;
    if (ob->pos == ob->size || ob->pos + ib.pos == before) return 0; /* full, or stuck */
  }
}

ESCP_API int32_t escp_zc_compress(void *zv, const uint8_t *in, int32_t n, uint8_t *out, int32_t cap) {
  escp_zc *z = zv;
  if (!z || !z->c || !in || !out || n <= 0 || cap < n) return ESCP_E_INVAL;
  if (n < ESCP_ZC_MIN_TRY || z->skip) { /* too small to gain, or backing off after a RAW result */
    if (n >= ESCP_ZC_MIN_TRY) z->skip--;
    c_reset(z); /* RAW resets, as the receiver will (a no-op while backing off: already clean) */
    count(z, 1, (uint64_t)n, (uint64_t)n);
    return 0;
  }
  __atomic_fetch_add(&z->tries, 1, __ATOMIC_RELAXED);
  z->dirty = 1;
  /* Probe: the first zstd block alone must pass the ratio test, else give up at ~1/8 the
   * cost of a 1 MiB block; it ends exactly where zstd would end a block anyway. */
  size_t un = (size_t)n, probe = un > ESCP_ZC_PROBE ? ESCP_ZC_PROBE : un;
  ZSTD_outBuffer ob = {out, keep_limit(probe), 0};
  int rc = flush_into(z->c, in, probe, &ob);
  if (rc == 1 && probe < un) {
    ob.size = keep_limit(un);
    rc = flush_into(z->c, in + probe, un - probe, &ob);
  }
  if (rc == 1 && ob.pos < keep_limit(un) && ob.pos > 0) {
    z->backoff = 0;
    count(z, 0, un, ob.pos);
    return (int32_t)ob.pos;
  }
  c_reset(z); /* RAW (or error): the decompressor never sees this block, so forget it too */
  if (rc < 0) return rc;
  z->backoff = z->backoff ? (z->backoff * 2 > ESCP_ZC_BACKOFF_MAX ? ESCP_ZC_BACKOFF_MAX : z->backoff * 2) : 1;
  z->skip = z->backoff;
  count(z, 1, un, un);
  return 0;
}

ESCP_API int32_t escp_zc_decompress(void *zv, const uint8_t *in, int32_t clen, uint8_t *out, int32_t n) {
  escp_zc *z = zv;
  if (!z || !z->d || !in || !out || clen < 0 || n < 0) return ESCP_E_INVAL;
  if (clen == 0 || n == 0) return ESCP_E_PROTO; /* both come off the wire: never valid */
  ZSTD_inBuffer ib = {in, (size_t)clen, 0};
  ZSTD_outBuffer ob = {out, (size_t)n, 0};
  size_t r;
  for (;;) { /* stops when input is used up, output is full, or nothing moves */
    size_t before = ib.pos + ob.pos;
    r = ZSTD_decompressStream(z->d, &ob, &ib);
    if (ZSTD_isError(r)) goto bad;
    if (ib.pos == ib.size || ob.pos == ob.size || ib.pos + ob.pos == before) break;
  }
  /* Exactly n out, all input used, and the decoder at a block boundary: a partly buffered
   * next block (the input was longer than this block) is as wrong as leftover input. */
  if (ib.pos != ib.size || ob.pos != ob.size || r != ZC_BLOCK_HDR) goto bad;
  uint8_t extra; /* decoded bytes still buffered inside the decoder: the block was longer */
  ZSTD_outBuffer xb = {&extra, 1, 0};
  ZSTD_inBuffer none = {in, 0, 0};
  r = ZSTD_decompressStream(z->d, &xb, &none);
  if (ZSTD_isError(r) || xb.pos != 0) goto bad;
  count(z, 0, (uint64_t)n, (uint64_t)clen);
  return ESCP_OK;
bad:
  ZSTD_DCtx_reset(z->d, ZSTD_reset_session_only); /* the stream is broken; leave a sane ctx */
  return ESCP_E_PROTO;
}

/* ---- per-block baseline: one independent frame per block, a cached CCtx per thread ---- */
static pthread_key_t blk_key;
static pthread_once_t blk_once = PTHREAD_ONCE_INIT;
static int blk_key_ok;

static void blk_free(void *c) { ZSTD_freeCCtx(c); }
static void blk_init(void) { blk_key_ok = pthread_key_create(&blk_key, blk_free) == 0; }

ESCP_API int32_t escp_zstd_block(const uint8_t *in, int32_t n, uint8_t *out, int32_t cap, int32_t level) {
  if (!in || !out || n <= 0 || cap <= 0 || level < ESCP_ZC_LEVEL_MIN || level > ESCP_ZC_LEVEL_MAX)
    return ESCP_E_INVAL;
  pthread_once(&blk_once, blk_init);
  if (!blk_key_ok) return ESCP_E_NOMEM;
  ZSTD_CCtx *c = pthread_getspecific(blk_key);
  if (!c) {
    if (!(c = ZSTD_createCCtx())) return ESCP_E_NOMEM;
    if (pthread_setspecific(blk_key, c) != 0) {
      ZSTD_freeCCtx(c);
      return ESCP_E_NOMEM;
    }
  }
  size_t r = ZSTD_compressCCtx(c, out, (size_t)cap, in, (size_t)n, level);
  if (!ZSTD_isError(r)) return (int32_t)r;
  switch (ZSTD_getErrorCode(r)) {
  case ZSTD_error_dstSize_tooSmall: return ESCP_E_TOOBIG;
  case ZSTD_error_memory_allocation: return ESCP_E_NOMEM;
  default: return ESCP_E_INVAL;
  }
}
