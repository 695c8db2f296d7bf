/* fuzz_frame.c — libFuzzer target for the frame parsers: arbitrary bytes as
 * header | body | tag through escp_chan_check / escp_chan_open / escp_data_hdr_decode /
 * escp_hello_decode, and the body as a BUNDLE (escp__bundle_check / escp__bundle_next). Build and run: `make -C native fuzz` (see the Makefile comment). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "crypto.h"
#include "escp.h"
#include "frame.h"

#define FUZZ_MAX_BODY ((1u << 20) + ESCP_DATA_SUBHDR) /* the receiver's real limit, bytes */
#define FUZZ_BLOCK (1u << 16)                          /* a small block size, bytes */

/* Input layout: byte 0 = mode bits, then 16 header bytes, then body, last 16 bytes = tag.
 * mode bit 0: trust the header's seq/stream (so open is reached and the tag check runs);
 * mode bit 1: reseal the body with a valid tag first, so post-auth parsers see the bytes. */
static void run(escp_chan *tx, escp_chan *rx, const uint8_t *data, size_t size) {
  if (size < 1 + ESCP_FRAME_HDR + ESCP_TAG) return;
  uint8_t mode = data[0];
  size_t body_len = size - 1 - ESCP_FRAME_HDR - ESCP_TAG;
  uint8_t *buf = malloc(size); /* exact size: ASan sees any overread */
  if (!buf) return;
  memcpy(buf, data + 1, size - 1);
  uint8_t *hdr = buf, *body = buf + ESCP_FRAME_HDR, *tag = body + body_len;
  escp_frame_hdr h;
  escp_frame_hdr_decode(hdr, &h);
  if (mode & 1) {
    rx->seq = h.seq;
    rx->stream = h.stream; /* key stays the one for the channel's real stream */
  }
  if (mode & 2 && h.type >= ESCP_FT_HELLO && h.type <= ESCP_FT_MAX) {
    tx->seq = rx->seq;
    tx->stream = rx->stream;
    tx->epoch = rx->epoch = (uint64_t)-1; /* force both to (re)derive this epoch's key */
    uint32_t n = h.type == ESCP_FT_BYE || h.type == ESCP_FT_KEEPALIVE ? 0 : h.type <= ESCP_FT_HELLO_ACK ? ESCP_HELLO_LEN : h.type == ESCP_FT_ACK ? ESCP_ACK_LEN : (uint32_t)body_len;
    if (n <= body_len) (void)escp_chan_seal(tx, h.type, h.flags, hdr, body, n, body + n);
  }
  int rc = escp_chan_check(rx, hdr, FUZZ_MAX_BODY, &h);
  if (rc == ESCP_OK && h.body_len <= body_len) {
    uint64_t seq = rx->seq;
    rc = escp_chan_open(rx, hdr, body, h.body_len, body + h.body_len);
    if (rc == ESCP_OK ? rx->seq != seq + 1 : rx->seq != seq) abort(); /* seq invariant */
    if (rc == ESCP_E_AUTH) {
      for (uint32_t i = 0; i < h.body_len; i++)
        if (body[i]) abort(); /* plaintext must be wiped on auth failure */
    }
    if (rc == ESCP_OK && h.type == ESCP_FT_DATA && h.body_len >= ESCP_DATA_SUBHDR) {
      escp_data_hdr d;
      if (escp_data_hdr_decode(body, h.body_len, FUZZ_BLOCK, &d) == ESCP_OK &&
          (d.fino == 0 || d.offset % FUZZ_BLOCK || d.len > FUZZ_BLOCK ||
           ((d.flags & ~ESCP_DF_BUNDLE) != 0 && (d.flags & ~ESCP_DF_BUNDLE) != ESCP_DF_ZSTD && d.flags != ESCP_DF_ZERO) ||
           ((d.flags & ESCP_DF_BUNDLE) && d.offset != 0) ||
           ((d.flags & ~ESCP_DF_BUNDLE) == ESCP_DF_ZSTD ? h.body_len <= ESCP_DATA_SUBHDR || h.body_len - ESCP_DATA_SUBHDR >= d.len
            : d.flags == ESCP_DF_ZERO ? h.body_len != ESCP_DATA_SUBHDR || d.len == 0
                                      : d.len + ESCP_DATA_SUBHDR != h.body_len)))
        abort(); /* decode accepted something its contract forbids */
    }
    if (rc == ESCP_OK && h.body_len == ESCP_HELLO_LEN) {
      escp_hello hello;
      (void)escp_hello_decode(body, &hello);
    }
  }
  (void)tag;
  /* The parsers also run directly on raw (unauthenticated) bytes: they must never crash. */
  escp_data_hdr d;
  if (body_len >= ESCP_DATA_SUBHDR) (void)escp_data_hdr_decode(data + 1 + ESCP_FRAME_HDR, (uint32_t)body_len, FUZZ_BLOCK, &d);
  if (body_len >= ESCP_HELLO_LEN) {
    escp_hello hello;
    (void)escp_hello_decode(data + 1 + ESCP_FRAME_HDR, &hello);
  }
  /* A bundle body: checked whole; an accepted one's records all lie inside it, end to end. */
  uint8_t *bb = malloc(body_len ? body_len : 1); /* exact size again */
  uint32_t count = 0;
  if (bb) memcpy(bb, data + 1 + ESCP_FRAME_HDR, body_len);
  if (bb && escp__bundle_check(bb, body_len, FUZZ_BLOCK, &count) == ESCP_OK) {
    size_t pos = ESCP_BUNDLE_HDR;
    for (uint32_t i = 0; i < count; i++) {
      escp_brec r;
      escp__bundle_next(bb, &pos, &r);
      if (r.leaf_len == 0 || r.data + r.size > bb + pos || pos > body_len) abort();
    }
    if (pos != body_len) abort();
  }
  free(bb);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t key[32], sid[16], ch[ESCP_CHALLENGE];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)(0xa0 + i);
  for (int i = 0; i < ESCP_CHALLENGE; i++) ch[i] = (uint8_t)(0xc0 + i);
  escp_chan tx, rx;
  /* Per input, fresh channels of one connection (no state between runs keeps crashes
   * reproducible). */
  if (escp_chan_init(&tx, key, sid, ch, ESCP_DIR_S2R, 1, 1) != ESCP_OK) abort();
  if (escp_chan_init(&rx, key, sid, ch, ESCP_DIR_S2R, 1, 0) != ESCP_OK) abort();
  run(&tx, &rx, data, size);
  escp_chan_free(&tx);
  escp_chan_free(&rx);
  return 0;
}
