/* bench_aead.c — single-thread AES-128-GCM throughput (not a test): OpenSSL EVP the way
 * crypto.c drives it, libgcrypt's gcry_cipher GCM, and escp_aead_* (whichever backend
 * crypto.c selects; ESCP_AEAD=openssl forces OpenSSL). In place, 12-byte nonce, 16-byte
 * AAD, 16-byte tag; 1 MiB and 16 KiB messages unless sizes are given. Each figure is the
 * median of RUNS timed runs of about MS milliseconds each.
 * Usage: bench_aead [runs [ms [bytes...]]]; BENCH_ONLY=openssl|gcrypt|escp picks one. */
#include <gcrypt.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "escp.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_aead: %s failed\n", what);
  exit(1);
}

static const uint8_t g_key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t g_nonce[12];
static uint8_t g_aad[16];
static uint8_t g_tag[16];

/* One message of len bytes at buf; mode 1 seals, 0 opens (the tag from the last seal). */
typedef void (*op_fn)(void *ctx, uint8_t *buf, size_t len);

static void ossl_seal(void *c, uint8_t *buf, size_t len) {
  EVP_CIPHER_CTX *x = c;
  int n = 0;
  if (!EVP_EncryptInit_ex(x, NULL, NULL, NULL, g_nonce) || !EVP_EncryptUpdate(x, NULL, &n, g_aad, 16) ||
      !EVP_EncryptUpdate(x, buf, &n, buf, (int)len) || !EVP_EncryptFinal_ex(x, g_tag, &n) ||
      EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, g_tag) <= 0)
    die("openssl seal");
}
static void ossl_open(void *c, uint8_t *buf, size_t len) {
  EVP_CIPHER_CTX *x = c;
  int n = 0;
  uint8_t s[16];
  if (!EVP_DecryptInit_ex(x, NULL, NULL, NULL, g_nonce) || !EVP_DecryptUpdate(x, NULL, &n, g_aad, 16) ||
      EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, g_tag) <= 0 ||
      !EVP_DecryptUpdate(x, buf, &n, buf, (int)len) || EVP_DecryptFinal_ex(x, s, &n) <= 0)
    die("openssl open");
}
static void gc_seal(void *c, uint8_t *buf, size_t len) {
  gcry_cipher_hd_t h = c;
  if (gcry_cipher_setiv(h, g_nonce, 12) || gcry_cipher_authenticate(h, g_aad, 16) ||
      gcry_cipher_final(h) || gcry_cipher_encrypt(h, buf, len, NULL, 0) || gcry_cipher_gettag(h, g_tag, 16))
    die("gcrypt seal");
}
static void gc_open(void *c, uint8_t *buf, size_t len) {
  gcry_cipher_hd_t h = c;
  if (gcry_cipher_setiv(h, g_nonce, 12) || gcry_cipher_authenticate(h, g_aad, 16) ||
      gcry_cipher_final(h) || gcry_cipher_decrypt(h, buf, len, NULL, 0) || gcry_cipher_checktag(h, g_tag, 16))
    die("gcrypt open");
}
static void escp_seal(void *c, uint8_t *buf, size_t len) {
  if (escp_aead_seal(c, g_nonce, g_aad, 16, buf, len, g_tag) != ESCP_OK) die("escp seal");
}
static void escp_open(void *c, uint8_t *buf, size_t len) {
  if (escp_aead_open(c, g_nonce, g_aad, 16, buf, len, g_tag) != ESCP_OK) die("escp open");
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* GB/s (1e9 bytes/s), median of runs. Seal then open alternate so every open verifies. */
static void measure(const char *name, op_fn seal, void *sc, op_fn open, void *oc, size_t len, int runs, double ms) {
  uint8_t *buf = aligned_alloc(64, len);
  if (!buf) die("alloc");
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(i * 131 + 7);
  double gs[64], go[64];
  for (int r = 0; r < runs; r++) {
    double ts = 0, to = 0;
    size_t bytes = 0;
    double end = now() + ms * 1e-3;
    while (now() < end) {
      for (int k = 0; k < 8; k++) {
        g_nonce[0]++;
        double t0 = now();
        seal(sc, buf, len);
        double t1 = now();
        open(oc, buf, len);
        double t2 = now();
        ts += t1 - t0;
        to += t2 - t1;
        bytes += len;
      }
    }
    gs[r] = (double)bytes / ts * 1e-9;
    go[r] = (double)bytes / to * 1e-9;
  }
  qsort(gs, (size_t)runs, sizeof gs[0], cmp_d);
  qsort(go, (size_t)runs, sizeof go[0], cmp_d);
  printf("%-8s %8zu B  seal %6.2f GB/s  open %6.2f GB/s  (min..max seal %.2f..%.2f, open %.2f..%.2f)\n", name, len,
         gs[runs / 2], go[runs / 2], gs[0], gs[runs - 1], go[0], go[runs - 1]);
  fflush(stdout);
  free(buf);
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 7;
  double ms = argc > 2 ? atof(argv[2]) : 300;
  if (runs < 1) runs = 1;
  if (runs > 64) runs = 64;
  const char *only = getenv("BENCH_ONLY"); /* openssl | gcrypt | escp: one implementation */

  EVP_CIPHER_CTX *oe = EVP_CIPHER_CTX_new(), *od = EVP_CIPHER_CTX_new();
  if (!oe || !od || !EVP_EncryptInit_ex(oe, EVP_aes_128_gcm(), NULL, g_key, NULL) ||
      !EVP_DecryptInit_ex(od, EVP_aes_128_gcm(), NULL, g_key, NULL))
    die("openssl init");
  if (!gcry_check_version(NULL)) die("gcry_check_version");
  gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
  gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
  gcry_cipher_hd_t ge, gd;
  if (gcry_cipher_open(&ge, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_GCM, 0) || gcry_cipher_setkey(ge, g_key, 16) ||
      gcry_cipher_open(&gd, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_GCM, 0) || gcry_cipher_setkey(gd, g_key, 16))
    die("gcrypt init");
  escp_aead *ee = NULL, *ed = NULL;
  if (escp_aead_new(&ee, g_key, 1) != ESCP_OK || escp_aead_new(&ed, g_key, 0) != ESCP_OK) die("escp init");

  printf("bench_aead: %d runs of %.0f ms each, median GB/s (1e9 B/s), gcrypt %s, escp backend %s\n", runs, ms,
         gcry_check_version(NULL), escp__aead_backend());
  size_t sizes[32] = {(size_t)1 << 20, (size_t)16 << 10};
  int nsizes = 2;
  if (argc > 3) {
    nsizes = 0;
    for (int i = 3; i < argc && nsizes < 32; i++) {
      long v = atol(argv[i]);
      if (v < 1 || v > (1L << 30)) die("size (1 .. 1 GiB)");
      sizes[nsizes++] = (size_t)v;
    }
  }
  for (int s = 0; s < nsizes; s++) {
    if (!only || !strcmp(only, "openssl")) measure("openssl", ossl_seal, oe, ossl_open, od, sizes[s], runs, ms);
    if (!only || !strcmp(only, "gcrypt")) measure("gcrypt", gc_seal, ge, gc_open, gd, sizes[s], runs, ms);
    if (!only || !strcmp(only, "escp")) measure("escp", escp_seal, ee, escp_open, ed, sizes[s], runs, ms);
  }
  escp_aead_free(ee);
  escp_aead_free(ed);
  gcry_cipher_close(ge);
  gcry_cipher_close(gd);
  EVP_CIPHER_CTX_free(oe);
  EVP_CIPHER_CTX_free(od);
  return 0;
}
