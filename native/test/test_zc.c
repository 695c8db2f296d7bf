/* test_zc.c — unit tests for zc.c, the per-stream streaming zstd codec: round trips over
 * mixed text/random/zero blocks with the RAW/reset rule, rejection of truncated, extended,
 * bit-flipped and wrong-length input, the window bound, level bounds, the backoff on
 * incompressible data, blocks larger than the window, and streaming beating per-block
 * compression on text.
 * Benchmark mode (not run by `make check`): ESCP_ZC_BENCH=<file> ./build/test_zc prints CPU MB/s
 * and ratios for streaming vs per-block, then the CPU overhead on random data. Knobs:
 * ESCP_ZC_BENCH_REPS (best of, 3), ESCP_ZC_BENCH_WLOGS=20,22,… (window sweep),
 * ESCP_ZC_BENCH_RAND_MB (1024). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "b3.h"
#include "check.h"
#include "escp.h"
#include "frame.h"
#include "zc.h"
#include "rng.h"

/* ---------------------------------------------------------------- data */

/* Word-like text: a fixed vocabulary with a skewed choice, short lines, and some lines
 * repeated from a pool (like source code or logs), so history from earlier blocks helps. */
#define VOCAB 4096
static char vocab[VOCAB][12];
static char line_pool[256][96];
static void text_init(void) {
  uint64_t saved = rng_state;
  rng_state = 12345;
  for (int i = 0; i < VOCAB; i++) {
    int len = 2 + (int)(rnd() % 9);
    for (int j = 0; j < len; j++) vocab[i][j] = (char)('a' + rnd() % 26);
    vocab[i][len] = 0;
  }
  for (int i = 0; i < 256; i++) {
    size_t at = 0;
    while (at < 80) {
      const char *w = vocab[rnd() % 64];
      size_t wl = strlen(w);
      memcpy(line_pool[i] + at, w, wl);
      at += wl;
      line_pool[i][at++] = ' ';
    }
    line_pool[i][at - 1] = '\n';
    line_pool[i][at] = 0;
  }
  rng_state = saved;
}
static void fill_text(uint8_t *p, size_t n) {
  size_t at = 0;
  while (at < n) {
    const char *s;
    char word[16];
    if (rnd() % 4 == 0) {
      s = line_pool[rnd() % 256];
    } else {
      uint64_t r = rnd();
      /* skewed: mostly the first few hundred words */
      int w = (int)((r % VOCAB) * ((r >> 32) % VOCAB) / VOCAB);
      snprintf(word, sizeof word, "%s%c", vocab[w], (r >> 20) % 11 == 0 ? '\n' : ' ');
      s = word;
    }
    size_t l = strlen(s);
    if (l > n - at) l = n - at;
    memcpy(p + at, s, l);
    at += l;
  }
}

enum { K_TEXT, K_RANDOM, K_ZERO, K_HALF }; /* K_HALF: random first half, text second */
static void fill_kind(uint8_t *p, size_t n, int kind) {
  switch (kind) {
  case K_TEXT: fill_text(p, n); break;
  case K_RANDOM: fill_random(p, n); break;
  case K_ZERO: memset(p, 0, n); break;
  default:
    fill_random(p, n / 2);
    fill_text(p + n / 2, n - n / 2);
  }
}

/* ---------------------------------------------------------------- helpers */
/* Send one block over the pair the way tx/rx will: compress; RAW -> receiver resets;
 * else decompress into a buffer of exactly n bytes and compare. Returns the wire size. */
static size_t xfer(void *tx, void *rx, const uint8_t *in, int32_t n) {
  uint8_t *z = malloc((size_t)n), *back = malloc((size_t)n);
  CHECK(z && back);
  int32_t c = escp_zc_compress(tx, in, n, z, n);
  CHECK(c >= 0);
  if (c == 0) {
    escp_zc_raw(rx);
    memcpy(back, in, (size_t)n);
  } else {
    CHECK(c < n);
    CHECK_EQ(escp_zc_decompress(rx, z, c, back, n), ESCP_OK);
  }
  CHECK(memcmp(back, in, (size_t)n) == 0);
  free(z);
  free(back);
  return c ? (size_t)c : (size_t)n;
}

/* Compress `count` blocks of `n` bytes from data[] on a fresh compressor; lens[i] gets each
 * result (0 = RAW) and out holds them back to back. Returns the compressor (caller frees). */
static void *compress_seq(const uint8_t *data, int count, int32_t n, uint8_t *out, int32_t *lens) {
  void *tx = escp_zc_new(3);
  CHECK(tx);
  for (int i = 0; i < count; i++) {
    lens[i] = escp_zc_compress(tx, data + (size_t)i * n, n, out, n);
    CHECK(lens[i] >= 0);
    out += lens[i];
  }
  return tx;
}

/* ---------------------------------------------------------------- tests */
static void test_args_levels(void) {
  CHECK(escp_zc_new(0) == NULL);
  CHECK(escp_zc_new(20) == NULL);
  CHECK(escp_zc_new(-3) == NULL);
  escp_zc_free(NULL);
  escp_zc_raw(NULL);
  uint8_t in[4096], out[4096], back[4096];
  fill_text(in, sizeof in);
  for (int lvl = ESCP_ZC_LEVEL_MIN; lvl <= ESCP_ZC_LEVEL_MAX; lvl += 9) { /* 1, 10, 19 */
    void *tx = escp_zc_new(lvl), *rx = escp_zc_new_rx();
    CHECK(tx && rx);
    int32_t c = escp_zc_compress(tx, in, sizeof in, out, sizeof out);
    CHECK(c > 0 && c < (int32_t)sizeof in);
    CHECK_EQ(escp_zc_decompress(rx, out, c, back, sizeof back), ESCP_OK);
    CHECK(memcmp(in, back, sizeof in) == 0);
    /* bad arguments and wrong roles */
    CHECK_EQ(escp_zc_compress(tx, in, sizeof in, out, sizeof in - 1), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_compress(tx, in, 0, out, sizeof out), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_compress(tx, in, -1, out, sizeof out), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_compress(tx, NULL, 10, out, sizeof out), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_compress(tx, in, 10, NULL, sizeof out), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_compress(NULL, in, 10, out, sizeof out), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_compress(rx, in, 10, out, sizeof out), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_decompress(tx, out, c, back, sizeof back), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_decompress(rx, out, -1, back, sizeof back), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_decompress(rx, out, c, back, -1), ESCP_E_INVAL);
    /* zero lengths come off the wire: malformed, not misuse (and the stream stays usable
     * only from a reset, which every E_PROTO does) */
    CHECK_EQ(escp_zc_decompress(rx, out, 0, back, sizeof back), ESCP_E_PROTO);
    CHECK_EQ(escp_zc_decompress(rx, out, c, back, 0), ESCP_E_PROTO);
    CHECK_EQ(escp_zc_decompress(rx, NULL, c, back, 10), ESCP_E_INVAL);
    CHECK_EQ(escp_zc_decompress(rx, out, c, NULL, 10), ESCP_E_INVAL);
    escp_zc_free(tx);
    escp_zc_free(rx);
  }
  /* the per-block baseline: bounds, a too-small cap, and a frame plain zstd decodes */
  CHECK_EQ(escp_zstd_block(in, sizeof in, out, sizeof out, 0), ESCP_E_INVAL);
  CHECK_EQ(escp_zstd_block(in, sizeof in, out, sizeof out, 20), ESCP_E_INVAL);
  CHECK_EQ(escp_zstd_block(in, 0, out, sizeof out, 3), ESCP_E_INVAL);
  CHECK_EQ(escp_zstd_block(in, sizeof in, out, 8, 3), ESCP_E_TOOBIG);
  int32_t c = escp_zstd_block(in, sizeof in, out, sizeof out, 3);
  CHECK(c > 0 && c < (int32_t)sizeof in);
  CHECK_EQ(ZSTD_decompress(back, sizeof back, out, (size_t)c), sizeof in);
  CHECK(memcmp(in, back, sizeof in) == 0);
}

/* Mixed kinds and sizes on one stream pair: RAW results, backoff skips, external RAW
 * blocks and compressed blocks interleave, and the receiver stays in sync throughout. */
static void test_roundtrip_mixed(void) {
  static const int32_t sizes[] = {65536, 1 << 20, 131072, 100003, 1, 7, 262144, 4096, 1 << 20, 65537};
  const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
  uint8_t *buf = malloc(1 << 20);
  CHECK(buf);
  void *tx = escp_zc_new(3), *rx = escp_zc_new_rx();
  CHECK(tx && rx);
  uint64_t plain = 0, wire = 0;
  int nblocks = 0;
  for (int i = 0; i < 400; i++) {
    int32_t n = sizes[(i * 7 + i / 3) % nsizes];
    /* runs of one kind (so backoff engages and recovers) with singles in between */
    int kind = (i / 23) % 4;
    if (i % 11 == 5) kind = (kind + 1 + i % 3) % 4;
    fill_kind(buf, (size_t)n, kind);
    if (i % 37 == 0) { /* the sender sends this block RAW on its own: both sides reset */
      escp_zc_raw(tx);
      escp_zc_raw(rx);
      wire += (uint64_t)n;
    } else {
      wire += xfer(tx, rx, buf, n);
      nblocks++;
    }
    plain += (uint64_t)n;
  }
  uint64_t ct[4], cr[4];
  escp__zc_counts(tx, ct);
  escp__zc_counts(rx, cr);
  CHECK_EQ(ct[ESCP_ZC_N_RAW] + ct[ESCP_ZC_N_ZBLOCKS], nblocks);
  CHECK_EQ(cr[ESCP_ZC_N_ZBLOCKS], ct[ESCP_ZC_N_ZBLOCKS]);
  printf("  mixed 400 blocks: %llu RAW, %llu compressed, %llu tries, wire/plain %.3f\n",
         (unsigned long long)ct[ESCP_ZC_N_RAW], (unsigned long long)ct[ESCP_ZC_N_ZBLOCKS],
         (unsigned long long)escp__zc_tries(tx), (double)wire / (double)plain);
  CHECK(ct[ESCP_ZC_N_ZBLOCKS] > 100 && ct[ESCP_ZC_N_RAW] > 50);
  CHECK(ct[ESCP_ZC_N_WIRE] < ct[ESCP_ZC_N_PLAIN]);
  CHECK(wire < plain);
  CHECK(escp__zc_tries(tx) < (uint64_t)nblocks);
  escp_zc_free(tx);
  escp_zc_free(rx);
  free(buf);
}

/* Random data is RAW with exponential backoff (1, 2, 4 … 64 skipped blocks); text after it
 * compresses again within one backoff period and then every block. */
static void test_backoff(void) {
  const int32_t n = 65536;
  uint8_t *buf = malloc((size_t)n);
  CHECK(buf);
  void *tx = escp_zc_new(3), *rx = escp_zc_new_rx();
  CHECK(tx && rx);
  for (int i = 0; i < 200; i++) {
    fill_random(buf, (size_t)n);
    CHECK_EQ(xfer(tx, rx, buf, n), n);
  }
  /* tries at blocks 0, 2, 5, 10, 19, 36, 69, 134, 199 */
  CHECK_EQ(escp__zc_tries(tx), 9);
  int first_z = -1;
  for (int i = 0; i < 100; i++) {
    fill_text(buf, (size_t)n);
    size_t w = xfer(tx, rx, buf, n);
    if (w < (size_t)n && first_z < 0) first_z = i;
    if (first_z >= 0) CHECK(w < (size_t)n); /* success reset the backoff */
  }
  CHECK(first_z >= 0 && first_z <= ESCP_ZC_BACKOFF_MAX);
  escp_zc_free(tx);
  escp_zc_free(rx);
  free(buf);
}

/* Text streamed on one context must cost fewer bytes than independent per-block frames. */
static void test_stream_beats_block(void) {
  const int32_t n = 1 << 20;
  const int count = 16;
  uint8_t *data = malloc((size_t)n * count), *out = malloc((size_t)n);
  CHECK(data && out);
  fill_text(data, (size_t)n * count);
  void *tx = escp_zc_new(3);
  CHECK(tx);
  uint64_t s = 0, b = 0;
  for (int i = 0; i < count; i++) {
    int32_t c = escp_zc_compress(tx, data + (size_t)i * n, n, out, n);
    CHECK(c > 0);
    s += (uint64_t)c;
    c = escp_zstd_block(data + (size_t)i * n, n, out, n, 3);
    CHECK(c > 0);
    b += (uint64_t)c;
  }
  printf("  text 16 x 1 MiB, level 3: streaming %llu B, per-block %llu B (%.1f%% less)\n",
         (unsigned long long)s, (unsigned long long)b, 100.0 * (double)(b - s) / (double)b);
  CHECK(s < b);
  escp_zc_free(tx);
  free(data);
  free(out);
}

/* Corrupt input for the 3rd block of a stream: rx is brought to that point first each time. */
typedef struct stream3 {
  uint8_t *data, *z;   /* 3 plaintext blocks; compressed blocks back to back */
  int32_t n, lens[3];
} stream3;

static void *rx_at_third(const stream3 *s) {
  void *rx = escp_zc_new_rx();
  CHECK(rx);
  uint8_t *back = malloc((size_t)s->n);
  CHECK(back);
  const uint8_t *z = s->z;
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(escp_zc_decompress(rx, z, s->lens[i], back, s->n), ESCP_OK);
    z += s->lens[i];
  }
  free(back);
  return rx;
}

/* Decompress `in` (clen) as the third block into a buffer of exactly `n` bytes (ASan sees
 * any write past it). Returns the status; *same says whether the output matched. */
static int32_t try_third(const stream3 *s, const uint8_t *in, int32_t clen, int32_t n, int *same) {
  void *rx = rx_at_third(s);
  uint8_t *copy = malloc((size_t)clen), *back = malloc((size_t)n);
  CHECK(copy && back);
  memcpy(copy, in, (size_t)clen);
  int32_t rc = escp_zc_decompress(rx, copy, clen, back, n);
  *same = n == s->n && memcmp(back, s->data + 2 * (size_t)s->n, (size_t)n) == 0;
  escp_zc_free(rx);
  free(copy);
  free(back);
  return rc;
}

static void test_reject(void) {
  stream3 s = {.n = 200000};
  s.data = malloc((size_t)s.n * 3);
  s.z = malloc((size_t)s.n * 3);
  CHECK(s.data && s.z);
  fill_text(s.data, (size_t)s.n * 3);
  escp_zc_free(compress_seq(s.data, 3, s.n, s.z, s.lens));
  CHECK(s.lens[0] > 0 && s.lens[1] > 0 && s.lens[2] > 0);
  const uint8_t *third = s.z + s.lens[0] + s.lens[1];
  int32_t c = s.lens[2];
  int same;
  CHECK_EQ(try_third(&s, third, c, s.n, &same), ESCP_OK);
  CHECK(same);
  /* truncated */
  const int32_t cuts[] = {1, 2, 3, 4, 17, c / 2, c - 3, c - 2, c - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
    CHECK_EQ(try_third(&s, third, cuts[i], s.n, &same), ESCP_E_PROTO);
  /* extended: trailing bytes after a valid block. Exception: 00 00 00 is a complete empty
   * raw zstd block (no output), a valid encoding of the same n bytes, so it decodes. */
  uint8_t *ext = malloc((size_t)c + 64);
  CHECK(ext);
  memcpy(ext, third, (size_t)c);
  const int32_t extra[] = {1, 2, 3, 4, 5, 64};
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
    for (int pat = 0; pat < 3; pat++) {
      for (int32_t j = 0; j < extra[i]; j++) ext[c + j] = pat == 0 ? 0 : pat == 1 ? 0xff : (uint8_t)rnd();
      int32_t rc = try_third(&s, ext, c + extra[i], s.n, &same);
      if (pat == 0 && extra[i] == 3) CHECK(rc == ESCP_OK && same);
      else CHECK_EQ(rc, ESCP_E_PROTO);
    }
  }
  /* the first two blocks back to back handed over as one: too long for n */
  void *rx = escp_zc_new_rx();
  uint8_t *back = malloc((size_t)s.n * 2);
  CHECK(rx && back);
  CHECK_EQ(escp_zc_decompress(rx, s.z, s.lens[0] + s.lens[1], back, s.n), ESCP_E_PROTO);
  escp_zc_free(rx);
  free(back);
  /* wrong n: shorter and longer than the block (exact-size buffers) */
  const int32_t ns[] = {1, s.n / 2, s.n - 1, s.n + 1, s.n * 2};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
    CHECK_EQ(try_third(&s, third, c, ns[i], &same), ESCP_E_PROTO);
  /* bit flips: zstd carries no checksum here (the AEAD tag already covers the payload), so
   * a flip in entropy-coded literals often decodes to other bytes of the right length; the
   * contract is only OK-or-PROTO and never a write out of bounds. Every bit of the first 64
   * bytes (block header, literal header, Huffman table), then random positions. */
  int flips = 0, rejected = 0, undetected = 0;
  for (int32_t i = 0; i < 512 + 600; i++) {
    int32_t bit = i < 512 && i < c * 8 ? i : (int32_t)(rnd() % ((uint64_t)c * 8));
    memcpy(ext, third, (size_t)c);
    ext[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int32_t rc = try_third(&s, ext, c, s.n, &same);
    CHECK(rc == ESCP_OK || rc == ESCP_E_PROTO);
    flips++;
    if (rc == ESCP_E_PROTO) rejected++;
    else if (!same) undetected++;
  }
  printf("  bit flips: %d tried, %d rejected, %d decoded to other bytes of the right length\n",
         flips, rejected, undetected);
  CHECK(rejected > 0 && rejected + undetected <= flips);
  /* first 3 bytes = the block header: every flip there must be caught */
  for (int bit = 0; bit < 24; bit++) {
    memcpy(ext, third, (size_t)c);
    ext[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    CHECK_EQ(try_third(&s, ext, c, s.n, &same), ESCP_E_PROTO);
  }
  free(ext);
  free(s.data);
  free(s.z);
}

/* A compressor with a larger window than ESCP_ZC_WINDOW_LOG declares it in the frame
 * header; the receiver refuses rather than allocating it. A smaller one is fine. */
static void test_window_bound(void) {
  const int32_t n = 1 << 20;
  uint8_t *in = malloc((size_t)n), *z = malloc((size_t)n), *back = malloc((size_t)n);
  CHECK(in && z && back);
  fill_text(in, (size_t)n);
  CHECK(escp__zc_new_wlog(3, 9) == NULL);
  CHECK(escp__zc_new_wlog(3, 28) == NULL);
  for (int wl = ESCP_ZC_WINDOW_LOG - 2; wl <= ESCP_ZC_WINDOW_LOG + 3; wl++) {
    void *tx = escp__zc_new_wlog(3, wl), *rx = escp_zc_new_rx();
    CHECK(tx && rx);
    int32_t c = escp_zc_compress(tx, in, n, z, n);
    CHECK(c > 0);
    int32_t rc = escp_zc_decompress(rx, z, c, back, n);
    CHECK_EQ(rc, wl <= ESCP_ZC_WINDOW_LOG ? ESCP_OK : ESCP_E_PROTO);
    if (rc == ESCP_OK) CHECK(memcmp(in, back, (size_t)n) == 0);
    escp_zc_free(tx);
    escp_zc_free(rx);
  }
  free(in);
  free(z);
  free(back);
}

/* Two independent stream pairs share nothing (one compressor per stream). */
static void test_streams_independent(void) {
  const int32_t n = 65536;
  uint8_t *a = malloc((size_t)n), *b = malloc((size_t)n);
  CHECK(a && b);
  void *t1 = escp_zc_new(3), *r1 = escp_zc_new_rx(), *t2 = escp_zc_new(1), *r2 = escp_zc_new_rx();
  CHECK(t1 && r1 && t2 && r2);
  for (int i = 0; i < 40; i++) {
    fill_kind(a, (size_t)n, i % 5 == 0 ? K_RANDOM : K_TEXT);
    fill_kind(b, (size_t)n, i % 3 == 0 ? K_ZERO : K_HALF);
    xfer(t1, r1, a, n);
    xfer(t2, r2, b, n);
  }
  escp_zc_free(t1);
  escp_zc_free(r1);
  escp_zc_free(t2);
  escp_zc_free(r2);
  free(a);
  free(b);
}

/* Blocks larger than the window (8 MiB > 2^ESCP_ZC_WINDOW_LOG): matches stay inside the
 * window and the receiver's bounded context still decodes them. */
static void test_big_blocks(void) {
  const int32_t n = 8 << 20;
  uint8_t *buf = malloc((size_t)n);
  CHECK(buf);
  void *tx = escp_zc_new(1), *rx = escp_zc_new_rx();
  CHECK(tx && rx);
  for (int i = 0; i < 3; i++) {
    fill_kind(buf, (size_t)n, i == 1 ? K_ZERO : K_TEXT);
    CHECK(xfer(tx, rx, buf, n) < (size_t)n);
  }
  escp_zc_free(tx);
  escp_zc_free(rx);
  free(buf);
}

/* ---------------------------------------------------------------- benchmark mode */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best-of-reps CPU time of per-block, streaming and streaming decompression over `len`
 * bytes of `data` in blocks of `bs` (the machine may be shared: the best run is the one
 * least disturbed). */
static void bench_text(const uint8_t *data, size_t len, int32_t bs, int level, int wlog, int reps) {
  size_t nb = len / (size_t)bs;
  uint8_t *z = malloc((size_t)bs), *back = malloc((size_t)bs);
  int32_t *lens = malloc(nb * sizeof *lens);
  uint8_t *zall = malloc(len);
  CHECK(z && back && lens && zall);
  double tb = 1e9, ts = 1e9, td = 1e9;
  uint64_t bsum = 0, ssum = 0;
  for (int rep = 0; rep < reps; rep++) {
    bsum = 0; /* per-block, RAW under the same 97 % rule */
    double t0 = cpu_s();
    for (size_t i = 0; i < nb; i++) {
      int32_t c = escp_zstd_block(data + i * (size_t)bs, bs, z, bs, level);
      CHECK(c > 0 || c == ESCP_E_TOOBIG);
      bsum += (uint64_t)(c > 0 && c < bs * 97 / 100 ? c : bs);
    }
    double t = cpu_s() - t0;
    if (t < tb) tb = t;
    void *tx = escp__zc_new_wlog(level, wlog); /* streaming */
    CHECK(tx);
    size_t at = 0;
    t0 = cpu_s();
    for (size_t i = 0; i < nb; i++) {
      lens[i] = escp_zc_compress(tx, data + i * (size_t)bs, bs, zall + at, bs);
      CHECK(lens[i] >= 0);
      if (lens[i] == 0) memcpy(zall + at, data + i * (size_t)bs, (size_t)bs);
      at += (size_t)(lens[i] ? lens[i] : bs);
    }
    t = cpu_s() - t0;
    if (t < ts) ts = t;
    ssum = at;
    escp_zc_free(tx);
    if (wlog > ESCP_ZC_WINDOW_LOG) continue; /* the receiver would refuse it */
    void *rx = escp_zc_new_rx();
    CHECK(rx);
    at = 0;
    t0 = cpu_s();
    for (size_t i = 0; i < nb; i++) {
      if (lens[i] == 0) {
        escp_zc_raw(rx);
        at += (size_t)bs;
        continue;
      }
      CHECK_EQ(escp_zc_decompress(rx, zall + at, lens[i], back, bs), ESCP_OK);
      at += (size_t)lens[i];
    }
    t = cpu_s() - t0;
    if (t < td) td = t;
    CHECK(memcmp(back, data + (nb - 1) * (size_t)bs, (size_t)bs) == 0);
    escp_zc_free(rx);
  }
  double mb = (double)(nb * (size_t)bs) / 1e6;
  printf("  L%-2d B=%4d KiB wlog %d: per-block %6.1f MB/s ratio %.3f | streaming %6.1f MB/s ratio %.3f"
         " (%.1f%% fewer bytes) | decomp %6.0f MB/s\n",
         level, bs >> 10, wlog, mb / tb, mb * 1e6 / (double)bsum, mb / ts, mb * 1e6 / (double)ssum,
         100.0 * ((double)bsum - (double)ssum) / (double)bsum, td < 1e9 ? mb / td : 0.0);
  free(z);
  free(back);
  free(lens);
  free(zall);
}

/* CPU of escp_zc_compress over `mb` MiB of random data in blocks of `bs`, against the CPU
 * the no-compression path spends anyway per block (BLAKE3 + AES-GCM seal): a lower bound
 * of that path's cost, so the overhead printed is an upper bound. For comparison: trying
 * every whole block (no probe, no backoff), and probing every block (no backoff). */
static void bench_random(int mb, int32_t bs) {
  const size_t pool = 64u << 20;
  const int nb = (int)(((size_t)mb << 20) / (size_t)bs);
  uint8_t *data = malloc(pool), *z = malloc((size_t)bs + 1024);
  CHECK(data && z);
  fill_random(data, pool);
  uint8_t key[32] = {1}, sid[16] = {2}, challenge[ESCP_CHALLENGE] = {3}, hdr[ESCP_FRAME_HDR], tag[16], cv[32];
  escp_chan ch;
  CHECK_EQ(escp_chan_init(&ch, key, sid, challenge, 1, 1, 1), ESCP_OK);
  double t0 = cpu_s();
  for (int i = 0; i < nb; i++) {
    uint8_t *p = data + ((size_t)i * (size_t)bs) % pool;
    escp_b3_block(p, (size_t)bs, 0, cv, NULL);
    memcpy(z, p, (size_t)bs);
    CHECK_EQ(escp_chan_seal(&ch, ESCP_FT_DATA, 0, hdr, z, (uint32_t)bs, tag), ESCP_OK);
  }
  double tbase = cpu_s() - t0;
  escp_chan_free(&ch);
  static const char *names[] = {"streaming (probe+backoff)", "whole block, every block", "128K probe, every block"};
  for (int mode = 0; mode < 3; mode++) {
    void *tx = escp_zc_new(3);
    CHECK(tx);
    int32_t probe = bs < ESCP_ZC_PROBE ? bs : ESCP_ZC_PROBE;
    t0 = cpu_s();
    for (int i = 0; i < nb; i++) {
      const uint8_t *p = data + ((size_t)i * (size_t)bs) % pool;
      int32_t c = mode == 0 ? escp_zc_compress(tx, p, bs, z, bs)
                : escp_zstd_block(p, mode == 1 ? bs : probe, z, bs + 1024, 3);
      CHECK(c >= 0);
    }
    double tz = cpu_s() - t0;
    printf("  random %d MiB in %d KiB blocks: %-26s %.4f s CPU (%llu tries) vs hash+seal %.3f s -> +%.2f%%\n",
           mb, bs >> 10, names[mode], tz, (unsigned long long)(mode == 0 ? escp__zc_tries(tx) : (uint64_t)nb),
           tbase, 100.0 * tz / tbase);
    escp_zc_free(tx);
  }
  free(data);
  free(z);
}

static void bench(const char *path) {
  FILE *f = fopen(path, "rb");
  CHECK(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  CHECK(len > 0);
  uint8_t *data = malloc((size_t)len);
  CHECK(data && fread(data, 1, (size_t)len, f) == (size_t)len);
  fclose(f);
  printf("bench %s (%ld bytes)\n", path, len);
  const char *rp = getenv("ESCP_ZC_BENCH_REPS");
  int reps = rp && atoi(rp) > 0 ? atoi(rp) : 3;
  const char *wl = getenv("ESCP_ZC_BENCH_WLOGS");
  if (wl) { /* window sweep at level 3, 1 MiB blocks */
    for (const char *p = wl; *p;) {
      int w = (int)strtol(p, (char **)&p, 10);
      bench_text(data, (size_t)len, 1 << 20, 3, w, reps);
      while (*p == ',') p++;
    }
  }
  bench_text(data, (size_t)len, 1 << 20, 3, ESCP_ZC_WINDOW_LOG, reps);
  bench_text(data, (size_t)len, 1 << 16, 3, ESCP_ZC_WINDOW_LOG, reps);
  bench_text(data, (size_t)len, 1 << 22, 3, ESCP_ZC_WINDOW_LOG, reps);
  bench_text(data, (size_t)len, 1 << 20, 1, ESCP_ZC_WINDOW_LOG, reps);
  bench_text(data, (size_t)len, 1 << 20, 9, ESCP_ZC_WINDOW_LOG, 1);
  free(data);
  const char *r = getenv("ESCP_ZC_BENCH_RAND_MB");
  bench_random(r ? atoi(r) : 1024, 1 << 20);
  bench_random(r ? atoi(r) : 1024, 1 << 16);
}

int main(void) {
  text_init();
  const char *b = getenv("ESCP_ZC_BENCH");
  if (b && *b) {
    bench(b);
    return 0;
  }
  test_args_levels();
  test_roundtrip_mixed();
  test_backoff();
  test_stream_beats_block();
  test_reject();
  test_window_bound();
  test_streams_independent();
  test_big_blocks();
  printf("test_zc: all passed\n");
  return 0;
}
