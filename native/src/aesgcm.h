/* aesgcm.h — AES-128-GCM with VAES and VPCLMULQDQ on 512-bit vectors (aesgcm_vaes.c),
 * internal to crypto.c. 12-byte nonce, 16-byte tag, in place; output is the standard GCM
 * (NIST SP 800-38D) bit for bit, so it interoperates with OpenSSL's AES-128-GCM.
 * Only call the seal/open/setkey functions when escp__gcm_vaes_usable() returned 1. */
#ifndef ESCP_AESGCM_H
#define ESCP_AESGCM_H
#include <stddef.h>
#include <stdint.h>

/* Powers of H kept per key (the widest aggregated GHASH step, in blocks). */
#define ESCP_GCM_NPOW 32

/* Expanded key: the 11 AES-128 round keys and H^NPOW..H^1 in the bit-reflected,
 * pre-multiplied form the GHASH code uses (hpow[i] holds H^(NPOW-i)), then 4 zero entries
 * so a 4-block vector load at the last power stays inside its array; hkar[i] is hpow[i]'s
 * two 64-bit halves XORed (Karatsuba's middle operand). Secret: wipe it. */
typedef struct escp_gcm_key {
  _Alignas(64) uint8_t rk[11][16];
  _Alignas(64) uint8_t hpow[ESCP_GCM_NPOW + 4][16];
  _Alignas(64) uint8_t hkar[ESCP_GCM_NPOW + 4][16];
} escp_gcm_key;

/* 1 when this CPU (and OS) has AES-NI, PCLMULQDQ, AVX-512 F/BW/VL, VAES and VPCLMULQDQ. */
int escp__gcm_vaes_usable(void);
void escp__gcm_vaes_setkey(escp_gcm_key *k, const uint8_t key[16]);
/* Encrypts buf in place and writes the tag. len must be at most ESCP_GCM_MAX_LEN. */
void escp__gcm_vaes_seal(const escp_gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                         uint8_t *buf, size_t len, uint8_t tag[16]);
/* Decrypts buf in place and writes the tag the message should carry; the caller compares
 * it with the received one (in constant time) and discards buf on a mismatch. */
void escp__gcm_vaes_open(const escp_gcm_key *k, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                         uint8_t *buf, size_t len, uint8_t tag[16]);

/* GCM's limit for one message: 2^32 - 2 blocks (the 32-bit counter must not wrap onto J0). */
#define ESCP_GCM_MAX_LEN ((((uint64_t)1 << 32) - 2) * 16)

#endif
