/* prof.h — the profiler's recording side. Each stream thread stamps the stages it runs
 * (escp.h ESCP_STG_*) into its own single-producer ring; the JS thread drains the rings
 * (escp_prof_drain) and reads exact per-stage totals (escp_prof_totals). When profiling is
 * off a stream has no ring and every hook is one predictable branch. */
#ifndef ESCP_PROF_H
#define ESCP_PROF_H
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "escp.h"

#define ESCP_PROF_CAP 16384 /* spans per stream ring (power of two); overflow is counted */

typedef struct escp_span {
  uint64_t t0, dur;
  uint32_t bytes;
  uint16_t stream;
  uint8_t stage, flags;
} escp_span;
_Static_assert(sizeof(escp_span) == ESCP_SPAN_SIZE, "span record layout");

typedef struct escp_prof_ring {
  _Atomic uint64_t head, tail;   /* head: next write (producer), tail: next read (JS) */
  _Atomic uint64_t dropped;
  _Atomic uint64_t tot[ESCP_STG_COUNT][3]; /* ns, bytes, count */
  uint16_t stream;
  escp_span rec[ESCP_PROF_CAP];
} escp_prof_ring;

static inline uint64_t escp__prof_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Start of a stage: a timestamp, or 0 when this stream is not profiled. */
static inline uint64_t escp__prof_t0(const escp_prof_ring *r) { return r ? escp__prof_clock() : 0; }

/* End of a stage begun at t0 (no-op when r is NULL). Returns the end time, so back-to-back
 * stages can chain without a second clock read. */
uint64_t escp__prof_end(escp_prof_ring *r, int stage, uint64_t t0, uint64_t bytes);

#endif
