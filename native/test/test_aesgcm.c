/* test_aesgcm.c — AES-128-GCM backends (crypto.c, aesgcm_vaes.c): known answers from the
 * McGrew–Viega GCM spec, a differential run of the VAES code against OpenSSL's EVP
 * AES-128-GCM (random keys, nonces, AAD 0..64 bytes and now and then up to 1100, lengths
 * weighted to block and vector edges, some past 1 MiB, odd buffer offsets, both
 * directions), single-bit forgeries of ciphertext, tag, AAD and nonce, rekey reuse. The
 * escp_aead_* checks run under the backend this process picked, then again in a child with
 * ESCP_AEAD=openssl.
 * Usage: test_aesgcm [cases]   (default 1000000 differential cases) */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aesgcm.h"
#include "crypto.h"
#include "escp.h"
#include "rng.h"

static int g_pass, g_fail;
#define CHECK(c) check_((c) ? 1 : 0, #c, __LINE__)
static int check_(int ok, const char *expr, int line) {
  if (ok) {
    g_pass++;
  } else if (g_fail++ < 20) {
    fprintf(stderr, "FAIL test_aesgcm.c:%d: %s\n", line, expr);
  }
  return ok;
}

static void unhex(const char *s, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    sscanf(s + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
}

/* ---- OpenSSL reference (one context each way, keyed per call) ---- */
static EVP_CIPHER_CTX *g_oe, *g_od;

static void ref_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t alen, uint8_t *buf,
                     size_t len, uint8_t tag[16]) {
  int n = 0, ok = EVP_EncryptInit_ex(g_oe, NULL, NULL, key, nonce);
  if (ok && alen) ok = EVP_EncryptUpdate(g_oe, NULL, &n, aad, (int)alen);
  if (ok && len) ok = EVP_EncryptUpdate(g_oe, buf, &n, buf, (int)len);
  uint8_t s[16];
  if (ok) ok = EVP_EncryptFinal_ex(g_oe, s, &n);
  if (ok) ok = EVP_CIPHER_CTX_ctrl(g_oe, EVP_CTRL_GCM_GET_TAG, 16, tag) > 0;
  if (!ok) {
    fprintf(stderr, "test_aesgcm: OpenSSL seal failed\n");
    exit(1);
  }
}

/* 1 when the tag verifies (buf then holds the plaintext). */
static int ref_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t alen, uint8_t *buf,
                    size_t len, const uint8_t tag[16]) {
  int n = 0, ok = EVP_DecryptInit_ex(g_od, NULL, NULL, key, nonce);
  if (ok && alen) ok = EVP_DecryptUpdate(g_od, NULL, &n, aad, (int)alen);
  if (ok) ok = EVP_CIPHER_CTX_ctrl(g_od, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) > 0;
  if (ok && len) ok = EVP_DecryptUpdate(g_od, buf, &n, buf, (int)len);
  uint8_t s[16];
  return ok && EVP_DecryptFinal_ex(g_od, s, &n) > 0;
}

/* ---- known answers (McGrew & Viega, "The Galois/Counter Mode of Operation", AES-128
 * test cases 1-4: 96-bit IVs; empty, 16-, 64- and 60-byte plaintexts, the last with AAD) ---- */
typedef struct kat {
  const char *key, *iv, *aad, *pt, *ct, *tag;
} kat;
static const kat g_kats[] = {
    {"00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"00000000000000000000000000000000", "000000000000000000000000", "", "00000000000000000000000000000000",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
     "b16aedf5aa0de657ba637b391aafd255",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa05"
     "1ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
     "b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa05"
     "1ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
};
#define NKATS (sizeof g_kats / sizeof g_kats[0])

/* which: 0 = OpenSSL reference, 1 = escp__gcm_vaes_*, 2 = escp_aead_* */
static void test_kats(int which) {
  for (size_t i = 0; i < NKATS; i++) {
    const kat *v = &g_kats[i];
    size_t alen = strlen(v->aad) / 2, len = strlen(v->pt) / 2;
    uint8_t key[16], iv[12], aad[32], pt[64], ct[64], want[16], buf[64 + 1], tag[16];
    unhex(v->key, key, 16);
    unhex(v->iv, iv, 12);
    unhex(v->aad, aad, alen);
    unhex(v->pt, pt, len);
    unhex(v->ct, ct, len);
    unhex(v->tag, want, 16);
    for (int off = 0; off < 2; off++) { /* aligned and at an odd address */
      uint8_t *b = buf + off;
      memcpy(b, pt, len);
      if (which == 0) {
        ref_seal(key, iv, aad, alen, b, len, tag);
      } else if (which == 1) {
        static escp_gcm_key k;
        escp__gcm_vaes_setkey(&k, key);
        escp__gcm_vaes_seal(&k, iv, aad, alen, b, len, tag);
      } else {
        escp_aead *a = NULL;
        CHECK(escp_aead_new(&a, key, 1) == ESCP_OK);
        if (a) CHECK(escp_aead_seal(a, iv, alen ? aad : NULL, alen, len ? b : NULL, len, tag) == ESCP_OK);
        escp_aead_free(a);
      }
      CHECK(memcmp(b, ct, len) == 0);
      CHECK(memcmp(tag, want, 16) == 0);
      if (which == 0) {
        CHECK(ref_open(key, iv, aad, alen, b, len, tag) && memcmp(b, pt, len) == 0);
      } else if (which == 1) {
        static escp_gcm_key k;
        uint8_t t2[16];
        escp__gcm_vaes_setkey(&k, key);
        escp__gcm_vaes_open(&k, iv, aad, alen, b, len, t2);
        CHECK(memcmp(t2, want, 16) == 0 && memcmp(b, pt, len) == 0);
      } else {
        escp_aead *a = NULL;
        CHECK(escp_aead_new(&a, key, 0) == ESCP_OK);
        if (a) CHECK(escp_aead_open(a, iv, alen ? aad : NULL, alen, len ? b : NULL, len, tag) == ESCP_OK);
        CHECK(memcmp(b, pt, len) == 0);
        escp_aead_free(a);
      }
    }
  }
}

/* Lengths weighted to the edges: around every block and 4-block vector boundary up to
 * 1100, the 32-block step (512) and its multiples, and now and then large ones. */
static size_t pick_len(void) {
  uint64_t r = rnd();
  switch (r % 8) {
  case 0: case 1: case 2: return (size_t)((r >> 8) % 1101);
  case 3: return (size_t)(1 + (r >> 8) % 68) * 16 + (size_t)((r >> 20) % 3) - 1; /* 16k-1 .. 16k+1 */
  case 4: return (size_t)((r >> 8) % 18) * 64 + (size_t)((r >> 20) % 5);       /* 64k .. 64k+4 */
  case 5: { /* 512k-17 .. 512k+17 */
    size_t k = (size_t)(1 + (r >> 8) % 8) * 512, d = (size_t)((r >> 20) % 35);
    return k + d - 17;
  }
  case 6: return (size_t)((r >> 8) % 17);
  default:
    if ((r >> 8) % 256 == 0) return ((size_t)1 << 20) + (size_t)((r >> 20) % 18); /* 1 MiB .. 1 MiB+17 */
    if ((r >> 8) % 16 == 0) return (size_t)((r >> 20) % 70000);
    return (size_t)((r >> 20) % 4200);
  }
}

/* n random cases: the VAES code and OpenSSL must agree on ciphertext and tag; each opens
 * the other's output. Also a share of the cases through escp_aead_* (this process's backend). */
static void test_diff(long n) {
  size_t cap = ((size_t)1 << 20) + 17 + 64;
  uint8_t *pt = malloc(cap), *b1 = malloc(cap + 64), *b2 = malloc(cap + 64), aadb[1100 + 64];
  escp_gcm_key *k = aligned_alloc(64, sizeof *k);
  if (!pt || !b1 || !b2 || !k) exit(1);
  long bad = 0, big = 0;
  for (long i = 0; i < n && bad < 10; i++) {
    uint8_t key[16], nonce[12], t1[16], t2[16];
    fill_random(key, 16);
    fill_random(nonce, 12);
    /* AAD 0..64 bytes (a frame header is 16), one case in 64 longer: several GHASH steps. */
    size_t alen = (size_t)(rnd() % 65), len = pick_len();
    if (rnd() % 64 == 0) alen = (size_t)(rnd() % 1101);
    big += len > 70000;
    size_t o1 = (size_t)(rnd() % 64), o2 = (size_t)(rnd() % 64), oa = (size_t)(rnd() % 64);
    uint8_t *aad = aadb + oa, *x1 = b1 + o1, *x2 = b2 + o2;
    fill_random(aad, alen);
    fill_random(pt, len);
    memcpy(x1, pt, len);
    memcpy(x2, pt, len);
    ref_seal(key, nonce, aad, alen, x1, len, t1);
    escp__gcm_vaes_setkey(k, key);
    escp__gcm_vaes_seal(k, nonce, aad, alen, x2, len, t2);
    int ok = memcmp(x1, x2, len) == 0 && memcmp(t1, t2, 16) == 0;
    if (!ok) {
      fprintf(stderr, "diff case %ld: len %zu aad %zu: ciphertext %s, tag %s\n", i, len, alen,
              memcmp(x1, x2, len) ? "differs" : "same", memcmp(t1, t2, 16) ? "differs" : "same");
      bad++;
      continue;
    }
    /* Ours opens OpenSSL's output (x1); OpenSSL opens ours (x2). */
    escp__gcm_vaes_open(k, nonce, aad, alen, x1, len, t2);
    ok = memcmp(t1, t2, 16) == 0 && memcmp(x1, pt, len) == 0;
    ok = ok && ref_open(key, nonce, aad, alen, x2, len, t1) && memcmp(x2, pt, len) == 0;
    if (!ok) {
      fprintf(stderr, "diff case %ld: len %zu aad %zu: open failed\n", i, len, alen);
      bad++;
    }
  }
  CHECK(bad == 0);
  CHECK(big > 0 || n < 10000);
  free(pt), free(b1), free(b2), free(k);
}

/* The same, through escp_aead_* (whichever backend), n cases, with one long-lived pair of
 * contexts rekeyed per case: rekey reuse. */
static void test_api_diff(long n) {
  size_t cap = ((size_t)1 << 20) + 17 + 64;
  uint8_t *pt = malloc(cap), *b = malloc(cap + 64), *r = malloc(cap + 64), aadb[128];
  escp_aead *e = NULL, *d = NULL;
  uint8_t key0[16] = {0};
  CHECK(escp_aead_new(&e, key0, 1) == ESCP_OK && escp_aead_new(&d, key0, 0) == ESCP_OK);
  if (!pt || !b || !r || !e || !d) exit(1);
  long bad = 0;
  for (long i = 0; i < n && bad < 10; i++) {
    uint8_t key[16], nonce[12], t1[16], t2[16];
    fill_random(key, 16);
    fill_random(nonce, 12);
    size_t alen = (size_t)(rnd() % 65), len = pick_len();
    size_t o = (size_t)(rnd() % 64), oa = (size_t)(rnd() % 64);
    uint8_t *aad = aadb + oa, *x = b + o, *y = r + 3;
    fill_random(aad, alen);
    fill_random(pt, len);
    memcpy(x, pt, len);
    memcpy(y, pt, len);
    int ok = escp_aead_rekey(e, key) == ESCP_OK && escp_aead_rekey(d, key) == ESCP_OK;
    ok = ok && escp_aead_seal(e, nonce, aad, alen, x, len, t1) == ESCP_OK;
    ref_seal(key, nonce, aad, alen, y, len, t2);
    ok = ok && memcmp(x, y, len) == 0 && memcmp(t1, t2, 16) == 0;
    ok = ok && escp_aead_open(d, nonce, aad, alen, x, len, t1) == ESCP_OK && memcmp(x, pt, len) == 0;
    if (!ok) {
      fprintf(stderr, "api case %ld: len %zu aad %zu failed\n", i, len, alen);
      bad++;
    }
  }
  CHECK(bad == 0);
  escp_aead_free(e);
  escp_aead_free(d);
  free(pt), free(b), free(r);
}

/* Every single-bit flip of ciphertext, tag, AAD or nonce fails with ESCP_E_AUTH (and the
 * buffer is wiped); the untouched message still opens afterwards (no state leaks). */
static void test_forgery(void) {
  static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 511, 512, 513, 1000, 4099};
  uint8_t key[16], nonce[12], aad[33], tag[16];
  uint8_t *pt = malloc(4099 + 1), *ct = malloc(4099 + 1), *w = malloc(4099 + 2);
  if (!pt || !ct || !w) exit(1);
  long flips = 0, refused = 0, wiped = 0;
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
    size_t len = lens[li], alen = li % 3 == 0 ? 0 : 13 + li;
    fill_random(key, 16), fill_random(nonce, 12), fill_random(aad, alen), fill_random(pt, len);
    escp_aead *e = NULL, *d = NULL;
    CHECK(escp_aead_new(&e, key, 1) == ESCP_OK && escp_aead_new(&d, key, 0) == ESCP_OK);
    if (!e || !d) exit(1);
    memcpy(ct, pt, len);
    CHECK(escp_aead_seal(e, nonce, alen ? aad : NULL, alen, len ? ct : NULL, len, tag) == ESCP_OK);
    /* Bits: ciphertext (all of it below 1100 bytes, else every 7th), tag, AAD, nonce. */
    size_t nbits = len * 8 + 128 + alen * 8 + 96;
    for (size_t bit = 0; bit < nbits; bit++) {
      if (bit < len * 8 && len > 1100 && bit % 7) continue;
      uint8_t t[16], a[33], nn[12];
      memcpy(t, tag, 16), memcpy(a, aad, alen), memcpy(nn, nonce, 12);
      uint8_t *x = w + 1; /* odd address */
      memcpy(x, ct, len);
      size_t bb = bit;
      if (bb < len * 8) x[bb / 8] ^= (uint8_t)(1u << (bb % 8));
      else if ((bb -= len * 8) < 128) t[bb / 8] ^= (uint8_t)(1u << (bb % 8));
      else if ((bb -= 128) < alen * 8) a[bb / 8] ^= (uint8_t)(1u << (bb % 8));
      else bb -= alen * 8, nn[bb / 8] ^= (uint8_t)(1u << (bb % 8));
      flips++;
      refused += escp_aead_open(d, nn, alen ? a : NULL, alen, len ? x : NULL, len, t) == ESCP_E_AUTH;
      size_t z = 0;
      while (z < len && x[z] == 0) z++;
      wiped += z == len;
    }
    memcpy(w, ct, len);
    CHECK(escp_aead_open(d, nonce, alen ? aad : NULL, alen, len ? w : NULL, len, tag) == ESCP_OK);
    CHECK(memcmp(w, pt, len) == 0);
    escp_aead_free(e);
    escp_aead_free(d);
  }
  CHECK(refused == flips);
  CHECK(wiped == flips);
  free(pt), free(ct), free(w);
  printf("# %ld single-bit forgeries refused (%s)\n", refused, escp__aead_backend());
}

/* Rekey: a context moved to key B and back to A gives A's output again; a context keyed
 * with B from the start agrees with the rekeyed one. */
static void test_rekey(void) {
  uint8_t ka[16], kb[16], nonce[12], aad[16], pt[300], x[300], y[300], ta[16], tb[16], t[16];
  fill_random(ka, 16), fill_random(kb, 16), fill_random(nonce, 12), fill_random(aad, 16), fill_random(pt, 300);
  escp_aead *e = NULL, *d = NULL;
  CHECK(escp_aead_new(&e, ka, 1) == ESCP_OK && escp_aead_new(&d, ka, 0) == ESCP_OK);
  if (!e || !d) exit(1);
  memcpy(x, pt, 300);
  CHECK(escp_aead_seal(e, nonce, aad, 16, x, 300, ta) == ESCP_OK);
  memcpy(y, pt, 300);
  ref_seal(ka, nonce, aad, 16, y, 300, t);
  CHECK(memcmp(x, y, 300) == 0 && memcmp(ta, t, 16) == 0);
  CHECK(escp_aead_rekey(e, kb) == ESCP_OK);
  memcpy(y, pt, 300);
  CHECK(escp_aead_seal(e, nonce, aad, 16, y, 300, tb) == ESCP_OK);
  CHECK(memcmp(ta, tb, 16) != 0);
  uint8_t z[300];
  memcpy(z, pt, 300);
  ref_seal(kb, nonce, aad, 16, z, 300, t);
  CHECK(memcmp(y, z, 300) == 0 && memcmp(tb, t, 16) == 0);
  /* The opener still has key A: B's message fails; rekeyed to B it opens. */
  memcpy(z, y, 300);
  CHECK(escp_aead_open(d, nonce, aad, 16, z, 300, tb) == ESCP_E_AUTH);
  CHECK(escp_aead_rekey(d, kb) == ESCP_OK);
  CHECK(escp_aead_open(d, nonce, aad, 16, y, 300, tb) == ESCP_OK && memcmp(y, pt, 300) == 0);
  CHECK(escp_aead_rekey(e, ka) == ESCP_OK);
  memcpy(y, pt, 300);
  CHECK(escp_aead_seal(e, nonce, aad, 16, y, 300, t) == ESCP_OK);
  CHECK(memcmp(y, x, 300) == 0 && memcmp(t, ta, 16) == 0);
  CHECK(escp_aead_rekey(d, ka) == ESCP_OK);
  CHECK(escp_aead_open(d, nonce, aad, 16, y, 300, t) == ESCP_OK && memcmp(y, pt, 300) == 0);
  /* Argument checks are those of the OpenSSL path. */
  CHECK(escp_aead_seal(d, nonce, aad, 16, y, 300, t) == ESCP_E_INVAL);
  CHECK(escp_aead_open(e, nonce, aad, 16, y, 300, t) == ESCP_E_INVAL);
  CHECK(escp_aead_seal(e, nonce, NULL, 16, y, 300, t) == ESCP_E_INVAL);
  CHECK(escp_aead_rekey(e, NULL) == ESCP_E_INVAL);
  escp_aead_free(e);
  escp_aead_free(d);
}

/* The API checks only (known answers, API differential, forgeries, rekey). */
static void api_checks(long n) {
  test_kats(2);
  test_api_diff(n);
  test_forgery();
  test_rekey();
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  g_oe = EVP_CIPHER_CTX_new(), g_od = EVP_CIPHER_CTX_new();
  if (!g_oe || !g_od || !EVP_EncryptInit_ex(g_oe, EVP_aes_128_gcm(), NULL, NULL, NULL) ||
      !EVP_DecryptInit_ex(g_od, EVP_aes_128_gcm(), NULL, NULL, NULL))
    return 1;
  int child = argc > 1 && strcmp(argv[1], "--api-only") == 0;
  long cases = (!child && argc > 1) ? atol(argv[1]) : 1000000;
  const char *be = escp__aead_backend();
  int t = 0;
  double t0 = now();
  if (child) { /* re-run under ESCP_AEAD=openssl by the parent */
    CHECK(strcmp(be, "openssl") == 0);
    api_checks(20000);
    printf("# child: %d checks, %d failed\n", g_pass + g_fail, g_fail);
    return g_fail ? 1 : 0;
  }
  test_kats(0);
  printf("%s %d - OpenSSL reference gives the GCM spec's known answers\n", g_fail ? "not ok" : "ok", ++t);
  if (escp__gcm_vaes_usable()) {
    test_kats(1);
    printf("%s %d - VAES code gives the GCM spec's known answers (cases 1-4)\n", g_fail ? "not ok" : "ok", ++t);
    test_diff(cases);
    printf("%s %d - VAES code == OpenSSL on %ld random cases (seal; open both ways; odd offsets)\n",
           g_fail ? "not ok" : "ok", ++t, cases);
  } else {
    printf("ok %d # SKIP the CPU lacks VAES/VPCLMULQDQ/AVX-512 F/BW/VL: no VAES comparison\n", ++t);
  }
  api_checks(50000);
  printf("%s %d - escp_aead_* (backend %s): known answers, 50000 cases against EVP with rekey, "
         "forgeries, rekey\n", g_fail ? "not ok" : "ok", ++t, be);
  /* The same checks with the OpenSSL backend forced, in a child (the choice is per process). */
  if (strcmp(be, "openssl") != 0) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      setenv("ESCP_AEAD", "openssl", 1);
      execl("/proc/self/exe", argv[0], "--api-only", (char *)NULL);
      _exit(127);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%s %d - the same under ESCP_AEAD=openssl (child; 20000 cases)\n", g_fail ? "not ok" : "ok", ++t);
  }
  EVP_CIPHER_CTX_free(g_oe);
  EVP_CIPHER_CTX_free(g_od);
  printf("# test_aesgcm: %d checks, %d failed, %.1f s\n", g_pass + g_fail, g_fail, now() - t0);
  return g_fail ? 1 : 0;
}
