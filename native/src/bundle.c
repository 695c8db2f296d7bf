/* bundle.c — the BUNDLE body format (bundle.h: writer, whole-body check, record reader) and
 * the bounded queue of per-bundle groups both roles hand to TypeScript. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bundle.h"
#include "escp.h"
#include "le.h"

void escp__bundle_hdr_put(uint8_t out[ESCP_BUNDLE_HDR], uint32_t count) {
  escp_put32(out, ESCP_BUNDLE_MAGIC);
  escp_put32(out + 4, count);
  escp_put64(out + 8, 0);
}

void escp__brec_put(uint8_t out[ESCP_BUNDLE_REC], const escp_brec *r) {
  escp_put64(out + 0, r->dir);
  escp_put64(out + 8, r->size);
  escp_put64(out + 16, (uint64_t)r->mtime_s);
  escp_put64(out + 24, (uint64_t)r->atime_s);
  escp_put32(out + 32, r->mtime_ns);
  escp_put32(out + 36, r->atime_ns);
  escp_put32(out + 40, r->mode);
  escp_put32(out + 44, r->uid);
  escp_put32(out + 48, r->gid);
  escp_put16(out + 52, r->leaf_len);
  escp_put16(out + 54, 0);
  memcpy(out + 56, r->digest, 32);
}

/* The header at p (ESCP_BUNDLE_REC bytes inside the body). */
static void brec_get(const uint8_t *p, escp_brec *r) {
  r->dir = escp_get64(p + 0);
  r->size = escp_get64(p + 8);
  r->mtime_s = (int64_t)escp_get64(p + 16);
  r->atime_s = (int64_t)escp_get64(p + 24);
  r->mtime_ns = escp_get32(p + 32);
  r->atime_ns = escp_get32(p + 36);
  r->mode = escp_get32(p + 40);
  r->uid = escp_get32(p + 44);
  r->gid = escp_get32(p + 48);
  r->leaf_len = escp_get16(p + 52);
  memcpy(r->digest, p + 56, 32);
  r->leaf = p + ESCP_BUNDLE_REC;
  r->data = r->leaf + r->leaf_len;
}

int escp__bundle_check(const uint8_t *body, size_t len, uint32_t block_size, uint32_t *count) {
  if (!body || len < ESCP_BUNDLE_HDR || len > block_size) return ESCP_E_PROTO;
  uint32_t n = escp_get32(body + 4);
  if (escp_get32(body) != ESCP_BUNDLE_MAGIC || escp_get64(body + 8) != 0 || n == 0 || n > ESCP_BUNDLE_FILES_MAX)
    return ESCP_E_PROTO;
  size_t pos = ESCP_BUNDLE_HDR;
  for (uint32_t i = 0; i < n; i++) {
    if (len - pos < ESCP_BUNDLE_REC) return ESCP_E_PROTO; /* pos <= len holds throughout */
    const uint8_t *p = body + pos;
    escp_brec r;
    brec_get(p, &r);
    if (r.leaf_len == 0 || r.leaf_len > ESCP_MAX_SEGMENT || escp_get16(p + 54) != 0) return ESCP_E_PROTO;
    if (r.size > ESCP_BUNDLE_FILE_MAX || r.mode > 07777 || r.mtime_ns >= 1000000000u || r.atime_ns >= 1000000000u)
      return ESCP_E_PROTO;
    size_t rec = ESCP_BUNDLE_REC_LEN(r.leaf_len, r.size); /* both bounded: no overflow */
    if (rec > len - pos) return ESCP_E_PROTO;
    for (size_t k = ESCP_BUNDLE_REC + r.leaf_len + (size_t)r.size; k < rec; k++)
      if (p[k]) return ESCP_E_PROTO; /* padding is zero */
    pos += rec;
  }
  if (pos != len) return ESCP_E_PROTO; /* nothing after the last record */
  *count = n;
  return ESCP_OK;
}

void escp__bundle_next(const uint8_t *body, size_t *pos, escp_brec *r) {
  brec_get(body + *pos, r);
  *pos += ESCP_BUNDLE_REC_LEN(r->leaf_len, r->size);
}

/* ---- ready groups ---- */

void escp__rq_init(escp_rq *q) {
  memset(q, 0, sizeof *q);
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
}

void escp__rq_free(escp_rq *q) {
  for (escp_rq_ent *e = q->head, *nx; e; e = nx) {
    nx = e->next;
    free(e);
  }
  q->head = q->tail = NULL;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
}

escp_rq_ent *escp__rq_alloc(size_t len, uint64_t bundle, uint32_t count) {
  escp_rq_ent *e = calloc(1, sizeof *e + len);
  if (!e) return NULL;
  e->len = len;
  escp_put64(e->b + ESCP_BG_BUNDLE, bundle);
  escp_put32(e->b + ESCP_BG_COUNT, count);
  return e;
}

void escp__rq_push(escp_rq *q, escp_rq_ent *e, const atomic_int *stop) {
  pthread_mutex_lock(&q->mu);
  while (q->bytes >= ESCP_REPORTS_MAX && !atomic_load(stop)) pthread_cond_wait(&q->cv, &q->mu);
  e->next = NULL;
  if (q->tail) q->tail->next = e;
  else q->head = e;
  q->tail = e;
  q->bytes += e->len;
  pthread_mutex_unlock(&q->mu);
}

int32_t escp__rq_take(escp_rq *q, uint8_t *out, int32_t cap) {
  size_t got = 0;
  int32_t rc = 0;
  pthread_mutex_lock(&q->mu);
  while (q->head && q->head->len <= (size_t)cap - got) {
    escp_rq_ent *e = q->head;
    memcpy(out + got, e->b, e->len);
    got += e->len;
    q->bytes -= e->len;
    q->head = e->next;
    if (!q->head) q->tail = NULL;
    free(e);
  }
  if (got == 0 && q->head) rc = ESCP_E_TOOBIG;
  else rc = (int32_t)got;
  if (got) pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

void escp__rq_wake(escp_rq *q) {
  pthread_mutex_lock(&q->mu);
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}
