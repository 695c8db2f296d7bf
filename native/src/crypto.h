/* crypto.h — AEAD (AES-128-GCM, in place: our VAES code or OpenSSL 3 EVP, see crypto.c) and
 * key derivation (HKDF-SHA256).
 * Keys (protocol v2): the 32-byte session key is made on the sender and only ever crosses
 * the SSH channel. Each TCP connection starts with a fresh 16-byte challenge from its
 * challenger (a listener); every (connection, direction) gets a 32-byte channel secret
 * bound to it
 *   cs = HKDF-SHA256(ikm = session_key, salt = session_id || challenge,
 *                    info = "escp/2 " + ("s2r"|"r2s") + " stream " + dec(stream))
 * and every epoch of that channel a 16-byte AES key
 *   key = HKDF-SHA256(ikm = cs, salt = none, info = "epoch " + dec(epoch))
 * (info as ASCII, no NUL). A frame sealed for one connection therefore fails its tag on any
 * other, and a retried connection never reuses a (key, nonce) pair. Epoch = seq >>
 * ESCP_EPOCH_BITS: a fresh key every 2^16 frames (64 GiB at 1 MiB blocks), far inside
 * AES-GCM's usage limits. */
#ifndef ESCP_CRYPTO_H
#define ESCP_CRYPTO_H
#include <stddef.h>
#include <stdint.h>

#define ESCP_AES_KEY 16
#define ESCP_NONCE 12
#define ESCP_TAG 16
#define ESCP_EPOCH_BITS 16
#define ESCP_DIR_S2R 0   /* frames sent by the sender role */
#define ESCP_DIR_R2S 1   /* frames sent by the receiver role */

typedef struct escp_aead escp_aead; /* owns one EVP_CIPHER_CTX or one VAES key schedule */

#define ESCP_CHAN_SECRET 32 /* bytes of a per-connection channel secret */
#define ESCP_CHALLENGE 16   /* bytes of the challenger's per-connection challenge */

int escp_kdf_chan_secret(const uint8_t session_key[32], const uint8_t session_id[16],
                         const uint8_t challenge[ESCP_CHALLENGE], uint32_t dir, uint32_t stream,
                         uint8_t out[ESCP_CHAN_SECRET]);
int escp_kdf_epoch_key(const uint8_t secret[ESCP_CHAN_SECRET], uint64_t epoch, uint8_t out[ESCP_AES_KEY]);

/* encrypt: 1 for a sealing context, 0 for an opening one. Returns 0 or ESCP_E_CRYPTO/NOMEM. */
int escp_aead_new(escp_aead **out, const uint8_t key[ESCP_AES_KEY], int encrypt);
int escp_aead_rekey(escp_aead *a, const uint8_t key[ESCP_AES_KEY]);
/* In place. seal writes the tag; open returns ESCP_E_AUTH when the tag does not verify
 * (buf contents are then unspecified and must not be used). */
int escp_aead_seal(escp_aead *a, const uint8_t nonce[ESCP_NONCE], const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, uint8_t tag[ESCP_TAG]);
int escp_aead_open(escp_aead *a, const uint8_t nonce[ESCP_NONCE], const uint8_t *aad, size_t aad_len,
                   uint8_t *buf, size_t len, const uint8_t tag[ESCP_TAG]);
void escp_aead_free(escp_aead *a);
/* The AEAD backend this process uses ("vaes" or "openssl"), chosen once at first use:
 * "vaes" when the CPU has VAES, VPCLMULQDQ, AVX-512 F/BW/VL and ESCP_AEAD is not "openssl".
 * Internal (tests, benchmarks). */
const char *escp__aead_backend(void);

/* Plain HKDF-SHA256 (RFC 5869 extract+expand); internal, exposed for the known-answer test.
 * salt may be NULL when salt_len is 0. Returns 0 or ESCP_E_CRYPTO/NOMEM/INVAL. */
int escp_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                     const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

#endif
