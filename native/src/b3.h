/* b3.h — portable BLAKE3 (official spec, 1 KiB chunks, 64-byte blocks) shaped for escp:
 * a block of a file is hashed on its own as one complete subtree, and per-file results are
 * merged later in block order (digest.h). Results must equal `b3sum` for the whole file.
 * SIMD variants (AVX2 8-lane, AVX-512 16-lane) sit behind the same functions, picked once
 * per process from the CPU (ESCP_B3_SIMD=portable|avx2|avx512 narrows the choice). */
#ifndef ESCP_B3_H
#define ESCP_B3_H
#include <stddef.h>
#include <stdint.h>

#define ESCP_B3_OUT 32
#define ESCP_B3_CHUNK 1024

/* Plain BLAKE3-256 of a buffer (used by tests and small inputs). */
void escp_b3_hash(const void *in, size_t len, uint8_t out[32]);

/* Hash `len` bytes that start at chunk index `chunk_counter` of a larger input, where the
 * block is a complete subtree (chunk_counter is a multiple of a power of two >= the
 * block's chunk count, as file blocks of a power-of-two size are). Writes the non-root
 * chaining value to `cv`. If `root` is non-NULL (only meaningful when chunk_counter == 0),
 * also writes the BLAKE3 hash the input would have if this block were all of it — one extra
 * compression. len 0 is valid (the empty input). */
void escp_b3_block(const void *in, size_t len, uint64_t chunk_counter, uint8_t cv[32], uint8_t *root);

/* Parent node: compress left||right chaining values; is_root sets the ROOT flag. */
void escp_b3_parent(const uint8_t *left, const uint8_t *right, int32_t is_root, uint8_t *out);

/* ---- internal: not exported from libescp.so (hidden visibility); tests and benchmarks.
 * SIMD paths, each a superset of the one before it. */
enum { ESCP_B3_PORTABLE = 0, ESCP_B3_AVX2 = 1, ESCP_B3_AVX512 = 2 };

/* The path escp_b3_block uses now: the best one the CPU supports, lowered by the env var
 * ESCP_B3_SIMD (read once; unknown values and paths the CPU lacks are ignored). */
int escp__b3_path(void);

/* Force `path` for every thread (tests, benchmarks); -1 restores the default above.
 * Returns 0, or -1 (and changes nothing) when the CPU or build lacks that path. Any thread
 * may call it: each escp_b3_block call reads the path once. */
int escp__b3_force(int path);

/* AVX-512F kernel (b3_avx512.c), the 16-lane twin of b3.c's hash8: 16 inputs `stride`
 * bytes apart, `nblocks` 64-byte blocks each, lane j at counter t + j*inc; `flags` on every
 * block, flags_first/flags_last added on the first/last. Writes 16 CVs. If `next` is not
 * NULL it is the first of 16 inputs (same stride and length) the caller hashes later:
 * they are prefetched a line per block, which keeps cold (out-of-cache) input near the hot
 * speed. Call only when escp__b3_path() == ESCP_B3_AVX512. */
void escp__b3_hash16(const uint8_t *p, size_t stride, int nblocks, uint64_t t, uint64_t inc,
                     uint32_t flags, uint32_t flags_first, uint32_t flags_last,
                     uint32_t (*out)[8], const uint8_t *next);

#endif
