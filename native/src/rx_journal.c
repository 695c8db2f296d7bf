/* rx_journal.c — the receiver's resumable partials (escp.h "Resume", journal.h, resume.h):
 * at file_add, lock an earlier partial and have the probe thread read (and, after an unclean
 * end, re-hash) what it holds into an offer; apply the sender's decision; create new partials
 * with their journal; record written blocks through the journal thread's group commits; and
 * at the end remove the journal (verified), everything (failed) or seal it (left unfinished).
 * Threads: the JS thread (add, offer, decide), the data threads (create, note), the probe
 * thread, the journal thread. Locks: rx->mu (awaiting, the probe queue), rx->jmu (the journal
 * list and every file's pending records), taken after a file's mu, never before it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "le.h"
#include "resume.h"
#include "rx.h"

static unsigned read_umask(void) {
  FILE *fp = fopen("/proc/self/status", "re");
  char line[128];
  unsigned m = 0;
  int found = 0;
  while (fp && fgets(line, sizeof line, fp))
    if (sscanf(line, "Umask: %o", &m) == 1) {
      found = 1;
      break;
    }
  if (fp) fclose(fp);
  if (found) return m & 0777;
  mode_t old = umask(022); /* no /proc: the racy way, once, before any file is made */
  umask(old);
  return (unsigned)old & 0777;
}

static uint64_t env_u64(const char *name, uint64_t def, uint64_t min, uint64_t max) {
  const char *v = getenv(name);
  char *end = NULL;
  unsigned long long x = v && *v ? strtoull(v, &end, 10) : 0;
  if (!v || !*v || !end || *end || x < min || x > max) return def;
  return (uint64_t)x;
}

int escp__rx_journal_new(escp_session *s) {
  struct escp_rx *r = s->rx;
  r->umask = read_umask();
  r->jms = env_u64("ESCP_JOURNAL_MS", 1000, 1, 3600000);
  /* "1": fdatasync data and journal at every group commit (durable against power loss as
   * the records are written, at the cost of a device flush per group: +15-25 % wall on a
   * virtio disk, docs/performance.md); default: only at a SEAL (commit_records). */
  r->jsync = env_u64("ESCP_JOURNAL_SYNC", 0, 0, 1) == 1;
  const char *off = getenv("ESCP_JOURNAL"); /* "0": no partials nor journals (benchmarks: their cost) */
  r->jdisabled = off && strcmp(off, "0") == 0;
  pthread_mutex_init(&r->jmu, NULL);
  escp__cond_init_mono(&r->jcv);
  pthread_cond_init(&r->pcv, NULL);
  return ESCP_OK;
}

void escp__rx_journal_stop(escp_session *s) {
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->jmu);
  pthread_cond_broadcast(&r->jcv);
  pthread_mutex_unlock(&r->jmu);
  pthread_mutex_lock(&r->mu);
  pthread_cond_broadcast(&r->pcv);
  pthread_mutex_unlock(&r->mu);
  if (r->jlive) pthread_join(r->jthr, NULL);
  if (r->plive) pthread_join(r->pthr, NULL);
  r->jlive = r->plive = 0;
}

void escp__rx_journal_free(escp_session *s) {
  struct escp_rx *r = s->rx;
  pthread_mutex_destroy(&r->jmu);
  pthread_cond_destroy(&r->jcv);
  pthread_cond_destroy(&r->pcv);
}

/* The directory of f->rel (an existing one: file_add made it); *leaf (may be NULL) its last
 * segment. */
static int rel_dir_leaf(escp_session *s, rx_file *f, escp_dirref **ref, const char **leaf, int *err) {
  const char *l;
  *err = 0;
  int rc = escp_dest_parent(s->rx->dest, f->rel, 0, ref, leaf ? leaf : &l, err);
  if (rc != ESCP_OK && !*err) *err = ENOTDIR;
  return rc;
}

static int rel_dir(escp_session *s, rx_file *f, escp_dirref **ref, int *err) { return rel_dir_leaf(s, f, ref, NULL, err); }

/* A regular file of this user with no other name: one escp made (a partial, or a journal: a
 * hard link planted at either name must never be written through). Its stat in *st. */
static int own_file(int fd, struct stat *st) {
  return fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_uid == geteuid() && st->st_nlink == 1;
}

static int create_locked(escp_session *s, int dfd, const char *part, uint64_t size, int *fd, int lock);
static int range_add(escp_session *s, rx_file *f, int dfd, const char *leaf, int level, int *err);

/* ---- add: an earlier partial? ---- */

int escp__rx_journal_add(escp_session *s, rx_file *f, int *err) {
  struct escp_rx *r = s->rx;
  *err = 0;
  int level = (int)s->param[ESCP_P_RESUME];
  if (!level || r->jdisabled || !s->param[ESCP_P_CHECKSUM] || escp__rx_dummy(s) || !f->rel || f->nblocks < 2) return ESCP_OK;
  if (!r->jgroup) { /* the block size is fixed from the first file on */
    uint64_t b = (uint64_t)s->param[ESCP_P_BLOCK_SIZE];
    uint64_t bytes = env_u64("ESCP_JOURNAL_BYTES", 64u << 20, 1, (uint64_t)1 << 40);
    uint64_t g = bytes / b;
    r->jgroup = (uint32_t)(g < 1 ? 1 : g > 65536 ? 65536 : g);
    r->jhard = r->jgroup * 4;
  }
  f->journaled = 1;
  char part[256], jrnl[256];
  escp_dirref *ref;
  const char *leaf;
  if (rel_dir_leaf(s, f, &ref, &leaf, err) != ESCP_OK) return ESCP_E_SYS;
  if (f->ranged) {
    int rrc = range_add(s, f, escp_dirref_fd(ref), leaf, level, err);
    escp_dest_put(r->dest, ref);
    return rrc;
  }
  escp_jrn_names(leaf, part, jrnl);
  int dfd = escp_dirref_fd(ref), rc = ESCP_OK;
  int pfd = openat(dfd, part, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (pfd < 0 && errno == ELOOP) { /* a symlink where our partial goes: never followed, removed */
    if (unlinkat(dfd, part, 0) < 0 && errno != ENOENT) *err = errno, rc = ESCP_E_SYS;
  } else if (pfd < 0 && errno != ENOENT) {
    *err = errno;
    rc = ESCP_E_SYS;
  }
  struct stat st;
  if (pfd >= 0 && !own_file(pfd, &st)) {
    close(pfd); /* not a partial this user's escp made: left alone, and in the way */
    pfd = -1;
    *err = EEXIST;
    rc = ESCP_E_SYS;
  }
  if (pfd >= 0 && flock(pfd, LOCK_EX | LOCK_NB) < 0) {
    *err = errno;
    close(pfd);
    pfd = -1;
    rc = *err == EWOULDBLOCK ? ESCP_E_BUSY : ESCP_E_SYS;
  }
  if (pfd >= 0 && level == 1) { /* --no-resume: the earlier partial goes */
    (void)unlinkat(dfd, jrnl, 0);
    (void)unlinkat(dfd, part, 0);
    close(pfd);
    pfd = -1;
  }
  escp_dest_put(r->dest, ref);
  if (pfd < 0) return rc;
  f->pfd = pfd;
  f->tmp_ino = (uint64_t)st.st_ino;
  f->tmp_dev = (uint64_t)st.st_dev;
  snprintf(f->tmp, sizeof f->tmp, "%s", part); /* ours now: locked */
  snprintf(f->jname, sizeof f->jname, "%s", jrnl);
  f->awaiting = 1;
  return 1;
}

/* ---- the probe thread ---- */

/* Start f over: its earlier partial and journal go (we hold the lock). */
static int range_fresh_journal(escp_session *s, rx_file *f);

static void reset(escp_session *s, rx_file *f) {
  escp_dirref *ref;
  int err;
  if (f->ranged) { /* a range: the shared partial stays; its own journal starts over */
    if (range_fresh_journal(s, f) != 0) {
      close(f->jfd);
      f->jfd = -1; /* this run's blocks go unrecorded */
    }
  } else if (rel_dir(s, f, &ref, &err) == ESCP_OK) {
    int dfd = escp_dirref_fd(ref);
    if (f->jname[0]) (void)unlinkat(dfd, f->jname, 0);
    if (f->tmp[0]) (void)unlinkat(dfd, f->tmp, 0);
    escp_dest_put(s->rx->dest, ref);
  }
  if (!f->ranged) {
    if (f->pfd >= 0) close(f->pfd);
    f->pfd = -1;
    f->tmp[0] = f->jname[0] = 0;
  }
  escp_offer_free(&f->off);
  free(f->offer);
  f->offer = NULL;
  f->offer_len = 0;
  free(f->fine);
  f->fine = NULL;
  f->nfine = 0;
  if (f->jst) {
    escp_jrn_state_free(f->jst);
    free(f->jst);
    f->jst = NULL;
  }
}

/* A journal to believe: ours (own_file) and writable by nobody else, since its CVs become
 * both sides' digest for the blocks it holds — a journal someone else could have written is
 * never read. */
static int trusted_journal(int fd) {
  struct stat st;
  return own_file(fd, &st) && (st.st_mode & 022) == 0;
}

/* Re-hash workers: runs are claimed in order from `next`; ok[i] says whether run i still
 * hashes to its recorded CV. Several readers keep the disk's queue busy (a re-check runs
 * before the file's offer, so its speed is the rerun's); each has its own aligned buffer. */
#define VERIFY_THREADS 4
typedef struct verify_job {
  escp_session *s;
  const escp_jrn_state *st;
  int fd, bfd; /* O_DIRECT (or buffered) reader; the buffered one, for a refused O_DIRECT read */
  uint8_t *ok;
  size_t next; /* atomic */
} verify_job;

static void *verify_worker(void *arg) {
  verify_job *j = arg;
  uint8_t *buf = NULL;
  if (posix_memalign((void **)&buf, 4096, j->st->id.block_size) != 0) return NULL;
  for (;;) {
    size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (i >= j->st->natoms || escp__stopping(j->s)) break;
    const escp_jrn_atom *a = &j->st->atoms[i];
    uint8_t cv[32];
    int err = escp_run_cv(j->fd, a->start, a->log2, j->st->id.block_size, buf, cv);
    if (err == EINVAL && j->fd != j->bfd) err = escp_run_cv(j->bfd, a->start, a->log2, j->st->id.block_size, buf, cv);
    j->ok[i] = err == 0 && memcmp(cv, a->cv, 32) == 0;
    escp__stat_add(j->s, ESCP_S_BYTES_CHECKED, ((uint64_t)j->st->id.block_size) << a->log2);
  }
  free(buf);
  return NULL;
}

/* Keep only the runs whose data in the partial still hashes to the recorded CV (the bytes
 * read count as the receiver's progress: ESCP_S_BYTES_CHECKED). Read with O_DIRECT where the
 * filesystem allows it (the partial was written that way: the page cache rarely holds it). */
static int verify_runs(escp_session *s, rx_file *f, escp_jrn_state *st) {
  verify_job j = {s, st, f->pfd, f->pfd, calloc(st->natoms ? st->natoms : 1, 1), 0};
  if (!j.ok) return -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", f->pfd);
  int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC); /* the magic link is meant to be followed */
  struct stat a, b;
  if (dfd >= 0 && (fstat(dfd, &a) < 0 || fstat(f->pfd, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
    close(dfd); /* not the same file (cannot happen through /proc/self/fd, but never trust a name) */
    dfd = -1;
  }
  if (dfd >= 0) j.fd = dfd;
  pthread_t t[VERIFY_THREADS];
  int n = 0;
  for (; n < VERIFY_THREADS && (size_t)n < st->natoms; n++)
    if (pthread_create(&t[n], NULL, verify_worker, &j) != 0) break;
  if (n == 0) verify_worker(&j); /* no thread: this one does it all */
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  if (dfd >= 0) close(dfd);
  size_t k = 0;
  for (size_t i = 0; i < st->natoms; i++)
    if (j.ok[i]) st->atoms[k++] = st->atoms[i];
  st->natoms = k;
  free(j.ok);
  return 0;
}

/* Read f's journal and make its offer (encoded into *blob, published by the caller).
 * Returns why nothing can be offered (NULL: fine). */
static const char *probe(escp_session *s, rx_file *f, uint8_t **blob, size_t *blen) {
  escp_dirref *ref;
  int err;
  if (rel_dir(s, f, &ref, &err) != ESCP_OK) return "its directory cannot be opened";
  int jfd = openat(escp_dirref_fd(ref), f->jname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  escp_dest_put(s->rx->dest, ref);
  if (jfd < 0) return errno == ENOENT ? "it has no journal" : "its journal cannot be read";
  if (!trusted_journal(jfd)) {
    close(jfd);
    return "its journal is another user's or writable by others";
  }
  escp_jrn_state *st = calloc(1, sizeof *st);
  const char *why = NULL, *rwhy = NULL; /* rwhy means something only when the read fails */
  if (!st) why = "no memory to read its journal";
  else if (escp_jrn_read(jfd, st, &rwhy) != 0) why = rwhy ? rwhy : "its journal cannot be read";
  close(jfd);
  if (why) {
    free(st);
    return why;
  }
  f->jst = st;
  struct stat ps;
  int64_t mtime = f->meta[ESCP_META_MTIME_S] * 1000000000 + f->meta[ESCP_META_MTIME_NS];
  if (st->id.size != f->size || st->id.mtime_ns != mtime || st->id.ino != (uint64_t)f->meta[ESCP_META_SRC_INO] ||
      f->meta[ESCP_META_SRC_INO] == 0)
    return "it was written from another version of the source";
  if (fstat(f->pfd, &ps) < 0 || (uint64_t)ps.st_ino != st->part_ino || (uint64_t)ps.st_dev != st->part_dev)
    return "it is not the file its journal describes";
  if ((uint64_t)ps.st_size < f->size) return "it was truncated";
  int clean = st->last_kind == ESCP_JRN_SEAL && (uint64_t)ps.st_size == st->seal_size &&
              (int64_t)ps.st_mtim.tv_sec * 1000000000 + ps.st_mtim.tv_nsec == st->seal_mtime_ns &&
              (int64_t)ps.st_ctim.tv_sec * 1000000000 + ps.st_ctim.tv_nsec == st->seal_ctime_ns;
  if (!clean) {
    escp__log(s, "fino %llu: partial not sealed cleanly: re-hashing %zu held runs", (unsigned long long)f->fino, st->natoms);
    uint64_t t0 = escp__now_ms();
    size_t before = st->natoms;
    if (verify_runs(s, f, st) != 0) return "no memory to check it";
    escp__log(s, "fino %llu: %zu of %zu runs still match (%llu ms)", (unsigned long long)f->fino, st->natoms, before,
              (unsigned long long)(escp__now_ms() - t0));
  }
  uint32_t bs = (uint32_t)s->param[ESCP_P_BLOCK_SIZE];
  if (f->ranged) { /* only runs inside the range, before its last block (the sender's rule) */
    if (st->id.block_size != bs) return "it was written in another block size";
    size_t k = 0;
    for (size_t i = 0; i < st->natoms; i++) {
      const escp_jrn_atom *a = &st->atoms[i];
      if (a->start >= f->rfirst && a->start + ((uint64_t)1 << a->log2) <= f->rfirst + f->rcount - 1) st->atoms[k++] = *a;
    }
    st->natoms = k;
  }
  if (escp_offer_build(st->atoms, st->natoms, st->id.block_size, f->size, bs, &f->fine, &f->nfine, &f->off) != ESCP_OK)
    return "no memory to make its offer";
  if (f->off.ntrees == 0) return ""; /* nothing kept: start over without a notice */
  *blen = escp_offer_size(&f->off);
  if (!(*blob = malloc(*blen))) return "no memory to make its offer";
  escp_offer_encode(&f->off, *blob);
  return NULL;
}

static void *probe_thread(void *arg) {
  escp_session *s = arg;
  struct escp_rx *r = s->rx;
  pthread_setname_np(pthread_self(), "escp-probe");
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->phead && !escp__stopping(s)) pthread_cond_wait(&r->pcv, &r->mu);
    if (escp__stopping(s)) break;
    rx_file *f = r->phead;
    r->phead = f->qnext;
    if (!r->phead) r->ptail = NULL;
    pthread_mutex_unlock(&r->mu);
    uint8_t *blob = NULL;
    size_t blen = 0;
    const char *why = probe(s, f, &blob, &blen);
    escp_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ESCP_EV_OFFER;
    ev.fino = f->fino;
    if (why) {
      if (*why) escp__log(s, "fino %llu: earlier partial not used: %s", (unsigned long long)f->fino, why);
      snprintf(ev.text, sizeof ev.text, "%s", why);
      free(blob);
      reset(s, f);
    } else {
      ev.blocks = f->off.held_blocks;
      ev.bytes = f->off.held_bytes;
    }
    pthread_mutex_lock(&r->mu);
    if (why) f->awaiting = 0; /* nothing to decide: blocks may come */
    else f->offer = blob, f->offer_len = blen; /* whole, under mu: offer and decide see it only now */
    f->refs--;                /* the probe's reference */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    escp__event(s, &ev, 1);
    pthread_mutex_lock(&r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

void escp__rx_probe_queue(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  f->refs++; /* the file is not freed while it waits or is probed (finalize needs refs 0) */
  f->qnext = NULL;
  if (r->ptail) r->ptail->qnext = f;
  else r->phead = f;
  r->ptail = f;
  pthread_cond_signal(&r->pcv);
  if (!r->plive && pthread_create(&r->pthr, NULL, probe_thread, s) == 0) r->plive = 1;
  pthread_mutex_unlock(&r->mu);
}

/* ---- the decision (JS thread) ---- */

ESCP_API int32_t escp_rx_offer(void *h, uint64_t fino, uint8_t *out, int32_t cap) {
  escp_session *s = escp__session(h);
  if (!s || (cap > 0 && !out) || cap < 0) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER) return ESCP_E_STATE;
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  rx_file *f = escp__rx_find(r, fino);
  int32_t rc = !f ? ESCP_E_UNKNOWN_FILE : !f->awaiting || !f->offer ? 0 : (size_t)cap < f->offer_len ? ESCP_E_TOOBIG : (int32_t)f->offer_len;
  if (rc > 0) memcpy(out, f->offer, f->offer_len);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* Accepted with another block size: a new journal in this session's blocks, holding the
 * accepted runs at their finest grain, replaces the old one (renamed over it once durable). */
static int rewrite_journal(escp_session *s, rx_file *f, int dfd) {
  char tmpj[256];
  snprintf(tmpj, sizeof tmpj, ".escp-%llx.journal-new", (unsigned long long)f->tmp_ino);
  (void)unlinkat(dfd, tmpj, 0); /* a leftover (or a planted link) is never written through */
  int jfd = openat(dfd, tmpj, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (jfd < 0) return errno;
  escp_jrn_ident id = {f->size, f->meta[ESCP_META_MTIME_S] * 1000000000 + f->meta[ESCP_META_MTIME_NS],
                       (uint64_t)f->meta[ESCP_META_SRC_INO], (uint32_t)s->param[ESCP_P_BLOCK_SIZE]};
  int err = escp_jrn_write_header(jfd, &id, f->tmp_ino, f->tmp_dev, f->jcheck);
  uint64_t end = ESCP_JRN_HDR;
  for (size_t i = 0; !err && i < f->nfine; i++) {
    if (escp_trees_find(f->off.trees, f->off.ntrees, f->fine[i].start) < 0) continue;
    uint8_t rec[ESCP_JRN_REC];
    if (f->fine[i].log2 == 0) escp_jrn_record(rec, f->jcheck, ESCP_JRN_BLOCK, f->fine[i].start, f->fine[i].cv);
    else escp_jrn_record_tree(rec, f->jcheck, f->fine[i].start, f->fine[i].log2, f->fine[i].cv);
    if (pwrite(jfd, rec, sizeof rec, (off_t)end) != (ssize_t)sizeof rec) err = errno ? errno : EIO;
    end += sizeof rec;
  }
  if (!err && fdatasync(jfd) < 0) err = errno;
  if (!err && renameat(dfd, tmpj, dfd, f->jname) < 0) err = errno;
  if (err) {
    close(jfd);
    (void)unlinkat(dfd, tmpj, 0);
    return err;
  }
  f->jfd = jfd;
  f->jend = end;
  return 0;
}

ESCP_API int32_t escp_rx_file_decide(void *h, uint64_t fino, int32_t accept) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER) return ESCP_E_STATE;
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  rx_file *f = escp__rx_find(r, fino);
  int32_t rc = !f ? ESCP_E_UNKNOWN_FILE : !f->awaiting || !f->offer ? ESCP_E_STATE : ESCP_OK;
  if (rc == ESCP_OK) f->refs++;
  pthread_mutex_unlock(&r->mu);
  if (rc != ESCP_OK) return rc;
  if (accept) { /* the journal goes on where it stopped (or is rewritten in this block size) */
    escp_dirref *ref;
    struct stat js;
    int err = 0;
    if (rel_dir(s, f, &ref, &err) == ESCP_OK) {
      int dfd = escp_dirref_fd(ref);
      if (f->ranged) { /* its journal is open and locked since add */
        f->jend = f->jst->end;
        memcpy(f->jcheck, f->jst->check, 16);
        if (f->jfd < 0) err = EBADF;
      } else if (f->jst->id.block_size != (uint32_t)s->param[ESCP_P_BLOCK_SIZE]) {
        err = rewrite_journal(s, f, dfd);
      } else if ((f->jfd = openat(dfd, f->jname, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) {
        err = errno;
      } else if (!own_file(f->jfd, &js)) { /* not the journal the probe read: left alone */
        close(f->jfd);
        err = EEXIST;
      } else {
        f->jend = f->jst->end;
        memcpy(f->jcheck, f->jst->check, 16);
      }
      escp_dest_put(r->dest, ref);
    }
    if (err) { /* held blocks stay valid; this run's blocks just go unrecorded */
      escp__log(s, "fino %llu: journal not reopened (%s): this run is not resumable", (unsigned long long)f->fino, strerror(err));
      f->jfd = -1;
    }
    f->trees = f->off.trees; /* the data threads read them from here on */
    f->ntrees = f->off.ntrees;
    f->off.trees = NULL;
    f->off.ntrees = 0;
    f->held = f->off.held_blocks;
    f->nrecv = (f->ranged ? f->rcount : f->nblocks) - f->held;
    free(f->offer);
    f->offer = NULL;
    free(f->fine);
    f->fine = NULL;
    escp_jrn_state_free(f->jst);
    free(f->jst);
    f->jst = NULL;
  } else {
    reset(s, f);
  }
  pthread_mutex_lock(&r->mu);
  f->awaiting = 0;
  f->refs--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return ESCP_OK;
}

/* ---- the partial (data threads) ---- */

/* A new partial `part` in dfd, sized and locked before its name appears (so another escp that
 * finds the name always finds it locked): made unnamed (O_TMPFILE) or under a random name,
 * flocked, then linked to `part`, which fails with EEXIST if someone has the name. 0 or an
 * errno value; *fd set on success. */
static int create_locked(escp_session *s, int dfd, const char *part, uint64_t size, int *fd, int lock) {
  char tmp[64] = "";
  int err = 0;
  *fd = openat(dfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (*fd < 0) { /* no O_TMPFILE here: a random temporary name of our own */
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint64_t)escp__now_ms() * 0x9E3779B97F4A7C15ull;
    snprintf(tmp, sizeof tmp, ".escp-%016llx.part-new", (unsigned long long)r);
    *fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0) return errno;
  }
  if (flock(*fd, lock | LOCK_NB) < 0) err = errno; /* nobody else can have it yet */
  if (!err && ftruncate(*fd, (off_t)size) < 0) err = errno;
  if (!err) err = tmp[0] ? (linkat(dfd, tmp, dfd, part, 0) == 0 ? 0 : errno) : s->io->link_tmp(*fd, dfd, part);
  if (tmp[0]) (void)unlinkat(dfd, tmp, 0);
  if (err) {
    close(*fd);
    *fd = -1;
  }
  return err;
}

int escp__rx_journal_create(escp_session *s, rx_file *f, int dfd, const char *leaf) {
  if (f->pfd >= 0) { /* resumed: the locked earlier partial */
    f->fd = f->pfd;
    f->pfd = -1;
    int fl = f->direct ? fcntl(f->fd, F_GETFL) : -1;
    if (fl < 0 || fcntl(f->fd, F_SETFL, (fl | O_DIRECT) & ~O_NONBLOCK) < 0) f->direct = 0;
    return 0;
  }
  char part[256], jrnl[256];
  escp_jrn_names(leaf, part, jrnl);
  int fd = -1;
  int err = create_locked(s, dfd, part, f->size, &fd, LOCK_EX);
  if (err) return err == EEXIST ? EBUSY : err; /* another run made it since file_add */
  struct stat st;
  if (fstat(fd, &st) < 0) err = errno;
  int jfd = -1;
  if (!err) (void)unlinkat(dfd, jrnl, 0); /* an orphan (we hold the new partial), or planted: never written through */
  if (!err && (jfd = openat(dfd, jrnl, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) err = errno;
  if (!err) {
    escp_jrn_ident id = {f->size, f->meta[ESCP_META_MTIME_S] * 1000000000 + f->meta[ESCP_META_MTIME_NS],
                         (uint64_t)f->meta[ESCP_META_SRC_INO], (uint32_t)s->param[ESCP_P_BLOCK_SIZE]};
    err = escp_jrn_write_header(jfd, &id, (uint64_t)st.st_ino, (uint64_t)st.st_dev, f->jcheck);
  }
  if (err) {
    if (jfd >= 0) close(jfd), (void)unlinkat(dfd, jrnl, 0);
    if (err != EBUSY) (void)unlinkat(dfd, part, 0);
    close(fd);
    return err;
  }
  int fl = f->direct ? fcntl(fd, F_GETFL) : -1;
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) f->direct = 0;
  f->fd = fd;
  f->jfd = jfd;
  f->jend = ESCP_JRN_HDR;
  f->tmp_ino = (uint64_t)st.st_ino;
  f->tmp_dev = (uint64_t)st.st_dev;
  snprintf(f->tmp, sizeof f->tmp, "%s", part);
  snprintf(f->jname, sizeof f->jname, "%s", jrnl);
  return 0;
}

/* ---- group commit ---- */

static void list_remove(struct escp_rx *r, rx_file *f) {
  rx_file **pp = &r->jhead;
  while (*pp && *pp != f) pp = &(*pp)->jnext;
  if (*pp) *pp = f->jnext;
  f->jqueued = 0;
}

static void *journal_thread(void *arg);

void escp__rx_journal_note(escp_session *s, rx_file *f, uint64_t idx, const uint8_t cv[32]) {
  struct escp_rx *r = s->rx;
  if (!f->journaled || f->jfd < 0) return;
  pthread_mutex_lock(&r->jmu);
  while (f->npend >= r->jhard && !f->jclosed && !escp__stopping(s)) pthread_cond_wait(&r->jcv, &r->jmu);
  if (!f->jpend) f->jpend = malloc((size_t)r->jhard * ESCP_JRN_REC);
  if (f->jclosed || !f->jpend || f->npend >= r->jhard) { /* stopping, or no memory: left unrecorded */
    pthread_mutex_unlock(&r->jmu);
    return;
  }
  escp_jrn_record(f->jpend + (size_t)f->npend * ESCP_JRN_REC, f->jcheck, ESCP_JRN_BLOCK, idx, cv);
  if (f->npend++ == 0) f->pend_since = escp__now_ms();
  if (!f->jqueued) {
    f->jqueued = 1;
    f->jnext = r->jhead;
    r->jhead = f;
  }
  if (f->npend == 1 || f->npend >= r->jgroup) pthread_cond_broadcast(&r->jcv);
  if (!r->jlive && pthread_create(&r->jthr, NULL, journal_thread, s) == 0) r->jlive = 1;
  pthread_mutex_unlock(&r->jmu);
}

/* Append records after their data. sync: durable data first (fdatasync), then the records,
 * then the journal (fdatasync) — for a SEAL (a sealed partial is trusted without a re-hash)
 * and, with ESCP_JOURNAL_SYNC=1, for every group. Without it a group's records follow writes
 * that have returned: they outlive escp's own death (SIGKILL, a crash, a signal), and after
 * a crash of the host, where records may outlive their data, the partial is unsealed, so
 * every held run is re-hashed before it is offered (rx_probe) and one that is not on disk is
 * sent again. 0 or an errno value. */
static int commit_records(rx_file *f, const uint8_t *recs, uint32_t n, int sync) {
  if (sync && fdatasync(f->fd) < 0) return errno;
  size_t len = (size_t)n * ESCP_JRN_REC, put = 0;
  while (put < len) {
    ssize_t w = pwrite(f->jfd, recs + put, len - put, (off_t)(f->jend + put));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    put += (size_t)w;
  }
  if (sync && fdatasync(f->jfd) < 0) return errno;
  f->jend += len;
  return 0;
}

static void *journal_thread(void *arg) {
  escp_session *s = arg;
  struct escp_rx *r = s->rx;
  pthread_setname_np(pthread_self(), "escp-journal");
  uint8_t *buf = malloc((size_t)r->jhard * ESCP_JRN_REC);
  pthread_mutex_lock(&r->jmu);
  while (buf && !escp__stopping(s)) {
    uint64_t now = escp__now_ms(), due = UINT64_MAX;
    rx_file *f = NULL;
    for (rx_file *g = r->jhead; g && !f; g = g->jnext) {
      uint64_t at = g->pend_since + r->jms;
      if (g->npend >= r->jgroup || at <= now) f = g;
      else if (at < due) due = at;
    }
    if (!f) {
      if (!r->jhead) pthread_cond_wait(&r->jcv, &r->jmu);
      else {
        struct timespec ts;
        escp__deadline(&ts, due - now);
        pthread_cond_timedwait(&r->jcv, &r->jmu, &ts);
      }
      continue;
    }
    list_remove(r, f);
    uint32_t n = f->npend;
    memcpy(buf, f->jpend, (size_t)n * ESCP_JRN_REC);
    f->npend = 0;
    f->jbusy = 1;
    pthread_cond_broadcast(&r->jcv); /* writers waiting for room */
    pthread_mutex_unlock(&r->jmu);
    int err = commit_records(f, buf, n, r->jsync);
    pthread_mutex_lock(&r->jmu);
    if (err) {
      escp__log(s, "fino %llu: journal write failed (%s): the rest of it is not resumable", (unsigned long long)f->fino, strerror(err));
      f->jclosed = 1;
    }
    f->jbusy = 0;
    pthread_cond_broadcast(&r->jcv);
  }
  pthread_mutex_unlock(&r->jmu);
  free(buf);
  return NULL;
}

void escp__rx_journal_close(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  if (!f->journaled) return;
  pthread_mutex_lock(&r->jmu);
  f->jclosed = 1;
  while (f->jbusy) pthread_cond_wait(&r->jcv, &r->jmu);
  if (f->jqueued) list_remove(r, f);
  pthread_cond_broadcast(&r->jcv); /* a writer waiting for room gives up */
  pthread_mutex_unlock(&r->jmu);
}

static void seal_unfinished(escp_session *s, rx_file *f);
static void range_leave(escp_session *s, rx_file *f, int dfd);

void escp__rx_journal_done(escp_session *s, rx_file *f, int dfd, int keep) {
  if (f->ranged && f->rdone) return; /* complete: kept for the committer (or removed by it) */
  if (f->ranged && !keep) { /* failed: only this range's journal goes; the partial is shared */
    if (f->jname[0]) (void)unlinkat(dfd, f->jname, 0);
    f->jname[0] = 0;
    range_leave(s, f, dfd);
    return;
  }
  if (!keep) { /* verified and renamed (tmp cleared), or failed: nothing of it stays */
    if (f->jname[0]) (void)unlinkat(dfd, f->jname, 0);
    if (f->tmp[0]) (void)unlinkat(dfd, f->tmp, 0);
    return;
  }
  seal_unfinished(s, f);
  if (f->ranged) range_leave(s, f, dfd);
}

/* Unfinished: what is written becomes durable and recorded, then the SEAL says the partial
 * is exactly as this session left it (a later run need not re-hash it). Only with the fds
 * still open: otherwise the later run checks it block by block. */
static void seal_unfinished(escp_session *s, rx_file *f) {
  if (f->fd < 0 || f->jfd < 0 || !f->tmp[0]) return;
  int err = commit_records(f, f->jpend ? f->jpend : (const uint8_t *)"", f->jpend ? f->npend : 0, 1);
  struct stat st;
  if (!err && fstat(f->fd, &st) < 0) err = errno;
  if (!err) {
    uint8_t rec[ESCP_JRN_REC];
    escp_jrn_record_seal(rec, f->jcheck, (uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                         (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
    err = commit_records(f, rec, 1, 1);
  }
  f->npend = 0;
  if (err) escp__log(s, "fino %llu: partial not sealed (%s): a later run re-checks it", (unsigned long long)f->fino, strerror(err));
}

/* ---- ranges (shards, issue #17) ----
 * Every range of a file writes into the one partial ".<leaf>.escp-part" (opened or created at
 * add, held with flock LOCK_SH, extended to the file's size, never truncated below it) and
 * keeps its own journal ".<leaf>.escp-journal.<offset>" (flock LOCK_EX: one session per range;
 * the same format, the header naming the whole source and the shared partial). A verified
 * range appends a RANGE record (after an fdatasync of the partial), drops its shared lock and
 * tries LOCK_EX|LOCK_NB: the one that gets it — no other range session holds the partial, and
 * every one that held it had written its RANGE record before letting go — reads every sibling
 * journal; when those with a RANGE record, the same source identity and the same partial
 * (inode, device) cover blocks 0..n-1, it computes the file's BLAKE3 from their CVs, applies
 * the metadata through its fd, renames the partial over the target (renameat in the directory
 * fd) and removes those journals. Otherwise it leaves: its range is durable. */

/* A fresh header in f's (locked, open) range journal: its records start over. 0 or errno. */
static int range_fresh_journal(escp_session *s, rx_file *f) {
  if (f->jfd < 0) return EBADF;
  if (ftruncate(f->jfd, 0) < 0) return errno;
  escp_jrn_ident id = {f->size, f->meta[ESCP_META_MTIME_S] * 1000000000 + f->meta[ESCP_META_MTIME_NS],
                       (uint64_t)f->meta[ESCP_META_SRC_INO], (uint32_t)s->param[ESCP_P_BLOCK_SIZE]};
  int err = escp_jrn_write_header(f->jfd, &id, f->tmp_ino, f->tmp_dev, f->jcheck);
  if (!err) f->jend = ESCP_JRN_HDR;
  return err;
}

/* Does name in dfd still refer to the open file fd? */
static int names_fd(int dfd, const char *name, int fd) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
         a.st_dev == b.st_dev;
}

static int range_add(escp_session *s, rx_file *f, int dfd, const char *leaf, int level, int *err) {
  char part[256], jw[256], jrnl[256], prefix[256];
  escp_jrn_names(leaf, part, jw);
  escp_jrn_range_name(leaf, f->rfirst * (uint64_t)s->param[ESCP_P_BLOCK_SIZE], jrnl, prefix);
  int pfd = -1;
  struct stat st;
  /* The shared partial: opened (or made, sized and locked before its name appears), held
   * LOCK_SH. Held LOCK_EX by someone else: a whole-file session (busy) or a range committing
   * (a moment: retried for up to 2 s). The name is re-checked once locked: a committer may
   * have renamed that file into place meanwhile. */
  for (int tries = 0; pfd < 0; tries++) {
    if (tries == 100) return ESCP_E_BUSY;
    pfd = openat(dfd, part, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (pfd < 0 && errno == ENOENT) {
      int e = create_locked(s, dfd, part, f->size, &pfd, LOCK_SH);
      if (e == EEXIST) continue; /* another range made it first: take theirs */
      if (e) return *err = e, ESCP_E_SYS;
    } else if (pfd < 0 && errno == ELOOP) { /* a symlink where our partial goes: removed */
      if (unlinkat(dfd, part, 0) < 0 && errno != ENOENT) return *err = errno, ESCP_E_SYS;
      continue;
    } else if (pfd < 0) {
      return *err = errno, ESCP_E_SYS;
    } else if (!own_file(pfd, &st)) {
      close(pfd);
      return *err = EEXIST, ESCP_E_SYS;
    } else if (flock(pfd, LOCK_SH | LOCK_NB) < 0) {
      int e = errno;
      close(pfd);
      pfd = -1;
      if (e != EWOULDBLOCK) return *err = e, ESCP_E_SYS;
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    if (!names_fd(dfd, part, pfd)) {
      close(pfd);
      pfd = -1;
    }
  }
  int e = 0;
  if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) e = errno ? errno : EINVAL;
  if (!e && (uint64_t)st.st_size < f->size && ftruncate(pfd, (off_t)f->size) < 0) e = errno; /* only ever extended */
  /* Its own journal, locked exclusively: one session per range. */
  int jfd = -1;
  for (int tries = 0; !e && jfd < 0 && tries < 2; tries++) {
    jfd = openat(dfd, jrnl, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (jfd < 0 && errno == ELOOP) (void)unlinkat(dfd, jrnl, 0);
    else if (jfd < 0) e = errno;
  }
  struct stat js;
  if (!e && jfd < 0) e = ELOOP;
  if (!e && !own_file(jfd, &js)) e = EEXIST;
  int busy = !e && flock(jfd, LOCK_EX | LOCK_NB) < 0;
  if (busy && errno != EWOULDBLOCK) e = errno, busy = 0;
  if (e || busy) {
    if (jfd >= 0) close(jfd);
    close(pfd);
    if (busy) return ESCP_E_BUSY;
    return *err = e, ESCP_E_SYS;
  }
  f->pfd = pfd;
  f->jfd = jfd;
  f->tmp_ino = (uint64_t)st.st_ino;
  f->tmp_dev = (uint64_t)st.st_dev;
  snprintf(f->tmp, sizeof f->tmp, "%s", part);
  snprintf(f->jname, sizeof f->jname, "%s", jrnl);
  if (level == 2 && js.st_size > 0) { /* an earlier run of this range: probe it */
    f->awaiting = 1;
    return 1;
  }
  if ((e = range_fresh_journal(s, f)) != 0) {
    escp__log(s, "fino %llu: range journal not written (%s): this run is not resumable", (unsigned long long)f->fino, strerror(e));
    close(f->jfd);
    f->jfd = -1;
  }
  return ESCP_OK;
}

static int cmp_start(const void *x, const void *y) {
  const escp_jrn_atom *a = x, *b = y;
  return a->start < b->start ? -1 : a->start > b->start;
}

/* Under the exclusive lock: are all blocks in verified ranges of this source and partial?
 * Then *whole = the file's BLAKE3, names (malloc'd, "\0"-separated, *nnames) = their journals.
 * 1 complete, 0 not (or cannot tell), errno-free. */
static int range_gather(escp_session *s, rx_file *f, int dfd, const char *prefix, uint8_t whole[32], char **names,
                        size_t *nnames, size_t *nbytes) {
  int dd = dup(dfd);
  DIR *d = dd >= 0 ? fdopendir(dd) : NULL;
  if (!d) {
    if (dd >= 0) close(dd);
    return 0;
  }
  rewinddir(d);
  escp_jrn_atom *all = NULL;
  size_t n = 0, cap = 0, plen = strlen(prefix), ncap = 0;
  int ok = 1;
  int64_t mtime = f->meta[ESCP_META_MTIME_S] * 1000000000 + f->meta[ESCP_META_MTIME_NS];
  struct dirent *de;
  *names = NULL;
  *nnames = *nbytes = 0;
  while (ok && (de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, prefix, plen) != 0) continue;
    const char *num = de->d_name + plen; /* the range's offset: decimal digits only (another
                                          * file's name may start with this prefix too) */
    size_t nd = strspn(num, "0123456789");
    if (nd == 0 || nd > 20 || num[nd] != 0) continue;
    int jfd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (jfd < 0) continue;
    struct stat js;
    if (!own_file(jfd, &js)) { /* not a journal this user's escp made: never read, never removed */
      close(jfd);
      continue;
    }
    /* Every journal of ours goes once the file is named (no range session holds the partial
     * while we hold it exclusively: a stale one, of an older source or partial, is useless). */
    size_t l = strlen(de->d_name) + 1;
    if (*nbytes + l > ncap) {
      size_t nc = (*nbytes + l) * 2;
      char *nn = realloc(*names, nc);
      if (!nn) ok = 0;
      else *names = nn, ncap = nc;
    }
    if (ok) memcpy(*names + *nbytes, de->d_name, l), *nbytes += l, (*nnames)++;
    escp_jrn_state st;
    const char *why = NULL;
    int good = ok && (js.st_mode & 022) == 0 && escp_jrn_read(jfd, &st, &why) == 0;
    close(jfd);
    if (!good) continue;
    /* Only verified ranges of this very source (size, mtime, inode, block size) written into
     * this very partial (inode, device) count. */
    if (st.range_done && st.id.size == f->size && st.id.mtime_ns == mtime && st.id.ino == (uint64_t)f->meta[ESCP_META_SRC_INO] &&
        st.id.block_size == (uint32_t)s->param[ESCP_P_BLOCK_SIZE] && st.part_ino == f->tmp_ino && st.part_dev == f->tmp_dev) {
      if (n + st.natoms > cap) {
        size_t nc = (n + st.natoms) * 2;
        escp_jrn_atom *na = realloc(all, nc * sizeof *na);
        if (!na) ok = 0;
        else all = na, cap = nc;
      }
      if (ok && st.natoms) memcpy(all + n, st.atoms, st.natoms * sizeof *all), n += st.natoms;
    }
    escp_jrn_state_free(&st);
  }
  closedir(d);
  int complete = 0;
  if (ok) {
    if (n > 1) qsort(all, n, sizeof *all, cmp_start);
    escp_digest dg;
    escp_digest_init(&dg);
    uint64_t covered = 0;
    for (size_t i = 0; ok && i < n; i++) {
      uint64_t end = all[i].start + ((uint64_t)1 << all[i].log2);
      if (end <= covered) continue; /* inside what is already counted (ranges that overlap) */
      if (all[i].start != covered) break; /* a gap (or a partial overlap): not complete */
      int rc = all[i].log2 == 0 ? escp_digest_add(&dg, all[i].start, all[i].cv, all[i].cv)
                                : escp_digest_add_tree(&dg, all[i].start, all[i].log2, all[i].cv);
      if (rc != ESCP_OK) ok = 0;
      covered = end;
    }
    complete = ok && covered == f->nblocks && escp_digest_final(&dg, f->nblocks, whole) == ESCP_OK;
    escp_digest_free(&dg);
  }
  free(all);
  return complete;
}

/* The committer, under the exclusive lock on the partial (fd): metadata through the fd,
 * the rename, the journals. 0 or an errno value (*what). */
static int range_commit(escp_session *s, rx_file *f, int fd, int dfd, const char *leaf, const char *names, size_t nnames,
                        const char **what) {
  mode_t mode = (mode_t)(f->meta[ESCP_META_MODE] & 07777);
  int err = 0;
  if (s->param[ESCP_P_OWNER]) *what = "chown", err = escp_dest_chown(fd, f->meta);
  if (!err && !s->param[ESCP_P_PRESERVE]) {
    *what = "chmod";
    if (fchmod(fd, mode & 0777 & ~(mode_t)s->rx->umask) < 0) err = errno;
  } else if (!err) {
    struct timespec ts[2] = {{f->meta[ESCP_META_ATIME_S], f->meta[ESCP_META_ATIME_NS]},
                             {f->meta[ESCP_META_MTIME_S], f->meta[ESCP_META_MTIME_NS]}};
    *what = "chmod";
    if (fchmod(fd, mode) < 0) err = errno;
    else if (*what = "utimens", futimens(fd, ts) < 0) err = errno;
  }
  if (!err && !names_fd(dfd, f->tmp, fd)) *what = "rename", err = ESTALE; /* not our partial any more */
  if (!err && renameat(dfd, f->tmp, dfd, leaf) < 0) *what = "rename", err = errno;
  if (err) return err;
  const char *p = names;
  for (size_t i = 0; i < nnames; i++, p += strlen(p) + 1) (void)unlinkat(dfd, p, 0);
  return 0;
}

/* Try to become the committer through fd (the partial, which this session holds LOCK_SH
 * or not at all): drop the shared lock, take LOCK_EX|LOCK_NB, check that the name still
 * refers to fd, and commit if every range is in. 1 = committed (*whole = its BLAKE3). */
static int range_try_commit(escp_session *s, rx_file *f, int fd, int dfd, const char *leaf, uint8_t whole[32]) {
  char jr[256], prefix[256];
  escp_jrn_range_name(leaf, 0, jr, prefix);
  (void)flock(fd, LOCK_UN); /* after our RANGE record: whoever gets LOCK_EX sees it */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || !names_fd(dfd, f->tmp, fd)) return 0;
  char *names = NULL;
  size_t nnames = 0, nbytes = 0;
  int committed = 0;
  if (range_gather(s, f, dfd, prefix, whole, &names, &nnames, &nbytes)) {
    const char *what = "rename";
    int cerr = range_commit(s, f, fd, dfd, leaf, names, nnames, &what);
    if (cerr) escp__log(s, "fino %llu: all ranges in, but the file was not named (%s: %s): the ranges stay", (unsigned long long)f->fino, what, strerror(cerr));
    else {
      committed = 1;
      f->tmp[0] = f->jname[0] = 0; /* named; the journals are gone */
      escp__log(s, "fino %llu: every range in: file committed", (unsigned long long)f->fino);
    }
  }
  free(names);
  return committed;
}

/* A range session leaving without completing its range (failed, or unfinished at the end of
 * the session): it may be the last holder of the partial while every range is in (a rerun of
 * a range that was complete already, say), so it tries to commit too. Its own lock goes
 * first; the partial is opened afresh (never following a link) and must be the one it held. */
static void range_leave(escp_session *s, rx_file *f, int dfd) {
  if (!f->tmp[0] || !f->rel) return;
  const char *leaf = strrchr(f->rel, '/');
  leaf = leaf ? leaf + 1 : f->rel;
  if (f->fd >= 0 && (f->opened || f->kept)) (void)flock(f->fd, LOCK_UN);
  if (f->pfd >= 0) (void)flock(f->pfd, LOCK_UN);
  int fd = openat(dfd, f->tmp, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  if (fd < 0) return;
  uint8_t whole[32];
  if (own_file(fd, &st) && (uint64_t)st.st_ino == f->tmp_ino && (uint64_t)st.st_dev == f->tmp_dev &&
      range_try_commit(s, f, fd, dfd, leaf, whole))
    escp__log(s, "fino %llu: committed by a session that did not finish its own range", (unsigned long long)f->fino);
  close(fd);
}

void escp__rx_range_complete(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  int err = f->fd < 0 || f->jfd < 0 ? EBADF : 0;
  /* this range is durable and verified: pending records, then the RANGE record, each after
   * an fdatasync of the partial */
  if (!err) err = commit_records(f, f->jpend ? f->jpend : (const uint8_t *)"", f->jpend ? f->npend : 0, 1);
  f->npend = 0;
  if (!err) {
    uint8_t rec[ESCP_JRN_REC];
    escp_jrn_record_range(rec, f->jcheck, f->rfirst, f->rcount);
    err = commit_records(f, rec, 1, 1);
  }
  if (err) {
    f->rdone = 0; /* not marked: it fails, and its journal goes */
    escp__rx_file_fail(f, ESCP_E_WRITE, err, "range journal");
    return;
  }
  uint32_t committed = 0;
  uint8_t whole[32] = {0};
  escp_dirref *ref;
  const char *leaf;
  int derr = 0;
  if (escp_dest_parent(r->dest, f->rel, 0, &ref, &leaf, &derr) == ESCP_OK) {
    committed = (uint32_t)range_try_commit(s, f, f->fd, escp_dirref_fd(ref), leaf, whole);
    escp_dest_put(r->dest, ref);
  }
  if (!committed) memset(whole, 0, sizeof whole);
  rx_rres *res = malloc(sizeof *res + (size_t)f->nrsub * ESCP_RSUB_REC);
  if (!res) return;
  res->fino = f->fino;
  res->committed = committed;
  res->n = f->rsubs ? f->nrsub : 0;
  memcpy(res->whole, whole, 32);
  if (res->n) memcpy(res->packed, f->rsubs, (size_t)res->n * ESCP_RSUB_REC);
  pthread_mutex_lock(&r->mu);
  if (r->nrres < ESCP_RRES_MAX) {
    res->next = r->rres;
    r->rres = res;
    r->nrres++;
    res = NULL;
  }
  pthread_mutex_unlock(&r->mu);
  free(res);
}

ESCP_API int32_t escp_rx_range_take(void *h, uint64_t fino, uint8_t *out, int32_t cap) {
  escp_session *s = escp__session(h);
  if (!s || !out || cap < 0) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER) return ESCP_E_STATE;
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&r->mu);
  rx_rres **pp = &r->rres;
  while (*pp && (*pp)->fino != fino) pp = &(*pp)->next;
  rx_rres *res = *pp;
  int32_t rc = 0;
  if (res) {
    size_t need = 40 + (size_t)res->n * ESCP_RSUB_REC;
    if (need > (size_t)cap) rc = ESCP_E_TOOBIG;
    else {
      escp_put32(out, res->committed);
      escp_put32(out + 4, res->n);
      memcpy(out + 8, res->whole, 32);
      memcpy(out + 40, res->packed, (size_t)res->n * ESCP_RSUB_REC);
      rc = (int32_t)need;
      *pp = res->next;
      r->nrres--;
    }
  }
  pthread_mutex_unlock(&r->mu);
  if (rc > 0) free(res);
  return rc;
}
