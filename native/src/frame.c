/* frame.c — wire protocol v2 framing: explicit little-endian header/sub-header/hello
 * packing, and escp_chan (per direction+stream seq counter and epoch key schedule) that
 * seals and opens frames in place. See frame.h for the layout and the checks. */
#include "frame.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "escp.h"
#include "le.h"

_Static_assert(ESCP_CHALLENGE == ESCP_CHALLENGE_LEN, "crypto.h and escp.h agree on the challenge size");

/* Little-endian byte packing (le.h): no struct casts, the layout must not depend on the ABI. */

/* ---- header ---- */

void escp_frame_hdr_encode(const escp_frame_hdr *h, uint8_t out[ESCP_FRAME_HDR]) {
  escp_put32(out + 0, h->body_len);
  out[4] = h->type;
  out[5] = h->flags;
  escp_put16(out + 6, h->stream);
  escp_put64(out + 8, h->seq);
}

void escp_frame_hdr_decode(const uint8_t in[ESCP_FRAME_HDR], escp_frame_hdr *h) {
  h->body_len = escp_get32(in + 0);
  h->type = in[4];
  h->flags = in[5];
  h->stream = escp_get16(in + 6);
  h->seq = escp_get64(in + 8);
}

/* Type-specific body length rules shared by seal (misuse -> caller error) and check. */
static int type_len_ok(uint8_t type, uint32_t body_len) {
  if (type < ESCP_FT_HELLO || type > ESCP_FT_MAX) return 0;
  if (type == ESCP_FT_BYE || type == ESCP_FT_KEEPALIVE) return body_len == 0;
  if (type == ESCP_FT_HELLO || type == ESCP_FT_HELLO_ACK) return body_len == ESCP_HELLO_LEN;
  if (type == ESCP_FT_ACK) return body_len == ESCP_ACK_LEN;
  return 1;
}

/* nonce = 4 zero bytes || u64 seq little-endian */
static void make_nonce(uint64_t seq, uint8_t nonce[ESCP_NONCE]) {
  memset(nonce, 0, 4);
  escp_put64(nonce + 4, seq);
}

/* ---- channel ---- */

int escp_chan_init(escp_chan *c, const uint8_t session_key[32], const uint8_t session_id[16],
                   const uint8_t challenge[ESCP_CHALLENGE], uint32_t dir, uint16_t stream, int encrypt) {
  if (!c) return ESCP_E_INVAL;
  memset(c, 0, sizeof *c); /* a failed init leaves a channel that escp_chan_free accepts */
  if (!session_key || !session_id || !challenge) return ESCP_E_INVAL;
  if (dir != ESCP_DIR_S2R && dir != ESCP_DIR_R2S) return ESCP_E_INVAL;
  c->dir = dir;
  c->stream = stream;
  c->encrypt = encrypt ? 1 : 0;
  uint8_t key[ESCP_AES_KEY];
  int rc = escp_kdf_chan_secret(session_key, session_id, challenge, dir, stream, c->secret);
  if (rc == ESCP_OK) rc = escp_kdf_epoch_key(c->secret, 0, key);
  if (rc == ESCP_OK) rc = escp_aead_new(&c->aead, key, c->encrypt);
  OPENSSL_cleanse(key, sizeof key);
  if (rc != ESCP_OK) escp_chan_free(c);
  return rc;
}

void escp_chan_free(escp_chan *c) {
  if (!c) return;
  escp_aead_free(c->aead);
  OPENSSL_cleanse(c, sizeof *c); /* wipes the channel secret; aead = NULL makes free idempotent */
}

/* Make the loaded key match the epoch of c->seq. Rekeys whenever they differ (not only on
 * +1), so a caller that jumps seq still gets the right key. On failure the old epoch stays
 * recorded, so the next call retries the rekey. */
static int chan_load_epoch(escp_chan *c) {
  uint64_t epoch = c->seq >> ESCP_EPOCH_BITS;
  if (epoch == c->epoch) return ESCP_OK;
  uint8_t key[ESCP_AES_KEY];
  int rc = escp_kdf_epoch_key(c->secret, epoch, key);
  if (rc == ESCP_OK) rc = escp_aead_rekey(c->aead, key);
  OPENSSL_cleanse(key, sizeof key);
  if (rc == ESCP_OK) c->epoch = epoch;
  return rc;
}

int escp_chan_seal(escp_chan *c, uint8_t type, uint8_t flags, uint8_t hdr[ESCP_FRAME_HDR],
                   uint8_t *body, uint32_t len, uint8_t tag[ESCP_TAG]) {
  if (!c || !c->aead || !c->encrypt || !hdr || !tag || (len && !body)) return ESCP_E_INVAL;
  if (!type_len_ok(type, len)) return ESCP_E_INVAL;
  /* seq UINT64_MAX would wrap to 0 and reuse (epoch-0 key, nonce 0): refuse instead. */
  if (c->seq == UINT64_MAX) return ESCP_E_INVAL;
  int rc = chan_load_epoch(c);
  if (rc != ESCP_OK) return rc;
  escp_frame_hdr h = {.body_len = len, .type = type, .flags = flags, .stream = c->stream, .seq = c->seq};
  escp_frame_hdr_encode(&h, hdr);
  uint8_t nonce[ESCP_NONCE];
  make_nonce(c->seq, nonce);
  rc = escp_aead_seal(c->aead, nonce, hdr, ESCP_FRAME_HDR, body, len, tag);
  /* The nonce is spent once encryption started, even if it failed: never reuse it. */
  c->seq++;
  return rc;
}

int escp_chan_check(const escp_chan *c, const uint8_t hdr[ESCP_FRAME_HDR], uint32_t max_body,
                    escp_frame_hdr *out) {
  if (!c || !hdr) return ESCP_E_INVAL;
  escp_frame_hdr h;
  escp_frame_hdr_decode(hdr, &h);
  if (out) *out = h;
  if (h.type < ESCP_FT_HELLO || h.type > ESCP_FT_MAX) return ESCP_E_PROTO;
  if (h.stream != c->stream) return ESCP_E_PROTO;
  if (h.seq != c->seq) return ESCP_E_REPLAY;
  if (h.body_len > max_body) return ESCP_E_PROTO;
  if (!type_len_ok(h.type, h.body_len)) return ESCP_E_PROTO;
  return ESCP_OK;
}

int escp_chan_open(escp_chan *c, const uint8_t hdr[ESCP_FRAME_HDR], uint8_t *body, uint32_t len,
                   const uint8_t tag[ESCP_TAG]) {
  if (!c || !c->aead || c->encrypt || !hdr || !tag || (len && !body)) return ESCP_E_INVAL;
  /* Re-validate (cheap) so open is safe even if the caller skipped or misused check;
   * the body size read must be exactly the header's body_len. */
  escp_frame_hdr h;
  int rc = escp_chan_check(c, hdr, len, &h);
  if (rc != ESCP_OK) return rc;
  if (h.body_len != len) return ESCP_E_PROTO;
  if (c->seq == UINT64_MAX) return ESCP_E_PROTO; /* would wrap: see escp_chan_seal */
  rc = chan_load_epoch(c);
  if (rc != ESCP_OK) return rc;
  uint8_t nonce[ESCP_NONCE];
  make_nonce(c->seq, nonce);
  /* escp_aead_open wipes body on any failure after decryption began. */
  rc = escp_aead_open(c->aead, nonce, hdr, ESCP_FRAME_HDR, body, len, tag);
  if (rc != ESCP_OK) return rc;
  c->seq++;
  return ESCP_OK;
}

/* ---- data sub-header ---- */

void escp_data_hdr_encode(const escp_data_hdr *d, uint8_t out[ESCP_DATA_SUBHDR]) {
  escp_put64(out + 0, d->fino);
  escp_put64(out + 8, d->offset);
  escp_put32(out + 16, d->len);
  escp_put32(out + 20, d->flags);
}

int escp_data_hdr_decode(const uint8_t in[ESCP_DATA_SUBHDR], uint32_t body_len, uint32_t block_size,
                         escp_data_hdr *out) {
  if (!in || !out || block_size == 0) return ESCP_E_INVAL;
  if (body_len < ESCP_DATA_SUBHDR) return ESCP_E_PROTO;
  escp_data_hdr d = {.fino = escp_get64(in + 0), .offset = escp_get64(in + 8), .len = escp_get32(in + 16),
                     .flags = escp_get32(in + 20)};
  if (d.fino == 0) return ESCP_E_PROTO;
  uint32_t payload = body_len - ESCP_DATA_SUBHDR;
  uint32_t kind = d.flags & ~ESCP_DF_BUNDLE; /* a bundle's body is raw or compressed like a block */
  if (kind != 0 && kind != ESCP_DF_ZSTD && d.flags != ESCP_DF_ZERO) return ESCP_E_PROTO;
  if ((d.flags & ESCP_DF_BUNDLE) && d.offset != 0) return ESCP_E_PROTO;
  if (kind == ESCP_DF_ZSTD) {
    if (payload == 0 || payload >= d.len) return ESCP_E_PROTO; /* compressed only when smaller */
  } else if (d.flags == ESCP_DF_ZERO) {
    if (payload != 0 || d.len == 0) return ESCP_E_PROTO;
  } else if (d.len != payload) {
    return ESCP_E_PROTO;
  }
  if (d.len > block_size) return ESCP_E_PROTO;
  if (d.offset % block_size != 0) return ESCP_E_PROTO;
  /* offset + len must fit in off_t (signed 64-bit) for pwrite, which implies no u64 wrap. */
  if (d.offset > (uint64_t)INT64_MAX - d.len) return ESCP_E_PROTO;
  *out = d;
  return ESCP_OK;
}

/* ---- hello ---- */

void escp_hello_encode(const escp_hello *h, uint8_t out[ESCP_HELLO_LEN]) {
  escp_put32(out + 0, ESCP_HELLO_MAGIC);
  escp_put16(out + 4, h->version);
  escp_put16(out + 6, h->stream);
  escp_put16(out + 8, h->streams);
  escp_put16(out + 10, h->role);
  escp_put32(out + 12, 0); /* reserved */
  memcpy(out + 16, h->sid, sizeof h->sid);
  memcpy(out + 32, h->challenge, sizeof h->challenge);
}

int escp_hello_decode(const uint8_t in[ESCP_HELLO_LEN], escp_hello *out) {
  if (!in || !out) return ESCP_E_INVAL;
  if (escp_get32(in + 0) != ESCP_HELLO_MAGIC) return ESCP_E_PROTO;
  if (escp_get32(in + 12) != 0) return ESCP_E_PROTO;
  out->version = escp_get16(in + 4);
  out->stream = escp_get16(in + 6);
  out->streams = escp_get16(in + 8);
  out->role = escp_get16(in + 10);
  memcpy(out->sid, in + 16, sizeof out->sid);
  memcpy(out->challenge, in + 32, sizeof out->challenge);
  return ESCP_OK;
}
