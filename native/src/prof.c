/* prof.c — span rings (one producer: the stream's thread; one consumer: the JS thread). */
#include <string.h>
#include "session.h"

uint64_t escp__prof_end(escp_prof_ring *r, int stage, uint64_t t0, uint64_t bytes) {
  if (!r) return 0;
  uint64_t t1 = escp__prof_clock(), dur = t1 - t0;
  atomic_fetch_add_explicit(&r->tot[stage][0], dur, memory_order_relaxed);
  atomic_fetch_add_explicit(&r->tot[stage][1], bytes, memory_order_relaxed);
  atomic_fetch_add_explicit(&r->tot[stage][2], 1, memory_order_relaxed);
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  if (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= ESCP_PROF_CAP) {
    atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
    return t1;
  }
  escp_span *sp = &r->rec[h & (ESCP_PROF_CAP - 1)];
  sp->t0 = t0;
  sp->dur = dur;
  sp->bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
  sp->stream = r->stream;
  sp->stage = (uint8_t)stage;
  sp->flags = 0;
  atomic_store_explicit(&r->head, h + 1, memory_order_release);
  return t1;
}

ESCP_API uint64_t escp_prof_clock(void) { return escp__prof_clock(); }

ESCP_API int32_t escp_prof_drain(void *h, uint8_t *out, int32_t cap) {
  escp_session *s = escp__session(h);
  if (!s || !out || cap < 0) return ESCP_E_INVAL;
  size_t room = (size_t)cap / sizeof(escp_span), n = 0;
  for (int i = 0; i < s->nstreams && n < room; i++) {
    escp_prof_ring *r = s->st[i].prof;
    if (!r) continue;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t hd = atomic_load_explicit(&r->head, memory_order_acquire);
    for (; t < hd && n < room; t++, n++)
      memcpy(out + n * sizeof(escp_span), &r->rec[t & (ESCP_PROF_CAP - 1)], sizeof(escp_span));
    atomic_store_explicit(&r->tail, t, memory_order_release);
  }
  return (int32_t)(n * sizeof(escp_span));
}

ESCP_API int32_t escp_prof_totals(void *h, uint64_t *out, int32_t n) {
  escp_session *s = escp__session(h);
  if (!s || !out) return ESCP_E_INVAL;
  int32_t need = s->nstreams * ESCP_STG_COUNT * 3 + 1;
  if (s->nstreams == 0 || n < need) return ESCP_E_TOOBIG;
  uint64_t dropped = 0;
  for (int i = 0; i < s->nstreams; i++) {
    escp_prof_ring *r = s->st[i].prof;
    for (int g = 0; g < ESCP_STG_COUNT; g++)
      for (int k = 0; k < 3; k++)
        out[(i * ESCP_STG_COUNT + g) * 3 + k] = r ? atomic_load_explicit(&r->tot[g][k], memory_order_relaxed) : 0;
    if (r) dropped += atomic_load(&r->dropped);
  }
  out[need - 1] = dropped;
  return need;
}
