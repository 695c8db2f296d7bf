/* ring.c — event ring and control-message queue (see ring.h). Producers are C threads;
 * the consumer is the JS thread polling escp_event_poll / escp_ctl_recv. */
#include "ring.h"
#include <stdlib.h>
#include <string.h>

int escp_evring_init(escp_evring *r, uint32_t cap) {
  memset(r, 0, sizeof *r);
  r->buf = calloc(cap, sizeof *r->buf);
  if (!r->buf) return ESCP_E_NOMEM;
  r->cap = cap;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->not_full, NULL);
  return ESCP_OK;
}

void escp_evring_free(escp_evring *r) {
  if (!r->buf) return;
  for (escp_ev_node *n = r->ovf_head, *nx; n; n = nx) {
    nx = n->next;
    free(n);
  }
  free(r->buf);
  r->buf = NULL;
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->not_full);
}

static void ovf_append(escp_evring *r, const escp_event *ev) {
  escp_ev_node *n = malloc(sizeof *n);
  if (!n) return; /* out of memory: the event is lost, nothing better to do */
  n->next = NULL;
  n->ev = *ev;
  if (r->ovf_tail) r->ovf_tail->next = n;
  else r->ovf_head = n;
  r->ovf_tail = n;
}

void escp_evring_push(escp_evring *r, const escp_event *ev, int may_block, int drop_if_full,
                      const atomic_int *stop) {
  pthread_mutex_lock(&r->mu);
  /* Blocking producers also wait while overflow exists, so it never grows without bound. */
  while (may_block && !drop_if_full && (r->count == r->cap || r->ovf_head) && !atomic_load(stop))
    pthread_cond_wait(&r->not_full, &r->mu);
  if (r->count < r->cap && !r->ovf_head) {
    r->buf[(r->head + r->count) % r->cap] = *ev;
    r->count++;
  } else if (!drop_if_full) {
    ovf_append(r, ev); /* keeps order behind anything already overflowed */
  }
  pthread_mutex_unlock(&r->mu);
}

int escp_evring_poll(escp_evring *r, escp_event *out, int max) {
  int n = 0;
  pthread_mutex_lock(&r->mu);
  while (n < max && r->count > 0) {
    out[n++] = r->buf[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
  }
  while (n < max && r->ovf_head) {
    escp_ev_node *x = r->ovf_head;
    out[n++] = x->ev;
    r->ovf_head = x->next;
    if (!r->ovf_head) r->ovf_tail = NULL;
    free(x);
  }
  if (n > 0) pthread_cond_broadcast(&r->not_full);
  pthread_mutex_unlock(&r->mu);
  return n;
}

void escp_evring_wake(escp_evring *r) {
  pthread_mutex_lock(&r->mu);
  pthread_cond_broadcast(&r->not_full);
  pthread_mutex_unlock(&r->mu);
}

int escp_ctlq_init(escp_ctlq *q, size_t limit) {
  memset(q, 0, sizeof *q);
  q->limit = limit;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_full, NULL);
  return ESCP_OK;
}

void escp_ctlq_free(escp_ctlq *q) {
  for (escp_ctlmsg *m = q->head, *nx; m; m = nx) {
    nx = m->next;
    free(m);
  }
  q->head = q->tail = NULL;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->not_full);
}

int escp_ctlq_push(escp_ctlq *q, escp_ctlmsg *m, const atomic_int *stop) {
  pthread_mutex_lock(&q->mu);
  /* A single message larger than the limit is still accepted once the queue is empty. */
  while (q->bytes > 0 && q->bytes + m->len > q->limit && !atomic_load(stop))
    pthread_cond_wait(&q->not_full, &q->mu);
  if (atomic_load(stop)) {
    pthread_mutex_unlock(&q->mu);
    return -1;
  }
  m->next = NULL;
  if (q->tail) q->tail->next = m;
  else q->head = m;
  q->tail = m;
  q->bytes += m->len;
  pthread_mutex_unlock(&q->mu);
  return 0;
}

int32_t escp_ctlq_pop(escp_ctlq *q, uint8_t *buf, int32_t cap) {
  pthread_mutex_lock(&q->mu);
  escp_ctlmsg *m = q->head;
  if (!m) {
    pthread_mutex_unlock(&q->mu);
    return 0;
  }
  if ((int64_t)m->len > (int64_t)cap) {
    pthread_mutex_unlock(&q->mu);
    return ESCP_E_TOOBIG;
  }
  q->head = m->next;
  if (!q->head) q->tail = NULL;
  q->bytes -= m->len;
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  memcpy(buf, m->data, m->len);
  int32_t len = (int32_t)m->len;
  free(m);
  return len;
}

void escp_ctlq_wake(escp_ctlq *q) {
  pthread_mutex_lock(&q->mu);
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
}
