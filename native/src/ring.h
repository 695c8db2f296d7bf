/* ring.h — the two C→JS queues of a session: the event ring (fixed array of escp_event,
 * multi-producer, producers block when full) and the control-message queue (bounded by
 * total payload bytes, the control reader blocks when full). Both wake on stop. */
#ifndef ESCP_RING_H
#define ESCP_RING_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "escp.h"

#define ESCP_EVRING_CAP 4096            /* events (128 B each: 512 KiB) */
#define ESCP_CTLQ_LIMIT (16u << 20)     /* bytes of queued control payload */

typedef struct escp_ev_node { struct escp_ev_node *next; escp_event ev; } escp_ev_node;

typedef struct escp_evring {
  pthread_mutex_t mu;
  pthread_cond_t not_full;
  escp_event *buf;
  uint32_t cap, head, count;
  /* Events that must not block (pushed by the JS thread itself, or after stop) wait here
   * after the ring; bounded in practice by the caller's own call count. */
  escp_ev_node *ovf_head, *ovf_tail;
} escp_evring;

int escp_evring_init(escp_evring *r, uint32_t cap);
void escp_evring_free(escp_evring *r);
/* Push a copy of *ev. may_block = 0 never waits (overflow list); otherwise waits while the
 * ring is full unless *stop is set. drop_if_full = 1 discards instead (debug logs).
 * Never call while holding a lock the JS thread may take. */
void escp_evring_push(escp_evring *r, const escp_event *ev, int may_block, int drop_if_full,
                      const atomic_int *stop);
/* Copy up to max events out (ring first, then overflow). Returns the count. */
int escp_evring_poll(escp_evring *r, escp_event *out, int max);
void escp_evring_wake(escp_evring *r);

typedef struct escp_ctlmsg {
  struct escp_ctlmsg *next;
  uint32_t len;        /* payload bytes in data */
  uint8_t data[];      /* len payload bytes (+ room the reader used for the tag) */
} escp_ctlmsg;

typedef struct escp_ctlq {
  pthread_mutex_t mu;
  pthread_cond_t not_full;
  escp_ctlmsg *head, *tail;
  size_t bytes, limit;
} escp_ctlq;

int escp_ctlq_init(escp_ctlq *q, size_t limit);
void escp_ctlq_free(escp_ctlq *q);
/* Append m (ownership passes to the queue). Blocks while the queue holds >= limit bytes.
 * Returns 0, or -1 when *stop was set (m is then still the caller's). */
int escp_ctlq_push(escp_ctlq *q, escp_ctlmsg *m, const atomic_int *stop);
/* Copy the head message into buf and drop it. Returns its length, 0 if the queue is empty,
 * ESCP_E_TOOBIG if cap is smaller (the message stays queued). */
int32_t escp_ctlq_pop(escp_ctlq *q, uint8_t *buf, int32_t cap);
void escp_ctlq_wake(escp_ctlq *q);

#endif
