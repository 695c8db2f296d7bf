/* aesgcm_vaes.c — AES-128-GCM on 512-bit vectors: VAES for CTR mode (4 counter blocks per
 * register, 8 registers per step), VPCLMULQDQ for GHASH over 32 blocks per step with one
 * reduction (aggregated: X' = (X + C1)·H^32 + C2·H^31 + ... + C32·H). The functions carry
 * their own target attribute; nothing else in the library is built for AVX-512, and
 * crypto.c only calls here after escp__gcm_vaes_usable(). Constant time by construction:
 * no branch or memory index depends on key, nonce, data or tag (only on the lengths).
 *
 * GHASH representation. A GCM block is a polynomial over GF(2) whose x^0 coefficient is the
 * top bit of byte 0. Byte-reversing the block and reading it as a 128-bit little-endian
 * integer puts x^i at bit 127-i; call the polynomial whose y^j coefficient is bit j the
 * "y form": a(y) = y^127·A(1/y). For two such values a carry-less product p = a·b (255
 * bits) equals y^254·(A·B)(1/y), and with g*(y) = y^128·g(1/y) = 1 + y^121 + y^126 + y^127
 * + y^128 one gets p ≡ y^127·r (mod g*), r the y form of A·B mod g. So
 *     r = p · y^-127 = (a · (b·y)) · y^-128   (mod g*),
 * i.e. a Montgomery product with R = y^128 once one operand is pre-multiplied by y. The
 * table keeps every power of H pre-multiplied by y (H^i·y), which the Montgomery product
 * of two such entries preserves: (H^i y)(H^j y) y^-128 = H^(i+j)·y^-126 = (H^(i+j) y^-127)·y.
 * The reduction (·y^-128 mod g*) cancels the low 128 bits in two 64-bit halves: adding
 * L·g* clears the low half L because g* ≡ 1 (mod y^64), and L·(y^121 + y^126 + y^127) =
 * L·y^64·c with c = y^57 + y^62 + y^63 = 0xc200000000000000 is one 64x64 carry-less product. */
#include "aesgcm.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("aes,pclmul,sse4.1,avx2,avx512f,avx512bw,avx512vl,vaes,vpclmulqdq")))
#define INLINE TARGET __attribute__((always_inline)) static inline

/* Registers of 4 blocks per main-loop step (ESCP_GCM_NPOW blocks). */
#define W (ESCP_GCM_NPOW / 4)

/* CPUID and XGETBV directly (not every compiler's __builtin_cpu_supports knows "vaes"):
 * leaf 1 ECX: PCLMULQDQ (1), SSE4.1 (19), AES (25), OSXSAVE (27); leaf 7 EBX: AVX2 (5),
 * AVX512F (16), AVX512BW (30), AVX512VL (31); ECX: VAES (9), VPCLMULQDQ (10); and the OS
 * must save XMM, YMM, the opmask and both ZMM state components (XCR0 bits 1, 2, 5, 6, 7). */
int escp__gcm_vaes_usable(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const unsigned need1 = 1u << 1 | 1u << 19 | 1u << 25 | 1u << 27;
  if ((c & need1) != need1) return 0;
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned need7b = 1u << 5 | 1u << 16 | 1u << 30 | 1u << 31, need7c = 1u << 9 | 1u << 10;
  if ((b & need7b) != need7b || (c & need7c) != need7c) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  return (lo & 0xe6) == 0xe6;
}

/* ---- GF(2^128), 128-bit lanes ---- */

/* (hi:lo) · y^-128 mod g*: the two-step Montgomery reduction described above. */
INLINE __m128i gf_reduce(__m128i lo, __m128i hi) {
  const __m128i c = _mm_set_epi64x(0, (long long)0xc200000000000000ULL);
  __m128i v = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, c, 0x00));
  __m128i w = _mm_xor_si128(_mm_shuffle_epi32(v, 0x4e), _mm_clmulepi64_si128(v, c, 0x00));
  return _mm_xor_si128(hi, w);
}

INLINE __m128i gf_mul(__m128i a, __m128i b) {
  __m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
  __m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
  __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));
  lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
  hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
  return gf_reduce(lo, hi);
}

/* XOR of the four 128-bit lanes. */
INLINE __m128i lanes_xor(__m512i v) {
  __m256i y = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

/* Byte order reversal within each 16-byte lane (GCM block <-> y form). */
INLINE __m512i rev_mask(void) {
  return _mm512_broadcast_i32x4(_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/* GHASH step over nv registers d[] (GCM byte order, zero past the data) holding nb blocks
 * (nb = 4·nv, or fewer in the last register): X' = (X + D1)·H^nb + ... + D_nb·H. first =
 * ESCP_GCM_NPOW - nb indexes H^nb in the tables, so lane l of register j meets
 * H^(nb - 4j - l). Karatsuba: per block a0·b0, a1·b1 and (a0+a1)·(b0+b1), the middle
 * term corrected once per step (it is linear) with the sums of the other two. */
INLINE __m128i ghash_regs(__m128i x, const __m512i *d, int nv, const escp_gcm_key *k, size_t first, __m512i rev) {
  const __m128i *p = (const __m128i *)k->hpow + first, *q = (const __m128i *)k->hkar + first;
  __m512i lo = _mm512_setzero_si512(), hi = lo, mid = lo;
#pragma GCC unroll 8
  for (int j = 0; j < nv; j++) {
    __m512i v = _mm512_shuffle_epi8(d[j], rev);
    if (j == 0) v = _mm512_xor_si512(v, _mm512_zextsi128_si512(x));
    __m512i h = _mm512_loadu_si512((const void *)(p + 4 * j));
    __m512i hk = _mm512_loadu_si512((const void *)(q + 4 * j));
    lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(v, h, 0x00));
    hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(v, h, 0x11));
    __m512i vk = _mm512_xor_si512(v, _mm512_shuffle_epi32(v, 0x4e)); /* a0+a1 in both halves */
    mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128(vk, hk, 0x00));
  }
  mid = _mm512_ternarylogic_epi64(mid, lo, hi, 0x96);
  lo = _mm512_xor_si512(lo, _mm512_bslli_epi128(mid, 8));
  hi = _mm512_xor_si512(hi, _mm512_bsrli_epi128(mid, 8));
  return gf_reduce(lanes_xor(lo), lanes_xor(hi));
}

/* Mask of the first n (0..64) bytes of a register. */
INLINE __mmask64 bytes_mask(size_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

/* GHASH of len bytes (the AAD), zero-padded to whole blocks, 16 blocks per step. */
INLINE __m128i ghash_bytes(__m128i x, const uint8_t *s, size_t len, const escp_gcm_key *k, __m512i rev) {
  while (len > 0) {
    size_t n = len < 256 ? len : 256;
    size_t nb = (n + 15) / 16, nv = (nb + 3) / 4;
    __m512i d[4];
    for (size_t j = 0; j < nv; j++) {
      size_t left = n - 64 * j;
      d[j] = _mm512_maskz_loadu_epi8(bytes_mask(left), s + 64 * j);
    }
    x = ghash_regs(x, d, (int)nv, k, ESCP_GCM_NPOW - nb, rev);
    s += n;
    len -= n;
  }
  return x;
}

/* ---- AES-128 ---- */

INLINE __m128i ks_step(__m128i k, __m128i assist) {
  assist = _mm_shuffle_epi32(assist, 0xff);
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 8));
  return _mm_xor_si128(k, assist);
}

INLINE __m128i aes_block(const escp_gcm_key *k, __m128i b) {
  b = _mm_xor_si128(b, _mm_load_si128((const __m128i *)k->rk[0]));
  for (int r = 1; r < 10; r++) b = _mm_aesenc_si128(b, _mm_load_si128((const __m128i *)k->rk[r]));
  return _mm_aesenclast_si128(b, _mm_load_si128((const __m128i *)k->rk[10]));
}

TARGET void escp__gcm_vaes_setkey(escp_gcm_key *k, const uint8_t key[16]) {
  __m128i r = _mm_loadu_si128((const __m128i *)key);
  _mm_store_si128((__m128i *)k->rk[0], r);
#define KS(i, rcon)                                                  \
  r = ks_step(r, _mm_aeskeygenassist_si128(r, rcon));                \
  _mm_store_si128((__m128i *)k->rk[i], r)
  KS(1, 0x01);
  KS(2, 0x02);
  KS(3, 0x04);
  KS(4, 0x08);
  KS(5, 0x10);
  KS(6, 0x20);
  KS(7, 0x40);
  KS(8, 0x80);
  KS(9, 0x1b);
  KS(10, 0x36);
#undef KS
  /* H = E_K(0) in y form, times y (a 1-bit shift left, folding y^128 back as g* - y^128). */
  __m128i h = aes_block(k, _mm_setzero_si128());
  h = _mm_shuffle_epi8(h, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  __m128i top = _mm_srai_epi32(_mm_shuffle_epi32(h, 0xff), 31); /* all ones when bit 127 is set */
  __m128i sh = _mm_or_si128(_mm_slli_epi64(h, 1), _mm_srli_epi64(_mm_slli_si128(h, 8), 63));
  __m128i h1 = _mm_xor_si128(sh, _mm_and_si128(top, _mm_set_epi64x((long long)0xc200000000000000ULL, 1)));
  __m128i *tbl = (__m128i *)k->hpow;
  __m128i p = h1;
  _mm_store_si128(&tbl[ESCP_GCM_NPOW - 1], p);
  for (int i = 2; i <= ESCP_GCM_NPOW; i++) {
    p = gf_mul(p, h1);
    _mm_store_si128(&tbl[ESCP_GCM_NPOW - i], p);
  }
  for (int i = ESCP_GCM_NPOW; i < ESCP_GCM_NPOW + 4; i++) _mm_store_si128(&tbl[i], _mm_setzero_si128());
  __m128i *kt = (__m128i *)k->hkar;
  for (int i = 0; i < ESCP_GCM_NPOW + 4; i++) {
    __m128i v = _mm_load_si128(&tbl[i]);
    _mm_store_si128(&kt[i], _mm_xor_si128(v, _mm_shuffle_epi32(v, 0x4e)));
  }
}

/* Ten rounds over nv registers of counter blocks. */
#define AES_REGS(s, nv, K)                                                              \
  do {                                                                                  \
    _Pragma("GCC unroll 8") for (int j_ = 0; j_ < (nv); j_++) s[j_] = _mm512_xor_si512(s[j_], K[0]); \
    _Pragma("GCC unroll 9") for (int r_ = 1; r_ < 10; r_++) {                          \
      _Pragma("GCC unroll 8") for (int j_ = 0; j_ < (nv); j_++) s[j_] = _mm512_aesenc_epi128(s[j_], K[r_]); \
    }                                                                                   \
    _Pragma("GCC unroll 8") for (int j_ = 0; j_ < (nv); j_++) s[j_] = _mm512_aesenclast_epi128(s[j_], K[10]); \
  } while (0)

INLINE void gcm(const escp_gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len, uint8_t *buf,
                size_t len, uint8_t tag[16], const int enc) {
  const __m512i rev = rev_mask();
  /* Counter blocks are kept with their 32-bit counter as a native integer (dword 3) so a
   * vector add steps them (mod 2^32, as GCM's inc32); cswap turns it big-endian. */
  const __m512i cswap =
      _mm512_broadcast_i32x4(_mm_set_epi8(12, 13, 14, 15, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
  const __m512i inc4 = _mm512_set_epi32(4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0);
  const __m128i *tbl = (const __m128i *)k->hpow;
  __m512i K[11];
  for (int i = 0; i < 11; i++) K[i] = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)k->rk[i]));

  uint8_t j0b[16];
  memcpy(j0b, nonce, 12);
  j0b[12] = 0, j0b[13] = 0, j0b[14] = 0, j0b[15] = 1;
  const __m128i j0 = _mm_loadu_si128((const __m128i *)j0b);
  /* The first data block uses counter 2 (J0 + 1); lanes take 2, 3, 4, 5. */
  __m512i ctr = _mm512_add_epi32(_mm512_broadcast_i32x4(_mm_insert_epi32(j0, 2, 3)),
                                 _mm512_set_epi32(3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0));

  __m128i x = ghash_bytes(_mm_setzero_si128(), aad, aad_len, k, rev);

  size_t off = 0;
  /* Main loop, 64·W bytes per step. Sealing hashes the previous step's ciphertext while
   * this step's counter blocks go through AES (no dependency between the two); opening
   * hashes its input as it comes. */
  if (len >= 64 * W) {
    __m512i d[W];
    int have = 0;
    while (len - off >= 64 * W) {
      __m512i s[W];
#pragma GCC unroll 8
      for (int j = 0; j < W; j++) {
        s[j] = _mm512_shuffle_epi8(ctr, cswap);
        ctr = _mm512_add_epi32(ctr, inc4);
      }
      if (enc && have) x = ghash_regs(x, d, W, k, 0, rev);
      AES_REGS(s, W, K);
#pragma GCC unroll 8
      for (int j = 0; j < W; j++) {
        __m512i in = _mm512_loadu_si512((const void *)(buf + off + 64 * j));
        __m512i out = _mm512_xor_si512(in, s[j]);
        _mm512_storeu_si512((void *)(buf + off + 64 * j), out);
        d[j] = enc ? out : in;
      }
      if (!enc) x = ghash_regs(x, d, W, k, 0, rev);
      have = 1;
      off += 64 * W;
    }
    if (enc) x = ghash_regs(x, d, W, k, 0, rev);
  }
  /* The rest (under 64·W bytes): up to 16 blocks per step, masked at the end. */
  while (off < len) {
    size_t n = len - off < 256 ? len - off : 256;
    size_t nb = (n + 15) / 16, nv = (nb + 3) / 4;
    __m512i s[4], d[4];
    for (size_t j = 0; j < nv; j++) {
      s[j] = _mm512_shuffle_epi8(ctr, cswap);
      ctr = _mm512_add_epi32(ctr, inc4);
    }
    AES_REGS(s, (int)nv, K);
    for (size_t j = 0; j < nv; j++) {
      __mmask64 m = bytes_mask(n - 64 * j);
      __m512i in = _mm512_maskz_loadu_epi8(m, buf + off + 64 * j);
      __m512i out = _mm512_xor_si512(in, s[j]);
      out = _mm512_maskz_mov_epi8(m, out); /* zero past the data: GHASH pads with zeros */
      _mm512_mask_storeu_epi8(buf + off + 64 * j, m, out);
      d[j] = enc ? out : in;
    }
    x = ghash_regs(x, d, (int)nv, k, ESCP_GCM_NPOW - nb, rev);
    off += n;
  }
  /* Lengths block: bit lengths of AAD and text, big-endian, which in y form is simply
   * (aad bits : text bits) as two little-endian quadwords. */
  __m128i lens = _mm_set_epi64x((long long)((uint64_t)aad_len * 8), (long long)((uint64_t)len * 8));
  x = gf_mul(_mm_xor_si128(x, lens), _mm_load_si128(&tbl[ESCP_GCM_NPOW - 1]));
  __m128i t = _mm_xor_si128(_mm_shuffle_epi8(x, _mm512_castsi512_si128(rev)), aes_block(k, j0));
  _mm_storeu_si128((__m128i *)tag, t);
}

TARGET void escp__gcm_vaes_seal(const escp_gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                                uint8_t *buf, size_t len, uint8_t tag[16]) {
  gcm(k, nonce, aad, aad_len, buf, len, tag, 1);
}

TARGET void escp__gcm_vaes_open(const escp_gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                                uint8_t *buf, size_t len, uint8_t tag[16]) {
  gcm(k, nonce, aad, aad_len, buf, len, tag, 0);
}
