/* b3.h — portable BLAKE3 (official spec, 1 KiB chunks, 64-byte blocks) shaped for escp:
 * a block of a file is hashed on its own as one complete subtree, and per-file results are
 * merged later in block order (digest.h). Results must equal `b3sum` for the whole file.
 * SIMD variants (issue 5) plug in behind the same functions. */
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
void escp_b3_parent(const uint8_t left[32], const uint8_t right[32], int is_root, uint8_t out[32]);

#endif
