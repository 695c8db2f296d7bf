/* zc.h — per-stream streaming zstd codec for DATA payloads (ESCP_P_COMPRESS): one
 * compressor per sending stream, one decompressor per receiving stream. Each block is
 * compressed with ZSTD_e_flush, so it decodes given only the earlier blocks of the SAME
 * stream (blocks of one stream arrive in order); the window is bounded on both sides.
 *
 * The RAW rule (both sides must follow it, or the stream desynchronises):
 *   Every block that travels RAW (uncompressed) resets the stream's zstd session.
 *   - Sender: escp_zc_compress returning 0 has already reset its compressor; a block the
 *     sender chooses to send RAW WITHOUT calling escp_zc_compress needs escp_zc_raw(tx).
 *   - Receiver: for every RAW block call escp_zc_raw(rx) (before or after copying it), and
 *     escp_zc_decompress for every compressed one, in stream order.
 *   After a reset the next compressed block starts a new zstd frame with no history.
 *   (Why: a block the compressor tried and gave up on is in its history but was never seen
 *   by the decompressor, so any later back-reference into it would decode garbage.)
 *   The receiver must know each block's plaintext length n and whether it is RAW: the
 *   DATA frame carries both; zc adds no framing of its own.
 *
 * Incompressible data: a block is RAW when its compressed form would not be < 97 % of it
 * (ESCP_ZC_KEEP_NUM/DEN). The compressor aborts early when the first 128 KiB already fail
 * the test, and after a RAW result it skips trying for 1, 2, 4 … 64 blocks (any success
 * sets the backoff back to 0), so random data costs about one 128 KiB probe per 65 blocks.
 * Blocks under ESCP_ZC_MIN_TRY bytes are always RAW (and so reset the history too).
 *
 * Threads: a handle is used by one thread at a time; escp__zc_counts may read it from
 * another thread concurrently (relaxed atomics). The exported API is in escp.h
 * (escp_zc_new / new_rx / free / compress / decompress / raw, escp_zstd_block). */
#ifndef ESCP_ZC_H
#define ESCP_ZC_H
#include <stdint.h>

#include "escp.h"

/* zstd window (log2 bytes) used by the compressor and the most the decompressor accepts
 * (ZSTD_d_windowLogMax), so a peer cannot make a receiver allocate more than about
 * 2^ESCP_ZC_WINDOW_LOG + 256 KiB per stream. Chosen by measurement (see zc.c). */
#define ESCP_ZC_WINDOW_LOG 22
#define ESCP_ZC_LEVEL_MIN 1
#define ESCP_ZC_LEVEL_MAX 19
#define ESCP_ZC_KEEP_NUM 97       /* compressed only if out < in * 97 / 100 */
#define ESCP_ZC_KEEP_DEN 100
#define ESCP_ZC_PROBE (128 * 1024) /* early-abort probe: first zstd block (ZSTD_BLOCKSIZE_MAX) */
#define ESCP_ZC_BACKOFF_MAX 64    /* most blocks skipped after a RAW result */
#define ESCP_ZC_MIN_TRY 64        /* smaller blocks go RAW untried (headers eat any gain); they
                                     neither wait out nor extend the backoff */

typedef struct escp_zc escp_zc; /* the void* handles of escp_zc_* are escp_zc* */

/* escp__zc_counts out[] indexes: blocks and bytes since the handle was made. Bytes PLAIN are
 * block sizes (before compression / after decompression); bytes WIRE are what travels
 * (compressed length, or n for a RAW block). */
enum {
  ESCP_ZC_N_RAW = 0,   /* blocks that went RAW (sender: tried or skipped; receiver: escp_zc_raw) */
  ESCP_ZC_N_ZBLOCKS,   /* blocks compressed (sender) / decompressed OK (receiver) */
  ESCP_ZC_N_PLAIN,     /* plaintext bytes of all those blocks */
  ESCP_ZC_N_WIRE,      /* wire bytes of all those blocks */
};
void escp__zc_counts(const void *z, uint64_t out[4]);

/* Compression attempts (blocks actually fed to zstd) by a compressor; the rest of its RAW
 * blocks were skipped by the backoff. For tests and the profiler. */
uint64_t escp__zc_tries(const void *z);

/* Tests and benchmarks only: a compressor with a chosen window log (10..27) instead of
 * ESCP_ZC_WINDOW_LOG, e.g. to prove the receiver rejects a larger window. */
void *escp__zc_new_wlog(int32_t level, int32_t window_log);

#endif
