/* rx.c — receiver role: the file table (fino → destination, filled by escp_rx_file_add /
 * escp_rx_file_expect from the JS thread) and one thread per data stream that
 * authenticates DATA frames into a 4096-aligned buffer, hashes and writes each block, and
 * completes a file when the sender's announced block count has been consumed. A file's fd
 * is closed ("sealed") as soon as the blocks its announced size implies are all in, so
 * open fds do not pile up while FileDone messages travel. KEEPALIVE frames only prove the
 * sender is alive; a stream silent for a whole timeout is FATAL E_TIMEOUT.
 * Commit in C: a file registered with a final path is verified against the sender's digest
 * (given to escp_rx_file_expect) and renamed into place here, in parallel on the stream
 * threads, or on the commit thread when the JS thread's expect completes it — so committing
 * many small files costs the JS thread nothing but one event each. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include "b3.h"
#include "digest.h"
#include "net.h"
#include "zc.h"

typedef struct rx_file {
  struct rx_file *hnext;           /* hash chain (rx->mu) */
  uint64_t fino, size_hint;
  uint32_t mode;                   /* permission bits for the new file (creation, umask applies) */
  char *path;
  char *final_path;                /* commit here after verification; NULL = the caller commits */
  struct rx_file *qnext;           /* commit queue link (rx->mu) */
  int have_want;                   /* want = the sender's digest (from expect) */
  uint8_t want[32];
  int refs, done, final;           /* rx->mu: threads using it; removed; finalising */
  int sealed;                      /* rx->mu + mu: fd closed, digest folded into root */
  pthread_mutex_t mu;              /* guards everything below */
  int fd, open_tried, opened, direct;
  int anon;                        /* fd is an unnamed O_TMPFILE file; commit links it */
  int kept;                        /* sealed, fd kept open for that link (counted in rx->kept) */
  int32_t status;
  int sys_errno;
  const char *what;
  uint64_t consumed, expected, max_end, bytes;
  uint64_t disk_end;               /* file size as written (O_DIRECT pads; sparse skips) */
  int have_expect;
  uint32_t xflags;
  escp_digest *dg;
  int have_root;                   /* root = the file's digest (sealed with checksums) */
  uint8_t root[32];
} rx_file;

struct escp_rx {
  pthread_mutex_t mu;
  pthread_cond_t cv;               /* a file was added, or stop */
  rx_file **tab;
  size_t nb, count;                /* buckets (power of two), files */
  rx_file *qhead, *qtail;          /* files to finalise on the commit thread */
  pthread_cond_t qcv;              /* queue not empty, or stop */
  pthread_t commit_thr;
  int commit_live;
  int anon_ok;                     /* try O_TMPFILE (cleared when the filesystem refuses it) */
  int kept, kept_max;              /* sealed unnamed files holding an fd (atomic), its cap */
  int cap_logged;                  /* the cap was reached (logged once, atomic) */
};

int escp__rx_new(escp_session *s) {
  struct escp_rx *r = calloc(1, sizeof *r);
  if (!r || !(r->tab = calloc(1024, sizeof *r->tab))) {
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
  escp__cond_init_mono(&r->cv);
  pthread_cond_init(&r->qcv, NULL);
  pthread_mutex_init(&r->mu, NULL);
  s->rx = r;
  return ESCP_OK;
}

static void file_free(escp_session *s, rx_file *f) {
  if (f->opened || f->kept) s->io->close(f->fd);
  if (f->kept) __atomic_fetch_sub(&s->rx->kept, 1, __ATOMIC_RELAXED);
  if (f->dg) {
    escp_digest_free(f->dg);
    free(f->dg);
  }
  pthread_mutex_destroy(&f->mu);
  free(f->path);
  free(f->final_path);
  free(f);
}

void escp__rx_free(escp_session *s) {
  struct escp_rx *r = s->rx;
  if (r->commit_live) { /* the session is stopped: the thread exits without finalising more */
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->qcv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->commit_thr, NULL);
  }
  for (rx_file *f = r->qhead, *nx; f; f = nx) { /* never finalised: the session failed */
    nx = f->qnext;
    file_free(s, f);
  }
  for (size_t i = 0; i < r->nb; i++)
    for (rx_file *f = r->tab[i], *nx; f; f = nx) {
      nx = f->hnext;
      file_free(s, f);
    }
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
}

static size_t slot(const struct escp_rx *r, uint64_t fino) {
  return (size_t)((fino * 0x9E3779B97F4A7C15ull) >> 20) & (r->nb - 1);
}

static rx_file *find(struct escp_rx *r, uint64_t fino) {
  for (rx_file *f = r->tab[slot(r, fino)]; f; f = f->hnext)
    if (f->fino == fino) return f;
  return NULL;
}

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

/* Register a destination for fino (non-zero): path (copied) is opened
 * O_CREAT|O_WRONLY|O_TRUNC|O_NOFOLLOW with permission bits mode (07777 mask, the process
 * umask applies) when the first block arrives, and closed once the blocks that
 * size_hint (the announced size) implies are all in. final_path non-NULL: once complete,
 * the file is checked against the digest given to escp_rx_file_expect (checksums on) and
 * renamed to final_path; FILE_DONE then means committed, FILE_ERROR (E_DIGEST "digest
 * mismatch", E_WRITE "rename") means path was removed. Returns ESCP_OK, E_INVAL, E_NOMEM,
 * E_DUP (fino already registered), E_STATE (sender session or stopped). JS thread. */
ESCP_API int32_t escp_rx_file_add(void *h, uint64_t fino, const char *path, uint64_t size_hint, uint32_t mode, const char *final_path) {
  escp_session *s = escp__session(h);
  if (!s || fino == 0 || !path) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER || escp__stopping(s)) return ESCP_E_STATE;
  rx_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path)) || (final_path && !(f->final_path = strdup(final_path)))) {
    if (f) free(f->path);
    free(f);
    return ESCP_E_NOMEM;
  }
  f->fino = fino;
  f->size_hint = size_hint;
  f->mode = mode & 07777;
  f->fd = -1;
  pthread_mutex_init(&f->mu, NULL);
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  int dup = find(r, fino) != NULL;
  if (!dup) {
    if (r->count >= r->nb * 2) grow(r);
    f->hnext = r->tab[slot(r, fino)];
    r->tab[slot(r, fino)] = f;
    r->count++;
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
  if (dup) {
    file_free(s, f);
    return ESCP_E_DUP;
  }
  return ESCP_OK;
}

/* Under f->mu: keep the first failure. */
static void file_fail(rx_file *f, int32_t status, int err, const char *what) {
  if (f->status != ESCP_OK) return;
  f->status = status;
  f->sys_errno = err;
  f->what = what;
}

/* The file is complete and whole: check it against the sender's digest and rename it into
 * place (status OK), or fail it. */
static void rx_commit(escp_session *s, rx_file *f, const uint8_t digest[32]) {
  static const uint8_t zero[32];
  if (s->param[ESCP_P_CHECKSUM] && (!f->have_want || memcmp(f->want, digest, 32) != 0 || memcmp(digest, zero, 32) == 0)) {
    file_fail(f, ESCP_E_DIGEST, 0, "digest mismatch");
    return;
  }
  if (s->io == &escp_io_dummy) return; /* nothing was written */
  if (f->anon) {
    int err = s->io->link_anon(f->fd, f->final_path);
    if (err != EEXIST) {
      if (err) file_fail(f, ESCP_E_WRITE, err, "link");
      return;
    }
    /* Replacing an existing file: name it beside the destination, then rename over. */
    if ((err = s->io->link_anon(f->fd, f->path)) != 0) {
      file_fail(f, ESCP_E_WRITE, err, "link");
      return;
    }
  }
  if (rename(f->path, f->final_path) != 0) file_fail(f, ESCP_E_WRITE, errno, "rename");
}

/* Truncate to the real size, close, digest, push the event, free. Exactly once. */
static void rx_finalize(escp_session *s, rx_file *f, int may_block) {
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.fino = f->fino;
  ev.bytes = f->bytes;
  ev.blocks = f->consumed;
  int aborted = (f->xflags & ESCP_XF_ABORTED) != 0;
  if (f->opened && !f->sealed && f->status == ESCP_OK && !aborted) {
    int err = f->disk_end == f->max_end ? 0 : s->io->truncate(f->fd, f->max_end); /* padded O_DIRECT tails, sparse holes */
    if (err) file_fail(f, ESCP_E_WRITE, err, "truncate");
  }
  if (f->status == ESCP_OK && !aborted && f->consumed != f->expected)
    file_fail(f, ESCP_E_PROTO, 0, "more blocks than expected");
  if (f->status == ESCP_OK && !aborted && f->have_root)
    memcpy(ev.digest, f->root, sizeof ev.digest);
  else if (f->status == ESCP_OK && !aborted && f->dg &&
           escp_digest_final(f->dg, f->expected, ev.digest) != ESCP_OK)
    file_fail(f, ESCP_E_DIGEST, 0, "digest");
  if (f->final_path && !aborted && f->status == ESCP_OK) rx_commit(s, f, ev.digest);
  if (f->final_path && (aborted || f->status != ESCP_OK)) (void)unlink(f->path); /* nothing half-written survives */
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
  file_free(s, f);
  escp__stat_add(s, ESCP_S_FILES_DONE, 1);
  escp__event(s, &ev, may_block);
}

/* Blocks the announced size implies (the sender never sends more). */
static uint64_t hint_blocks(const escp_session *s, const rx_file *f) {
  uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
  return f->size_hint == 0 ? 1 : f->size_hint / b + (f->size_hint % b != 0);
}

/* Every block the announced size implies is in and no thread holds f: cut the padded
 * tail, close the fd, fold the digest to 32 bytes. The caller holds a reference, so f
 * cannot be finalised meanwhile; f->sealed (set under both locks) keeps late blocks away
 * from the fd. */
static void rx_seal(escp_session *s, rx_file *f) {
  pthread_mutex_lock(&f->mu);
  if (f->opened) {
    int err = f->status == ESCP_OK && f->disk_end != f->max_end ? s->io->truncate(f->fd, f->max_end) : 0;
    if (err) file_fail(f, ESCP_E_WRITE, err, "truncate");
    f->opened = 0;
    int keep = f->anon && f->status == ESCP_OK;
    if (keep && __atomic_add_fetch(&s->rx->kept, 1, __ATOMIC_RELAXED) > s->rx->kept_max) {
      __atomic_fetch_sub(&s->rx->kept, 1, __ATOMIC_RELAXED);
      keep = 0; /* too many held: take the temporary name now, rename at commit */
      if (!__atomic_exchange_n(&s->rx->cap_logged, 1, __ATOMIC_RELAXED))
        escp__log(s, "%d unnamed files held: naming early", s->rx->kept_max);
      err = s->io->link_anon(f->fd, f->path);
      if (err) file_fail(f, ESCP_E_WRITE, err, "link");
      f->anon = 0;
    }
    if (keep) f->kept = 1; /* the fd stays for the link at commit */
    else s->io->close(f->fd);
  }
  if (f->dg) {
    if (f->status == ESCP_OK && escp_digest_final(f->dg, f->consumed, f->root) == ESCP_OK) f->have_root = 1;
    else if (f->status == ESCP_OK) file_fail(f, ESCP_E_DIGEST, 0, "digest");
    escp_digest_free(f->dg);
    free(f->dg);
    f->dg = NULL;
  }
  pthread_mutex_unlock(&f->mu);
}

/* Finalises files whose completion came from the JS thread (escp_rx_file_expect), so the
 * digest check and the rename run off it. Exits at stop; queued files are freed by
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

/* Drop one reference (if drop), seal the file once its announced blocks are in, and
 * complete it when every expected block has been consumed and nobody holds it.
 * may_block = 0 on the JS thread. */
static void rx_settle(escp_session *s, rx_file *f, int drop, int may_block) {
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  if (drop) f->refs--;
  pthread_mutex_lock(&f->mu);
  int complete = f->have_expect && f->consumed >= f->expected;
  int seal = !f->sealed && f->refs == 0 && f->consumed >= hint_blocks(s, f);
  if (seal) {
    f->sealed = 1;
    f->refs++; /* held while sealing outside r->mu */
  }
  pthread_mutex_unlock(&f->mu);
  if (seal) {
    pthread_mutex_unlock(&r->mu);
    rx_seal(s, f);
    rx_settle(s, f, 1, may_block); /* drops the sealing reference; recurses at most once */
    return;
  }
  if (complete && !f->done) {
    f->done = 1;
    unlink_file(r, f);
  }
  int fin = f->done && f->refs == 0 && !f->final;
  if (fin) f->final = 1;
  int queue = fin && !may_block && f->final_path; /* JS thread: the rename goes elsewhere */
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

/* The sender finished fino after sending `blocks` blocks (flags: ESCP_XF_ABORTED = it
 * gave up; discard and report ESCP_E_ABORTED). Completes the file now if all blocks are
 * in, else when the last one arrives. Returns ESCP_OK, E_INVAL, E_STATE, E_UNKNOWN_FILE,
 * E_DUP (expect given twice). JS thread. */
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
    if (f->have_expect) {
      rc = ESCP_E_DUP;
    } else {
      f->have_expect = 1;
      f->expected = blocks;
      f->xflags = flags;
      if (digest32) {
        memcpy(f->want, digest32, 32);
        f->have_want = 1;
      }
    }
    pthread_mutex_unlock(&f->mu);
    f->refs++;
  }
  pthread_mutex_unlock(&r->mu);
  if (f) rx_settle(s, f, 1, 0);
  return rc;
}

/* ---- data stream threads ---- */

/* Wait up to timeout_ms for fino to be registered. Returns it with a reference, or NULL
 * (timeout or stop). */
static rx_file *rx_lookup(escp_session *s, uint64_t fino) {
  struct escp_rx *r = s->rx;
  struct timespec dl;
  escp__deadline(&dl, (uint64_t)s->param[ESCP_P_TIMEOUT_MS]);
  pthread_mutex_lock(&r->mu);
  rx_file *f;
  while (!(f = find(r, fino)) && !escp__stopping(s))
    if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) {
      f = find(r, fino);
      break;
    }
  if (f) f->refs++;
  pthread_mutex_unlock(&r->mu);
  return f;
}

static int all_zero(const uint8_t *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Under f->mu: try to open f as an unnamed file in its destination's directory (C commit
 * only). Returns 0 (f->anon set) or an errno value; the caller then opens the named temp,
 * which reports any real error (EACCES, ENOSPC) under the name the user knows. */
static int rx_open_anon(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  if (!f->final_path || !s->io->open_anon || !__atomic_load_n(&r->anon_ok, __ATOMIC_RELAXED)) return ENOTSUP;
  char dir[4096]; /* the final path's directory: "dir/name" → "dir", "/name" → "/", "name" → "." */
  const char *slash = strrchr(f->final_path, '/');
  size_t n = slash ? (size_t)(slash - f->final_path) : 0;
  if (n >= sizeof dir) return ENAMETOOLONG;
  if (n > 0) memcpy(dir, f->final_path, n);
  else dir[n++] = slash ? '/' : '.';
  dir[n] = 0;
  int direct = f->direct;
  int err = s->io->open_anon(dir, f->mode, &direct, &f->fd);
  if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) /* no O_TMPFILE here: stop trying */
    __atomic_store_n(&r->anon_ok, 0, __ATOMIC_RELAXED);
  if (err) return err;
  f->anon = 1;
  f->direct = direct;
  return 0;
}

/* Open once (per-file lock). Returns the file status and its O_DIRECT state. */
static int32_t rx_open(escp_session *s, rx_file *f, int *direct) {
  pthread_mutex_lock(&f->mu);
  if (f->sealed) /* its fd is gone: a block beyond the announced size */
    file_fail(f, ESCP_E_PROTO, 0, "more blocks than announced");
  else if (!f->open_tried) {
    f->open_tried = 1;
    /* Small files are written through the page cache: an O_DIRECT write is a synchronous
     * device round trip per file, which caps many-small-file runs (see docs/tuning.md). */
    f->direct = (int)s->param[ESCP_P_DIRECT] && f->size_hint >= ESCP_DIRECT_MIN;
    int err = rx_open_anon(s, f);
    if (err) err = s->io->open_write(f->path, f->mode, &f->direct, &f->fd);
    if (err) file_fail(f, ESCP_E_OPEN, err, "open");
    else f->opened = 1;
    if (!err && s->param[ESCP_P_CHECKSUM]) {
      f->dg = malloc(sizeof *f->dg);
      if (f->dg) escp_digest_init(f->dg);
      else file_fail(f, ESCP_E_NOMEM, 0, "digest");
    }
  }
  int32_t st = f->status;
  *direct = f->direct;
  pthread_mutex_unlock(&f->mu);
  return st;
}

/* Write n payload bytes at off (zero-padded to 4 KiB under O_DIRECT; the pad lands in the
 * spent tag area and is cut by the final ftruncate). Returns the length written (with the
 * pad) or -errno. */
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

/* Consume one authenticated block: open, hash, write (unless failed / sparse zero). */
static void rx_block(escp_session *s, escp_prof_ring *pr, rx_file *f, const escp_data_hdr *dh, uint8_t *pay) {
  int direct;
  uint64_t t = escp__prof_t0(pr);
  int32_t st = rx_open(s, f, &direct);
  t = escp__prof_end(pr, ESCP_STG_META, t, 0);
  uint8_t cv[32], root[32];
  int hashed = st == ESCP_OK && f->dg;
  if (hashed) {
    escp_b3_block(pay, dh->len, dh->offset / ESCP_B3_CHUNK, cv, dh->offset == 0 ? root : NULL);
    t = escp__prof_end(pr, ESCP_STG_HASH, t, dh->len);
  }
  int64_t r = 0;
  if (st == ESCP_OK && dh->len > 0 && !(s->param[ESCP_P_SPARSE] && all_zero(pay, dh->len))) {
    r = rx_pwrite(s, f, pay, dh->len, dh->offset, direct);
    escp__prof_end(pr, ESCP_STG_WRITE, t, dh->len);
  }
  if (st == ESCP_OK && r >= 0) escp__stat_add(s, ESCP_S_BYTES_FILE, dh->len);
  pthread_mutex_lock(&f->mu);
  if (r > 0 && dh->offset + (uint64_t)r > f->disk_end) f->disk_end = dh->offset + (uint64_t)r;
  if (r < 0 && f->status == ESCP_OK) {
    file_fail(f, ESCP_E_WRITE, (int)-r, "write");
    /* The file is lost: give its space back now (ENOSPC must not cascade to the files
     * behind it); later blocks are consumed without writing. */
    if (f->opened) (void)s->io->truncate(f->fd, 0);
  }
  if (hashed && f->status == ESCP_OK) {
    uint64_t idx = dh->offset / (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
    int rc = escp_digest_add(f->dg, idx, cv, dh->offset == 0 ? root : NULL);
    if (rc != ESCP_OK) file_fail(f, rc == ESCP_E_DUP ? ESCP_E_PROTO : rc, 0, "duplicate block");
  }
  f->consumed++;
  f->bytes += dh->len;
  if (dh->offset + dh->len > f->max_end) f->max_end = dh->offset + dh->len;
  pthread_mutex_unlock(&f->mu);
}

static int32_t sock_status(int64_t r) { return r == -ETIMEDOUT ? ESCP_E_TIMEOUT : ESCP_E_CLOSED; }

/* recv got r < wanted bytes: silence for a whole timeout (SO_RCVTIMEO) is FATAL, anything
 * else ends the stream. */
static void rx_recv_failed(escp_session *s, escp_stream *st, int64_t r, const char *what) {
  if (r == -EAGAIN) escp__rcv_timeout(s, st->idx);
  else escp__stream_down(s, st->idx, sock_status(r), r < 0 ? (int)-r : 0, r < 0 ? "recv" : what);
}

/* A DATA frame's payload: RAW → in place (and the stream's zstd session resets, zc.h);
 * ESCP_DF_ZSTD → decompressed into zbuf. Sets *pay; ESCP_OK or E_PROTO. */
static int32_t rx_payload(escp_session *s, escp_stream *st, uint8_t *body, uint32_t body_len,
                          const escp_data_hdr *dh, uint8_t *zbuf, uint8_t **pay) {
  *pay = body + ESCP_DATA_SUBHDR;
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
 * at its plaintext, BYE, KEEPALIVE) or -1 when the stream is dead (event pushed). */
static int rx_read_frame(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf, escp_data_hdr *dh,
                         uint8_t **pay) {
  uint32_t bsz = (uint32_t)s->param[ESCP_P_BLOCK_SIZE];
  uint8_t hdr[ESCP_FRAME_HDR];
  uint64_t t = escp__prof_t0(st->prof);
  int64_t r = escp__recv_all(st->fd, hdr, sizeof hdr);
  if (r != (int64_t)sizeof hdr) {
    rx_recv_failed(s, st, r, "EOF");
    return -1;
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
    rx_recv_failed(s, st, r, "EOF inside a frame");
    return -1;
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

/* One frame. Returns 1 = go on, 0 = clean end (BYE / stop), -1 = stream dead. */
static int rx_frame(escp_session *s, escp_stream *st, uint8_t *buf, uint8_t *zbuf) {
  escp_data_hdr dh;
  uint8_t *pay = NULL;
  int type = rx_read_frame(s, st, buf, zbuf, &dh, &pay);
  if (type == ESCP_FT_KEEPALIVE) return 1; /* the sender is alive; SO_RCVTIMEO restarts */
  if (type == ESCP_FT_BYE) {
    escp__data_bye(s);
    return 0;
  }
  if (type != ESCP_FT_DATA) return -1;
  escp__stat_add(s, ESCP_S_BLOCKS, 1);
  uint64_t t = escp__prof_t0(st->prof);
  rx_file *f = rx_lookup(s, dh.fino);
  escp__prof_end(st->prof, ESCP_STG_IDLE, t, 0);
  if (!f) {
    if (escp__stopping(s)) return 0;
    char t[56];
    snprintf(t, sizeof t, "unknown fino %llu", (unsigned long long)dh.fino);
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_UNKNOWN_FILE, 0, (uint32_t)st->idx, dh.fino, t);
    shutdown(st->fd, SHUT_RDWR); /* the sender's blocked send fails instead of hanging */
    return -1;
  }
  rx_block(s, st->prof, f, &dh, pay);
  t = escp__prof_t0(st->prof);
  rx_settle(s, f, 1, 1);
  escp__prof_end(st->prof, ESCP_STG_META, t, 0);
  return 1;
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
    while (!escp__stopping(s) && rx_frame(s, st, buf, zbuf) == 1) {
    }
  }
  free(buf);
  free(zbuf);
  escp_zc_free(st->zc);
  st->zc = NULL;
  escp__stream_gone(s, st->idx);
  return NULL;
}
