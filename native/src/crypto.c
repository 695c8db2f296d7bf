/* crypto.c — AES-128-GCM in place, and HKDF-SHA256 (EVP_KDF) for the per-connection key
 * schedule in crypto.h. Two AEAD backends, the same bytes on the wire: on CPUs with VAES,
 * VPCLMULQDQ and AVX-512 F/BW/VL, our own vector AES-GCM (aesgcm_vaes.c, about 4x OpenSSL
 * 3.0 per core, which does not use VAES; make bench-aead); elsewhere one reusable OpenSSL 3
 * EVP context per escp_aead. Chosen once per process at first use; ESCP_AEAD=openssl
 * forces OpenSSL. Hot path (seal/open per 1 MiB block) allocates nothing. */
#include "crypto.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "aesgcm.h"
#include "escp.h"

struct escp_aead {
  EVP_CIPHER_CTX *ctx; /* OpenSSL backend; NULL with gk */
  escp_gcm_key *gk;    /* VAES backend (64-byte aligned, wiped on free); NULL with ctx */
  int encrypt;         /* 1: a sealing context (EVP_Encrypt*), 0: an opening one */
};

/* Backend, decided once: 1 = VAES (aesgcm_vaes.c), 0 = OpenSSL. */
static pthread_once_t g_backend_once = PTHREAD_ONCE_INIT;
static int g_backend_vaes;

static void backend_pick(void) {
  const char *e = getenv("ESCP_AEAD");
  g_backend_vaes = (e && strcmp(e, "openssl") == 0) ? 0 : escp__gcm_vaes_usable();
}

const char *escp__aead_backend(void) {
  pthread_once(&g_backend_once, backend_pick);
  return g_backend_vaes ? "vaes" : "openssl";
}

/* EVP_*Update take an int length; feed larger buffers in 1 GiB pieces so a u32 body_len
 * above INT_MAX cannot be truncated. */
#define ESCP_EVP_CHUNK ((size_t)1 << 30)

int escp_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                     const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len) {
  if (!ikm || !out || out_len == 0 || (salt_len && !salt) || (info_len && !info)) return ESCP_E_INVAL;
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  if (!kdf) return ESCP_E_CRYPTO;
  EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf); /* the context holds its own reference */
  if (!kctx) return ESCP_E_NOMEM;
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
  /* An absent salt means HashLen zero bytes (RFC 5869 2.2), which is OpenSSL's default. */
  if (salt_len) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
  if (info_len) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
  params[n] = OSSL_PARAM_construct_end();
  int ok = EVP_KDF_derive(kctx, out, out_len, params) > 0;
  EVP_KDF_CTX_free(kctx); /* also cleanses its copy of the key material */
  if (!ok) {
    OPENSSL_cleanse(out, out_len);
    return ESCP_E_CRYPTO;
  }
  return ESCP_OK;
}

int escp_kdf_chan_secret(const uint8_t session_key[32], const uint8_t session_id[16],
                         const uint8_t challenge[ESCP_CHALLENGE], uint32_t dir, uint32_t stream,
                         uint8_t out[ESCP_CHAN_SECRET]) {
  if (!session_key || !session_id || !challenge || !out) return ESCP_E_INVAL;
  if (dir != ESCP_DIR_S2R && dir != ESCP_DIR_R2S) return ESCP_E_INVAL;
  uint8_t salt[16 + ESCP_CHALLENGE]; /* session_id || challenge */
  memcpy(salt, session_id, 16);
  memcpy(salt + 16, challenge, ESCP_CHALLENGE);
  /* Longest: "escp/2 r2s stream 4294967295" = 28 chars. */
  char info[40];
  int n = snprintf(info, sizeof info, "escp/2 %s stream %" PRIu32, dir == ESCP_DIR_S2R ? "s2r" : "r2s", stream);
  if (n < 0 || (size_t)n >= sizeof info) return ESCP_E_INVAL;
  return escp_hkdf_sha256(session_key, 32, salt, sizeof salt, (const uint8_t *)info, (size_t)n, out,
                          ESCP_CHAN_SECRET);
}

int escp_kdf_epoch_key(const uint8_t secret[ESCP_CHAN_SECRET], uint64_t epoch, uint8_t out[ESCP_AES_KEY]) {
  if (!secret || !out) return ESCP_E_INVAL;
  /* Longest: "epoch 18446744073709551615" = 26 chars. */
  char info[32];
  int n = snprintf(info, sizeof info, "epoch %" PRIu64, epoch);
  if (n < 0 || (size_t)n >= sizeof info) return ESCP_E_INVAL;
  return escp_hkdf_sha256(secret, ESCP_CHAN_SECRET, NULL, 0, (const uint8_t *)info, (size_t)n, out, ESCP_AES_KEY);
}

/* Load a key (and, on first use, the cipher) into the context for the aead's direction. */
static int aead_init(escp_aead *a, const EVP_CIPHER *cipher, const uint8_t key[ESCP_AES_KEY]) {
  int ok = a->encrypt ? EVP_EncryptInit_ex(a->ctx, cipher, NULL, key, NULL)
                      : EVP_DecryptInit_ex(a->ctx, cipher, NULL, key, NULL);
  return ok ? ESCP_OK : ESCP_E_CRYPTO;
}

int escp_aead_new(escp_aead **out, const uint8_t key[ESCP_AES_KEY], int encrypt) {
  if (!out || !key) return ESCP_E_INVAL;
  *out = NULL;
  pthread_once(&g_backend_once, backend_pick);
  escp_aead *a = calloc(1, sizeof *a);
  if (!a) return ESCP_E_NOMEM;
  a->encrypt = encrypt ? 1 : 0;
  if (g_backend_vaes) {
    a->gk = aligned_alloc(64, sizeof *a->gk);
    if (!a->gk) {
      free(a);
      return ESCP_E_NOMEM;
    }
    escp__gcm_vaes_setkey(a->gk, key);
    *out = a;
    return ESCP_OK;
  }
  a->ctx = EVP_CIPHER_CTX_new();
  if (!a->ctx) {
    free(a);
    return ESCP_E_NOMEM;
  }
  /* Fetch once here; the context keeps its own reference, so later rekeys and per-message
   * IV resets pass cipher = NULL and never fetch again. */
  EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
  int rc = cipher ? aead_init(a, cipher, key) : ESCP_E_CRYPTO;
  EVP_CIPHER_free(cipher);
  /* 12-byte IV is GCM's default; set it explicitly so the nonce layout is pinned here. */
  if (rc == ESCP_OK && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_IVLEN, ESCP_NONCE, NULL) <= 0)
    rc = ESCP_E_CRYPTO;
  if (rc != ESCP_OK) {
    escp_aead_free(a);
    return rc;
  }
  *out = a;
  return ESCP_OK;
}

int escp_aead_rekey(escp_aead *a, const uint8_t key[ESCP_AES_KEY]) {
  if (!a || !key) return ESCP_E_INVAL;
  if (a->gk) {
    escp__gcm_vaes_setkey(a->gk, key); /* overwrites every byte of the old schedule */
    return ESCP_OK;
  }
  return aead_init(a, NULL, key);
}

/* Feed AAD (out == NULL) or in-place body bytes through the already-IV'd context. */
static int aead_update(escp_aead *a, uint8_t *out, const uint8_t *in, size_t len) {
  while (len > 0) {
    size_t piece = len < ESCP_EVP_CHUNK ? len : ESCP_EVP_CHUNK;
    int outl = 0;
    int ok = a->encrypt ? EVP_EncryptUpdate(a->ctx, out, &outl, in, (int)piece)
                        : EVP_DecryptUpdate(a->ctx, out, &outl, in, (int)piece);
    if (!ok) return ESCP_E_CRYPTO;
    in += piece;
    if (out) out += piece;
    len -= piece;
  }
  return ESCP_OK;
}

/* Per message: only reset the IV (cipher and key stay loaded), then feed the AAD. */
static int aead_start(escp_aead *a, const uint8_t nonce[ESCP_NONCE], const uint8_t *aad, size_t aad_len) {
  int ok = a->encrypt ? EVP_EncryptInit_ex(a->ctx, NULL, NULL, NULL, nonce)
                      : EVP_DecryptInit_ex(a->ctx, NULL, NULL, NULL, nonce);
  if (!ok) return ESCP_E_CRYPTO;
  return aead_update(a, NULL, aad, aad_len);
}

int escp_aead_seal(escp_aead *a, const uint8_t nonce[ESCP_NONCE], const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, uint8_t tag[ESCP_TAG]) {
  if (!a || !a->encrypt || !nonce || !tag || (aad_len && !aad) || (len && !buf)) return ESCP_E_INVAL;
  if (a->gk) {
    if ((uint64_t)len > ESCP_GCM_MAX_LEN) return ESCP_E_CRYPTO;
    escp__gcm_vaes_seal(a->gk, nonce, aad, aad_len, buf, len, tag);
    return ESCP_OK;
  }
  int rc = aead_start(a, nonce, aad, aad_len);
  if (rc == ESCP_OK) rc = aead_update(a, buf, buf, len);
  uint8_t scratch[ESCP_TAG]; /* GCM final emits no bytes; never point past a NULL buf */
  int outl = 0;
  if (rc == ESCP_OK && !EVP_EncryptFinal_ex(a->ctx, scratch, &outl)) rc = ESCP_E_CRYPTO;
  if (rc == ESCP_OK && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, ESCP_TAG, tag) <= 0)
    rc = ESCP_E_CRYPTO;
  return rc;
}

int escp_aead_open(escp_aead *a, const uint8_t nonce[ESCP_NONCE], const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, const uint8_t tag[ESCP_TAG]) {
  if (!a || a->encrypt || !nonce || !tag || (aad_len && !aad) || (len && !buf)) return ESCP_E_INVAL;
  if (a->gk) {
    if ((uint64_t)len > ESCP_GCM_MAX_LEN) return ESCP_E_CRYPTO;
    uint8_t want[ESCP_TAG];
    escp__gcm_vaes_open(a->gk, nonce, aad, aad_len, buf, len, want);
    int bad = CRYPTO_memcmp(want, tag, ESCP_TAG) != 0; /* constant time */
    OPENSSL_cleanse(want, sizeof want);
    if (!bad) return ESCP_OK;
    if (len) OPENSSL_cleanse(buf, len); /* unauthenticated plaintext: wipe it, as below */
    return ESCP_E_AUTH;
  }
  int rc = aead_start(a, nonce, aad, aad_len);
  if (rc == ESCP_OK && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, ESCP_TAG, (void *)tag) <= 0)
    rc = ESCP_E_CRYPTO;
  if (rc == ESCP_OK) rc = aead_update(a, buf, buf, len);
  uint8_t scratch[ESCP_TAG];
  int outl = 0;
  if (rc == ESCP_OK && EVP_DecryptFinal_ex(a->ctx, scratch, &outl) <= 0) rc = ESCP_E_AUTH;
  /* Decryption wrote unauthenticated plaintext into buf: wipe it so no caller can use it. */
  if (rc != ESCP_OK && len) OPENSSL_cleanse(buf, len);
  return rc;
}

void escp_aead_free(escp_aead *a) {
  if (!a) return;
  EVP_CIPHER_CTX_free(a->ctx); /* cleanses the key schedule; NULL is a no-op */
  if (a->gk) {
    OPENSSL_cleanse(a->gk, sizeof *a->gk);
    free(a->gk);
  }
  free(a);
}
