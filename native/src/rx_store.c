/* rx_store.c — the receiver's side of the disk: create each file in its directory through
 * the destination's directory fds (dest.h), seal it when its blocks are in, check it
 * against the sender's digest and only then name it, and remove anything of a file that
 * failed. The one commit path: nothing in TypeScript opens, renames or chmods by path.
 * Also the destination API of escp.h (jail, probe, root, directories). */
#define _GNU_SOURCE /* O_TMPFILE, futimens */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rx.h"

void escp__rx_file_fail(rx_file *f, int32_t status, int err, const char *what) {
  if (f->status != ESCP_OK) return; /* keep the first failure */
  f->status = status;
  f->sys_errno = err;
  f->what = what;
}

/* ".escp-<12 hex of the session id>-<fino>.part", or with a random suffix on a retry. */
static void tmp_name(const escp_session *s, rx_file *f, int retry) {
  char sid[13];
  for (int i = 0; i < 6; i++) snprintf(sid + 2 * i, 3, "%02x", s->sid[i]);
  uint32_t r = 0;
  if (retry && getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)f->fino * 2654435761u;
  if (retry) snprintf(f->tmp, sizeof f->tmp, ".escp-%s-%llu-%08x.part", sid, (unsigned long long)f->fino, r);
  else snprintf(f->tmp, sizeof f->tmp, ".escp-%s-%llu.part", sid, (unsigned long long)f->fino);
}

static void remember_identity(rx_file *f, int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) f->tmp_ino = (uint64_t)st.st_ino, f->tmp_dev = (uint64_t)st.st_dev;
}

/* A new named temporary (O_EXCL: a name someone planted is never opened). 0 or errno. */
static int create_named(escp_session *s, rx_file *f, int dfd, unsigned mode, int *direct) {
  int err = EEXIST;
  for (int retry = 0; retry < 3 && err == EEXIST; retry++) {
    tmp_name(s, f, retry);
    int d = *direct;
    err = s->io->open_tmp(dfd, f->tmp, mode, &d, &f->fd);
    if (!err) *direct = d;
  }
  if (err) f->tmp[0] = 0;
  else remember_identity(f, f->fd);
  return err;
}

/* Give the unnamed file a temporary name in dfd (to rename over an existing file, or when
 * too many unnamed files are held). 0 or errno. */
static int link_named(escp_session *s, rx_file *f, int dfd) {
  int err = EEXIST;
  for (int retry = 0; retry < 3 && err == EEXIST; retry++) {
    tmp_name(s, f, retry);
    err = s->io->link_tmp(f->fd, dfd, f->tmp);
  }
  if (err) f->tmp[0] = 0;
  else remember_identity(f, f->fd);
  return err;
}

int escp__rx_create(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  escp_dirref *ref;
  const char *leaf;
  int err = 0;
  if (escp_dest_parent(r->dest, f->rel, 0, &ref, &leaf, &err) != ESCP_OK) return err ? err : ENOTDIR;
  int dfd = escp_dirref_fd(ref);
  /* -p: owner-only until sealed, then the exact mode through the fd; else the announced
   * permission bits minus the umask, from the start (no chmod later). */
  unsigned mode = s->param[ESCP_P_PRESERVE] ? 0600 : (unsigned)(f->meta[ESCP_META_MODE] & 0777);
  int direct = f->direct;
  err = ENOTSUP;
  if (f->journaled) { /* resumable: a named partial with its journal, owner-only until sealed */
    f->direct = direct;
    err = escp__rx_journal_create(s, f, dfd, leaf);
    escp_dest_put(r->dest, ref);
    return err;
  }
  if (__atomic_load_n(&r->anon_ok, __ATOMIC_RELAXED)) {
    err = s->io->open_tmp(dfd, NULL, mode, &direct, &f->fd);
    if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) /* no O_TMPFILE here: stop trying */
      __atomic_store_n(&r->anon_ok, 0, __ATOMIC_RELAXED);
    if (!err) f->anon = 1;
  }
  if (err) { /* the named path reports any real error (EACCES, ENOSPC) itself */
    direct = f->direct;
    err = create_named(s, f, dfd, mode, &direct);
  }
  escp_dest_put(r->dest, ref);
  f->direct = direct;
  return err;
}

/* -p on the file's own fd: exact permission bits (set-id bits wait for the commit), times.
 * Without -p, a journaled partial (made 0600) gets the announced bits minus the umask. */
static void seal_meta(escp_session *s, rx_file *f) {
  if (f->status != ESCP_OK) return;
  if (!s->param[ESCP_P_PRESERVE]) {
    mode_t m = (mode_t)(f->meta[ESCP_META_MODE] & 0777 & ~(int64_t)s->rx->umask);
    if (f->journaled && fchmod(f->fd, m) < 0) escp__rx_file_fail(f, ESCP_E_WRITE, errno, "chmod");
    return;
  }
  struct timespec ts[2] = {{f->meta[ESCP_META_ATIME_S], f->meta[ESCP_META_ATIME_NS]},
                           {f->meta[ESCP_META_MTIME_S], f->meta[ESCP_META_MTIME_NS]}};
  if (fchmod(f->fd, (mode_t)(f->meta[ESCP_META_MODE] & 0777)) < 0) escp__rx_file_fail(f, ESCP_E_WRITE, errno, "chmod");
  else if (futimens(f->fd, ts) < 0) escp__rx_file_fail(f, ESCP_E_WRITE, errno, "utimens");
}

/* An unnamed file keeps its fd until the commit links it, up to kept_max such fds; past
 * that it takes its temporary name now. A journaled partial keeps its fd (and so its lock)
 * under the same cap. Returns whether the fd stays open. */
static int seal_keep(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  if ((!f->anon && !f->journaled) || f->status != ESCP_OK) return 0;
  if (__atomic_add_fetch(&r->kept, 1, __ATOMIC_RELAXED) <= r->kept_max) return 1;
  __atomic_fetch_sub(&r->kept, 1, __ATOMIC_RELAXED);
  if (f->journaled) return 0;
  if (!__atomic_exchange_n(&r->cap_logged, 1, __ATOMIC_RELAXED))
    escp__log(s, "%d unnamed files held: naming early", r->kept_max);
  escp_dirref *ref;
  const char *leaf;
  int err = 0;
  if (escp_dest_parent(r->dest, f->rel, 0, &ref, &leaf, &err) == ESCP_OK) {
    err = link_named(s, f, escp_dirref_fd(ref));
    escp_dest_put(r->dest, ref);
  } else if (!err) {
    err = ENOTDIR;
  }
  if (err) escp__rx_file_fail(f, ESCP_E_WRITE, err, "link");
  f->anon = 0;
  return 0;
}

void escp__rx_seal(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  pthread_mutex_lock(&f->mu);
  if (f->opened) {
    int cut = f->journaled || f->disk_end != f->size; /* a partial was sized up front */
    int err = f->status == ESCP_OK && cut ? s->io->truncate(f->fd, f->size) : 0;
    if (err) escp__rx_file_fail(f, ESCP_E_WRITE, err, "truncate");
    seal_meta(s, f);
    escp__rx_journal_close(s, f); /* all blocks in: no more records */
    f->opened = 0;
    if (seal_keep(s, f)) {
      f->kept = 1; /* the fd stays for the link (or, journaled, the lock) until commit */
    } else {
      s->io->close(f->fd);
      f->fd = -1;
    }
  }
  if (f->dg) { /* every block exactly once (the tracker refuses repeats; here: none missing) */
    uint8_t root[32];
    int rc = escp_digest_final(f->dg, f->nblocks, root);
    if (rc != ESCP_OK) escp__rx_file_fail(f, ESCP_E_PROTO, 0, "blocks missing");
    else if (s->param[ESCP_P_CHECKSUM] && f->rel) memcpy(f->root, root, 32), f->have_root = 1;
    __atomic_fetch_sub(&r->pending, (int64_t)f->dg->pending_len, __ATOMIC_RELAXED);
    escp_digest_free(f->dg);
    free(f->dg);
    f->dg = NULL;
  }
  pthread_mutex_unlock(&f->mu);
}

/* -p set-id/sticky bits: only through the fd of the file this session created — the held
 * unnamed fd, or the named temporary reopened without following and checked to be ours. */
static int commit_setid(escp_session *s, rx_file *f, int dfd) {
  mode_t mode = (mode_t)(f->meta[ESCP_META_MODE] & 07777);
  if (!s->param[ESCP_P_PRESERVE] || !(mode & 07000)) return 0;
  if (f->anon) return fchmod(f->fd, mode) < 0 ? errno : 0;
  int fd = openat(dfd, f->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno;
  struct stat st;
  int err = fstat(fd, &st) < 0 ? errno : 0;
  if (!err && (!S_ISREG(st.st_mode) || st.st_nlink != 1 || (uint64_t)st.st_ino != f->tmp_ino ||
               (uint64_t)st.st_dev != f->tmp_dev))
    err = EPERM; /* not the file we wrote: someone replaced the temporary */
  if (!err && fchmod(fd, mode) < 0) err = errno;
  close(fd);
  return err;
}

/* Name the verified file `leaf` in dfd: link the unnamed file (over an existing entry: via a
 * temporary name and renameat), or rename the named temporary. 0 or errno. */
static int commit_name(escp_session *s, rx_file *f, int dfd, const char *leaf) {
  int err = commit_setid(s, f, dfd);
  if (err) return err;
  if (f->anon) {
    err = s->io->link_tmp(f->fd, dfd, leaf);
    if (err != EEXIST) return err;
    if ((err = link_named(s, f, dfd)) != 0) return err;
  }
  return renameat(dfd, f->tmp, dfd, leaf) == 0 ? 0 : errno;
}

void escp__rx_commit(escp_session *s, rx_file *f, const uint8_t digest[32]) {
  static const uint8_t zero[32];
  if (!f->rel) return; /* discarded blocks: nothing was kept, nothing to check or name */
  if (s->param[ESCP_P_CHECKSUM] &&
      (!f->have_want || memcmp(f->want, digest, 32) != 0 || memcmp(digest, zero, 32) == 0)) {
    escp__rx_file_fail(f, ESCP_E_DIGEST, 0, "digest mismatch");
    return;
  }
  if (escp__rx_dummy(s)) return; /* nothing was written */
  escp_dirref *ref;
  const char *leaf;
  int err = 0;
  if (escp_dest_parent(s->rx->dest, f->rel, 0, &ref, &leaf, &err) != ESCP_OK) {
    escp__rx_file_fail(f, ESCP_E_WRITE, err ? err : ENOTDIR, "open directory");
    return;
  }
  err = commit_name(s, f, escp_dirref_fd(ref), leaf);
  escp_dest_put(s->rx->dest, ref);
  if (err) escp__rx_file_fail(f, ESCP_E_WRITE, err, f->anon ? "link" : "rename");
  else f->tmp[0] = 0; /* named: nothing left to remove */
}

/* A journaled file's resume state (the partial and journal themselves are dealt with by
 * escp__rx_journal_done in file_free). */
static void free_journal_state(rx_file *f) {
  if (f->jfd >= 0) close(f->jfd);
  if (f->pfd >= 0) close(f->pfd);
  free(f->jpend);
  free(f->offer);
  free(f->fine);
  free(f->trees);
  escp_offer_free(&f->off);
  if (f->jst) {
    escp_jrn_state_free(f->jst);
    free(f->jst);
  }
}

void escp__rx_file_free(escp_session *s, rx_file *f, int keep) {
  struct escp_rx *r = s->rx;
  if (f->journaled) escp__rx_journal_close(s, f);
  if (f->rel && (f->tmp[0] || f->jname[0])) { /* names of ours still in rel's directory */
    escp_dirref *ref;
    const char *leaf;
    int err;
    if (escp_dest_parent(r->dest, f->rel, 0, &ref, &leaf, &err) == ESCP_OK) {
      int dfd = escp_dirref_fd(ref);
      /* journaled: kept and sealed when the session ends with it unfinished and not failed
       * (resumable), else partial and journal go; otherwise a temporary that never got its
       * final name goes (nothing half-written survives) */
      if (f->journaled) escp__rx_journal_done(s, f, dfd, keep && f->status == ESCP_OK);
      else (void)unlinkat(dfd, f->tmp, 0);
      escp_dest_put(r->dest, ref);
    }
  }
  if (f->journaled) free_journal_state(f);
  if (f->opened || f->kept) s->io->close(f->fd);
  if (f->kept) __atomic_fetch_sub(&r->kept, 1, __ATOMIC_RELAXED);
  if (f->dg) {
    __atomic_fetch_sub(&r->pending, (int64_t)f->dg->pending_len, __ATOMIC_RELAXED);
    escp_digest_free(f->dg);
    free(f->dg);
  }
  pthread_mutex_destroy(&f->mu);
  free(f->rel);
  free(f);
}

/* ---- the destination API (JS thread) ---- */

static struct escp_rx *rx_of(void *h, escp_session **out) {
  escp_session *s = escp__session(h);
  *out = s;
  return s && s->role == ESCP_ROLE_RECEIVER ? s->rx : NULL;
}

static int32_t dest_status(escp_session *s, int rc, int err, const char *what) {
  s->last_errno = err;
  if (rc == ESCP_E_SYS) ESCP_ERR(s, "%s: %s", what, strerror(err));
  else if (rc == ESCP_E_PATH) ESCP_ERR(s, "%s: a symlink, a non-directory or an invalid name on the way", what);
  return rc;
}

/* Confine every later path beneath dir (server --restrict). Before escp_rx_root. */
ESCP_API int32_t escp_rx_jail(void *h, const char *dir) {
  escp_session *s;
  struct escp_rx *r = rx_of(h, &s);
  if (!r || !dir) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  int err, rc = escp_dest_jail(r->dest, dir, &err);
  return dest_status(s, rc, err, dir);
}

/* ESCP_KIND_* of path, resolved as escp_rx_root would, or <0. */
ESCP_API int32_t escp_rx_probe(void *h, const char *path) {
  escp_session *s;
  struct escp_rx *r = rx_of(h, &s);
  if (!r || !path) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  int kind = 0, err;
  int rc = escp_dest_probe(r->dest, path, &kind, &err);
  return rc == ESCP_OK ? kind : dest_status(s, rc, err, path);
}

/* Open path as the destination root (create: mkdir it first if missing), once. */
ESCP_API int32_t escp_rx_root(void *h, const char *path, int32_t create) {
  escp_session *s;
  struct escp_rx *r = rx_of(h, &s);
  if (!r || !path) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  int err, rc = escp_dest_root(r->dest, path, create != 0, &err);
  return dest_status(s, rc, err, path);
}

/* mkdir -p rel below the root ("" = the root); -p: its meta (named fino) is applied by
 * dirs_finish. */
ESCP_API int32_t escp_rx_dir_add(void *h, uint64_t fino, const char *rel, const int64_t *meta) {
  escp_session *s;
  struct escp_rx *r = rx_of(h, &s);
  if (!r || !rel || !meta) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  int err, rc = escp_dest_mkdir(r->dest, rel, meta, (int)s->param[ESCP_P_PRESERVE], fino, &err);
  return dest_status(s, rc, err, rel);
}

/* -p: apply the directories' modes and times, children first. Returns how many failed; the
 * first cap/2 as (fino, errno) pairs in failed. */
ESCP_API int32_t escp_rx_dirs_finish(void *h, uint64_t *failed, int32_t cap) {
  escp_session *s;
  struct escp_rx *r = rx_of(h, &s);
  if (!r) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  if (cap < 0 || (cap > 0 && !failed)) return ESCP_E_INVAL;
  return escp_dest_dirs_finish(r->dest, failed, cap);
}
