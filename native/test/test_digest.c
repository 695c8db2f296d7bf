/* test_digest.c — BLAKE3 (b3.c, b3_avx512.c) against the official test vectors and b3sum on
 * every SIMD path the CPU has, the paths against each other, ESCP_B3_SIMD, and the any-order
 * per-file digest merger (digest.c) against one-shot hashing; ends with an informational
 * benchmark per path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "b3.h"
#include "digest.h"
#include "escp.h"

static int g_fail, g_pass;
static const char *const PATH_NAME[] = {"portable", "avx2", "avx512"};
static const char *g_path_name = "default"; /* the SIMD path under test, for messages */

#define CHECK(cond, ...)              \
  do {                                \
    if (cond) {                       \
      g_pass++;                       \
    } else {                          \
      g_fail++;                       \
      printf("FAIL %s:%d [%s]: ", __FILE__, __LINE__, g_path_name); \
      printf(__VA_ARGS__);            \
      printf("\n");                   \
    }                                 \
  } while (0)

static void to_hex(const uint8_t h[32], char out[65]) {
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", h[i]);
}

/* splitmix64 byte stream: deterministic, and easy to mirror in a script for b3sum. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (size_t k = 0; k < 8 && i + k < n; k++) p[i + k] = (uint8_t)(z >> (8 * k));
  }
}

/* Input byte i = i % 251. All but 63/64/65 are the official BLAKE3 vectors: the first 32
 * bytes of `hash` in test_vectors/test_vectors.json of BLAKE3-team/BLAKE3 (checked digit by
 * digit, and against b3sum 1.2.0). 63/64/65 (around one 64-byte block) are from b3sum. */
static const struct { size_t len; const char *hex; } VEC[] = {
    {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
    {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
    {63, "e9bc37a594daad83be9470df7f7b3798297c3d834ce80ba85d6e207627b7db7b"},
    {64, "4eed7141ea4a5cd4b788606bd23f46e212af9cacebacdc7d1f4c6dc7f2511b98"},
    {65, "de1e5fa0be70df6d2be8fffd0e99ceaa8eb6e8c93a63f2d8d1c30ecb6b263dee"},
    {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
    {1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
    {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
    {2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
    {2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
    {3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
    {3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"},
    {4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"},
    {4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"},
    {5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"},
    {5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"},
    {6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"},
    {6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"},
    {7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"},
    {7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"},
    {8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63"},
    {8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
    {16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
    {31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
    {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
};

/* Expected b3sum of fill_random(len, seed 1): large inputs exercise the 64-chunk groups,
 * the lazy stack inside a block and (7 MiB + 17) a partial last chunk. */
static const struct { size_t len; const char *hex; } RVEC[] = {
    {65536, "4d7465c093899d3dd3fdfa494a39fb63edb5c3130f7d9ce917f0cd73305650f0"},
    {1048576 * 3 + 17, "7327c212210b0f1a12150e6e76208c01f42ec1255025c81731df132637fbde32"},
    {1048576 * 7 + 1041, "1b89bed4c83a4557ead99e7464955cd3f77987929dc935c413310d27caddce8f"},
};

static void test_vectors(void) {
  uint8_t *buf = malloc(102400), h[32];
  char hex[65];
  for (size_t i = 0; i < 102400; i++) buf[i] = (uint8_t)(i % 251);
  for (size_t v = 0; v < sizeof VEC / sizeof VEC[0]; v++) {
    escp_b3_hash(buf, VEC[v].len, h);
    to_hex(h, hex);
    CHECK(strcmp(hex, VEC[v].hex) == 0, "len %zu: got %s want %s", VEC[v].len, hex, VEC[v].hex);
  }
  free(buf);
  for (size_t v = 0; v < sizeof RVEC / sizeof RVEC[0]; v++) {
    uint8_t *r = malloc(RVEC[v].len);
    fill_random(r, RVEC[v].len, 1);
    escp_b3_hash(r, RVEC[v].len, h);
    to_hex(h, hex);
    CHECK(strcmp(hex, RVEC[v].hex) == 0, "random len %zu: got %s want %s", RVEC[v].len, hex,
          RVEC[v].hex);
    free(r);
  }
}

/* Digest of buf cut into blocks of bs bytes, added in the order given by `order`. */
static int digest_blocks(const uint8_t *buf, size_t len, size_t bs, const uint64_t *order,
                         uint64_t nb, uint8_t out[32]) {
  escp_digest d;
  escp_digest_init(&d);
  int rc = 0;
  for (uint64_t k = 0; k < nb && rc == 0; k++) {
    uint64_t i = order[k];
    size_t off = (size_t)i * bs, n = len - off < bs ? len - off : bs;
    uint8_t cv[32], root[32];
    escp_b3_block(buf + off, n, off / ESCP_B3_CHUNK, cv, i == 0 ? root : NULL);
    rc = escp_digest_add(&d, i, cv, i == 0 ? root : NULL);
  }
  if (rc == 0) rc = escp_digest_final(&d, nb, out);
  escp_digest_free(&d);
  return rc;
}

static void test_merge(void) {
  static const size_t BS[] = {65536, 131072, 1048576};
  uint64_t rng = 12345;
  for (size_t b = 0; b < 3; b++) {
    size_t B = BS[b];
    size_t sizes[] = {0, B - 1, B, B + 1, 2 * B, 3 * B + 17, 7 * B};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t len = sizes[s];
      uint64_t nb = len == 0 ? 1 : (len + B - 1) / B;
      uint8_t *buf = malloc(len ? len : 1), want[32], got[32];
      uint64_t order[8];
      fill_random(buf, len, len + B);
      escp_b3_hash(buf, len, want);
      for (int mode = 0; mode < 3; mode++) { /* forward, reverse, shuffled */
        for (uint64_t i = 0; i < nb; i++) order[i] = mode == 1 ? nb - 1 - i : i;
        for (uint64_t i = nb; mode == 2 && i > 1; i--) {
          rng = rng * 6364136223846793005ull + 1442695040888963407ull;
          uint64_t j = (rng >> 33) % i, t = order[i - 1];
          order[i - 1] = order[j];
          order[j] = t;
        }
        int rc = digest_blocks(buf, len, B, order, nb, got);
        CHECK(rc == 0 && memcmp(got, want, 32) == 0, "B=%zu len=%zu mode=%d rc=%d", B, len, mode,
              rc);
      }
      free(buf);
    }
  }
}

/* Larger out-of-order windows: 64 blocks of 64 KiB, every permutation pattern we can think
 * of cheaply (interleaved stripes as T streams would deliver them). */
static void test_stripes(void) {
  size_t B = 65536, len = 64 * B - 5;
  uint64_t nb = 64, order[64];
  uint8_t *buf = malloc(len), want[32], got[32];
  fill_random(buf, len, 99);
  escp_b3_hash(buf, len, want);
  for (uint64_t T = 2; T <= 8; T *= 2) {
    uint64_t k = 0;
    for (uint64_t s = T; s-- > 0;) /* stream s delivers s, s+T, ...; last stream first */
      for (uint64_t i = s; i < nb; i += T) order[k++] = i;
    int rc = digest_blocks(buf, len, B, order, nb, got);
    CHECK(rc == 0 && memcmp(got, want, 32) == 0, "stripes T=%llu rc=%d", (unsigned long long)T, rc);
  }
  free(buf);
}

static void test_errors(void) {
  uint8_t cv[32], root[32], out[32], out2[32];
  escp_digest d;
  escp_b3_block("abc", 3, 0, cv, root);

  escp_digest_init(&d);
  CHECK(escp_digest_add(&d, 0, cv, root) == 0, "add 0");
  CHECK(escp_digest_add(&d, 0, cv, root) == ESCP_E_DUP, "dup of folded block 0");
  CHECK(escp_digest_add(&d, 3, cv, NULL) == 0, "add 3 early");
  CHECK(escp_digest_add(&d, 3, cv, NULL) == ESCP_E_DUP, "dup of pending block 3");
  CHECK(escp_digest_final(&d, 4, out) == ESCP_E_DIGEST, "missing blocks 1,2");
  CHECK(escp_digest_add(&d, 1, cv, NULL) == 0, "add 1");
  CHECK(escp_digest_final(&d, 4, out) == ESCP_E_DIGEST, "missing block 2");
  CHECK(escp_digest_add(&d, 2, cv, NULL) == 0, "add 2 drains 3");
  CHECK(escp_digest_add(&d, 3, cv, NULL) == ESCP_E_DUP, "dup after drain");
  CHECK(escp_digest_final(&d, 4, out) == 0, "complete");
  CHECK(escp_digest_final(&d, 4, out2) == 0 && memcmp(out, out2, 32) == 0, "final repeatable");
  CHECK(escp_digest_final(&d, 3, out) == ESCP_E_DIGEST, "extra folded block");
  CHECK(escp_digest_final(&d, 0, out) == ESCP_E_INVAL, "nblocks 0");
  CHECK(escp_digest_add(&d, 9, cv, NULL) == 0, "add 9 far ahead");
  CHECK(escp_digest_final(&d, 4, out) == ESCP_E_DIGEST, "extra pending block");
  escp_digest_free(&d);

  escp_digest_init(&d);
  CHECK(escp_digest_final(&d, 1, out) == ESCP_E_DIGEST, "nothing added");
  CHECK(escp_digest_add(&d, 0, cv, NULL) == ESCP_E_INVAL, "block 0 without root");
  CHECK(escp_digest_add(&d, 0, cv, root) == 0, "add 0 with root");
  CHECK(escp_digest_final(&d, 1, out) == 0 && memcmp(out, root, 32) == 0, "1-block = root0");
  escp_digest_free(&d);
  escp_digest_free(&d); /* double free is harmless */

  /* escp_b3_parent(.., is_root) matches the two-chunk one-shot hash. */
  uint8_t two[2048], l[32], r[32], p[32], want[32];
  fill_random(two, sizeof two, 7);
  escp_b3_block(two, 1024, 0, l, NULL);
  escp_b3_block(two + 1024, 1024, 1, r, NULL);
  escp_b3_parent(l, r, 1, p);
  escp_b3_hash(two, sizeof two, want);
  CHECK(memcmp(p, want, 32) == 0, "parent root of 2 chunks");
}

/* CV of the aligned subtree of 2^lg blocks at `at`, from its blocks' CVs (cvs[i] = block i). */
static void subtree_cv(uint8_t (*cvs)[32], uint64_t at, uint32_t lg, uint8_t out[32]) {
  if (lg == 0) {
    memcpy(out, cvs[at], 32);
    return;
  }
  uint8_t l[32], r[32];
  subtree_cv(cvs, at, lg - 1, l);
  subtree_cv(cvs, at + ((uint64_t)1 << (lg - 1)), lg - 1, r);
  escp_b3_parent(l, r, 0, out);
}

/* Resume: held runs of a file enter as whole subtrees (any aligned 2^k blocks that stop short
 * of the last block), the rest block by block in a shuffled order; the digest must equal the
 * one-shot hash. Also the overlap refusals. */
static void test_trees(void) {
  size_t B = 65536;
  uint64_t rng = 777;
  for (uint64_t nb = 2; nb <= 37; nb++) {
    for (int tail = 0; tail < 2; tail++) { /* last block full, or 1 byte */
      size_t len = (size_t)(nb - 1) * B + (tail ? 1 : B);
      uint8_t *buf = malloc(len), want[32], got[32], root[32];
      uint8_t (*cvs)[32] = malloc(nb * 32);
      fill_random(buf, len, nb * 3 + (uint64_t)tail);
      escp_b3_hash(buf, len, want);
      for (uint64_t i = 0; i < nb; i++) {
        size_t off = (size_t)i * B, n = len - off < B ? len - off : B;
        escp_b3_block(buf + off, n, off / ESCP_B3_CHUNK, cvs[i], i == 0 ? root : NULL);
      }
      for (int round = 0; round < 6; round++) {
        /* Greedy random cover of blocks 0..nb-2: a subtree, or a single block to send. */
        uint64_t items[64][2]; /* (start, lg or 99 = a sent block) */
        int n = 0;
        for (uint64_t i = 0; i + 1 < nb;) {
          rng = rng * 6364136223846793005ull + 1442695040888963407ull;
          uint32_t lg = (uint32_t)((rng >> 40) % 4);
          while (lg > 0 && ((i & (((uint64_t)1 << lg) - 1)) != 0 || i + ((uint64_t)1 << lg) > nb - 1)) lg--;
          int sent = ((rng >> 20) & 3) == 0;
          if (sent) lg = 0;
          items[n][0] = i;
          items[n][1] = sent ? 99 : lg;
          n++;
          i += (uint64_t)1 << lg;
        }
        items[n][0] = nb - 1;
        items[n][1] = 99; /* the last block is always sent */
        n++;
        for (int k = n; k > 1; k--) { /* shuffle */
          rng = rng * 6364136223846793005ull + 1442695040888963407ull;
          int j = (int)((rng >> 33) % (uint64_t)k);
          uint64_t a = items[k - 1][0], b = items[k - 1][1];
          items[k - 1][0] = items[j][0], items[k - 1][1] = items[j][1];
          items[j][0] = a, items[j][1] = b;
        }
        escp_digest d;
        escp_digest_init(&d);
        int rc = 0;
        for (int k = 0; k < n && rc == 0; k++) {
          uint64_t at = items[k][0];
          if (items[k][1] == 99) {
            rc = escp_digest_add(&d, at, cvs[at], at == 0 ? root : NULL);
          } else {
            uint8_t cv[32];
            subtree_cv(cvs, at, (uint32_t)items[k][1], cv);
            rc = escp_digest_add_tree(&d, at, (uint32_t)items[k][1], cv);
          }
        }
        if (rc == 0) rc = escp_digest_final(&d, nb, got);
        escp_digest_free(&d);
        CHECK(rc == 0 && memcmp(got, want, 32) == 0, "trees nb=%llu tail=%d round=%d rc=%d", (unsigned long long)nb, tail, round, rc);
      }
      free(cvs);
      free(buf);
    }
  }
  uint8_t cv[32] = {1};
  escp_digest d;
  escp_digest_init(&d);
  CHECK(escp_digest_add_tree(&d, 4, 2, cv) == 0, "tree 4..7 early");
  CHECK(escp_digest_add(&d, 5, cv, NULL) == ESCP_E_DUP, "block inside a pending tree");
  CHECK(escp_digest_add_tree(&d, 6, 1, cv) == ESCP_E_DUP, "tree inside a pending tree");
  CHECK(escp_digest_add_tree(&d, 0, 3, cv) == ESCP_E_DUP, "tree over a pending tree");
  CHECK(escp_digest_add_tree(&d, 2, 2, cv) == ESCP_E_INVAL, "misaligned tree");
  CHECK(escp_digest_add_tree(&d, 0, 41, cv) == ESCP_E_INVAL, "tree too large");
  CHECK(escp_digest_add(&d, 3, cv, NULL) == 0, "block 3 next to it");
  CHECK(escp_digest_add_tree(&d, 0, 1, cv) == 0, "tree 0..1 folds");
  CHECK(escp_digest_add(&d, 1, cv, NULL) == ESCP_E_DUP, "block inside a folded tree");
  CHECK(escp_digest_add(&d, 2, cv, NULL) == 0, "block 2 drains 3 and 4..7");
  CHECK(d.next_index == 8 && d.pending_len == 0, "all folded");
  escp_digest_free(&d);
}

/* ---------------------------------------------------------------- b3sum, paths, env */

/* Files hashed by the b3sum binary once, then compared with every path: a partial last
 * chunk past several 256-chunk groups, a power of two above a group, one whole group. */
static const size_t B3SUM_LEN[] = {4 * 1048576 + 1041, 4 * 1048576, 262144};
static char g_b3sum_hex[3][65]; /* "" when b3sum is unavailable or failed */

static int b3sum_file(const uint8_t *buf, size_t len, char out[65]) {
  const char *dir = getenv("TMPDIR");
  char path[512], cmd[600];
  snprintf(path, sizeof path, "%s/escp_test_b3_XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  int ok = write(fd, buf, len) == (ssize_t)len;
  close(fd);
  snprintf(cmd, sizeof cmd, "b3sum --no-names '%s'", path);
  FILE *f = ok ? popen(cmd, "r") : NULL;
  ok = f && fscanf(f, "%64s", out) == 1 && strlen(out) == 64;
  if (f) ok = pclose(f) == 0 && ok;
  unlink(path);
  return ok ? 0 : -1;
}

static void b3sum_prepare(void) {
  if (system("command -v b3sum >/dev/null 2>&1") != 0) {
    printf("note: b3sum not found, skipping the b3sum comparison\n");
    return;
  }
  for (size_t v = 0; v < 3; v++) {
    uint8_t *r = malloc(B3SUM_LEN[v]);
    fill_random(r, B3SUM_LEN[v], 1000 + v);
    if (b3sum_file(r, B3SUM_LEN[v], g_b3sum_hex[v]) != 0) {
      g_b3sum_hex[v][0] = 0;
      printf("note: b3sum failed on a %zu-byte file, skipping it\n", B3SUM_LEN[v]);
    }
    free(r);
  }
}

static void test_b3sum(void) {
  for (size_t v = 0; v < 3; v++) {
    if (!g_b3sum_hex[v][0]) continue;
    uint8_t *r = malloc(B3SUM_LEN[v]), h[32];
    char hex[65];
    fill_random(r, B3SUM_LEN[v], 1000 + v);
    escp_b3_hash(r, B3SUM_LEN[v], h);
    to_hex(h, hex);
    CHECK(strcmp(hex, g_b3sum_hex[v]) == 0, "b3sum len %zu: got %s want %s", B3SUM_LEN[v], hex,
          g_b3sum_hex[v]);
    free(r);
  }
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 17;
}

/* Every available path gives the same escp_b3_block CV (and root, at counter 0) for random
 * lengths and aligned chunk counters, including counters past 2^32 and unaligned ones that
 * cross 2^32 inside a 16-lane batch (each lane carries into the high counter word). */
static void test_cross_paths(void) {
  int paths[3], np = 0;
  for (int p = 0; p < 3; p++)
    if (escp__b3_force(p) == 0) paths[np++] = p;
  size_t max = 3 * 1048576 + 4096;
  uint8_t *buf = malloc(max);
  fill_random(buf, max, 42);
  uint64_t rng = 777;
  for (int it = 0; it < 240; it++) {
    size_t len;
    switch (it % 4) {
      case 0: len = lcg(&rng) % 4200; break;                      /* around one chunk */
      case 1: len = (lcg(&rng) % 1025) * ESCP_B3_CHUNK; break;    /* whole chunks */
      case 2: len = (size_t)1 << (10 + lcg(&rng) % 12); break;   /* 1 KiB .. 2 MiB */
      default: len = lcg(&rng) % (3 * 1048576); break;
    }
    if (it % 8 == 2) len += lcg(&rng) % 3 - 1; /* power of two +-1 */
    uint64_t chunks = len ? (len + ESCP_B3_CHUNK - 1) / ESCP_B3_CHUNK : 1, align = 1;
    while (align < chunks) align *= 2;
    uint64_t t0;
    switch (it % 5) {
      case 0: t0 = 0; break;
      case 1: t0 = (lcg(&rng) % 4096) * align; break;
      case 2: t0 = ((1ull << 32) / align + lcg(&rng) % 64) * align; break; /* high word */
      case 3: t0 = ((1ull << 52) / align - 1 - lcg(&rng) % 64) * align; break;
      default: t0 = (1ull << 32) - 1 - lcg(&rng) % 40; break; /* unaligned, crosses 2^32 */
    }
    size_t off = (size_t)(lcg(&rng) % (max - len + 1));
    uint8_t cv[3][32], root[3][32];
    for (int k = 0; k < np; k++) {
      escp__b3_force(paths[k]);
      escp_b3_block(buf + off, len, t0, cv[k], t0 == 0 ? root[k] : NULL);
    }
    for (int k = 1; k < np; k++)
      CHECK(memcmp(cv[k], cv[0], 32) == 0 && (t0 || memcmp(root[k], root[0], 32) == 0),
            "%s vs %s: len %zu counter %llu off %zu", PATH_NAME[paths[k]], PATH_NAME[paths[0]],
            len, (unsigned long long)t0, off);
  }
  escp__b3_force(-1);
  free(buf);
}

/* ESCP_B3_SIMD, read once per process: run this program again with it set. */
static void test_env(void) {
  char self[4096], cmd[4300], got[32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    printf("note: no /proc/self/exe, skipping the ESCP_B3_SIMD test\n");
    return;
  }
  self[n] = 0;
  int best = ESCP_B3_PORTABLE;
  for (int p = 1; p < 3; p++)
    if (escp__b3_force(p) == 0) best = p;
  escp__b3_force(-1);
  static const struct { const char *val; int want; } C[] = {
      {"portable", ESCP_B3_PORTABLE}, {"avx2", ESCP_B3_AVX2}, {"avx512", ESCP_B3_AVX512},
      {"AVX512", 99}, {"sse9", 99}, {"", 99}, {NULL, 99}, /* 99: ignored, the CPU's best */
  };
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    int want = C[i].want < best ? C[i].want : best; /* never a path the CPU lacks */
    if (C[i].val)
      snprintf(cmd, sizeof cmd, "ESCP_B3_SIMD='%s' '%s' --print-b3-path", C[i].val, self);
    else
      snprintf(cmd, sizeof cmd, "env -u ESCP_B3_SIMD '%s' --print-b3-path", self);
    FILE *f = popen(cmd, "r");
    int ok = f && fgets(got, sizeof got, f) != NULL;
    if (f) ok = pclose(f) == 0 && ok;
    CHECK(ok && atoi(got) == want, "ESCP_B3_SIMD=%s: path %s, want %d", C[i].val ? C[i].val : "(unset)",
          ok ? got : "?", want);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Informational only: throughput of escp_b3_block over one (hot) 1 MiB block, per path. */
static void bench(void) {
  size_t B = 1 << 20;
  uint8_t *buf = malloc(B), cv[32], acc = 0;
  fill_random(buf, B, 3);
  for (int p = 0; p < 3; p++) {
    if (escp__b3_force(p) != 0) continue;
    uint64_t n = p == ESCP_B3_PORTABLE ? 32 : 128;
    double t = now_s();
    for (uint64_t i = 0; i < n; i++) {
      escp_b3_block(buf, B, i * (B / ESCP_B3_CHUNK), cv, NULL);
      acc ^= cv[0];
    }
    t = now_s() - t;
    printf("bench: escp_b3_block 1 MiB blocks, %s: %.0f MB/s (x%02x)\n", PATH_NAME[p],
           (double)n * B / t / 1e6, acc);
  }
  escp__b3_force(-1);
  free(buf);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--print-b3-path") == 0) { /* for test_env */
    printf("%d\n", escp__b3_path());
    return 0;
  }
  b3sum_prepare();
  for (int p = 0; p < 3; p++) { /* every test that hashes, once per SIMD path */
    if (escp__b3_force(p) != 0) {
      printf("note: %s path skipped: not in this CPU (or build)\n", PATH_NAME[p]);
      continue;
    }
    g_path_name = PATH_NAME[p];
    int fails = g_fail;
    test_vectors();
    test_b3sum();
    test_merge();
    test_stripes();
    test_trees();
    printf("path %s: %s\n", PATH_NAME[p], g_fail == fails ? "ok" : "FAILED");
  }
  escp__b3_force(-1);
  g_path_name = "default";
  test_cross_paths();
  test_env();
  test_errors();
  bench();
  printf("test_digest: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
