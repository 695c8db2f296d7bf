/* tx.c — sender role: the FIFO of files to send and the T data-stream threads. Threads
 * claim blocks from the head file (small files go one per stream, big ones are striped
 * block by block over all streams), read into a 4096-aligned buffer, hash, seal in place
 * and send each block as one frame. Per-file state lives until its last block is
 * accounted, then FILE_DONE / FILE_ERROR is pushed. A source that changes while it is sent
 * (size, mtime, ctime, inode at open vs. at the end, or data past the announced size) is
 * reported as ESCP_E_CHANGED. A thread idle for timeout/3 sends a KEEPALIVE frame. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/stat.h>
#include "b3.h"
#include "bundle.h"
#include "rdigest.h"
#include "le.h"
#include "digest.h"
#include "net.h"
#include "resume.h"
#include "zc.h"
#include <unistd.h>

/* An item of the FIFO (tx->head..tail): a file of tx_file_add, or a small file of
 * tx_small_add (packed into a bundle). The first member of both. */
typedef struct tx_item {
  struct tx_item *next;
  int small;
} tx_item;

/* A small file queued by escp_tx_small_add, until its bundle is built (or, with reconnect,
 * acknowledged). */
typedef struct tx_small {
  tx_item q;
  uint64_t seq, dir, size, ino;
  uint16_t plen, llen;
  char names[];                    /* path, NUL, leaf, NUL */
} tx_small;

/* A bundle sent and not yet acknowledged (reconnect): what rebuilds its body. */
typedef struct tx_kept {
  tx_small *sm;
  uint64_t ino, dev;
  int64_t mtime_ns;                /* at the first fstat */
  uint8_t hdr[ESCP_BUNDLE_REC];    /* the record header as sent */
} tx_kept;
typedef struct tx_bundle {
  uint32_t n;
  tx_kept k[];
} tx_bundle;

/* A buffer of the block API's pool (escp.h "streams"): laid out like a stream thread's
 * block buffer (the frame header area in front of the payload, room for the tag behind it),
 * so a submitted block is sealed in place. State and links under tx->mu. */
enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_SUBMITTED, SLOT_SENDING };
typedef struct tx_slot {
  uint8_t *mem;                    /* ESCP_HDR_AREA + B + ESCP_IO_ALIGN bytes, 4096-aligned */
  int state;                       /* SLOT_* */
  uint64_t idx;                    /* submitted: block index, len bytes */
  uint32_t len;
  struct tx_slot *next;            /* the free list, or its stream's submitted list */
} tx_slot;

/* What a FIFO file is: a file by path, a stream read from an fd, or a stream of the block API. */
enum { TXK_FILE = 0, TXK_FD, TXK_BLK };

typedef struct tx_file {
  tx_item q;                       /* FIFO link (tx->head..tail) */
  int kind;                        /* TXK_* */
  /* streams (tx->mu): size and nblocks are known once ended */
  int sfd;                         /* TXK_FD: the caller's fd (never closed) */
  int ended, sfail, completed;     /* size known (EOF, stream_end) or failed; failed; completion taken */
  uint64_t rturn;                  /* TXK_FD: the block whose read is next */
  uint32_t claims;                 /* blocks claimed and not done with */
  tx_slot *pend;                   /* TXK_BLK: submitted buffers not yet sent (next_block: the next to send) */
  uint64_t maxsub;                 /* TXK_BLK: 1 + the highest index submitted (0 = none) */
  uint64_t shidx;                  /* TXK_BLK: the short block submitted (hasshort), its length */
  uint32_t shlen;
  int hasshort;
  struct tx_file *snext;           /* TXK_BLK: open block-API streams (tx->blk) */
  struct tx_file *lprev, *lnext;   /* live list: every file not yet completed */
  uint64_t fino, size, nblocks;
  uint64_t rfirst, rend;           /* blocks to send: [rfirst, rend) (the whole file, or a range) */
  escp_rdigest *rdg;               /* a range (shards): its subtree digest instead of dg */
  uint64_t next_block;             /* next block index to claim (tx->mu) */
  escp_jrn_atom *trees;            /* runs the receiver holds (resume): never read nor sent */
  size_t ntrees, tnext;            /* ... how many; the first one not yet skipped (tx->mu) */
  uint64_t held;                   /* blocks in them */
  char *path;
  pthread_mutex_t mu;              /* guards everything below */
  int fd, open_tried, opened, direct;
  int checkable;                   /* st0 valid: a regular file on a real engine */
  int sparse;                      /* fewer bytes allocated than its size: look for holes (ESCP_P_HOLES) */
  escp_fstat st0;                  /* at open: compared again when the last block is done */
  int32_t status;                  /* ESCP_OK until the file fails */
  int sys_errno;
  const char *what;                /* failing operation, for the event text */
  uint64_t accounted, sent, bytes; /* blocks done (sent or skipped), blocks sent, payload B */
  escp_digest *dg;                 /* allocated at open when checksums are on */
  atomic_int refs;                 /* 1 until completed, + 1 per unacknowledged frame (reconnect) */
} tx_file;

/* Frames sent on a stream and not yet acknowledged (reconnect, escp.h): a ring of
 * (file, block), oldest first; each entry holds a reference to its file, so a completed
 * file's record (path, identity) stays while a block of it may have to be resent. */
#define ESCP_UNACKED_MAX 4096
typedef struct ua_ent {
  tx_file *f;
  uint64_t idx;
  tx_bundle *b;                    /* a bundle frame (f unused), freed once acknowledged */
} ua_ent;
struct escp_unacked {
  ua_ent e[ESCP_UNACKED_MAX];
  uint32_t head, n;
};

struct escp_tx {
  pthread_mutex_t mu;
  pthread_cond_t cv;               /* work arrived, finish, or stop */
  tx_item *head, *tail;
  tx_file *live;
  int finished;
  uint64_t last_seq;               /* small files: the last seq queued (JS thread) */
  _Atomic uint64_t bundles;        /* bundle numbers given so far */
  escp_rq rq;                      /* sender entries of bundles sent, for escp_tx_bundle_take */
  tx_file *blk;                    /* block-API streams not yet completed */
  tx_slot *pool, *free;            /* the block API's buffers (allocated at the first claim) */
  uint8_t *pool_mem;
  int npool;
  pthread_cond_t pcv;              /* a pool buffer was freed, or stop */
};

int escp__tx_new(escp_session *s) {
  struct escp_tx *t = calloc(1, sizeof *t);
  if (!t) return ESCP_E_NOMEM;
  pthread_mutex_init(&t->mu, NULL);
  escp__cond_init_mono(&t->cv); /* timed waits measure idle time for keepalives */
  escp__cond_init_mono(&t->pcv);
  escp__rq_init(&t->rq);
  s->tx = t;
  return ESCP_OK;
}

static void file_free(escp_session *s, tx_file *f) {
  if (f->opened) s->io->close(f->fd);
  if (f->dg) {
    escp_digest_free(f->dg);
    free(f->dg);
  }
  if (f->rdg) {
    escp_rdigest_free(f->rdg);
    free(f->rdg);
  }
  pthread_mutex_destroy(&f->mu);
  free(f->trees);
  free(f->path);
  free(f);
}

static void file_unref(escp_session *s, tx_file *f) {
  if (atomic_fetch_sub(&f->refs, 1) == 1) file_free(s, f);
}

static void bundle_free(tx_bundle *b) {
  for (uint32_t i = 0; i < b->n; i++) free(b->k[i].sm);
  free(b);
}

void escp__tx_free(escp_session *s) {
  struct escp_tx *t = s->tx;
  for (tx_item *it = t->head, *nx; it; it = nx) { /* small files never claimed (files: below) */
    nx = it->next;
    if (it->small) free(it);
  }
  escp__rq_free(&t->rq);
  for (tx_file *f = t->live, *nx; f; f = nx) {
    nx = f->lnext;
    file_free(s, f);
  }
  free(t->pool);
  free(t->pool_mem);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  pthread_cond_destroy(&t->pcv);
  free(t);
  s->tx = NULL;
}

void escp__tx_wake(escp_session *s) {
  pthread_mutex_lock(&s->tx->mu);
  pthread_cond_broadcast(&s->tx->cv);
  pthread_cond_broadcast(&s->tx->pcv);
  pthread_mutex_unlock(&s->tx->mu);
  escp__rq_wake(&s->tx->rq);
}

/* Skip the held runs starting at next_block (tx->mu, or before f is queued). The last block
 * is never held, so this never runs past it. */
static void skip_held(tx_file *f) {
  while (f->tnext < f->ntrees && f->trees[f->tnext].start == f->next_block)
    f->next_block += (uint64_t)1 << f->trees[f->tnext++].log2;
}

/* Queue fino: a file (kind TXK_FILE: path, size, held runs) or a stream (TXK_FD reading sfd,
 * TXK_BLK: no path, size learnt at its end; its digest tracker made now). */
static int32_t tx_queue_kind(escp_session *s, uint64_t fino, const char *path, uint64_t size, const escp_offer *held,
                             int kind, int sfd, uint64_t rfirst, uint64_t rcount) {
  if (!s || fino == 0 || (!path && kind == TXK_FILE)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_SENDER || escp__stopping(s)) return ESCP_E_STATE;
  tx_file *f = calloc(1, sizeof *f);
  if (!f || (path && !(f->path = strdup(path)))) {
    free(f);
    return ESCP_E_NOMEM;
  }
  if (kind != TXK_FILE && s->param[ESCP_P_CHECKSUM]) {
    if (!(f->dg = malloc(sizeof *f->dg))) {
      free(f);
      return ESCP_E_NOMEM;
    }
    escp_digest_init(f->dg);
  }
  f->kind = kind;
  f->sfd = sfd;
  s->frozen = 1; /* the block size is fixed from here on */
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  f->fino = fino;
  f->size = size;
  f->nblocks = kind != TXK_FILE ? UINT64_MAX : size == 0 ? 1 : size / b + (size % b != 0);
  f->rend = f->nblocks;
  if (rcount) { /* a range: checked by the caller to lie inside the file */
    f->rfirst = f->next_block = rfirst;
    f->rend = rfirst + rcount;
  }
  f->fd = -1;
  atomic_init(&f->refs, 1);
  if (held) {
    f->trees = held->trees;
    f->ntrees = held->ntrees;
    f->held = held->held_blocks;
    skip_held(f);
  }
  pthread_mutex_init(&f->mu, NULL);
  struct escp_tx *t = s->tx;
  pthread_mutex_lock(&t->mu);
  int ok = !t->finished, dup = 0;
  for (tx_file *o = kind == TXK_BLK ? t->blk : NULL; o && !dup; o = o->snext) dup = o->fino == fino;
  ok = ok && !dup;
  if (ok && kind == TXK_BLK) {
    f->snext = t->blk;
    t->blk = f;
  }
  if (ok) {
    if (t->tail) t->tail->next = &f->q;
    else t->head = &f->q;
    t->tail = &f->q;
    f->lnext = t->live;
    if (t->live) t->live->lprev = f;
    t->live = f;
    pthread_cond_signal(&t->cv);
  }
  pthread_mutex_unlock(&t->mu);
  if (!ok) {
    pthread_mutex_destroy(&f->mu);
    if (f->dg) escp_digest_free(f->dg);
    free(f->dg);
    free(f->path);
    free(f); /* the trees stay the caller's */
    return dup ? ESCP_E_DUP : ESCP_E_STATE;
  }
  return ESCP_OK;
}

static int32_t tx_queue(escp_session *s, uint64_t fino, const char *path, uint64_t size, const escp_offer *held) {
  return tx_queue_kind(s, fino, path, size, held, TXK_FILE, -1, 0, 0);
}

/* Queue a file to send: fino (non-zero, unique per session), path (copied), size in
 * bytes as announced to the receiver. Returns ESCP_OK, E_INVAL, E_NOMEM, or E_STATE
 * (receiver session, after tx_finish, after stop). JS thread. */
ESCP_API int32_t escp_tx_file_add(void *h, uint64_t fino, const char *path, uint64_t size) {
  return tx_queue(escp__session(h), fino, path, size, NULL);
}

/* Queue a file the receiver holds part of (escp.h): its offer decoded and checked against
 * size and this session's block size. Also E_PROTO (a malformed offer, logged). JS thread. */
ESCP_API int32_t escp_tx_file_add_held(void *h, uint64_t fino, const char *path, uint64_t size, const uint8_t *held, int32_t len, uint64_t *held_bytes) {
  escp_session *s = escp__session(h);
  if (!s || !held || len < 0) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_SENDER) return ESCP_E_STATE;
  escp_offer o;
  const char *why = NULL;
  int32_t rc = escp_offer_decode(held, (size_t)len, size, (uint32_t)s->param[ESCP_P_BLOCK_SIZE], &o, &why);
  if (rc == ESCP_E_PROTO) ESCP_ERR(s, "fino %llu: resume offer refused: %s", (unsigned long long)fino, why);
  if (rc != ESCP_OK) return rc;
  uint64_t bytes = o.held_bytes;
  rc = tx_queue(s, fino, path, size, &o);
  if (rc != ESCP_OK) escp_offer_free(&o);
  else if (held_bytes) *held_bytes = bytes;
  return rc;
}

/* A byte range of a file (shards, escp.h): blocks [first, first+count) only, with the held
 * runs of an offer (may be NULL) that must lie inside the range, before its last block. */
ESCP_API int32_t escp_tx_file_add_range(void *h, uint64_t fino, const char *path, uint64_t size, uint64_t first,
                                        uint64_t count, const uint8_t *held, int32_t len, uint64_t *held_bytes) {
  escp_session *s = escp__session(h);
  if (!s || !path || len < 0 || (len > 0 && !held)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_SENDER) return ESCP_E_STATE;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  uint64_t nb = size == 0 ? 1 : size / b + (size % b != 0);
  if (count == 0 || first >= nb || count > nb - first) return ESCP_E_RANGE;
  escp_offer o;
  memset(&o, 0, sizeof o);
  if (held_bytes) *held_bytes = 0;
  if (len > 0) {
    const char *why = NULL;
    int32_t rc = escp_offer_decode(held, (size_t)len, size, (uint32_t)b, &o, &why);
    if (rc == ESCP_E_PROTO) ESCP_ERR(s, "fino %llu: resume offer refused: %s", (unsigned long long)fino, why);
    if (rc != ESCP_OK) return rc;
    for (size_t i = 0; i < o.ntrees; i++) /* inside the range, and never its last block */
      if (o.trees[i].start < first || o.trees[i].start + ((uint64_t)1 << o.trees[i].log2) > first + count - 1) {
        ESCP_ERR(s, "fino %llu: resume offer refused: a run outside the range", (unsigned long long)fino);
        escp_offer_free(&o);
        return ESCP_E_PROTO;
      }
  }
  uint64_t bytes = o.held_bytes;
  int32_t rc = tx_queue_kind(s, fino, path, size, len > 0 ? &o : NULL, TXK_FILE, -1, first, count);
  if (rc != ESCP_OK) escp_offer_free(&o);
  else if (held_bytes) *held_bytes = bytes;
  return rc;
}

/* Does the file at path hold what the offer says: its size, and the CVs of the first and
 * last held runs read from it (escp.h). Any thread. */
ESCP_API int32_t escp_tx_offer_check(const char *path, uint64_t size, int32_t block_size, const uint8_t *held, int32_t len, int32_t *err) {
  if (!path || !held || len < 0 || !err || block_size < ESCP_B3_CHUNK || (block_size & (block_size - 1)) != 0)
    return ESCP_E_INVAL;
  *err = 0;
  escp_offer o;
  const char *why = NULL;
  int32_t rc = escp_offer_decode(held, (size_t)len, size, (uint32_t)block_size, &o, &why);
  if (rc != ESCP_OK) return rc;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  uint8_t *buf = fd >= 0 ? malloc((size_t)block_size) : NULL;
  struct stat st;
  if (fd < 0) *err = errno, rc = ESCP_E_OPEN;
  else if (!buf) rc = ESCP_E_NOMEM;
  else if (fstat(fd, &st) < 0) *err = errno, rc = ESCP_E_READ;
  else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) rc = ESCP_E_CHANGED;
  for (int c = 0; c < 2 && rc == ESCP_OK; c++) {
    uint8_t cv[32];
    int e = escp_run_cv(fd, o.check[c].start, o.check[c].log2, (uint32_t)block_size, buf, cv);
    if (e == EIO) rc = ESCP_E_CHANGED; /* shorter than it says */
    else if (e) *err = e, rc = ESCP_E_READ;
    else if (memcmp(cv, o.check[c].cv, 32) != 0) rc = ESCP_E_CHANGED;
  }
  free(buf);
  if (fd >= 0) close(fd);
  escp_offer_free(&o);
  return rc;
}

/* No more files: once the queue empties every data stream sends BYE, then DRAINED is
 * pushed. Idempotent. ESCP_E_STATE on a receiver. JS thread. */
ESCP_API int32_t escp_tx_finish(void *h) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_SENDER) return ESCP_E_STATE;
  pthread_mutex_lock(&s->tx->mu);
  s->tx->finished = 1;
  pthread_cond_broadcast(&s->tx->cv);
  pthread_mutex_unlock(&s->tx->mu);
  return ESCP_OK;
}

/* Records of escp_tx_small_add (escp.h ESCP_SA_*): each checked (see escp.h), counted into
 * *n. ESCP_OK or ESCP_E_INVAL. */
static int32_t small_check(escp_session *s, const uint8_t *recs, size_t len, uint64_t last, uint32_t *n) {
  size_t b = (size_t)s->param[ESCP_P_BLOCK_SIZE];
  *n = 0;
  for (size_t pos = 0; pos < len;) {
    if (len - pos < ESCP_SA_HDR) return ESCP_E_INVAL;
    const uint8_t *r = recs + pos;
    uint64_t seq = escp_get64(r + ESCP_SA_SEQ), dir = escp_get64(r + ESCP_SA_DIR), size = escp_get64(r + ESCP_SA_SIZE);
    size_t plen = escp_get16(r + ESCP_SA_PATH_LEN), llen = escp_get16(r + ESCP_SA_LEAF_LEN);
    if (plen == 0 || plen > ESCP_MAX_PATH || llen == 0 || llen > ESCP_MAX_SEGMENT) return ESCP_E_INVAL;
    size_t rec = ESCP_BUNDLE_PAD8(ESCP_SA_HDR + plen + llen);
    if (rec > len - pos || seq != last + 1 + *n || dir == 0 || size > ESCP_BUNDLE_FILE_MAX) return ESCP_E_INVAL;
    if (ESCP_BUNDLE_HDR + ESCP_BUNDLE_REC_LEN(llen, size) > b) return ESCP_E_INVAL; /* fits no bundle */
    if (memchr(r + ESCP_SA_HDR, 0, plen + llen)) return ESCP_E_INVAL;
    pos += rec;
    (*n)++;
  }
  return ESCP_OK;
}

static void small_free_list(tx_item *it) {
  for (tx_item *nx; it; it = nx) {
    nx = it->next;
    free(it);
  }
}

/* Queue small files (escp.h "small files in bundles"): the whole buffer is checked, then
 * every record joins the FIFO, in order, behind what is there. ESCP_OK, E_INVAL, E_NOMEM,
 * E_STATE. JS thread. */
ESCP_API int32_t escp_tx_small_add(void *h, const uint8_t *recs, int32_t len) {
  escp_session *s = escp__session(h);
  if (!s || len < 0 || (len > 0 && !recs)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_SENDER || !s->param[ESCP_P_BUNDLE] || escp__stopping(s)) return ESCP_E_STATE;
  struct escp_tx *t = s->tx;
  uint32_t n = 0;
  int32_t rc = small_check(s, recs, (size_t)len, t->last_seq, &n);
  if (rc != ESCP_OK || n == 0) return rc;
  tx_item *first = NULL, **link = &first, *last = NULL;
  for (size_t pos = 0; pos < (size_t)len;) { /* all allocated first: nothing queued on ENOMEM */
    const uint8_t *r = recs + pos;
    uint16_t plen = escp_get16(r + ESCP_SA_PATH_LEN), llen = escp_get16(r + ESCP_SA_LEAF_LEN);
    tx_small *sm = malloc(sizeof *sm + (size_t)plen + llen + 2);
    if (!sm) {
      small_free_list(first);
      return ESCP_E_NOMEM;
    }
    *sm = (tx_small){.q = {NULL, 1}, .seq = escp_get64(r + ESCP_SA_SEQ), .dir = escp_get64(r + ESCP_SA_DIR),
                     .size = escp_get64(r + ESCP_SA_SIZE), .ino = escp_get64(r + ESCP_SA_INO), .plen = plen, .llen = llen};
    memcpy(sm->names, r + ESCP_SA_HDR, plen);
    sm->names[plen] = 0;
    memcpy(sm->names + plen + 1, r + ESCP_SA_HDR + plen, llen);
    sm->names[plen + 1 + llen] = 0;
    *link = last = &sm->q;
    link = &sm->q.next;
    pos += ESCP_BUNDLE_PAD8(ESCP_SA_HDR + (size_t)plen + llen);
  }
  s->frozen = 1; /* the block size is fixed from here on */
  pthread_mutex_lock(&t->mu);
  int ok = !t->finished;
  if (ok) {
    if (t->tail) t->tail->next = first;
    else t->head = first;
    t->tail = last;
    t->last_seq += n;
    pthread_cond_broadcast(&t->cv);
  }
  pthread_mutex_unlock(&t->mu);
  if (!ok) small_free_list(first);
  return ok ? ESCP_OK : ESCP_E_STATE;
}

/* Move the sender entries of bundles sent (whole groups) into out (escp.h). JS thread. */
ESCP_API int32_t escp_tx_bundle_take(void *h, uint8_t *out, int32_t cap) {
  escp_session *s = escp__session(h);
  if (!s || cap < 0 || (cap > 0 && !out)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_SENDER) return ESCP_E_STATE;
  return escp__rq_take(&s->tx->rq, out, cap);
}

/* The head is a small file: claim it and the consecutive small files behind it that fit one
 * bundle with it (cl: room for ESCP_BUNDLE_FILES_MAX). Under tx->mu. */
static uint32_t claim_small(escp_session *s, struct escp_tx *t, tx_small **cl) {
  size_t used = ESCP_BUNDLE_HDR, b = (size_t)s->param[ESCP_P_BLOCK_SIZE];
  uint32_t n = 0;
  while (t->head && t->head->small && n < ESCP_BUNDLE_FILES_MAX) {
    tx_small *sm = (tx_small *)t->head;
    size_t need = ESCP_BUNDLE_REC_LEN(sm->llen, sm->size);
    if (used + need > b) break; /* the first always fits (tx_small_add checked it) */
    used += need;
    cl[n++] = sm;
    t->head = t->head->next;
  }
  if (!t->head) t->tail = NULL;
  return n;
}

static void head_pop(struct escp_tx *t);
static int stream_done(struct escp_tx *t, tx_file *f);
static tx_slot *pend_take(tx_file *f);

/* Claim the head file's next block (1), or the run of small files at the head (3: *ncl of
 * them in cl), a stream's next block: to read from its fd (4, *idx) or a submitted buffer of
 * the block API (5, *sl), or a stream to complete (6). 0 = finished and empty, -1 = stop,
 * 2 = no work for timeout/3 ms (the caller sends a KEEPALIVE and asks again). */
static int tx_claim(escp_session *s, tx_file **fo, uint64_t *idx, tx_small **cl, uint32_t *ncl, tx_slot **sl) {
  struct escp_tx *t = s->tx;
  struct timespec dl;
  escp__deadline(&dl, (uint64_t)s->param[ESCP_P_TIMEOUT_MS] / 3);
  int idle = 0, r;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    tx_file *f = t->head && !t->head->small ? (tx_file *)t->head : NULL;
    if (escp__stopping(s)) r = -1;
    else if (!t->head) r = t->finished ? 0 : idle ? 2 : 7;
    else if (t->head->small) *ncl = claim_small(s, t, cl), r = 3;
    else if (f->kind == TXK_FILE) r = 1;
    else if (f->kind == TXK_FD) r = f->ended ? 8 : 4;
    else if ((*sl = pend_take(f)) != NULL) r = 5;
    else if (f->ended && stream_done(t, f)) r = 6;
    else if (f->ended && (f->sfail || f->next_block == f->nblocks)) r = 8; /* claims still out: theirs to complete */
    else r = idle ? 2 : 7;
    if (r == 7) { /* nothing to take yet */
      idle = pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT;
      continue;
    }
    if (r == 8) { /* a stream with nothing more to claim: the next item */
      head_pop(t);
      continue;
    }
    *fo = f;
    if (r == 1) {
      *idx = f->next_block++;
      skip_held(f);
      if (f->next_block == f->rend) head_pop(t); /* last block claimed: the next thread moves on */
    } else if (r == 4) {
      *idx = f->next_block++;
      f->claims++;
    } else if (r == 5) {
      f->next_block++;
      f->claims++;
    }
    break;
  }
  pthread_mutex_unlock(&t->mu);
  return r;
}

/* The head item leaves the FIFO. Under tx->mu. */
static void head_pop(struct escp_tx *t) {
  t->head = t->head->next;
  if (!t->head) t->tail = NULL;
}

/* Under f->mu: remember the first failure only. */
static void file_fail(tx_file *f, int32_t status, int err, const char *what) {
  if (f->status != ESCP_OK) return;
  f->status = status;
  f->sys_errno = err;
  f->what = what;
}

/* What differs between the open-time stat a and the later one b, or NULL. */
static const char *stat_diff(const escp_fstat *a, const escp_fstat *b) {
  if (b->size > a->size) return "changed while sent (grew)";
  if (b->size < a->size) return "changed while sent (shrank)";
  if (b->mtime_ns != a->mtime_ns || b->ctime_ns != a->ctime_ns) return "changed while sent (modified)";
  if (b->ino != a->ino || b->dev != a->dev) return "changed while sent (replaced)";
  return NULL;
}

/* All blocks are sent: the file must still be what was opened, at the announced size, and
 * its path must still name it. Called with no other thread holding f. */
static void tx_verify_unchanged(escp_session *s, tx_file *f) {
  if (!f->opened || !f->checkable || f->status != ESCP_OK) return;
  escp_fstat now, byname;
  const char *why = NULL;
  int err = s->io->stat(f->path, &byname); /* first: a rename-over also bumps the old ctime */
  if (err == ENOENT) why = "changed while sent (removed)";
  else if (!err && (byname.ino != f->st0.ino || byname.dev != f->st0.dev)) why = "changed while sent (replaced)";
  if (!why && !err) err = s->io->fstat(f->fd, &now);
  if (!why && err) {
    file_fail(f, ESCP_E_READ, err, "stat");
    return;
  }
  if (!why) why = stat_diff(&f->st0, &now);
  if (!why && now.size != f->size) why = now.size > f->size ? "changed while sent (grew)" : "changed while sent (shrank)";
  if (why) file_fail(f, ESCP_E_CHANGED, 0, why);
}

static void tx_complete(escp_session *s, tx_file *f) {
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.fino = f->fino;
  ev.bytes = f->bytes;
  ev.blocks = f->sent;
  tx_verify_unchanged(s, f);
  if (f->opened) s->io->close(f->fd);
  f->opened = 0;
  int32_t st = f->status;
  if (st == ESCP_OK && f->dg && escp_digest_final(f->dg, f->nblocks, ev.digest) != ESCP_OK) {
    st = ESCP_E_DIGEST;
    f->what = "digest";
  }
  if (st == ESCP_OK && f->rdg) { /* a range: its digest over the subtree list (rdigest.h) */
    uint8_t packed[ESCP_RSUB_MAX * ESCP_RSUB_REC];
    uint32_t n = 0;
    if (escp_rdigest_final(f->rdg, packed, &n, ev.digest) != ESCP_OK) {
      st = ESCP_E_DIGEST;
      f->what = "digest";
    }
  }
  ev.type = st == ESCP_OK ? ESCP_EV_FILE_DONE : ESCP_EV_FILE_ERROR;
  ev.status = st;
  ev.sys_errno = f->sys_errno;
  if (st != ESCP_OK) strncpy(ev.text, f->what ? f->what : "error", sizeof ev.text - 1);
  struct escp_tx *t = s->tx;
  pthread_mutex_lock(&t->mu);
  for (tx_file **pp = f->kind == TXK_BLK ? &t->blk : NULL; pp && *pp; pp = &(*pp)->snext)
    if (*pp == f) {
      *pp = f->snext;
      break;
    }
  if (f->lprev) f->lprev->lnext = f->lnext;
  else t->live = f->lnext;
  if (f->lnext) f->lnext->lprev = f->lprev;
  pthread_mutex_unlock(&t->mu);
  file_unref(s, f); /* unacknowledged frames may still hold it */
  escp__stat_add(s, ESCP_S_FILES_DONE, 1);
  escp__event(s, &ev, 1);
}

/* One claimed block is done with (sent or not); the last one completes the file. */
static void tx_account(escp_session *s, tx_file *f, int sent, uint64_t n) {
  pthread_mutex_lock(&f->mu);
  f->accounted++;
  if (sent) {
    f->sent++;
    f->bytes += n;
  }
  int last = f->accounted == (f->rend - f->rfirst) - f->held;
  pthread_mutex_unlock(&f->mu);
  if (last) tx_complete(s, f); /* every block accounted: no other thread holds f */
}

/* Open the file once (per-file lock). Returns the file's status after the attempt. */
static int32_t tx_open(escp_session *s, tx_file *f) {
  pthread_mutex_lock(&f->mu);
  if (!f->open_tried) {
    f->open_tried = 1;
    /* Small files are read through the page cache, like the receiver writes them: an
     * O_DIRECT read of a 4 KiB file is a device round trip even when the file is cached. */
    f->direct = (int)s->param[ESCP_P_DIRECT] && f->size >= ESCP_DIRECT_MIN;
    int err = s->io->open_read(f->path, &f->direct, &f->fd);
    if (err) file_fail(f, ESCP_E_OPEN, err, "open");
    else f->opened = 1;
    if (!err) { /* ENOSYS (dummy engine): nothing to compare later */
      int e2 = s->io->fstat(f->fd, &f->st0);
      if (e2 && e2 != ENOSYS) file_fail(f, ESCP_E_OPEN, e2, "fstat");
      f->checkable = !e2 && f->st0.regular;
      f->sparse = f->checkable && s->param[ESCP_P_HOLES] && f->st0.alloc < f->st0.size;
    }
    if (!err && s->param[ESCP_P_CHECKSUM] && f->rend - f->rfirst != f->nblocks) { /* a range */
      f->rdg = malloc(sizeof *f->rdg);
      if (!f->rdg || escp_rdigest_init(f->rdg, f->rfirst, f->rend - f->rfirst) != ESCP_OK)
        file_fail(f, ESCP_E_NOMEM, 0, "digest");
      for (size_t i = 0; f->rdg && f->status == ESCP_OK && i < f->ntrees; i++)
        if (escp_rdigest_add(f->rdg, f->trees[i].start, f->trees[i].log2, f->trees[i].cv) != ESCP_OK)
          file_fail(f, ESCP_E_PROTO, 0, "held blocks");
    } else if (!err && s->param[ESCP_P_CHECKSUM]) {
      f->dg = malloc(sizeof *f->dg);
      if (f->dg) escp_digest_init(f->dg);
      else file_fail(f, ESCP_E_NOMEM, 0, "digest");
      for (size_t i = 0; f->dg && i < f->ntrees; i++) /* held runs: their CVs as offered */
        if (escp_digest_add_tree(f->dg, f->trees[i].start, f->trees[i].log2, f->trees[i].cv) != ESCP_OK)
          file_fail(f, ESCP_E_PROTO, 0, "held blocks");
    }
  }
  int32_t st = f->status;
  pthread_mutex_unlock(&f->mu);
  return st;
}

/* One pread through the engine (or the injected fault). Returns bytes read or -errno. */
static int64_t tx_pread(escp_session *s, tx_file *f, uint8_t *pay, size_t want, uint64_t off, int direct) {
  int fi = ESCP_FI(s, ESCP_FI_PREAD); /* fault-injection build only */
  if (fi) return -fi;
  return want ? s->io->pread(f->fd, pay, want, off, direct) : 0;
}

/* A read came back with r < n bytes (r >= 0): the file shrank since open (E_CHANGED) or
 * was already shorter than announced (E_SHORT). Under f->mu. */
static void tx_short(escp_session *s, tx_file *f) {
  escp_fstat now;
  const char *why = NULL;
  if (f->checkable && s->io->fstat(f->fd, &now) == 0) why = stat_diff(&f->st0, &now);
  if (why) file_fail(f, ESCP_E_CHANGED, 0, why);
  else file_fail(f, ESCP_E_SHORT, 0, "short read");
}

/* Read block idx (n payload bytes at off) into pay (room: block size + ESCP_IO_ALIGN).
 * The last block asks for one byte more (one 4 KiB unit more under O_DIRECT): data past
 * the announced size means the file grew. Returns ESCP_OK or fails the file. */
static int32_t tx_read(escp_session *s, tx_file *f, uint8_t *pay, uint64_t off, uint32_t n, int last) {
  pthread_mutex_lock(&f->mu);
  int direct = f->direct, probe = last && f->checkable;
  pthread_mutex_unlock(&f->mu);
  size_t ask = (size_t)n + (probe ? 1 : 0);
  /* O_DIRECT wants whole 4 KiB units: ask for the rounded length, EOF trims it. */
  size_t want = direct ? (ask + ESCP_IO_ALIGN - 1) / ESCP_IO_ALIGN * ESCP_IO_ALIGN : ask;
  int64_t r = tx_pread(s, f, pay, want, off, direct);
  if (r == -EINVAL && direct) { /* filesystem refused O_DIRECT I/O: buffered from now on */
    pthread_mutex_lock(&f->mu);
    if (f->direct && s->io->drop_direct(f->fd) == 0) f->direct = 0;
    direct = f->direct;
    pthread_mutex_unlock(&f->mu);
    escp__log(s, "fino %llu: O_DIRECT read refused, buffered", (unsigned long long)f->fino);
    if (!direct) r = tx_pread(s, f, pay, ask, off, 0);
  }
  if (r >= 0 && (uint64_t)r >= n && !(probe && (uint64_t)r > n)) return ESCP_OK;
  pthread_mutex_lock(&f->mu);
  if (r < 0) file_fail(f, ESCP_E_READ, (int)-r, "read");
  else if ((uint64_t)r > n) file_fail(f, ESCP_E_CHANGED, 0, "changed while sent (grew)");
  else tx_short(s, f);
  pthread_mutex_unlock(&f->mu);
  return ESCP_E_READ;
}

/* Send one sealed frame on st: ESCP_OK, or ESCP_E_CLOSED with *sys = the send's errno
 * (EAGAIN: no byte taken for a whole SO_SNDTIMEO). No event: the caller decides (tx_lost). */
static int32_t tx_send(escp_session *s, escp_stream *st, const uint8_t *fr, size_t len, int *sys) {
  int fi = ESCP_FI(s, ESCP_FI_SEND); /* fault-injection build only: a network drop */
  if (fi) shutdown(st->fd, SHUT_RDWR);
  int r = fi ? -fi : escp__send_all(st->fd, fr, len);
  if (r == 0) {
    escp__stat_add(s, ESCP_S_BYTES_WIRE, len);
    return ESCP_OK;
  }
  *sys = -r;
  return ESCP_E_CLOSED;
}

/* EAGAIN: SO_SNDTIMEO, no byte taken for a whole timeout. ETIMEDOUT: TCP_USER_TIMEOUT, which
 * also covers zero-window probing, so a peer that stopped reading may end either way first;
 * both mean the same to the user. */
static int32_t send_status(int sys) { return sys == EAGAIN || sys == ETIMEDOUT ? ESCP_E_TIMEOUT : ESCP_E_CLOSED; }

static void ua_push(escp_stream *st, tx_file *f, uint64_t idx, tx_bundle *b) {
  struct escp_unacked *u = st->ua;
  if (f) atomic_fetch_add(&f->refs, 1);
  u->e[(u->head + u->n) % ESCP_UNACKED_MAX] = (ua_ent){f, idx, b};
  u->n++;
}

/* The k oldest frames are consumed: let their files go. */
static void ua_drop(escp_session *s, escp_stream *st, uint64_t k) {
  struct escp_unacked *u = st->ua;
  for (; k > 0 && u->n > 0; k--, u->n--) {
    if (u->e[u->head].b) bundle_free(u->e[u->head].b);
    else file_unref(s, u->e[u->head].f);
    u->head = (u->head + 1) % ESCP_UNACKED_MAX;
  }
}

/* A whole ACK frame is in st->ackbuf: authenticate it, check its count against what was
 * sent (never backwards, never ahead, BYE only after the last frame) and drop what it covers.
 * ESCP_OK or the rejection's status (FATAL pushed, socket shut). */
static int32_t ack_take(escp_session *s, escp_stream *st) {
  uint8_t *hdr = st->ackbuf, *body = hdr + ESCP_FRAME_HDR;
  escp_frame_hdr fh;
  int32_t rc = escp_chan_check(&st->rx, hdr, ESCP_ACK_LEN, &fh);
  if (rc == ESCP_OK && fh.type != ESCP_FT_ACK) rc = ESCP_E_PROTO;
  if (rc == ESCP_OK) rc = escp_chan_open(&st->rx, hdr, body, ESCP_ACK_LEN, body + ESCP_ACK_LEN);
  uint64_t count = escp_get64(body);
  uint32_t flags = escp_get32(body + 8), reserved = escp_get32(body + 12);
  if (rc == ESCP_OK && (count < st->acked || count > st->dframes || (flags & ~ESCP_ACKF_BYE) || reserved ||
                        ((flags & ESCP_ACKF_BYE) && count != st->dframes)))
    rc = ESCP_E_PROTO;
  if (rc != ESCP_OK) {
    escp__reject(s, st->idx, rc, "bad ACK");
    return rc;
  }
  if (count > st->acked) st->fails = 0; /* the stream moves: reconnect attempts start over */
  ua_drop(s, st, count - st->acked);
  st->acked = count;
  if (flags & ESCP_ACKF_BYE) st->bye = 1;
  return ESCP_OK;
}

/* Read the receiver's ACKs: those already here (wait = 0), or until one comes (wait = 1, at
 * most a timeout: then ESCP_E_TIMEOUT). ESCP_OK, ESCP_E_CLOSED (*sys: the connection broke),
 * ESCP_E_TIMEOUT, or a rejection (ack_take). */
static int32_t tx_acks(escp_session *s, escp_stream *st, int wait, int *sys) {
  for (int got = 0;;) {
    int nb = !wait || got;
    ssize_t r = recv(st->fd, st->ackbuf + st->ackgot, ESCP_ACK_WIRE - st->ackgot, nb ? MSG_DONTWAIT : 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      *sys = ETIMEDOUT;
      return nb ? ESCP_OK : ESCP_E_TIMEOUT;
    }
    if (r <= 0) {
      *sys = r < 0 ? errno : 0;
      return ESCP_E_CLOSED;
    }
    st->ackgot += (uint32_t)r;
    if (st->ackgot < ESCP_ACK_WIRE) continue;
    st->ackgot = 0;
    int32_t rc = ack_take(s, st);
    if (rc != ESCP_OK) return rc;
    got = 1;
  }
}

static int32_t tx_frame(escp_session *s, escp_stream *st, uint64_t fino, uint64_t off, uint32_t n, uint32_t kind,
                        uint8_t *buf, uint8_t *zbuf, int *sys);
static int32_t replay_bundle(escp_session *s, const tx_bundle *b, uint8_t *body, uint32_t *len);

/* ESCP_P_HOLES: is block idx ([off, off + n)) of f, open as fd, wholly inside a hole of a
 * sparse source? Not the last block (its read also probes for growth). A failed SEEK_DATA
 * just reads. */
static int tx_hole(escp_session *s, tx_file *f, int fd, uint64_t off, uint32_t n, uint64_t idx) {
  if (!f->sparse || n == 0 || idx + 1 >= f->nblocks) return 0;
  int64_t d = s->io->seek_data(fd, off);
  return d == -ENXIO || (d >= 0 && (uint64_t)d >= off + n);
}


/* Open f again by its path to resend a block: it must still be the file that was sent. */
static int32_t replay_open(escp_session *s, tx_file *f, int *fd) {
  int direct = 0;
  escp_fstat now;
  if (s->io->open_read(f->path, &direct, fd) != 0) return ESCP_E_CHANGED;
  if (f->checkable && (s->io->fstat(*fd, &now) != 0 || stat_diff(&f->st0, &now) != NULL)) {
    s->io->close(*fd);
    *fd = -1;
    return ESCP_E_CHANGED;
  }
  return ESCP_OK;
}

/* After a reconnect and the receiver's count: resend every frame it did not consume, in
 * order, re-read from the files. ESCP_OK, ESCP_E_CLOSED (*sys: broke again), or FATAL
 * ESCP_E_CHANGED (a file is no longer what was sent; event pushed). */
static int32_t tx_replay(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf, int *sys) {
  struct escp_unacked *u = st->ua;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  tx_file *cur = NULL;
  int fd = -1;
  int32_t rc = ESCP_OK;
  for (uint32_t k = 0; k < u->n && rc == ESCP_OK; k++) {
    ua_ent *e = &u->e[(u->head + k) % ESCP_UNACKED_MAX];
    if (e->b) { /* a bundle: rebuilt from its files, which must be what was sent */
      uint32_t len = 0;
      rc = replay_bundle(s, e->b, buf + ESCP_HDR_AREA, &len);
      if (rc == ESCP_OK) rc = tx_frame(s, st, e->idx, 0, len, ESCP_DF_BUNDLE, buf, zbuf, sys);
      else escp__event_simple(s, ESCP_EV_FATAL, rc, 0, (uint32_t)st->idx, 0, "a bundle changed before it was resent");
      continue;
    }
    tx_file *f = e->f;
    uint64_t off = e->idx * b;
    uint32_t n = (uint32_t)(f->size - off < b ? f->size - off : b);
    if (f != cur) {
      if (fd >= 0) s->io->close(fd);
      fd = -1;
      cur = f;
      rc = replay_open(s, f, &fd);
    }
    int zero = rc == ESCP_OK && tx_hole(s, f, fd, off, n, e->idx); /* still a hole: a ZERO frame again */
    if (zero) memset(buf + ESCP_HDR_AREA, 0, n);
    else if (rc == ESCP_OK && n > 0 && s->io->pread(fd, buf + ESCP_HDR_AREA, n, off, 0) != (int64_t)n) rc = ESCP_E_CHANGED;
    if (rc == ESCP_E_CHANGED) {
      char t[56];
      snprintf(t, sizeof t, "fino %llu changed before a lost block was resent", (unsigned long long)f->fino);
      escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_CHANGED, 0, (uint32_t)st->idx, f->fino, t);
      break;
    }
    rc = tx_frame(s, st, f->fino, off, n, zero ? ESCP_DF_ZERO : 0, buf, zbuf, sys);
  }
  if (fd >= 0) s->io->close(fd);
  if (rc == ESCP_OK) escp__log(s, "stream %d: %u frame(s) resent after a reconnect", st->idx, u->n);
  return rc;
}

/* st's connection broke (status E_CLOSED or E_TIMEOUT, sys errno, what): with reconnect on,
 * re-establish it, take the receiver's count and resend what it lacks (ESCP_OK). Else, or
 * when that fails, the stream is lost: its event is pushed and the status returned. */
static int32_t tx_lost(escp_session *s, escp_stream *st, int32_t status, int sys, const char *what, uint8_t *buf,
                       uint8_t *zbuf) {
  int total = 0;
  while (s->reconnect && !escp__stopping(s)) {
    int attempts = 0;
    int32_t rc = escp__reconnect(s, st, what, &attempts);
    total += attempts;
    if (rc != ESCP_OK) break;
    st->ackgot = 0;
    if (st->zc) escp_zc_raw(st->zc); /* the receiver starts a fresh zstd session too */
    rc = tx_acks(s, st, 1, &sys);    /* its first frame: the count it consumed */
    if (rc == ESCP_OK) rc = tx_replay(s, st, buf, zbuf, &sys);
    if (rc == ESCP_OK) {
      escp__reconnected(s, st, what, total);
      return ESCP_OK;
    }
    if (rc != ESCP_E_CLOSED && rc != ESCP_E_TIMEOUT) return rc; /* rejected or changed: reported */
    status = rc == ESCP_E_TIMEOUT ? rc : send_status(sys);
    what = "lost again while resyncing";
  }
  if (escp__stopping(s)) return ESCP_E_ABORTED;
  if (status == ESCP_E_TIMEOUT) {
    char t[56];
    snprintf(t, sizeof t, "send stalled on stream %d", st->idx);
    escp__lost_event(s, ESCP_EV_FATAL, ESCP_E_TIMEOUT, sys == ETIMEDOUT ? ETIMEDOUT : 0, st->idx, total, t);
  } else {
    escp__stream_down(s, st->idx, ESCP_E_CLOSED, sys, what, total);
  }
  return status;
}

/* Reconnect on: before a new frame, room in the unacknowledged log (wait for an ACK). */
static int32_t tx_room(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf) {
  int32_t rc = ESCP_OK;
  while (rc == ESCP_OK && st->ua->n >= ESCP_UNACKED_MAX) {
    int sys = 0;
    rc = tx_acks(s, st, 1, &sys);
    if (rc == ESCP_E_CLOSED || rc == ESCP_E_TIMEOUT) rc = tx_lost(s, st, rc, sys, "waiting for ACK", buf, zbuf);
  }
  return rc;
}

/* Reconnect on: after a frame, take the ACKs that came (every half ACK interval). */
static int32_t tx_poll_acks(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf) {
  uint64_t every = ESCP_ACK_EVERY((uint64_t)s->param[ESCP_P_BLOCK_SIZE]);
  if (!st->ua || st->dframes % (every / 2 ? every / 2 : 1) != 0) return ESCP_OK;
  int sys = 0;
  int32_t rc = tx_acks(s, st, 0, &sys);
  if (rc == ESCP_E_CLOSED) rc = tx_lost(s, st, rc, sys, "recv ACK", buf, zbuf);
  return rc;
}

/* With -C: compress pay[0..n) into zbuf's payload area. Returns the compressed length
 * (the frame then carries ESCP_DF_ZSTD) or 0 = send the block RAW, which resets the stream's
 * zstd session on both sides (zc.h). */
static uint32_t tx_compress(escp_stream *st, const uint8_t *pay, uint32_t n, uint8_t *zbuf) {
  int32_t c = n > 0 ? escp_zc_compress(st->zc, pay, (int32_t)n, zbuf + ESCP_HDR_AREA, (int32_t)n) : 0;
  if (c <= 0) escp_zc_raw(st->zc); /* RAW (or a codec failure: RAW too, after a reset) */
  return c > 0 ? (uint32_t)c : 0;
}

/* Compress (-C), seal and send the n-byte block of fino at off whose plaintext is at
 * buf + ESCP_HDR_AREA — or, kind ESCP_DF_ZERO, a ZERO frame for an all-zero block (no
 * payload), or, kind ESCP_DF_BUNDLE, a bundle body (fino: its number, off 0). ESCP_OK,
 * ESCP_E_CLOSED with *sys (the send failed: tx_lost), or a seal failure (FATAL pushed). */
static int32_t tx_frame(escp_session *s, escp_stream *st, uint64_t fino, uint64_t off, uint32_t n, uint32_t kind,
                        uint8_t *buf, uint8_t *zbuf, int *sys) {
  uint8_t *pay = buf + ESCP_HDR_AREA, *sub = pay - ESCP_DATA_SUBHDR, *hdr = sub - ESCP_FRAME_HDR;
  escp_prof_ring *pr = st->prof;
  uint64_t t = escp__prof_t0(pr);
  int zero = kind == ESCP_DF_ZERO;
  uint32_t plen = zero ? 0 : n, flags = kind; /* payload on the wire, DATA flags */
  if (st->zc && zero) escp_zc_raw(st->zc); /* not compressed: the zstd session restarts on both sides */
  if (st->zc && !zero) {
    uint32_t c = tx_compress(st, pay, n, zbuf);
    t = escp__prof_end(pr, ESCP_STG_COMPRESS, t, n);
    if (c > 0) { /* the frame is built in zbuf instead */
      plen = c;
      flags |= ESCP_DF_ZSTD;
      pay = zbuf + ESCP_HDR_AREA;
      sub = pay - ESCP_DATA_SUBHDR;
      hdr = sub - ESCP_FRAME_HDR;
    }
  }
  escp_data_hdr dh = {fino, off, n, flags};
  escp_data_hdr_encode(&dh, sub);
  int32_t rc = escp_chan_seal(&st->tx, ESCP_FT_DATA, 0, hdr, sub, ESCP_DATA_SUBHDR + plen, pay + plen);
  size_t wire = ESCP_FRAME_HDR + ESCP_DATA_SUBHDR + (size_t)plen + ESCP_TAG;
  t = escp__prof_end(pr, ESCP_STG_SEAL, t, plen);
  if (rc != ESCP_OK) {
    escp__event_simple(s, ESCP_EV_FATAL, rc, 0, (uint32_t)st->idx, 0, "seal");
    return rc;
  }
  rc = tx_send(s, st, hdr, wire, sys);
  escp__prof_end(pr, ESCP_STG_SEND, t, wire);
  return rc;
}

/* Hash block idx (n bytes at pay, file offset off) into f's digest, when it keeps one; the
 * span starts at t. A digest that refuses the block fails the file. */
static void tx_hash(escp_prof_ring *pr, tx_file *f, uint64_t idx, uint64_t off, const uint8_t *pay, uint32_t n, uint64_t t) {
  if (!f->dg && !f->rdg) return;
  uint8_t cv[32], root[32];
  escp_b3_block(pay, n, off / ESCP_B3_CHUNK, cv, off == 0 ? root : NULL);
  pthread_mutex_lock(&f->mu);
  int drc = f->rdg ? escp_rdigest_add(f->rdg, idx, 0, cv) : escp_digest_add(f->dg, idx, cv, off == 0 ? root : NULL);
  if (drc != ESCP_OK) file_fail(f, drc, 0, "digest");
  pthread_mutex_unlock(&f->mu);
  escp__prof_end(pr, ESCP_STG_HASH, t, n);
}

/* Process one claimed block. Returns ESCP_OK, or a stream-fatal status (send/seal). */
static int32_t tx_block(escp_session *s, escp_stream *st, tx_file *f, uint64_t idx, uint8_t *buf, uint8_t *zbuf) {
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE], off = idx * b;
  uint32_t n = (uint32_t)(f->size - off < b ? f->size - off : b);
  uint8_t *pay = buf + ESCP_HDR_AREA;
  escp_prof_ring *pr = st->prof;
  /* Reconnect on: room in the unacknowledged log first (a resend may use buf). */
  int32_t rc = st->ua ? tx_room(s, st, buf, zbuf) : ESCP_OK;
  uint64_t t = escp__prof_t0(pr);
  int32_t ost = rc == ESCP_OK ? tx_open(s, f) : rc;
  t = escp__prof_end(pr, ESCP_STG_META, t, 0);
  int zero = ost == ESCP_OK && tx_hole(s, f, f->fd, off, n, idx);
  if (zero) memset(pay, 0, n); /* hashed like any block: the digest stays b3sum's */
  if (!zero && (ost != ESCP_OK || tx_read(s, f, pay, off, n, idx + 1 == f->nblocks) != ESCP_OK)) {
    escp__prof_end(pr, ESCP_STG_READ, t, 0);
    tx_account(s, f, 0, 0); /* failed file (or stream): unread blocks are not sent */
    return rc;
  }
  t = escp__prof_end(pr, ESCP_STG_READ, t, n);
  escp__stat_add(s, ESCP_S_BYTES_FILE, n);
  tx_hash(pr, f, idx, off, pay, n, t);
  if (st->ua) { /* logged before the send: if the connection breaks, it is resent */
    ua_push(st, f, idx, NULL);
    st->dframes++;
  }
  int sys = 0;
  rc = tx_frame(s, st, f->fino, off, n, zero ? ESCP_DF_ZERO : 0, buf, zbuf, &sys);
  if (rc == ESCP_E_CLOSED) rc = tx_lost(s, st, send_status(sys), sys, "send", buf, zbuf);
  if (rc == ESCP_OK) rc = tx_poll_acks(s, st, buf, zbuf);
  if (rc != ESCP_OK) {
    pthread_mutex_lock(&f->mu);
    file_fail(f, rc, 0, "send");
    pthread_mutex_unlock(&f->mu);
    tx_account(s, f, 0, 0);
    return rc;
  }
  escp__stat_add(s, ESCP_S_BLOCKS, 1);
  t = escp__prof_t0(pr);
  tx_account(s, f, 1, n);
  escp__prof_end(pr, ESCP_STG_META, t, 0); /* the last block closes and re-checks the file */
  return ESCP_OK;
}

/* ---- bundles of small files ---- */

/* Open small file sm, check it is the regular file of its listed size (and inode), read all
 * of it into dst, check it ended there and did not change meanwhile. ESCP_OK with *st0 (the
 * first fstat), or a status with *err and *what. The dummy engine reads zeros. */
static int32_t small_read(escp_session *s, const tx_small *sm, uint8_t *dst, struct stat *st0, int *err,
                          const char **what) {
  *err = 0;
  if (s->io == &escp_io_dummy) {
    memset(dst, 0, (size_t)sm->size);
    memset(st0, 0, sizeof *st0);
    st0->st_mode = S_IFREG | 0644;
    return ESCP_OK;
  }
  int fd;
  do fd = open(sm->names, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    *err = errno, *what = "open";
    return ESCP_E_OPEN;
  }
  int32_t rc = ESCP_OK;
  struct stat st1;
  *what = "changed";
  if (fstat(fd, st0) < 0) *err = errno, *what = "fstat", rc = ESCP_E_OPEN;
  else if (!S_ISREG(st0->st_mode) || (uint64_t)st0->st_size != sm->size || (sm->ino && (uint64_t)st0->st_ino != sm->ino))
    rc = ESCP_E_CHANGED;
  int fi = rc == ESCP_OK ? ESCP_FI(s, ESCP_FI_PREAD) : 0; /* fault-injection build only */
  if (fi) *err = fi, *what = "read", rc = ESCP_E_READ;
  /* The listed size, no byte more: a file that grew since the first fstat has another size
   * (or mtime, ctime) in the second, so no read for EOF is needed. */
  for (uint64_t got = 0; rc == ESCP_OK && got < sm->size;) {
    ssize_t r = read(fd, dst + got, (size_t)(sm->size - got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) *err = errno, *what = "read", rc = ESCP_E_READ;
    else if (r == 0) rc = ESCP_E_CHANGED; /* shrank */
    got += r > 0 ? (uint64_t)r : 0;
  }
  if (rc == ESCP_OK && fstat(fd, &st1) < 0) *err = errno, *what = "fstat", rc = ESCP_E_READ;
  else if (rc == ESCP_OK && (st1.st_size != st0->st_size || st1.st_ino != st0->st_ino || st1.st_dev != st0->st_dev ||
                             st1.st_mtim.tv_sec != st0->st_mtim.tv_sec || st1.st_mtim.tv_nsec != st0->st_mtim.tv_nsec ||
                             st1.st_ctim.tv_sec != st0->st_ctim.tv_sec || st1.st_ctim.tv_nsec != st0->st_ctim.tv_nsec))
    rc = ESCP_E_CHANGED;
  close(fd);
  return rc;
}

/* BLAKE3 of a small file's contents (it fits one block), or zeros without checksums. */
static void small_digest(escp_session *s, const uint8_t *data, uint64_t size, uint8_t out[32]) {
  uint8_t cv[32];
  if (s->param[ESCP_P_CHECKSUM]) escp_b3_block(data, (size_t)size, 0, cv, out);
  else memset(out, 0, 32);
}

/* The record of small file sm at rec (header from st, leaf, data already in place, zero pad):
 * returns its length. */
static size_t small_rec_put(uint8_t *rec, const tx_small *sm, const struct stat *st, const uint8_t digest[32]) {
  escp_brec r = {.dir = sm->dir, .size = sm->size, .mtime_s = st->st_mtim.tv_sec, .atime_s = st->st_atim.tv_sec,
                 .mtime_ns = (uint32_t)st->st_mtim.tv_nsec, .atime_ns = (uint32_t)st->st_atim.tv_nsec,
                 .mode = (uint32_t)st->st_mode & 07777, .uid = (uint32_t)st->st_uid, .gid = (uint32_t)st->st_gid,
                 .leaf_len = sm->llen};
  memcpy(r.digest, digest, 32);
  escp__brec_put(rec, &r);
  memcpy(rec + ESCP_BUNDLE_REC, sm->names + sm->plen + 1, sm->llen);
  size_t used = ESCP_BUNDLE_REC + sm->llen + (size_t)sm->size, len = ESCP_BUNDLE_REC_LEN(sm->llen, sm->size);
  memset(rec + used, 0, len - used);
  return len;
}

/* Reconnect: rebuild bundle b's body at body exactly as it was sent, from its files. ESCP_OK
 * (*len), or ESCP_E_CHANGED: a file is not what was sent (identity, size, mtime, digest). */
static int32_t replay_bundle(escp_session *s, const tx_bundle *b, uint8_t *body, uint32_t *len) {
  size_t pos = ESCP_BUNDLE_HDR;
  for (uint32_t i = 0; i < b->n; i++) {
    const tx_kept *k = &b->k[i];
    uint8_t *rec = body + pos, *data = rec + ESCP_BUNDLE_REC + k->sm->llen, dg[32];
    struct stat st;
    int err;
    const char *what;
    if (small_read(s, k->sm, data, &st, &err, &what) != ESCP_OK || (uint64_t)st.st_ino != k->ino ||
        (uint64_t)st.st_dev != k->dev || (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != k->mtime_ns)
      return ESCP_E_CHANGED;
    small_digest(s, data, k->sm->size, dg);
    if (memcmp(dg, k->hdr + 56, 32) != 0) return ESCP_E_CHANGED;
    pos += small_rec_put(rec, k->sm, &st, dg);
    memcpy(rec, k->hdr, ESCP_BUNDLE_REC); /* the header as sent (atime may have moved) */
  }
  escp__bundle_hdr_put(body, b->n);
  *len = (uint32_t)pos;
  return ESCP_OK;
}

/* A sender entry's failure. */
static void bt_fail(uint8_t *e, int32_t status, int err, const char *what) {
  escp_put32(e + ESCP_BT_STATUS, (uint32_t)status);
  escp_put32(e + ESCP_BT_ERRNO, (uint32_t)err);
  memset(e + ESCP_BT_SIZE, 0, 8);
  memset(e + ESCP_BT_DIGEST, 0, 32);
  memset(e + ESCP_BT_WHAT, 0, 8);
  strncpy((char *)e + ESCP_BT_WHAT, what, 8);
}

/* Pack the n claimed small files cl[] into one bundle and send it; their sender entries
 * become a group for escp_tx_bundle_take. ESCP_OK, or a stream-fatal status (send/seal).
 * The claimed files are freed (with reconnect: once the bundle is acknowledged). */
static int32_t tx_pack(escp_session *s, escp_stream *st, tx_small **cl, uint32_t n, uint8_t *buf, uint8_t *zbuf) {
  struct escp_tx *t = s->tx;
  escp_prof_ring *pr = st->prof;
  escp_rq_ent *g = escp__rq_alloc(ESCP_BG_HDR + (size_t)n * ESCP_BT_ENT, 0, n);
  tx_bundle *kb = st->ua && g ? calloc(1, sizeof *kb + (size_t)n * sizeof kb->k[0]) : NULL;
  int32_t rc = !g || (st->ua && !kb) ? ESCP_E_NOMEM : ESCP_OK;
  if (rc != ESCP_OK) { /* no memory for the report: the session cannot go on */
    escp__event_simple(s, ESCP_EV_FATAL, rc, 0, (uint32_t)st->idx, 0, "bundle");
    free(g);
    for (uint32_t i = 0; i < n; i++) free(cl[i]);
    return rc;
  }
  rc = st->ua ? tx_room(s, st, buf, zbuf) : ESCP_OK; /* a resend may use buf */
  uint8_t *body = buf + ESCP_HDR_AREA;
  size_t pos = ESCP_BUNDLE_HDR;
  uint64_t bytes = 0;
  uint32_t recs = 0;
  for (uint32_t i = 0; i < n && rc == ESCP_OK; i++) {
    tx_small *sm = cl[i];
    uint8_t *e = g->b + ESCP_BG_HDR + (size_t)i * ESCP_BT_ENT, *rec = body + pos;
    uint8_t *data = rec + ESCP_BUNDLE_REC + sm->llen;
    escp_put64(e + ESCP_BT_SEQ, sm->seq);
    struct stat sb;
    int err;
    const char *what;
    uint64_t t0 = escp__prof_t0(pr);
    int32_t frc = small_read(s, sm, data, &sb, &err, &what);
    t0 = escp__prof_end(pr, ESCP_STG_READ, t0, frc == ESCP_OK ? sm->size : 0);
    if (frc != ESCP_OK) {
      bt_fail(e, frc, err, what);
      continue;
    }
    uint8_t dg[32];
    small_digest(s, data, sm->size, dg);
    if (s->param[ESCP_P_CHECKSUM]) escp__prof_end(pr, ESCP_STG_HASH, t0, sm->size);
    if (ESCP_FI(s, ESCP_FI_DIGEST)) dg[0] ^= 0x5a; /* fault-injection build only: a lying sender */
    pos += small_rec_put(rec, sm, &sb, dg);
    escp_put64(e + ESCP_BT_SIZE, sm->size);
    memcpy(e + ESCP_BT_DIGEST, dg, 32);
    bytes += sm->size;
    recs++;
    if (kb) {
      tx_kept *k = &kb->k[kb->n++];
      k->sm = sm;
      k->ino = (uint64_t)sb.st_ino, k->dev = (uint64_t)sb.st_dev;
      k->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
      memcpy(k->hdr, rec, ESCP_BUNDLE_REC);
      cl[i] = NULL; /* the kept bundle owns it now */
    }
  }
  if (rc == ESCP_OK && recs) { /* else no file made it: no frame, bundle 0 */
    escp__bundle_hdr_put(body, recs);
    uint64_t num = atomic_fetch_add(&t->bundles, 1) + 1;
    escp_put64(g->b + ESCP_BG_BUNDLE, num);
    escp__stat_add(s, ESCP_S_BYTES_FILE, bytes);
    if (kb) { /* logged before the send: if the connection breaks, it is rebuilt and resent */
      ua_push(st, NULL, num, kb);
      kb = NULL;
      st->dframes++;
    }
    int sys = 0;
    rc = tx_frame(s, st, num, 0, (uint32_t)pos, ESCP_DF_BUNDLE, buf, zbuf, &sys);
    if (rc == ESCP_E_CLOSED) rc = tx_lost(s, st, send_status(sys), sys, "send", buf, zbuf);
    if (rc == ESCP_OK) rc = tx_poll_acks(s, st, buf, zbuf);
    if (rc == ESCP_OK) escp__stat_add(s, ESCP_S_BLOCKS, 1);
  }
  for (uint32_t i = 0; i < n; i++) { /* entries of files not sent after all say why */
    uint8_t *e = g->b + ESCP_BG_HDR + (size_t)i * ESCP_BT_ENT;
    if (rc != ESCP_OK && escp_get32(e + ESCP_BT_STATUS) == (uint32_t)ESCP_OK) {
      escp_put64(e + ESCP_BT_SEQ, cl[i] ? cl[i]->seq : escp_get64(e + ESCP_BT_SEQ));
      bt_fail(e, rc, 0, "send");
    }
    free(cl[i]);
  }
  if (kb) bundle_free(kb); /* kept but never logged (nothing sent) */
  escp__stat_add(s, ESCP_S_FILES_DONE, n);
  escp__rq_push(&t->rq, g, &s->stop);
  return rc;
}

/* An empty frame (BYE or KEEPALIVE) on st: ESCP_OK, ESCP_E_CLOSED with *sys, or a seal
 * failure (FATAL pushed). */
static int32_t tx_empty(escp_session *s, escp_stream *st, uint8_t type, int *sys) {
  uint8_t fr[ESCP_FRAME_HDR + ESCP_TAG];
  int32_t rc = escp_chan_seal(&st->tx, type, 0, fr, fr + ESCP_FRAME_HDR, 0, fr + ESCP_FRAME_HDR);
  if (rc != ESCP_OK) {
    escp__event_simple(s, ESCP_EV_FATAL, rc, 0, (uint32_t)st->idx, 0, "seal");
    return rc;
  }
  return tx_send(s, st, fr, sizeof fr, sys);
}

/* A KEEPALIVE on an idle stream. ESCP_OK or the stream is lost (event pushed). */
static int32_t tx_keepalive(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf) {
  int sys = 0;
  int32_t rc = tx_empty(s, st, ESCP_FT_KEEPALIVE, &sys);
  return rc == ESCP_E_CLOSED ? tx_lost(s, st, send_status(sys), sys, "send keepalive", buf, zbuf) : rc;
}

/* The queue is done: BYE. With reconnect the stream ends only when the receiver's final ACK
 * says it consumed everything and the BYE (a break before that is recovered: the BYE is sent
 * again after the resend), then this side closes its direction. ESCP_OK = ended cleanly. */
static int32_t tx_end(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf) {
  int32_t rc;
  for (;;) {
    int sys = 0;
    rc = tx_empty(s, st, ESCP_FT_BYE, &sys);
    while (rc == ESCP_OK && st->ua && !st->bye) rc = tx_acks(s, st, 1, &sys);
    if (rc == ESCP_OK) break;
    if (rc != ESCP_E_CLOSED && rc != ESCP_E_TIMEOUT) return rc;
    rc = tx_lost(s, st, rc == ESCP_E_TIMEOUT ? rc : send_status(sys), sys, "send BYE", buf, zbuf);
    if (rc != ESCP_OK) return rc;
    if (st->bye) break; /* it had the BYE already */
  }
  escp__data_bye(s);
  if (st->ua) shutdown(st->fd, SHUT_WR); /* the receiver's last read sees EOF */
  return ESCP_OK;
}

/* ---- streams (escp.h "streams"): files of unknown length ---- */

/* The block-API stream's next buffer to send (index next_block), off its submitted list, or
 * NULL. Blocks go out in offset order, so a receiver writing a stream in order (stream_fd)
 * never holds a block whose predecessor is queued behind it on its own connection. tx->mu. */
static tx_slot *pend_take(tx_file *f) {
  for (tx_slot **pp = &f->pend; *pp; pp = &(*pp)->next)
    if ((*pp)->idx == f->next_block) {
      tx_slot *sl = *pp;
      *pp = sl->next;
      sl->state = SLOT_SENDING;
      return sl;
    }
  return NULL;
}

/* Is stream f over — its size known (or failed), nothing claimed, pending or still to come —
 * and its completion not yet taken? Then it is taken (1; the caller completes it) and f
 * leaves the FIFO if it heads it. tx->mu. */
static int stream_done(struct escp_tx *t, tx_file *f) {
  if (f->completed || f->claims || !f->ended || f->pend) return 0;
  if (f->kind == TXK_BLK && !f->sfail && f->next_block < f->nblocks) return 0;
  f->completed = 1;
  if (t->head == &f->q) head_pop(t);
  pthread_cond_broadcast(&t->cv);
  return 1;
}

/* Stream f fails (status, errno, what): its size is final, no more blocks are taken, the
 * buffers submitted and not sent go back to the pool. tx->mu. */
static void stream_fail(struct escp_tx *t, tx_file *f, int32_t status, int err, const char *what) {
  pthread_mutex_lock(&f->mu);
  file_fail(f, status, err, what);
  pthread_mutex_unlock(&f->mu);
  f->ended = f->sfail = 1;
  for (tx_slot *sl = f->pend, *nx; sl; sl = nx) {
    nx = sl->next;
    sl->state = SLOT_FREE;
    sl->next = t->free;
    t->free = sl;
  }
  f->pend = NULL; /* it leaves the FIFO, completed, in tx_claim or at its last release */
  pthread_cond_broadcast(&t->cv);
  pthread_cond_broadcast(&t->pcv);
}

/* A claimed block of stream f is done with (sent: n bytes, or not); its pool buffer (sl, may
 * be NULL) is free again; the last one completes the stream. */
static void stream_release(escp_session *s, tx_file *f, int sent, uint64_t n, tx_slot *sl) {
  struct escp_tx *t = s->tx;
  pthread_mutex_lock(&t->mu);
  if (sl) {
    sl->state = SLOT_FREE;
    sl->next = t->free;
    t->free = sl;
    pthread_cond_signal(&t->pcv);
  }
  f->claims--;
  if (sent) {
    f->sent++;
    f->bytes += n;
  }
  int done = stream_done(t, f);
  pthread_mutex_unlock(&t->mu);
  if (done) tx_complete(s, f);
}

/* Hash, seal and send block idx of stream f (n bytes at buf + ESCP_HDR_AREA), as tx_block
 * does for a file's. ESCP_OK or a stream-fatal status (the stream's file fails with it). */
static int32_t tx_ship(escp_session *s, escp_stream *st, tx_file *f, uint64_t idx, uint32_t n, uint8_t *buf,
                       uint8_t *zbuf) {
  uint64_t off = idx * (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  uint8_t *pay = buf + ESCP_HDR_AREA;
  escp__stat_add(s, ESCP_S_BYTES_FILE, n);
  tx_hash(st->prof, f, idx, off, pay, n, escp__prof_t0(st->prof));
  int sys = 0;
  int32_t rc = tx_frame(s, st, f->fino, off, n, 0, buf, zbuf, &sys);
  if (rc == ESCP_E_CLOSED) rc = tx_lost(s, st, send_status(sys), sys, "send", buf, zbuf);
  if (rc != ESCP_OK) {
    pthread_mutex_lock(&f->mu);
    file_fail(f, rc, 0, "send");
    pthread_mutex_unlock(&f->mu);
  } else {
    escp__stat_add(s, ESCP_S_BLOCKS, 1);
  }
  return rc;
}

/* Read up to want bytes of fd into pay: short reads and EINTR looped, until want or EOF.
 * While the producer is silent (poll, timeout/3) the stream gets a KEEPALIVE. ESCP_OK with
 * *got (< want: EOF); ESCP_E_READ with *err; ESCP_E_ABORTED at stop; or the keepalive's
 * failure (the stream is lost). */
static int32_t fd_read(escp_session *s, escp_stream *st, int fd, uint8_t *pay, uint32_t want, uint32_t *got, int *err,
                       uint8_t *buf, uint8_t *zbuf) {
  int tmo = (int)(s->param[ESCP_P_TIMEOUT_MS] / 3);
  *got = 0;
  while (*got < want) {
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
    int pr = poll(pf, 2, tmo);
    if (pr < 0 && errno == EINTR) continue;
    if (escp__stopping(s)) return ESCP_E_ABORTED;
    if (pr < 0) {
      *err = errno;
      return ESCP_E_READ;
    }
    if (pr == 0) { /* the producer is slow: the stream must not fall silent */
      int32_t rc = tx_keepalive(s, st, buf, zbuf);
      if (rc != ESCP_OK) return rc;
      continue;
    }
    ssize_t r = read(fd, pay + *got, want - *got);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (r < 0) {
      *err = errno;
      return ESCP_E_READ;
    }
    if (r == 0) break; /* EOF: the stream ends here */
    *got += (uint32_t)r;
  }
  return ESCP_OK;
}

/* Claimed block idx of fd stream f: wait for its read turn (KEEPALIVEs meanwhile), read it
 * (EOF fixes the size), pass the turn on, then hash, seal and send it in parallel with the
 * other streams. ESCP_OK or a stream-fatal status. */
static int32_t tx_fd_block(escp_session *s, escp_stream *st, tx_file *f, uint64_t idx, uint8_t *buf, uint8_t *zbuf) {
  struct escp_tx *t = s->tx;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE], off = idx * b;
  int32_t rc = ESCP_OK;
  pthread_mutex_lock(&t->mu);
  while (f->rturn != idx && !f->ended && !escp__stopping(s)) {
    struct timespec dl;
    escp__deadline(&dl, (uint64_t)s->param[ESCP_P_TIMEOUT_MS] / 3);
    int idle = 0;
    while (f->rturn != idx && !f->ended && !escp__stopping(s) && !idle)
      idle = pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT;
    if (!idle) continue;
    pthread_mutex_unlock(&t->mu);
    rc = tx_keepalive(s, st, buf, zbuf);
    pthread_mutex_lock(&t->mu);
    if (rc != ESCP_OK) { /* this stream is lost: so is the stream of bytes it was to read */
      stream_fail(t, f, rc, 0, "send keepalive");
      break;
    }
  }
  int turn = rc == ESCP_OK && f->rturn == idx && !f->ended && !escp__stopping(s);
  pthread_mutex_unlock(&t->mu);
  if (!turn) {
    stream_release(s, f, 0, 0, NULL);
    return escp__stopping(s) ? ESCP_E_ABORTED : rc;
  }
  uint32_t n = 0;
  int err = 0;
  uint64_t t0 = escp__prof_t0(st->prof);
  int fi = ESCP_FI(s, ESCP_FI_PREAD); /* fault-injection build only */
  rc = fi ? (err = fi, ESCP_E_READ) : fd_read(s, st, f->sfd, buf + ESCP_HDR_AREA, (uint32_t)b, &n, &err, buf, zbuf);
  escp__prof_end(st->prof, ESCP_STG_READ, t0, n);
  pthread_mutex_lock(&t->mu);
  int ship = rc == ESCP_OK && (n > 0 || idx == 0);
  if (rc == ESCP_E_READ) stream_fail(t, f, rc, err, "read");
  else if (rc != ESCP_OK) stream_fail(t, f, rc, 0, rc == ESCP_E_ABORTED ? "stopped" : "send keepalive");
  else if (off + n > (uint64_t)ESCP_MAX_FILE_SIZE) stream_fail(t, f, ESCP_E_TOOBIG, 0, "stream too big"), ship = 0;
  else if (n < b) { /* EOF: an empty block only for an empty stream */
    f->ended = 1;
    f->size = off + n;
    f->nblocks = f->rend = ship ? idx + 1 : idx;
    if (t->head == &f->q) head_pop(t);
  }
  f->rturn++;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  if (rc == ESCP_E_READ) rc = ESCP_OK; /* the stream failed, not the connection */
  int32_t src = ship ? tx_ship(s, st, f, idx, n, buf, zbuf) : ESCP_OK;
  stream_release(s, f, ship && src == ESCP_OK, n, NULL);
  return rc != ESCP_OK ? rc : src;
}

/* A submitted buffer sl of block-API stream f: hash, seal in place and send it; the buffer
 * returns to the pool. ESCP_OK or a stream-fatal status. */
static int32_t tx_slot_block(escp_session *s, escp_stream *st, tx_file *f, tx_slot *sl, uint8_t *zbuf) {
  pthread_mutex_lock(&f->mu);
  int ok = f->status == ESCP_OK;
  pthread_mutex_unlock(&f->mu);
  int32_t rc = ok ? tx_ship(s, st, f, sl->idx, sl->len, sl->mem, zbuf) : ESCP_OK;
  stream_release(s, f, ok && rc == ESCP_OK, sl->len, sl);
  return rc;
}

/* Queue fino as a stream read from fd (escp.h). JS thread. */
ESCP_API int32_t escp_tx_stream_add(void *h, uint64_t fino, int32_t fd) {
  escp_session *s = escp__session(h);
  if (!s || fd < 0) return ESCP_E_INVAL;
  if (s->role == ESCP_ROLE_SENDER && (s->param[ESCP_P_RETRIES] > 0 || s->param[ESCP_P_HOLES])) return ESCP_E_STATE;
  /* A pipe holds 64 KiB by default: `cat f | escp -` then costs two context switches per
   * 64 KiB on each side. Ask for a block's worth (capped by fs/pipe-max-size, 1 MiB unless
   * raised: the second try); a refusal leaves the pipe as it was. */
  struct stat sb;
  if (fstat(fd, &sb) == 0 && S_ISFIFO(sb.st_mode) && fcntl(fd, F_SETPIPE_SZ, (int)s->param[ESCP_P_BLOCK_SIZE]) < 0)
    (void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
  return tx_queue_kind(s, fino, NULL, 0, NULL, TXK_FD, fd, 0, 0);
}

/* Queue fino as a stream fed by escp_tx_block_submit (escp.h). E_DUP: fino is an open
 * block-API stream already. Any thread. */
ESCP_API int32_t escp_tx_stream_open(void *h, uint64_t fino) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (s->role == ESCP_ROLE_SENDER && s->param[ESCP_P_RETRIES] > 0) return ESCP_E_STATE; /* buffers are not kept for a resend */
  return tx_queue_kind(s, fino, NULL, 0, NULL, TXK_BLK, -1, 0, 0);
}

/* The pool: ESCP_POOL_BLOCKS x T buffers in one 4096-aligned allocation. tx->mu. */
static int32_t pool_alloc(escp_session *s, struct escp_tx *t) {
  size_t cap = ESCP_HDR_AREA + (size_t)s->param[ESCP_P_BLOCK_SIZE] + ESCP_IO_ALIGN;
  int n = ESCP_POOL_BLOCKS * (int)s->param[ESCP_P_THREADS];
  uint8_t *mem = NULL;
  tx_slot *pool = calloc((size_t)n, sizeof *pool);
  if (!pool || posix_memalign((void **)&mem, ESCP_IO_ALIGN, cap * (size_t)n) != 0) {
    free(pool);
    return ESCP_E_NOMEM;
  }
  for (int i = n - 1; i >= 0; i--) {
    pool[i].mem = mem + cap * (size_t)i;
    pool[i].next = t->free;
    t->free = &pool[i];
  }
  t->pool = pool;
  t->pool_mem = mem;
  t->npool = n;
  return ESCP_OK;
}

/* A free pool buffer's payload (escp.h), waiting up to timeout_ms (-1: until stop). Any thread. */
ESCP_API void *escp_tx_block_claim(void *h, int32_t timeout_ms) {
  escp_session *s = escp__session(h);
  if (!s || s->role != ESCP_ROLE_SENDER || timeout_ms < -1) return NULL;
  struct escp_tx *t = s->tx;
  struct timespec dl;
  escp__deadline(&dl, timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
  pthread_mutex_lock(&t->mu);
  s->frozen = 1; /* the block size and T are fixed from here on */
  int late = !t->pool && pool_alloc(s, t) != ESCP_OK;
  while (!late && !t->free && !escp__stopping(s) && timeout_ms != 0) {
    if (timeout_ms < 0) pthread_cond_wait(&t->pcv, &t->mu);
    else late = pthread_cond_timedwait(&t->pcv, &t->mu, &dl) == ETIMEDOUT;
  }
  tx_slot *sl = escp__stopping(s) ? NULL : t->free;
  if (sl) {
    t->free = sl->next;
    sl->next = NULL;
    sl->state = SLOT_CLAIMED;
  }
  pthread_mutex_unlock(&t->mu);
  return sl ? sl->mem + ESCP_HDR_AREA : NULL;
}

/* The pool buffer whose payload is p, or NULL. tx->mu. */
static tx_slot *slot_of(struct escp_tx *t, const void *p, size_t cap) {
  if (!t->pool || !p || (const uint8_t *)p < t->pool_mem + ESCP_HDR_AREA) return NULL;
  size_t d = (size_t)((const uint8_t *)p - t->pool_mem - ESCP_HDR_AREA);
  return d % cap == 0 && d / cap < (size_t)t->npool ? &t->pool[d / cap] : NULL;
}

/* Is block idx of len bytes allowed in block-API stream f (escp.h)? ESCP_OK, E_DUP or
 * E_INVAL. tx->mu. */
static int32_t submit_check(tx_file *f, uint64_t idx, uint32_t len, uint64_t b) {
  if (idx < f->next_block) return ESCP_E_DUP;
  for (tx_slot *o = f->pend; o; o = o->next)
    if (o->idx == idx) return ESCP_E_DUP;
  if (f->ended) { /* the size is known: exactly its blocks, each of its length */
    uint64_t want = idx + 1 < f->nblocks ? b : f->size - idx * b;
    return idx < f->nblocks && len == want ? ESCP_OK : ESCP_E_INVAL;
  }
  if (len < b && (f->hasshort || idx + 1 < f->maxsub)) return ESCP_E_INVAL; /* a short block before a later one */
  if (f->hasshort && idx > f->shidx) return ESCP_E_INVAL;                   /* a block after the short one */
  return ESCP_OK;
}

/* Hand a claimed buffer back holding len bytes of stream fino at offset (escp.h). On an error
 * the buffer stays claimed (the caller may submit it again). Any thread. */
ESCP_API int32_t escp_tx_block_submit(void *h, uint64_t fino, void *buf, uint64_t offset, uint32_t len) {
  escp_session *s = escp__session(h);
  if (!s || s->role != ESCP_ROLE_SENDER) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  struct escp_tx *t = s->tx;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  if (offset % b != 0 || len > b || (len == 0 && offset != 0) || offset > (uint64_t)ESCP_MAX_FILE_SIZE - len)
    return ESCP_E_INVAL;
  pthread_mutex_lock(&t->mu);
  tx_slot *sl = slot_of(t, buf, ESCP_HDR_AREA + (size_t)b + ESCP_IO_ALIGN);
  tx_file *f = t->blk;
  while (f && f->fino != fino) f = f->snext;
  int32_t rc = !sl || sl->state != SLOT_CLAIMED ? ESCP_E_INVAL : !f || f->sfail || escp__stopping(s) ? ESCP_E_STATE : ESCP_OK;
  uint64_t idx = offset / b;
  if (rc == ESCP_OK) rc = submit_check(f, idx, len, b);
  if (rc == ESCP_OK) {
    sl->state = SLOT_SUBMITTED;
    sl->idx = idx;
    sl->len = len;
    sl->next = f->pend;
    f->pend = sl;
    if (idx + 1 > f->maxsub) f->maxsub = idx + 1;
    if (len < b) f->hasshort = 1, f->shidx = idx, f->shlen = len;
    pthread_cond_broadcast(&t->cv);
  }
  pthread_mutex_unlock(&t->mu);
  return rc;
}

/* Block-API stream fino is size bytes long (escp.h): checked against the blocks submitted so
 * far (ESCP_E_INVAL, and the stream fails). Any thread. */
ESCP_API int32_t escp_tx_stream_end(void *h, uint64_t fino, uint64_t size) {
  escp_session *s = escp__session(h);
  if (!s || s->role != ESCP_ROLE_SENDER) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  if (size > (uint64_t)ESCP_MAX_FILE_SIZE) return ESCP_E_INVAL;
  struct escp_tx *t = s->tx;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE], nb = size == 0 ? 1 : size / b + (size % b != 0);
  uint64_t last = size - (nb - 1) * b; /* bytes of the last block */
  pthread_mutex_lock(&t->mu);
  tx_file *f = t->blk;
  while (f && f->fino != fino) f = f->snext;
  int32_t rc = !f || f->ended ? ESCP_E_STATE : ESCP_OK;
  if (rc == ESCP_OK && (f->maxsub > nb || (f->hasshort && (f->shidx != nb - 1 || f->shlen != last)) ||
                        (!f->hasshort && f->maxsub == nb && last != b))) {
    stream_fail(t, f, ESCP_E_INVAL, 0, "stream_end: blocks past its size or a short one before its end");
    rc = ESCP_E_INVAL;
  } else if (rc == ESCP_OK) {
    f->ended = 1;
    f->size = size;
    f->nblocks = f->rend = nb;
    pthread_cond_broadcast(&t->cv);
  }
  pthread_mutex_unlock(&t->mu);
  return rc;
}

void *escp__tx_thread(void *arg) {
  escp_stream *st = arg;
  escp_session *s = st->s;
  size_t cap = ESCP_HDR_AREA + (size_t)s->param[ESCP_P_BLOCK_SIZE] + ESCP_IO_ALIGN;
  uint8_t *buf = NULL;
  if (posix_memalign((void **)&buf, ESCP_IO_ALIGN, cap) != 0) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, (uint32_t)st->idx, 0, "block buffer");
    escp__stream_gone(s, st->idx);
    return NULL;
  }
  memset(buf, 0, cap); /* the dummy engine "reads" whatever is here */
  uint8_t *zbuf = NULL; /* -C: frames of compressed blocks are built here */
  if (s->param[ESCP_P_COMPRESS] > 0) {
    st->zc = escp_zc_new((int32_t)s->param[ESCP_P_COMPRESS]);
    if (!st->zc || posix_memalign((void **)&zbuf, ESCP_IO_ALIGN, cap) != 0) {
      escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, (uint32_t)st->idx, 0, "compressor");
      escp_zc_free(st->zc);
      st->zc = NULL;
      free(buf);
      escp__stream_gone(s, st->idx);
      return NULL;
    }
  }
  tx_file *f;
  uint64_t idx;
  int r = 0;
  uint64_t t = escp__prof_t0(st->prof);
  if (s->reconnect && !(st->ua = calloc(1, sizeof *st->ua))) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, (uint32_t)st->idx, 0, "unacknowledged log");
    r = -1;
  }
  tx_small **cl = malloc(ESCP_BUNDLE_FILES_MAX * sizeof *cl); /* a claimed run of small files */
  if (!cl && r != -1) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, (uint32_t)st->idx, 0, "bundle claims");
    r = -1;
  }
  uint32_t ncl = 0;
  tx_slot *sl = NULL;
  while (r != -1 && (r = tx_claim(s, &f, &idx, cl, &ncl, &sl)) > 0) {
    escp__prof_end(st->prof, ESCP_STG_IDLE, t, 0);
    int32_t rc = r == 1   ? tx_block(s, st, f, idx, buf, zbuf)
                 : r == 3 ? tx_pack(s, st, cl, ncl, buf, zbuf)
                 : r == 4 ? tx_fd_block(s, st, f, idx, buf, zbuf)
                 : r == 5 ? tx_slot_block(s, st, f, sl, zbuf)
                 : r == 6 ? (tx_complete(s, f), ESCP_OK)
                          : tx_keepalive(s, st, buf, zbuf);
    if (rc != ESCP_OK) break;
    t = escp__prof_t0(st->prof);
  }
  if (r == 0) (void)tx_end(s, st, buf, zbuf);
  if (st->ua) {
    ua_drop(s, st, st->ua->n);
    free(st->ua);
    st->ua = NULL;
  }
  free(cl);
  free(buf);
  free(zbuf);
  escp_zc_free(st->zc);
  st->zc = NULL;
  escp__stream_gone(s, st->idx);
  return NULL;
}
