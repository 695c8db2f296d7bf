/* rx.c — receiver role: the file table (fino → destination, filled by escp_rx_file_add /
 * escp_rx_file_expect from the JS thread) and one thread per data stream that
 * authenticates DATA frames into a 4096-aligned buffer, checks each block against the
 * file's announced size (exactly ceil(size/B) blocks, each of its exact length, each once;
 * anything else is a session-scope protocol error), hashes and writes it, and completes a
 * file when the sender's block count has been consumed. A file is sealed (fd closed, or
 * kept for its link) as soon as all its blocks are in, so open fds do not pile up while
 * FileDone messages travel. Verification and naming (rx_store.c) run on the stream threads,
 * or on the commit thread when the JS thread's expect completes a file — so committing
 * many small files costs the JS thread nothing but one event each. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include "b3.h"
#include "net.h"
#include "rx.h"
#include "xattr.h"
#include "zc.h"

int escp__rx_new(escp_session *s) {
  struct escp_rx *r = calloc(1, sizeof *r);
  if (!r || !(r->tab = calloc(1024, sizeof *r->tab)) || !(r->dest = escp_dest_new())) {
    if (r) free(r->tab);
    free(r);
    return ESCP_E_NOMEM;
  }
  r->nb = 1024;
  /* Verified files are committed by naming an unnamed temporary (one directory operation,
   * and nothing is left behind if the process dies) unless ESCP_TMPFILE=0. Sealed ones wait
   * for the sender's digest holding their fd, at most a quarter of the fd limit (≤ 1024);
   * beyond that they get the temporary name and are renamed, as without O_TMPFILE. */
  const char *env = getenv("ESCP_TMPFILE");
  r->anon_ok = !(env && strcmp(env, "0") == 0);
  struct rlimit rl;
  rlim_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 4 : 64;
  r->kept_max = (int)(lim > 1024 ? 1024 : lim);
  /* ESCP_TMPFILE_HOLD=N lowers the cap (0: name every file at seal), e.g. for a receiver
   * that must keep fds for something else; tests use it to take that path deterministically. */
  const char *hold = getenv("ESCP_TMPFILE_HOLD");
  char *end = NULL;
  long h = hold && *hold ? strtol(hold, &end, 10) : -1;
  if (end && *end == 0 && h >= 0 && h < r->kept_max) r->kept_max = (int)h;
  escp__cond_init_mono(&r->cv);
  pthread_cond_init(&r->qcv, NULL);
  pthread_mutex_init(&r->mu, NULL);
  pthread_mutex_init(&r->lmu, NULL);
  escp__rx_bundle_new(r);
  s->rx = r;
  return escp__rx_journal_new(s);
}

void escp__rx_free(escp_session *s) {
  struct escp_rx *r = s->rx;
  escp__rx_journal_stop(s); /* before the files: the probe and journal threads hold some */
  if (r->commit_live) { /* the session is stopped: the thread exits without finalising more */
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->qcv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->commit_thr, NULL);
  }
  /* Never finalised (the session failed): free() removes any temporary they still name. */
  for (rx_file *f = r->qhead, *nx; f; f = nx) {
    nx = f->qnext;
    escp__rx_file_free(s, f, 1);
  }
  for (size_t i = 0; i < r->nb; i++) /* unfinished: a journaled partial stays, resumable */
    for (rx_file *f = r->tab[i], *nx; f; f = nx) {
      nx = f->hnext;
      escp__rx_file_free(s, f, 1);
    }
  for (rx_rres *x = r->rres, *nx; x; x = nx) {
    nx = x->next;
    free(x);
  }
  escp__rx_journal_free(s);
  escp__rx_links_free(r);
  escp__rx_bundle_free(r);
  pthread_mutex_destroy(&r->lmu);
  escp_dest_free(r->dest);
  free(r->tab);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  pthread_cond_destroy(&r->qcv);
  free(r);
  s->rx = NULL;
}

void escp__rx_wake(escp_session *s) {
  pthread_mutex_lock(&s->rx->mu);
  pthread_cond_broadcast(&s->rx->cv);
  pthread_cond_broadcast(&s->rx->qcv);
  pthread_mutex_unlock(&s->rx->mu);
  escp__rx_bundle_wake(s->rx);
}

static size_t slot(const struct escp_rx *r, uint64_t fino) {
  return (size_t)((fino * 0x9E3779B97F4A7C15ull) >> 20) & (r->nb - 1);
}

static rx_file *find(struct escp_rx *r, uint64_t fino) {
  for (rx_file *f = r->tab[slot(r, fino)]; f; f = f->hnext)
    if (f->fino == fino) return f;
  return NULL;
}

rx_file *escp__rx_find(struct escp_rx *r, uint64_t fino) { return find(r, fino); }

static void unlink_file(struct escp_rx *r, rx_file *f) {
  rx_file **pp = &r->tab[slot(r, f->fino)];
  while (*pp && *pp != f) pp = &(*pp)->hnext;
  if (*pp) *pp = f->hnext;
  r->count--;
}

static void grow(struct escp_rx *r) {
  size_t nb = r->nb * 2;
  rx_file **nt = calloc(nb, sizeof *nt);
  if (!nt) return; /* keep the smaller table: slower, still correct */
  rx_file **old = r->tab;
  size_t onb = r->nb;
  r->tab = nt;
  r->nb = nb;
  for (size_t i = 0; i < onb; i++)
    for (rx_file *f = old[i], *nx; f; f = nx) {
      nx = f->hnext;
      f->hnext = nt[slot(r, f->fino)];
      nt[slot(r, f->fino)] = f;
    }
  free(old);
}

/* Put f in the table unless its fino is there already (0). Takes rx->mu. */
static int rx_insert(struct escp_rx *r, rx_file *f) {
  pthread_mutex_lock(&r->mu);
  int dup = find(r, f->fino) != NULL;
  if (!dup) {
    if (r->count >= r->nb * 2) grow(r);
    f->hnext = r->tab[slot(r, f->fino)];
    r->tab[slot(r, f->fino)] = f;
    r->count++;
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
  return !dup;
}

/* Register fino as a stream whose bytes go to fd in order (escp.h): no destination, no root
 * needed. ESCP_OK, E_INVAL, E_STATE, E_DUP, E_NOMEM. JS thread. */
ESCP_API int32_t escp_rx_stream_fd(void *h, uint64_t fino, int32_t fd) {
  escp_session *s = escp__session(h);
  if (!s || fino == 0 || fd < 0) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER || escp__stopping(s)) return ESCP_E_STATE;
  rx_file *f = calloc(1, sizeof *f);
  if (!f) return ESCP_E_NOMEM;
  s->frozen = 1; /* the block size is fixed from here on */
  f->fino = fino;
  f->size = ESCP_SIZE_STREAM;
  f->nrecv = UINT64_MAX;
  f->stream = f->tofd = 1;
  f->sfd = fd;
  f->fd = f->pfd = f->jfd = -1;
  pthread_mutex_init(&f->mu, NULL);
  if (rx_insert(s->rx, f)) return ESCP_OK;
  escp__rx_file_free(s, f, 0);
  return ESCP_E_DUP;
}

/* Register fino (non-zero) for rel below the destination root (its missing parent
 * directories are created now, without following any symlink), or rel NULL to consume and
 * discard its blocks. size: as announced (<= ESCP_MAX_FILE_SIZE); meta: ESCP_META_* (mode:
 * the new file's permission bits, the umask applies unless ESCP_P_PRESERVE). The file is
 * created at its first block, unnamed or under a temporary name, and gets rel only once
 * verified (a journaled partial with ESCP_P_RESUME, see escp.h). Returns ESCP_OK, 1 (an
 * earlier partial is probed: ESCP_EV_OFFER follows), E_INVAL, E_RANGE (size), E_PATH (rel
 * refused), E_SYS (a directory could not be made, or something not ours is where its partial
 * goes: escp_last_errno), E_BUSY (another process holds that partial), E_NOMEM, E_DUP (fino
 * already registered), E_STATE (no root, sender session or stopped). JS thread. */
ESCP_API int32_t escp_rx_file_add(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta) {
  return escp_rx_file_add_x(h, fino, rel, size, meta, NULL, 0);
}

/* file_add with packed extended attributes (escp.h "archive mode"), checked whole before
 * anything is registered (ESCP_E_PROTO), kept with the file and set on its fd at seal. */
static int32_t rx_add(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta,
                      const uint8_t *xattrs, int32_t xlen, uint64_t rfirst, uint64_t rcount);

ESCP_API int32_t escp_rx_file_add_x(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta,
                                    const uint8_t *xattrs, int32_t xlen) {
  return rx_add(h, fino, rel, size, meta, xattrs, xlen, 0, 0);
}

/* A byte range of a file (shards, escp.h): blocks [first, first+count) of a file of size
 * bytes, a proper part of it (count < its blocks); resume on, checksums on. */
ESCP_API int32_t escp_rx_file_add_range(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta,
                                        uint64_t first, uint64_t count) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  if (size > (uint64_t)ESCP_MAX_FILE_SIZE || size == ESCP_SIZE_STREAM) return ESCP_E_RANGE;
  uint64_t nb = size == 0 ? 1 : size / b + (size % b != 0);
  if (count == 0 || first >= nb || count > nb - first || count == nb) return ESCP_E_RANGE;
  if (!s->param[ESCP_P_RESUME] || !s->param[ESCP_P_CHECKSUM]) return ESCP_E_STATE;
  return rx_add(h, fino, rel, size, meta, NULL, 0, first, count);
}

static int32_t rx_add(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta,
                      const uint8_t *xattrs, int32_t xlen, uint64_t rfirst, uint64_t rcount) {
  escp_session *s = escp__session(h);
  if (!s || fino == 0 || !meta || xlen < 0 || (xlen > 0 && !xattrs)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER || escp__stopping(s)) return ESCP_E_STATE;
  int stream = size == ESCP_SIZE_STREAM;
  if (size > (uint64_t)ESCP_MAX_FILE_SIZE && !stream) return ESCP_E_RANGE;
  if (rel && !escp_dest_name_ok(rel)) return ESCP_E_PATH;
  if (escp_xattrs_check(xattrs, (size_t)xlen) != ESCP_OK) {
    ESCP_ERR(s, "fino %llu: malformed extended attributes (%d bytes)", (unsigned long long)fino, (int)xlen);
    return ESCP_E_PROTO;
  }
  if (rel) { /* make its directory now (the dummy engine too): a refusal is known at once */
    escp_dirref *ref;
    const char *leaf;
    int err = 0, rc = escp_dest_parent(s->rx->dest, rel, 1, &ref, &leaf, &err);
    s->last_errno = err;
    if (rc != ESCP_OK) return rc;
    escp_dest_put(s->rx->dest, ref);
  }
  rx_file *f = calloc(1, sizeof *f);
  int keep_x = rel && xlen > 0 && !escp__rx_dummy(s); /* only a file that is written gets them */
  if (!f || (rel && !(f->rel = strdup(rel))) || (keep_x && !(f->xattrs = malloc((size_t)xlen)))) {
    if (f) free(f->rel);
    free(f);
    return ESCP_E_NOMEM;
  }
  if (keep_x) {
    memcpy(f->xattrs, xattrs, (size_t)xlen);
    f->xlen = (uint32_t)xlen;
  }
  s->frozen = 1; /* the block size is fixed from here on */
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  f->fino = fino;
  f->size = size;
  f->nblocks = stream ? 0 : size == 0 ? 1 : size / b + (size % b != 0);
  f->nrecv = stream ? UINT64_MAX : f->nblocks; /* a stream: known at stream_expect */
  if (rcount) {
    f->ranged = 1;
    f->rfirst = rfirst;
    f->rcount = f->nrecv = rcount;
  }
  f->stream = stream;
  memcpy(f->meta, meta, sizeof f->meta);
  f->fd = f->pfd = f->jfd = -1;
  pthread_mutex_init(&f->mu, NULL);
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  int dup = find(r, fino) != NULL;
  pthread_mutex_unlock(&r->mu);
  int jerr = 0, jrc = dup || stream ? ESCP_OK : escp__rx_journal_add(s, f, &jerr); /* a stream: never a partial */
  if (jrc < 0) {
    s->last_errno = jerr;
    if (jrc == ESCP_E_SYS) ESCP_ERR(s, "%s: partial: %s", rel, strerror(jerr));
    escp__rx_file_free(s, f, 0);
    return jrc;
  }
  dup = !rx_insert(r, f);
  if (dup) {
    escp__rx_file_free(s, f, 0);
    return ESCP_E_DUP;
  }
  if (jrc == 1) escp__rx_probe_queue(s, f);
  return jrc;
}

/* Verify + name (or discard), push the event, free. Exactly once, with no thread holding f. */
static void rx_finalize(escp_session *s, rx_file *f, int may_block) {
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.fino = f->fino;
  ev.bytes = f->bytes;
  ev.blocks = f->consumed;
  int aborted = (f->xflags & ESCP_XF_ABORTED) != 0;
  if (f->status == ESCP_OK && !aborted && (!f->sealed || f->consumed != f->nrecv))
    escp__rx_file_fail(f, ESCP_E_PROTO, 0, "blocks missing"); /* unreachable: expect checks */
  if (f->status == ESCP_OK && !aborted && f->have_root) memcpy(ev.digest, f->root, sizeof ev.digest);
  if (f->status == ESCP_OK && !aborted) escp__rx_commit(s, f, ev.digest);
  if (f->status == ESCP_OK && !aborted && f->ranged && f->rel && !escp__rx_dummy(s)) escp__rx_range_complete(s, f);
  if (aborted) {
    ev.type = ESCP_EV_FILE_ERROR;
    ev.status = ESCP_E_ABORTED;
    snprintf(ev.text, sizeof ev.text, "aborted by sender");
  } else if (f->status != ESCP_OK) {
    ev.type = ESCP_EV_FILE_ERROR;
    ev.status = f->status;
    ev.sys_errno = f->sys_errno;
    snprintf(ev.text, sizeof ev.text, "%s", f->what ? f->what : "error");
  } else {
    ev.type = ESCP_EV_FILE_DONE;
  }
  escp__rx_file_free(s, f, 0); /* removes a temporary that was not named: nothing half-written */
  escp__stat_add(s, ESCP_S_FILES_DONE, 1);
  escp__event(s, &ev, may_block);
}

/* Finalises files whose completion came from the JS thread (escp_rx_file_expect), so the
 * digest check and the naming run off it. Exits at stop; queued files are freed by
 * escp__rx_free. */
static void *rx_commit_thread(void *arg) {
  escp_session *s = arg;
  struct escp_rx *r = s->rx;
  pthread_setname_np(pthread_self(), "escp-commit");
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->qhead && !escp__stopping(s)) pthread_cond_wait(&r->qcv, &r->mu);
    if (escp__stopping(s)) break;
    rx_file *f = r->qhead;
    r->qhead = f->qnext;
    if (!r->qhead) r->qtail = NULL;
    pthread_mutex_unlock(&r->mu);
    rx_finalize(s, f, 1);
    pthread_mutex_lock(&r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* Drop one reference (if drop), seal the file once all its blocks are in, and complete it
 * when every expected block has been consumed and nobody holds it. may_block = 0 on the
 * JS thread. */
static void rx_settle(escp_session *s, rx_file *f, int drop, int may_block) {
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  if (drop) f->refs--;
  pthread_mutex_lock(&f->mu);
  int complete = f->have_expect && f->consumed >= f->expected;
  int seal = !f->sealed && f->refs == 0 && f->consumed >= f->nrecv && !f->awaiting;
  if (seal) {
    f->sealed = 1;
    f->refs++; /* held while sealing outside r->mu */
  }
  pthread_mutex_unlock(&f->mu);
  if (seal) {
    pthread_mutex_unlock(&r->mu);
    escp__rx_seal(s, f);
    rx_settle(s, f, 1, may_block); /* drops the sealing reference; recurses at most once */
    return;
  }
  if (complete && !f->done) {
    f->done = 1;
    unlink_file(r, f);
  }
  int fin = f->done && f->refs == 0 && !f->final;
  if (fin) f->final = 1;
  int queue = fin && !may_block; /* JS thread: the verification and naming go elsewhere */
  if (queue) {
    f->qnext = NULL;
    if (r->qtail) r->qtail->qnext = f;
    else r->qhead = f;
    r->qtail = f;
    pthread_cond_signal(&r->qcv);
    if (!r->commit_live && pthread_create(&r->commit_thr, NULL, rx_commit_thread, s) == 0) r->commit_live = 1;
    if (!r->commit_live) { /* no thread: finalise here after all */
      r->qhead = f->qnext;
      if (!r->qhead) r->qtail = NULL;
      queue = 0;
    }
  }
  pthread_mutex_unlock(&r->mu);
  if (fin && !queue) rx_finalize(s, f, may_block);
}

/* The sender finished fino after sending `blocks` blocks — exactly the blocks its announced
 * size implies minus those held (else ESCP_E_PROTO; also before a pending resume decision),
 * or with ESCP_XF_ABORTED at most that many (it gave up:
 * discard, report ESCP_E_ABORTED) — and digest32 is its BLAKE3 (NULL without checksums).
 * Completes the file now if all blocks are in, else when the last one arrives. Returns
 * ESCP_OK, E_INVAL, E_STATE, E_UNKNOWN_FILE, E_DUP (expect given twice), E_PROTO. JS thread. */
ESCP_API int32_t escp_rx_file_expect(void *h, uint64_t fino, uint64_t blocks, uint32_t flags, const uint8_t *digest32) {
  escp_session *s = escp__session(h);
  if (!s || (flags & ~(uint32_t)ESCP_XF_ABORTED) || (blocks == 0 && !(flags & ESCP_XF_ABORTED)))
    return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER) return ESCP_E_STATE;
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  rx_file *f = find(r, fino);
  int rc = !f ? ESCP_E_UNKNOWN_FILE : ESCP_OK;
  if (f) {
    pthread_mutex_lock(&f->mu);
    int aborted = (flags & ESCP_XF_ABORTED) != 0;
    if (f->stream) rc = ESCP_E_INVAL; /* stream_expect's */
    else if (f->have_expect) rc = ESCP_E_DUP;
    else if (f->awaiting || (aborted ? blocks > f->nrecv : blocks != f->nrecv)) rc = ESCP_E_PROTO;
    if (rc == ESCP_OK) {
      f->have_expect = 1;
      f->expected = blocks;
      f->xflags = flags;
      if (digest32) {
        memcpy(f->want, digest32, 32);
        f->have_want = 1;
      }
    }
    pthread_mutex_unlock(&f->mu);
    if (rc == ESCP_OK) f->refs++;
  }
  pthread_mutex_unlock(&r->mu);
  if (f && rc == ESCP_OK) rx_settle(s, f, 1, 0);
  return rc;
}

/* Do the blocks of stream f received so far fit a stream of size bytes in nb blocks: none
 * past it, the short one (if any) its last, a full one at its last index only when that is
 * B bytes? Under f->mu. */
static int stream_fits(const rx_file *f, uint64_t size, uint64_t nb, uint64_t b) {
  uint64_t last = size - (nb - 1) * b;
  if (f->smax > nb) return 0;
  if (f->hasshort) return f->shidx == nb - 1 && f->shlen == last;
  return f->smax < nb || last == b;
}

/* The sender finished stream fino: size bytes in `blocks` blocks (exactly ceil(size/B), 1
 * when empty, and consistent with every block received: else ESCP_E_PROTO), digest32 its
 * BLAKE3; with ESCP_XF_ABORTED it gave up after sending `blocks` (size unused). Completes it
 * now if all blocks are in, else when the last arrives. ESCP_OK, E_INVAL (not a stream, bad
 * flags), E_STATE, E_UNKNOWN_FILE, E_DUP, E_PROTO. JS thread. */
ESCP_API int32_t escp_rx_stream_expect(void *h, uint64_t fino, uint64_t size, uint64_t blocks, uint32_t flags,
                                       const uint8_t *digest32) {
  escp_session *s = escp__session(h);
  if (!s || (flags & ~(uint32_t)ESCP_XF_ABORTED)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER) return ESCP_E_STATE;
  int aborted = (flags & ESCP_XF_ABORTED) != 0;
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE], nb = size == 0 ? 1 : size / b + (size % b != 0);
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  rx_file *f = find(r, fino);
  int rc = !f ? ESCP_E_UNKNOWN_FILE : ESCP_OK;
  if (f) {
    pthread_mutex_lock(&f->mu);
    if (!f->stream) rc = ESCP_E_INVAL;
    else if (f->have_expect) rc = ESCP_E_DUP;
    else if (!aborted && (size > (uint64_t)ESCP_MAX_FILE_SIZE || blocks != nb || !stream_fits(f, size, nb, b)))
      rc = ESCP_E_PROTO;
    if (rc == ESCP_OK) {
      f->have_expect = 1;
      f->expected = f->nrecv = f->nblocks = blocks;
      f->size = aborted ? 0 : size;
      f->sized = !aborted;
      f->xflags = flags;
      if (digest32) {
        memcpy(f->want, digest32, 32);
        f->have_want = 1;
      }
    }
    pthread_mutex_unlock(&f->mu);
    if (rc == ESCP_OK) f->refs++;
  }
  pthread_mutex_unlock(&r->mu);
  if (f && rc == ESCP_OK) rx_settle(s, f, 1, 0);
  return rc;
}

/* ---- data stream threads ---- */

/* Wait up to timeout_ms for fino to be registered, and for its resume decision if one is
 * pending. Returns it with a reference, or NULL (timeout or stop; *undecided = 1 when it was
 * registered but never decided). */
static rx_file *rx_lookup(escp_session *s, uint64_t fino, int *undecided) {
  struct escp_rx *r = s->rx;
  struct timespec dl;
  escp__deadline(&dl, (uint64_t)s->param[ESCP_P_TIMEOUT_MS]);
  pthread_mutex_lock(&r->mu);
  rx_file *f;
  int late = 0;
  while ((!(f = find(r, fino)) || f->awaiting) && !escp__stopping(s) && !late)
    late = pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT;
  *undecided = f && f->awaiting;
  if (f && f->awaiting) f = NULL;
  if (f) f->refs++;
  pthread_mutex_unlock(&r->mu);
  return f;
}

static int all_zero(const uint8_t *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Open once (per-file lock): the block tracker, and the file itself unless its blocks are
 * discarded or nothing is written (dummy). Returns the file status, its O_DIRECT state and
 * whether it has an fd to write; *late = 1 for a block after the file was sealed. */
static int32_t rx_open(escp_session *s, rx_file *f, int *direct, int *writable, int *late) {
  pthread_mutex_lock(&f->mu);
  *late = f->sealed;
  if (!f->sealed && !f->open_tried) {
    f->open_tried = 1;
    if (f->ranged) {
      if (!(f->rdg = malloc(sizeof *f->rdg)) || escp_rdigest_init(f->rdg, f->rfirst, f->rcount) != ESCP_OK)
        escp__rx_file_fail(f, ESCP_E_NOMEM, 0, "block tracker");
      for (size_t i = 0; f->rdg && f->status == ESCP_OK && i < f->ntrees; i++)
        if (escp_rdigest_add(f->rdg, f->trees[i].start, f->trees[i].log2, f->trees[i].cv) != ESCP_OK)
          escp__rx_file_fail(f, ESCP_E_PROTO, 0, "held blocks");
    } else if ((f->dg = malloc(sizeof *f->dg)) != NULL) escp_digest_init(f->dg);
    else escp__rx_file_fail(f, ESCP_E_NOMEM, 0, "block tracker");
    for (size_t i = 0; f->dg && i < f->ntrees; i++) { /* held runs count as received */
      uint32_t before = f->dg->pending_len;
      if (escp_digest_add_tree(f->dg, f->trees[i].start, f->trees[i].log2, f->trees[i].cv) != ESCP_OK)
        escp__rx_file_fail(f, ESCP_E_PROTO, 0, "held blocks");
      __atomic_add_fetch(&s->rx->pending, (int64_t)f->dg->pending_len - (int64_t)before, __ATOMIC_RELAXED);
    }
    /* Small files are written through the page cache: an O_DIRECT write is a synchronous
     * device round trip per file, which caps many-small-file runs (see docs/tuning.md). */
    f->direct = (int)s->param[ESCP_P_DIRECT] && f->size >= ESCP_DIRECT_MIN;
    int err = f->rel && !escp__rx_dummy(s) && f->status == ESCP_OK ? escp__rx_create(s, f) : 0;
    if (err == EBUSY && f->journaled) escp__rx_file_fail(f, ESCP_E_BUSY, 0, "partial in use by another escp");
    else if (err) escp__rx_file_fail(f, ESCP_E_OPEN, err, "open");
    else f->opened = f->rel && !escp__rx_dummy(s) && f->status == ESCP_OK;
  }
  int32_t st = f->status;
  *direct = f->direct;
  *writable = f->opened;
  pthread_mutex_unlock(&f->mu);
  return st;
}

/* Write n payload bytes at off (zero-padded to 4 KiB under O_DIRECT; the pad lands in the
 * spent tag area and is cut at seal). Returns the length written (with the pad) or -errno. */
static int64_t rx_pwrite(escp_session *s, rx_file *f, uint8_t *pay, uint32_t n, uint64_t off, int direct) {
  size_t len = n;
  if (direct) {
    len = ((size_t)n + ESCP_IO_ALIGN - 1) / ESCP_IO_ALIGN * ESCP_IO_ALIGN;
    memset(pay + n, 0, len - n);
  }
  int fi = ESCP_FI(s, ESCP_FI_PWRITE); /* fault-injection build only */
  int64_t r = fi ? -fi : s->io->pwrite(f->fd, pay, len, off);
  if (r == -EINVAL && direct) { /* O_DIRECT write refused: buffered from now on */
    pthread_mutex_lock(&f->mu);
    if (f->direct && s->io->drop_direct(f->fd) == 0) f->direct = 0;
    direct = f->direct;
    pthread_mutex_unlock(&f->mu);
    escp__log(s, "fino %llu: O_DIRECT write refused, buffered", (unsigned long long)f->fino);
    if (!direct) r = (fi = ESCP_FI(s, ESCP_FI_PWRITE)) ? -fi : s->io->pwrite(f->fd, pay, n, off);
  }
  return r;
}

/* Is this block one the announced size implies: index < ceil(size/B) and exactly
 * min(B, size - offset) bytes? NULL, or why not. (Offsets are multiples of B: frame.c.) */
static const char *rx_block_check(const escp_session *s, const rx_file *f, const escp_data_hdr *dh) {
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  uint64_t idx = dh->offset / b;
  if (idx >= f->nblocks) return "a block past its announced size";
  if (f->ranged && (idx < f->rfirst || idx - f->rfirst >= f->rcount)) return "a block outside its announced range";
  uint64_t want = idx + 1 < f->nblocks ? b : f->size - idx * b;
  if (dh->len != want) return "a block of the wrong length for its size";
  return f->ntrees && escp_trees_find(f->trees, f->ntrees, idx) >= 0 ? "a block the receiver holds already" : NULL;
}

/* A block of stream f: one the stream's shape allows (escp.h: B bytes each, one shorter
 * that ends it, exactly the announced blocks once stream_expect gave them)? Recorded. NULL
 * or why not. Takes f->mu. */
static const char *rx_stream_check(const escp_session *s, rx_file *f, const escp_data_hdr *dh) {
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE], idx = dh->offset / b;
  const char *bad = NULL;
  /* (offset + len can wrap for an offset near 2^64: compare without adding) */
  if (dh->offset > (uint64_t)ESCP_MAX_FILE_SIZE || dh->len > (uint64_t)ESCP_MAX_FILE_SIZE - dh->offset)
    return "a stream block past the largest size";
  pthread_mutex_lock(&f->mu);
  if (dh->len == 0 && idx > 0) bad = "an empty stream block past offset 0";
  else if (f->sized && idx >= f->nblocks) bad = "a block past its announced size";
  else if (f->sized && dh->len != (idx + 1 < f->nblocks ? b : f->size - idx * b)) bad = "a block of the wrong length for its size";
  else if (f->hasshort && idx > f->shidx) bad = "a block past the stream's end";
  else if (dh->len < b && f->hasshort && idx != f->shidx) bad = "a second short block";
  else if (dh->len < b && idx + 1 < f->smax) bad = "a short block before a later one";
  if (!bad && idx + 1 > f->smax) f->smax = idx + 1;
  if (!bad && dh->len < b && !f->hasshort) f->hasshort = 1, f->shidx = idx, f->shlen = dh->len;
  pthread_mutex_unlock(&f->mu);
  return bad;
}

/* write() all n bytes of p to fd (EINTR looped; a non-blocking fd is polled, stop ends the
 * wait) with SIGPIPE blocked in this thread and a SIGPIPE it raised consumed: a reader that
 * went away is EPIPE, never a signal. 0 or an errno value. */
static int fd_write_all(escp_session *s, int fd, const uint8_t *p, size_t n) {
  sigset_t pipe, old, pend;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  int was = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
  int err = 0;
  while (n > 0 && !err) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pf[2] = {{.fd = fd, .events = POLLOUT}, {.fd = s->wake_fd, .events = POLLIN}};
      if (poll(pf, 2, -1) < 0 && errno != EINTR) err = errno;
      else if (escp__stopping(s)) err = ECANCELED;
      continue;
    }
    if (w < 0) err = errno;
    else if (w == 0) err = EIO;
    else p += w, n -= (size_t)w;
  }
  if (err == EPIPE && !was) { /* the signal this write raised, pending on this thread: taken */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return err;
}

/* stream_fd: wait (rx->mu; stop ends it) until every byte before off was written, write
 * these n (not a block behind the front: a repeat, which the tracker refuses), move the
 * front on and wake the others. skip (the block is not to be written):
 * the stream's writes stop here, and every waiting block is let go. 0 or the write's errno
 * (later blocks are then consumed and discarded). */
static int rx_fd_write(escp_session *s, rx_file *f, const uint8_t *p, uint64_t off, uint32_t n, int skip) {
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  while (!skip && f->front < off && !f->wfail && !escp__stopping(s)) pthread_cond_wait(&r->cv, &r->mu);
  int go = !skip && f->front == off && !f->wfail && !escp__stopping(s);
  pthread_mutex_unlock(&r->mu);
  int err = go && n ? fd_write_all(s, f->sfd, p, n) : 0;
  pthread_mutex_lock(&r->mu);
  if (go) f->front = off + n;
  if (skip || err) f->wfail = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return err;
}

/* Track block idx (once only; bounded out-of-order records). Under f->mu. NULL or why not. */
static const char *rx_track(escp_session *s, rx_file *f, uint64_t idx, const uint8_t cv[32], const uint8_t *root) {
  if (f->ranged) {
    if (!f->rdg) return NULL;
    uint32_t before = escp_rdigest_pending(f->rdg);
    int rc = escp_rdigest_add(f->rdg, idx, 0, cv);
    if (rc == ESCP_E_DUP) return "a block sent twice";
    if (rc == ESCP_E_RANGE) return "a block outside its announced range";
    if (rc != ESCP_OK) {
      escp__rx_file_fail(f, rc, 0, "block tracker");
      return NULL;
    }
    int64_t held = __atomic_add_fetch(&s->rx->pending, (int64_t)escp_rdigest_pending(f->rdg) - (int64_t)before, __ATOMIC_RELAXED);
    return held > ESCP_RX_PENDING_MAX ? "blocks sent too far out of order" : NULL;
  }
  if (!f->dg) return NULL; /* the tracker could not be allocated: the file has failed */
  uint32_t before = f->dg->pending_len;
  int rc = escp_digest_add(f->dg, idx, cv, root);
  if (rc == ESCP_E_DUP) return "a block sent twice";
  if (rc != ESCP_OK) {
    escp__rx_file_fail(f, rc, 0, "block tracker");
    return NULL;
  }
  int64_t held = __atomic_add_fetch(&s->rx->pending, (int64_t)f->dg->pending_len - (int64_t)before, __ATOMIC_RELAXED);
  return held > ESCP_RX_PENDING_MAX ? "blocks sent too far out of order" : NULL;
}

/* Consume one authenticated block: check, open, hash, write (unless failed / discarded /
 * sparse zero), track. Returns NULL, or why the block breaks the protocol. */
static const char *rx_block(escp_session *s, escp_prof_ring *pr, rx_file *f, const escp_data_hdr *dh, uint8_t *pay) {
  const char *bad = f->stream ? rx_stream_check(s, f, dh) : rx_block_check(s, f, dh);
  if (bad) return bad;
  int direct, writable, late;
  uint64_t t = escp__prof_t0(pr);
  int32_t st = rx_open(s, f, &direct, &writable, &late);
  t = escp__prof_end(pr, ESCP_STG_META, t, 0);
  if (late) return "a block after the file was complete";
  uint8_t cv[32] = {0}, root[32] = {0};
  if (st == ESCP_OK && s->param[ESCP_P_CHECKSUM] && (f->rel || f->tofd)) {
    escp_b3_block(pay, dh->len, dh->offset / ESCP_B3_CHUNK, cv, dh->offset == 0 ? root : NULL);
    t = escp__prof_end(pr, ESCP_STG_HASH, t, dh->len);
  }
  int64_t r = 0;
  if (f->tofd) { /* in order, to the caller's fd; a failed write is the file's, not the session's */
    int e = rx_fd_write(s, f, pay, dh->offset, dh->len, st != ESCP_OK);
    escp__prof_end(pr, ESCP_STG_WRITE, t, dh->len);
    pthread_mutex_lock(&f->mu);
    if (e) escp__rx_file_fail(f, ESCP_E_WRITE, e, "write");
    pthread_mutex_unlock(&f->mu);
    if (st == ESCP_OK && !e) escp__stat_add(s, ESCP_S_BYTES_FILE, dh->len);
    st = ESCP_E_WRITE; /* nothing for the file path below */
  }
  int hole = (dh->flags & ESCP_DF_ZERO) || (s->param[ESCP_P_SPARSE] && all_zero(pay, dh->len));
  if (st == ESCP_OK && writable && dh->len > 0 && !hole) {
    r = rx_pwrite(s, f, pay, dh->len, dh->offset, direct);
    escp__prof_end(pr, ESCP_STG_WRITE, t, dh->len);
  }
  if (st == ESCP_OK && r >= 0) escp__stat_add(s, ESCP_S_BYTES_FILE, dh->len);
  pthread_mutex_lock(&f->mu);
  if (r > 0 && dh->offset + (uint64_t)r > f->disk_end) f->disk_end = dh->offset + (uint64_t)r;
  if (r < 0 && f->status == ESCP_OK) {
    escp__rx_file_fail(f, ESCP_E_WRITE, (int)-r, "write");
    /* The file is lost: give its space back now (ENOSPC must not cascade to the files
     * behind it); later blocks are consumed without writing. */
    if (f->opened && !f->ranged) (void)s->io->truncate(f->fd, 0); /* a range never: the partial is shared */
  }
  bad = rx_track(s, f, dh->offset / (uint64_t)s->param[ESCP_P_BLOCK_SIZE], cv, root);
  int note = f->journaled && f->status == ESCP_OK && !bad;
  f->consumed++;
  f->bytes += dh->len;
  pthread_mutex_unlock(&f->mu);
  if (note) escp__rx_journal_note(s, f, dh->offset / (uint64_t)s->param[ESCP_P_BLOCK_SIZE], cv);
  return bad;
}

static int32_t sock_status(int64_t r) { return r == -ETIMEDOUT ? ESCP_E_TIMEOUT : ESCP_E_CLOSED; }

/* The stream is lost after recv got r < wanted bytes (or an ACK send failed with r):
 * silence for a whole timeout (SO_RCVTIMEO) is FATAL, anything else ends the stream. */
static void rx_report(escp_session *s, escp_stream *st, int64_t r, const char *what, int attempts) {
  if (r == -EAGAIN) escp__rcv_timeout(s, st->idx, attempts);
  else escp__stream_down(s, st->idx, sock_status(r), r < 0 ? (int)-r : 0, r < 0 ? "recv" : what, attempts);
}

/* Why the connection of a stream broke, for rx_lost: the recv's result and what was read. */
typedef struct rx_break {
  int64_t r;
  const char *what;
} rx_break;

/* The connection broke (*b): with reconnect on, re-establish it and tell the sender what was
 * consumed (its resend follows on the new connection): ESCP_OK. Else, or when that fails,
 * the stream is lost (reported unless its BYE was in already). */
static int32_t rx_lost(escp_session *s, escp_stream *st, rx_break b) {
  int total = 0;
  while (s->reconnect && !escp__stopping(s)) {
    char why[56];
    snprintf(why, sizeof why, "%s", b.r == -EAGAIN ? "silence" : b.r < 0 ? strerror((int)-b.r) : b.what);
    int attempts = 0;
    int32_t rc = escp__reconnect(s, st, why, &attempts);
    total += attempts;
    if (rc != ESCP_OK) break;
    if (st->zc) escp_zc_raw(st->zc); /* the sender starts a fresh zstd session too */
    int e = escp__ack_send(s, st, st->bye ? ESCP_ACKF_BYE : 0); /* the first frame: the count */
    if (e == 0) {
      escp__reconnected(s, st, why, total);
      return ESCP_OK;
    }
    b = (rx_break){e, "send ACK"};
  }
  if (!st->bye) rx_report(s, st, b.r, b.what, total);
  return ESCP_E_CLOSED;
}

/* A DATA frame's payload: RAW → in place (and the stream's zstd session resets, zc.h);
 * ESCP_DF_ZSTD → decompressed into zbuf. Sets *pay; ESCP_OK or E_PROTO. */
static int32_t rx_payload(escp_session *s, escp_stream *st, uint8_t *body, uint32_t body_len,
                          const escp_data_hdr *dh, uint8_t *zbuf, uint8_t **pay) {
  *pay = body + ESCP_DATA_SUBHDR;
  if (dh->flags & ESCP_DF_ZERO) /* a hole of the source: zeros to hash, nothing to write */
    memset(*pay, 0, dh->len);
  if (!(dh->flags & ESCP_DF_ZSTD)) {
    if (st->zc) escp_zc_raw(st->zc);
    return ESCP_OK;
  }
  if (!st->zc) return ESCP_E_PROTO; /* compressed data on a session without -C */
  uint64_t t = escp__prof_t0(st->prof);
  int32_t rc = escp_zc_decompress(st->zc, body + ESCP_DATA_SUBHDR, (int32_t)(body_len - ESCP_DATA_SUBHDR),
                                  zbuf + ESCP_HDR_AREA, (int32_t)dh->len);
  escp__prof_end(st->prof, ESCP_STG_DECOMPRESS, t, dh->len);
  (void)s;
  *pay = zbuf + ESCP_HDR_AREA;
  return rc;
}

/* Read and authenticate one frame into buf. Returns its type (DATA with *dh filled and *pay
 * at its plaintext, BYE, KEEPALIVE), -1 when the stream is dead (event pushed) or -2 when
 * its connection broke (*b says how; rx_lost decides). */
static int rx_read_frame(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf, escp_data_hdr *dh,
                         uint8_t **pay, rx_break *b) {
  uint32_t bsz = (uint32_t)s->param[ESCP_P_BLOCK_SIZE];
  uint8_t hdr[ESCP_FRAME_HDR];
  uint64_t t = escp__prof_t0(st->prof);
  int64_t r = escp__recv_all(st->fd, hdr, sizeof hdr);
  if (r != (int64_t)sizeof hdr) {
    *b = (rx_break){r, "EOF"};
    return -2;
  }
  escp_frame_hdr fh; /* only body_len is used before the tag verifies, after this check */
  int rc = escp_chan_check(&st->rx, hdr, ESCP_DATA_SUBHDR + bsz, &fh);
  if (rc == ESCP_OK && fh.type != ESCP_FT_DATA && fh.type != ESCP_FT_BYE && fh.type != ESCP_FT_KEEPALIVE)
    rc = ESCP_E_PROTO;
  if (rc == ESCP_OK && (fh.type == ESCP_FT_DATA) != (fh.body_len >= ESCP_DATA_SUBHDR)) rc = ESCP_E_PROTO;
  if (rc != ESCP_OK) {
    escp__reject(s, st->idx, rc, "bad data header");
    return -1;
  }
  uint8_t *body = buf + ESCP_HDR_AREA - ESCP_DATA_SUBHDR; /* payload lands 4096-aligned */
  r = escp__recv_all(st->fd, body, (size_t)fh.body_len + ESCP_TAG);
  if (r != (int64_t)fh.body_len + ESCP_TAG) {
    *b = (rx_break){r < 0 ? r : 0, "EOF inside a frame"};
    return -2;
  }
  t = escp__prof_end(st->prof, ESCP_STG_RECV, t, ESCP_FRAME_HDR + (uint64_t)fh.body_len + ESCP_TAG);
  rc = escp_chan_open(&st->rx, hdr, body, fh.body_len, body + fh.body_len);
  escp__prof_end(st->prof, ESCP_STG_OPEN, t, fh.body_len);
  if (rc == ESCP_OK && fh.type != ESCP_FT_DATA) rc = fh.body_len == 0 ? ESCP_OK : ESCP_E_PROTO;
  else if (rc == ESCP_OK) rc = escp_data_hdr_decode(body, fh.body_len, bsz, dh);
  if (rc != ESCP_OK) {
    escp__reject(s, st->idx, rc, "bad data frame");
    return -1;
  }
  if (fh.type == ESCP_FT_DATA && rx_payload(s, st, body, fh.body_len, dh, zbuf, pay) != ESCP_OK) {
    escp__reject(s, st->idx, ESCP_E_PROTO, st->zc ? "corrupt compressed block" : "compressed block without -C");
    return -1;
  }
  escp__stat_add(s, ESCP_S_BYTES_WIRE, ESCP_FRAME_HDR + (uint64_t)fh.body_len + ESCP_TAG);
  return fh.type;
}

/* Reconnect on: ACK what was consumed (flags ESCP_ACKF_*). 1, or -2 with *b when the
 * connection broke. */
static int rx_ack(escp_session *s, escp_stream *st, uint32_t flags, rx_break *b) {
  int e = escp__ack_send(s, st, flags);
  if (e == 0) return 1;
  *b = (rx_break){e, "send ACK"};
  return -2;
}

static int rx_data(escp_session *s, escp_stream *st, const escp_data_hdr *dh, uint8_t *pay);

/* One frame. Returns 1 = go on, 0 = clean end (BYE / stop), -1 = stream dead, -2 = its
 * connection broke (*b). */
static int rx_frame(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf, rx_break *b) {
  escp_data_hdr dh;
  uint8_t *pay = NULL;
  int type = rx_read_frame(s, st, buf, zbuf, &dh, &pay, b);
  if (type == ESCP_FT_KEEPALIVE) /* the sender is alive; SO_RCVTIMEO restarts */
    return s->reconnect && st->dframes > st->acked ? rx_ack(s, st, 0, b) : 1;
  if (type == ESCP_FT_BYE) { /* with reconnect the final ACK first: the sender ends when it has it */
    st->bye = 1;
    int r = s->reconnect ? rx_ack(s, st, ESCP_ACKF_BYE, b) : 1;
    escp__data_bye(s); /* consumed: counted once, even if that ACK has to go again (rx_lost) */
    return r == 1 ? 0 : -2;
  }
  if (type != ESCP_FT_DATA) return type;
  escp__stat_add(s, ESCP_S_BLOCKS, 1);
  int r = dh.flags & ESCP_DF_BUNDLE ? escp__rx_bundle(s, st, &dh, pay) : rx_data(s, st, &dh, pay);
  if (r != 1) return r;
  if (!s->reconnect) return 1;
  st->dframes++;
  st->fails = 0; /* the stream moves: reconnect attempts start over */
  return st->dframes - st->acked >= ESCP_ACK_EVERY((uint64_t)s->param[ESCP_P_BLOCK_SIZE]) ? rx_ack(s, st, 0, b) : 1;
}

/* A DATA frame of a file's block: find the file (waiting for its registration), consume the
 * block. 1 = done, 0 = stopping, -1 = the session failed (event pushed). */
static int rx_data(escp_session *s, escp_stream *st, const escp_data_hdr *dh, uint8_t *pay) {
  uint64_t t = escp__prof_t0(st->prof);
  int undecided = 0;
  rx_file *f = rx_lookup(s, dh->fino, &undecided);
  escp__prof_end(st->prof, ESCP_STG_IDLE, t, 0);
  if (!f) {
    if (escp__stopping(s)) return 0;
    char t[56];
    snprintf(t, sizeof t, undecided ? "fino %llu: no resume decision" : "unknown fino %llu", (unsigned long long)dh->fino);
    escp__event_simple(s, ESCP_EV_FATAL, undecided ? ESCP_E_PROTO : ESCP_E_UNKNOWN_FILE, 0, (uint32_t)st->idx, dh->fino, t);
    shutdown(st->fd, SHUT_RDWR); /* the sender's blocked send fails instead of hanging */
    return -1;
  }
  const char *bad = rx_block(s, st->prof, f, dh, pay);
  if (bad) { /* the sender broke the protocol: the whole session stops (and its files go) */
    pthread_mutex_lock(&f->mu);
    escp__rx_file_fail(f, ESCP_E_PROTO, 0, bad);
    pthread_mutex_unlock(&f->mu);
    escp__stat_add(s, ESCP_S_FRAMES_REJECTED, 1);
    shutdown(st->fd, SHUT_RDWR);
    if (!escp__stopping(s)) /* the event names the file; its text says what was wrong */
      escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_PROTO, 0, (uint32_t)st->idx, dh->fino, bad);
  }
  t = escp__prof_t0(st->prof);
  rx_settle(s, f, 1, 1);
  escp__prof_end(st->prof, ESCP_STG_META, t, 0);
  return bad ? -1 : 1;
}

/* Reconnect on, the BYE is in and ACKed: wait for the sender to close its direction. A break
 * instead may have lost the final ACK: re-establish and say it again. Silence for a timeout
 * ends the wait (the sender has all it needs from here). */
static void rx_linger(escp_session *s, escp_stream *st) {
  for (;;) {
    uint8_t c;
    ssize_t r = recv(st->fd, &c, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r >= 0 || errno == EAGAIN || errno == EWOULDBLOCK || escp__stopping(s)) return;
    if (rx_lost(s, st, (rx_break){-errno, "recv"}) != ESCP_OK) return;
  }
}

void *escp__rx_thread(void *arg) {
  escp_stream *st = arg;
  escp_session *s = st->s;
  size_t cap = ESCP_HDR_AREA + (size_t)s->param[ESCP_P_BLOCK_SIZE] + ESCP_IO_ALIGN;
  uint8_t *buf = NULL;
  uint8_t *zbuf = NULL; /* -C: compressed blocks are decompressed here */
  int zok = 1;
  if (s->param[ESCP_P_COMPRESS] > 0)
    zok = (st->zc = escp_zc_new_rx()) != NULL && posix_memalign((void **)&zbuf, ESCP_IO_ALIGN, cap) == 0;
  if (!zok || posix_memalign((void **)&buf, ESCP_IO_ALIGN, cap) != 0) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, (uint32_t)st->idx, 0, "block buffer");
  } else {
    for (;;) {
      rx_break b = {0, NULL};
      int r = escp__stopping(s) ? 0 : rx_frame(s, st, buf, zbuf, &b);
      if (r == -2 && rx_lost(s, st, b) == ESCP_OK) r = st->bye ? 0 : 1; /* after the BYE: linger */
      if (r == 1) continue;
      if (r == 0 && st->bye && s->reconnect) rx_linger(s, st);
      break;
    }
  }
  free(buf);
  free(zbuf);
  escp_zc_free(st->zc);
  st->zc = NULL;
  escp__stream_gone(s, st->idx);
  return NULL;
}
