/* testhook.c — TEST HOOKS ONLY: seal and open one frame outside any session, so the
 * property suite (harness/suites/frame.prop.test.ts) can drive the real frame decoder
 * (escp_chan_check / escp_chan_open / escp_data_hdr_decode / escp_hello_decode) from
 * TypeScript with mutated frames, and strangers in the e2e suites can forge HELLOs; a probe
 * that the session key was wiped; the receiver's check of a BUNDLE body. Nothing in the data
 * path calls these: each call builds a fresh channel (HKDF + an EVP context), which is far
 * too slow for a hot path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "escp.h"
#include "frame.h"
#include "ring.h"
#include "session.h"

/* Shared argument checks: the key schedule needs a key, a session id, a challenge, a known
 * direction and a stream id that fits the header's u16. */
static int chan_args_ok(const uint8_t *key32, const uint8_t *sid16, const uint8_t *ch16, int32_t dir,
                        int32_t stream) {
  if (!key32 || !sid16 || !ch16) return 0;
  if (dir != ESCP_DIR_S2R && dir != ESCP_DIR_R2S) return 0;
  return stream >= 0 && stream <= UINT16_MAX;
}

/* Seal one frame the way a sending channel at `seq` would: the channel's seq is set first,
 * so the epoch key and the nonce are the ones a real stream would use at that point.
 * Returns the frame length (16 + body_len + 16) or ESCP_E_*. */
ESCP_API int32_t escp_test_frame_seal(const uint8_t *key32, const uint8_t *sid16,
                                      const uint8_t *challenge16, int32_t dir, int32_t stream,
                                      uint64_t seq, int32_t type, const uint8_t *body,
                                      int32_t body_len, uint8_t *out, int32_t cap) {
  if (!chan_args_ok(key32, sid16, challenge16, dir, stream) || body_len < 0 || (body_len && !body) || !out ||
      cap < 0 || type < 0 || type > UINT8_MAX)
    return ESCP_E_INVAL;
  /* 64-bit sum: body_len near INT32_MAX must not overflow into a "fits" answer. */
  int64_t total = (int64_t)ESCP_FRAME_HDR + body_len + ESCP_TAG;
  if (total > cap) return ESCP_E_TOOBIG;
  escp_chan c;
  int rc = escp_chan_init(&c, key32, sid16, challenge16, (uint32_t)dir, (uint16_t)stream, 1);
  if (rc != ESCP_OK) return rc;
  c.seq = seq; /* chan_seal rekeys to seq's epoch on its own */
  uint8_t *b = out + ESCP_FRAME_HDR;
  if (body_len) memmove(b, body, (size_t)body_len); /* body may alias out */
  rc = escp_chan_seal(&c, (uint8_t)type, 0, out, b, (uint32_t)body_len, b + body_len);
  escp_chan_free(&c);
  return rc == ESCP_OK ? (int32_t)total : rc;
}

/* Parse the authenticated body the way a receiver would before acting on it. The hello
 * fields a lone channel knows (version, stream, session id, challenge) are checked as
 * escp__hello_open does; T and role need a session and are left out. */
static int body_decode(uint8_t type, const uint8_t *body, uint32_t body_len, uint32_t block_size,
                       uint16_t stream, const uint8_t *sid16, const uint8_t *ch16) {
  if (type == ESCP_FT_DATA) {
    escp_data_hdr d;
    return escp_data_hdr_decode(body, body_len, block_size, &d);
  }
  if (type != ESCP_FT_HELLO && type != ESCP_FT_HELLO_ACK) return ESCP_OK;
  escp_hello h;
  int rc = escp_hello_decode(body, &h); /* body_len == ESCP_HELLO_LEN: escp_chan_check enforced it */
  if (rc != ESCP_OK) return rc;
  if (h.version != ESCP_PROTOCOL_VERSION) return ESCP_E_VERSION;
  if (h.stream != stream || memcmp(h.sid, sid16, ESCP_SID_LEN) != 0 ||
      memcmp(h.challenge, ch16, ESCP_CHALLENGE_LEN) != 0)
    return ESCP_E_PROTO;
  return ESCP_OK;
}

/* Play a receiving channel that expects `expect_seq` and got `len` bytes. Safe for any
 * input: the header is read only once len >= 32, the body_len it claims is bounded by
 * max_body (escp_chan_check) and must match len exactly before any body byte is touched,
 * and the body is opened in a private heap copy of exactly body_len bytes, so a sanitizer
 * sees any overread. Returns ESCP_OK or the typed status the real receiver would get. */
ESCP_API int32_t escp_test_frame_open(const uint8_t *key32, const uint8_t *sid16,
                                      const uint8_t *challenge16, int32_t dir, int32_t stream,
                                      uint64_t expect_seq, int32_t max_body, int32_t block_size,
                                      const uint8_t *frame, int32_t len) {
  if (!chan_args_ok(key32, sid16, challenge16, dir, stream) || max_body < 0 || block_size <= 0 || len < 0 ||
      (len && !frame))
    return ESCP_E_INVAL;
  /* A frame is at least header + tag; shorter input cannot even be checked. */
  if (len < ESCP_FRAME_HDR + ESCP_TAG) return ESCP_E_PROTO;
  escp_chan c;
  int rc = escp_chan_init(&c, key32, sid16, challenge16, (uint32_t)dir, (uint16_t)stream, 0);
  if (rc != ESCP_OK) return rc;
  c.seq = expect_seq;
  escp_frame_hdr h;
  rc = escp_chan_check(&c, frame, (uint32_t)max_body, &h);
  /* body_len <= max_body <= INT32_MAX here, so the 64-bit sum is exact. */
  if (rc == ESCP_OK && (uint64_t)ESCP_FRAME_HDR + h.body_len + ESCP_TAG != (uint64_t)len)
    rc = ESCP_E_PROTO;
  uint8_t *body = NULL;
  if (rc == ESCP_OK) {
    body = malloc(h.body_len ? h.body_len : 1);
    if (!body) rc = ESCP_E_NOMEM;
  }
  if (rc == ESCP_OK) {
    memcpy(body, frame + ESCP_FRAME_HDR, h.body_len);
    rc = escp_chan_open(&c, frame, body, h.body_len, frame + ESCP_FRAME_HDR + h.body_len);
  }
  if (rc == ESCP_OK)
    rc = body_decode(h.type, body, h.body_len, (uint32_t)block_size, c.stream, sid16, challenge16);
  free(body);
  escp_chan_free(&c);
  return rc;
}

/* Benchmark hook (bench/micro/ffi.ts): push up to n synthetic ESCP_EV_FILE_DONE events into
 * a session's event ring so escp_event_poll has something to drain without a transfer.
 * Never blocks and never uses the ring's overflow list: it stops when the ring is full (or
 * overflow is pending). Event k of a call carries fino k + 1, bytes, blocks, a digest
 * pattern and text "synthetic". Returns how many were pushed, or ESCP_E_INVAL. */
ESCP_API int32_t escp_test_events_fill(void *h, int32_t n) {
  escp_session *s = escp__session(h);
  if (!s || n < 0) return ESCP_E_INVAL;
  escp_evring *r = &s->ev;
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = ESCP_EV_FILE_DONE;
  ev.status = ESCP_OK;
  memcpy(ev.text, "synthetic", sizeof "synthetic");
  int32_t k = 0;
  pthread_mutex_lock(&r->mu);
  for (; k < n && r->count < r->cap && !r->ovf_head; k++) {
    ev.fino = (uint64_t)k + 1;
    ev.bytes = ((uint64_t)k + 1) << 20;
    ev.blocks = (uint64_t)k + 1;
    memset(ev.digest, (int)(k & 0xff), sizeof ev.digest);
    r->buf[(r->head + r->count) % r->cap] = ev;
    r->count++;
  }
  pthread_mutex_unlock(&r->mu);
  return k;
}

/* Key-hygiene probe: 1 when the session's copy of the session key is all zero. Call it
 * after ESCP_EV_STREAMS_UP (listener) or escp_connect returned (connector): the key is
 * wiped before either, so no race with the thread that wipes it. */
ESCP_API int32_t escp_test_key_wiped(void *h) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  uint8_t any = 0;
  for (size_t i = 0; i < sizeof s->key; i++) any |= s->key[i];
  return any == 0;
}

/* The receiver's whole-body check of a BUNDLE frame (bundle.h), run on a private heap copy of
 * exactly len bytes so a sanitizer sees any overread. ESCP_OK, ESCP_E_PROTO, ESCP_E_INVAL. */
ESCP_API int32_t escp_test_bundle_parse(const uint8_t *body, int32_t len, int32_t block_size) {
  if (len < 0 || (len && !body) || block_size <= 0) return ESCP_E_INVAL;
  uint8_t *copy = malloc(len ? (size_t)len : 1);
  if (!copy) return ESCP_E_NOMEM;
  if (len) memcpy(copy, body, (size_t)len);
  uint32_t count = 0;
  int32_t rc = escp__bundle_check(copy, (size_t)len, (uint32_t)block_size, &count);
  free(copy);
  return rc;
}
