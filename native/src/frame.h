/* frame.h — wire protocol v2 framing (docs/protocol.md is the normative text).
 * Every frame on a TCP stream:
 *   header (16 B, cleartext, = the AAD) | body (body_len B, AES-GCM ciphertext) | tag (16 B)
 * header, little-endian: u32 body_len | u8 type | u8 flags | u16 stream | u64 seq
 * nonce = 4 zero bytes || u64 seq (little-endian). seq starts at 0 (the HELLO / HELLO_ACK)
 * and goes up by exactly 1 per frame per direction; the receiver of a frame knows the next
 * seq it expects and rejects anything else (replay, reorder, drop) before decrypting. Keys
 * are per (connection, direction, epoch) (crypto.h), so a reflected frame, or one replayed
 * on another connection, fails its tag.
 * Nothing in a body is looked at before its tag verifies; the only field used before that
 * is body_len, which is bounds-checked against the stream's limit first. */
#ifndef ESCP_FRAME_H
#define ESCP_FRAME_H
#include <stdint.h>
#include "crypto.h"

#define ESCP_FRAME_HDR 16
#define ESCP_FT_HELLO 1      /* answerer -> challenger (connector -> listener unless the listener answers), seq 0 */
#define ESCP_FT_HELLO_ACK 2  /* challenger -> answerer, seq 0: hello body echoed with its stream */
#define ESCP_FT_DATA 3       /* sender -> receiver: data sub-header + payload */
#define ESCP_FT_CTL 4        /* either way on stream 0: a control message (FlatBuffer) */
#define ESCP_FT_BYE 5        /* end of a stream: empty body */
#define ESCP_FT_KEEPALIVE 6  /* sender -> receiver on an idle data stream: empty body */
#define ESCP_FT_ACK 7        /* receiver -> sender on a data stream (ESCP_P_RETRIES): body ESCP_ACK_LEN */
#define ESCP_FT_MAX ESCP_FT_ACK

/* ACK body: u64 DATA frames consumed on this stream since the session began (over all its
 * connections) | u32 flags (ESCP_ACKF_BYE: the BYE was consumed too) | u32 reserved (0). */
#define ESCP_ACK_LEN 16
#define ESCP_ACKF_BYE 1u
#define ESCP_ACK_WIRE (ESCP_FRAME_HDR + ESCP_ACK_LEN + ESCP_TAG)
/* The receiver ACKs at least every this many DATA frames (and on KEEPALIVE and BYE): 64, or
 * fewer for blocks over 512 KiB (about 32 MiB between ACKs). The sender reads them every half
 * of it and keeps at most ESCP_UNACKED_MAX (tx.c) frames unacknowledged. */
#define ESCP_ACK_EVERY(block) ((block) >= (32u << 20) ? 1u : (block) > (512u << 10) ? (uint32_t)((32u << 20) / (block)) : 64u)

#define ESCP_DATA_SUBHDR 24  /* u64 fino | u64 offset | u32 payload_len | u32 flags(0) */
/* u32 magic "ESCP" | u16 version | u16 stream | u16 streams | u16 role_of_sender_of_hello |
 * u32 reserved(0) | sid[16] | challenge[16] (the challenger's challenge of this connection) */
#define ESCP_HELLO_LEN 48
#define ESCP_HELLO_MAGIC 0x50435345u /* "ESCP" little-endian */

typedef struct escp_frame_hdr {
  uint32_t body_len;
  uint8_t type;
  uint8_t flags;
  uint16_t stream;
  uint64_t seq;
} escp_frame_hdr;

void escp_frame_hdr_encode(const escp_frame_hdr *h, uint8_t out[ESCP_FRAME_HDR]);
void escp_frame_hdr_decode(const uint8_t in[ESCP_FRAME_HDR], escp_frame_hdr *h);

/* One direction of one connection: its key schedule and sequence counter. Only the
 * per-connection secret is kept (wiped by escp_chan_free), never the session key. */
typedef struct escp_chan {
  uint8_t secret[ESCP_CHAN_SECRET];
  uint32_t dir;          /* ESCP_DIR_* of the frames this channel seals or opens */
  uint16_t stream;
  uint64_t seq;          /* next seq to seal, or next seq expected when opening */
  uint64_t epoch;        /* epoch of the key currently loaded */
  int encrypt;
  escp_aead *aead;
} escp_chan;

/* Derive the channel of (dir, stream) on the connection whose challenger sent `challenge`. */
int escp_chan_init(escp_chan *c, const uint8_t session_key[32], const uint8_t session_id[16],
                   const uint8_t challenge[ESCP_CHALLENGE], uint32_t dir, uint16_t stream, int encrypt);
void escp_chan_free(escp_chan *c);
/* Seal `len` body bytes in place: fills hdr (with the next seq) and tag, advances seq,
 * rekeys when the epoch changes. Returns 0 or ESCP_E_*. */
int escp_chan_seal(escp_chan *c, uint8_t type, uint8_t flags, uint8_t hdr[ESCP_FRAME_HDR],
                   uint8_t *body, uint32_t len, uint8_t tag[ESCP_TAG]);
/* Validate a received header before reading its body: known type, stream == c->stream,
 * seq == c->seq (else ESCP_E_REPLAY), body_len <= max_body (else ESCP_E_PROTO).
 * Does not advance. */
int escp_chan_check(const escp_chan *c, const uint8_t hdr[ESCP_FRAME_HDR], uint32_t max_body,
                    escp_frame_hdr *out);
/* Verify and decrypt a body in place; on success advances seq. ESCP_E_AUTH on a bad tag. */
int escp_chan_open(escp_chan *c, const uint8_t hdr[ESCP_FRAME_HDR], uint8_t *body, uint32_t len,
                   const uint8_t tag[ESCP_TAG]);

/* Data sub-header helpers (inside the authenticated body). */
typedef struct escp_data_hdr { uint64_t fino; uint64_t offset; uint32_t len; uint32_t flags; } escp_data_hdr;
/* flags: the payload is the block's zstd stream segment (native/src/zc.h), len is the
 * plaintext length and the payload (body_len - sub-header) is strictly shorter. */
#define ESCP_DF_ZSTD 1u
/* flags: the block is all zeros (a hole of a sparse source, ESCP_P_HOLES): no payload
 * (body_len = the sub-header), 0 < len; never with ESCP_DF_ZSTD. */
#define ESCP_DF_ZERO 2u
/* flags: the payload is a bundle of small files (native/src/bundle.h; ESCP_P_BUNDLE,
 * protocol 2.6): fino = the bundle number, offset 0, len = the body's length; alone or with
 * ESCP_DF_ZSTD (the body compressed like a block), never with ESCP_DF_ZERO. */
#define ESCP_DF_BUNDLE 4u
void escp_data_hdr_encode(const escp_data_hdr *d, uint8_t out[ESCP_DATA_SUBHDR]);
/* Checks: fino != 0, len <= block_size, offset % block_size == 0, flags one of 0,
 * ESCP_DF_ZSTD, ESCP_DF_ZERO, ESCP_DF_BUNDLE, ESCP_DF_BUNDLE | ESCP_DF_ZSTD (a bundle: offset
 * 0); payload (body_len - ESCP_DATA_SUBHDR) == len (no ZSTD or ZERO), or 0 < payload < len
 * (ESCP_DF_ZSTD), or payload == 0 < len (ESCP_DF_ZERO); offset + len does not overflow. */
int escp_data_hdr_decode(const uint8_t in[ESCP_DATA_SUBHDR], uint32_t body_len, uint32_t block_size,
                         escp_data_hdr *out);

typedef struct escp_hello {
  uint16_t version, stream, streams, role;
  uint8_t sid[16];
  uint8_t challenge[ESCP_CHALLENGE];
} escp_hello;
void escp_hello_encode(const escp_hello *h, uint8_t out[ESCP_HELLO_LEN]);
/* Checks magic, reserved == 0. Version/stream/sid/challenge checks are the caller's. */
int escp_hello_decode(const uint8_t in[ESCP_HELLO_LEN], escp_hello *out);

#endif
