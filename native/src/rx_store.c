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
#include "xattr.h"

void escp__rx_file_fail(rx_file *f, int32_t status, int err, const char *what) {
  if (f->status != ESCP_OK) return; /* keep the first failure */
  f->status = status;
  f->sys_errno = err;
  f->what = what;
}

/* ".escp-<12 hex of the session id>-<fino>.<ext>", or with a random suffix on a retry. */
static void tmp_name_of(const escp_session *s, uint64_t fino, int retry, const char *ext, char *out, size_t cap) {
  char sid[13];
  for (int i = 0; i < 6; i++) snprintf(sid + 2 * i, 3, "%02x", s->sid[i]);
  uint32_t r = 0;
  if (retry && getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)fino * 2654435761u + (uint32_t)retry;
  if (retry) snprintf(out, cap, ".escp-%s-%llu-%08x.%s", sid, (unsigned long long)fino, r, ext);
  else snprintf(out, cap, ".escp-%s-%llu.%s", sid, (unsigned long long)fino, ext);
}

static void tmp_name(const escp_session *s, rx_file *f, int retry) { tmp_name_of(s, f->fino, retry, "part", f->tmp, sizeof f->tmp); }

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

/* Metadata on the file's own fd, once its blocks are in. ESCP_P_OWNER: uid and gid first
 * (chown clears set-id bits and file capabilities, so it precedes both). -p: exact permission
 * bits (set-id bits wait for the commit), times; without -p, a journaled partial (made 0600)
 * gets the announced bits minus the umask. Then the extended attributes, with or without -p
 * (after the chown, which would drop a security.capability set before it). A journaled
 * partial gets its owner and attributes at the commit instead (commit_meta): one left
 * unfinished when the session ends must still be this user's, or no later run takes it up. */
static void seal_meta(escp_session *s, rx_file *f) {
  if (f->status != ESCP_OK) return;
  int err = s->param[ESCP_P_OWNER] && !f->journaled ? escp_dest_chown(f->fd, f->meta) : 0;
  if (err) {
    escp__rx_file_fail(f, ESCP_E_WRITE, err, "chown");
    return;
  }
  if (!s->param[ESCP_P_PRESERVE]) {
    mode_t m = (mode_t)(f->meta[ESCP_META_MODE] & 0777 & ~(int64_t)s->rx->umask);
    if (f->journaled && fchmod(f->fd, m) < 0) escp__rx_file_fail(f, ESCP_E_WRITE, errno, "chmod");
  } else {
    struct timespec ts[2] = {{f->meta[ESCP_META_ATIME_S], f->meta[ESCP_META_ATIME_NS]},
                             {f->meta[ESCP_META_MTIME_S], f->meta[ESCP_META_MTIME_NS]}};
    if (fchmod(f->fd, (mode_t)(f->meta[ESCP_META_MODE] & 0777)) < 0) escp__rx_file_fail(f, ESCP_E_WRITE, errno, "chmod");
    else if (futimens(f->fd, ts) < 0) escp__rx_file_fail(f, ESCP_E_WRITE, errno, "utimens");
  }
  if (f->status == ESCP_OK && f->xlen && !f->journaled && (err = escp_xattrs_apply(f->fd, f->xattrs, f->xlen)) != 0)
    escp__rx_file_fail(f, ESCP_E_WRITE, err, "setxattr");
}

/* An unnamed file keeps its fd until the commit links it, up to kept_max such fds; past
 * that it takes its temporary name now. A journaled partial keeps its fd (and so its lock)
 * under the same cap. Returns whether the fd stays open. */
static int seal_keep(escp_session *s, rx_file *f) {
  struct escp_rx *r = s->rx;
  if ((!f->anon && !f->journaled) || f->status != ESCP_OK) return 0;
  if (f->ranged) { /* a range keeps its fd (its shared lock on the partial) until its end */
    __atomic_add_fetch(&r->kept, 1, __ATOMIC_RELAXED);
    return 1;
  }
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
    if (!f->ranged) seal_meta(s, f); /* a range: the committer sets the file's metadata */
    escp__rx_journal_close(s, f); /* all blocks in: no more records */
    f->opened = 0;
    if (seal_keep(s, f)) {
      f->kept = 1; /* the fd stays for the link (or, journaled, the lock) until commit */
    } else {
      s->io->close(f->fd);
      f->fd = -1;
    }
  }
  if (f->rdg) { /* a range: its subtrees and their digest */
    uint8_t root[32];
    f->rsubs = malloc(ESCP_RSUB_MAX * ESCP_RSUB_REC);
    if (!f->rsubs) escp__rx_file_fail(f, ESCP_E_NOMEM, 0, "digest");
    else if (escp_rdigest_final(f->rdg, f->rsubs, &f->nrsub, root) != ESCP_OK)
      escp__rx_file_fail(f, ESCP_E_PROTO, 0, "blocks missing");
    else if (f->rel) memcpy(f->root, root, 32), f->have_root = 1;
    __atomic_fetch_sub(&r->pending, (int64_t)escp_rdigest_pending(f->rdg), __ATOMIC_RELAXED);
    escp_rdigest_free(f->rdg);
    free(f->rdg);
    f->rdg = NULL;
  }
  if (f->dg) { /* every block exactly once (the tracker refuses repeats; here: none missing) */
    uint8_t root[32];
    int rc = escp_digest_final(f->dg, f->nblocks, root);
    if (rc != ESCP_OK) escp__rx_file_fail(f, ESCP_E_PROTO, 0, "blocks missing");
    else if (s->param[ESCP_P_CHECKSUM] && (f->rel || f->tofd)) memcpy(f->root, root, 32), f->have_root = 1;
    __atomic_fetch_sub(&r->pending, (int64_t)f->dg->pending_len, __ATOMIC_RELAXED);
    escp_digest_free(f->dg);
    free(f->dg);
    f->dg = NULL;
  }
  pthread_mutex_unlock(&f->mu);
}

/* At the commit, through the file's own fd: a journaled partial's owner and extended
 * attributes (deferred from its seal, see seal_meta), then -p set-id/sticky bits. Only through
 * the fd of the file this session created — the held fd (unnamed file, journaled partial), or
 * the named temporary reopened without following and checked to be ours. 0 or an errno value,
 * *what the step that failed. */
static int commit_meta(escp_session *s, rx_file *f, int dfd, const char **what) {
  mode_t mode = (mode_t)(f->meta[ESCP_META_MODE] & 07777);
  int setid = s->param[ESCP_P_PRESERVE] && (mode & 07000);
  int own = f->journaled && s->param[ESCP_P_OWNER], xat = f->journaled && f->xlen;
  if (!setid && !own && !xat) return 0;
  int fd = f->kept ? f->fd : -1, err = 0;
  *what = "open";
  if (fd < 0 && (fd = openat(dfd, f->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) return errno;
  struct stat st;
  if (fd != f->fd) {
    err = fstat(fd, &st) < 0 ? errno : 0;
    if (!err && (!S_ISREG(st.st_mode) || st.st_nlink != 1 || (uint64_t)st.st_ino != f->tmp_ino ||
                 (uint64_t)st.st_dev != f->tmp_dev))
      err = EPERM; /* not the file we wrote: someone replaced the temporary */
  }
  if (!err && own) *what = "chown", err = escp_dest_chown(fd, f->meta);
  if (!err && xat) *what = "setxattr", err = escp_xattrs_apply(fd, f->xattrs, f->xlen);
  if (!err && setid) *what = "chmod", err = fchmod(fd, mode) < 0 ? errno : 0;
  if (fd != f->fd) close(fd);
  return err;
}

/* Name the verified file `leaf` in dfd: link the unnamed file (over an existing entry: via a
 * temporary name and renameat), or rename the named temporary. 0 or errno (*what: the step). */
static int commit_name(escp_session *s, rx_file *f, int dfd, const char *leaf, const char **what) {
  int err = commit_meta(s, f, dfd, what);
  if (err) return err;
  *what = f->anon ? "link" : "rename";
  if (f->anon) {
    err = s->io->link_tmp(f->fd, dfd, leaf);
    if (err != EEXIST) return err;
    if ((err = link_named(s, f, dfd)) != 0) return err;
  }
  return renameat(dfd, f->tmp, dfd, leaf) == 0 ? 0 : errno;
}

/* ---- tables by file number ---- */

static size_t hslot(size_t nb, uint64_t key) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 24) & (nb - 1); }

escp_hnode *escp__htab_find(const escp_htab *h, uint64_t key) {
  for (escp_hnode *n = h->nb ? h->tab[hslot(h->nb, key)] : NULL; n; n = n->next)
    if (n->key == key) return n;
  return NULL;
}

int escp__htab_add(escp_htab *h, escp_hnode *n, size_t max) {
  if (h->count >= max) return 0;
  if (h->count >= h->nb * 2) { /* grow (the first time: make) */
    size_t nb = h->nb ? h->nb * 2 : 256;
    escp_hnode **nt = calloc(nb, sizeof *nt);
    for (size_t i = 0; nt && i < h->nb; i++)
      for (escp_hnode *x = h->tab[i], *nx; x; x = nx) {
        nx = x->next;
        x->next = nt[hslot(nb, x->key)];
        nt[hslot(nb, x->key)] = x;
      }
    if (nt) { /* else keep the smaller table: slower, still correct */
      free(h->tab);
      h->tab = nt;
      h->nb = nb;
    }
  }
  if (!h->nb) return 0;
  n->next = h->tab[hslot(h->nb, n->key)];
  h->tab[hslot(h->nb, n->key)] = n;
  h->count++;
  return 1;
}

void escp__htab_free(escp_htab *h) {
  for (size_t i = 0; i < h->nb; i++)
    for (escp_hnode *n = h->tab[i], *nx; n; n = nx) {
      nx = n->next;
      free(n);
    }
  free(h->tab);
  *h = (escp_htab){NULL, 0, 0};
}

/* ---- hard-link leaders: files of more than one link, where they landed ---- */

typedef struct rx_link {
  escp_hnode h;            /* key: the leader's fino */
  uint64_t dev, ino;       /* the inode that was named, as known before naming it */
  char rel[];
} rx_link;

/* Remember f at rel as (dev, ino); past ESCP_LINKS_MAX (or without memory) it is not, and a
 * hard link to it fails as one to a file never written. Commit threads. */
static void links_add(escp_session *s, rx_file *f, uint64_t dev, uint64_t ino) {
  struct escp_rx *r = s->rx;
  size_t len = strlen(f->rel);
  rx_link *l = malloc(sizeof *l + len + 1);
  if (l) {
    l->h.key = f->fino, l->dev = dev, l->ino = ino;
    memcpy(l->rel, f->rel, len + 1);
  }
  pthread_mutex_lock(&r->lmu);
  if (l && !escp__htab_add(&r->links, &l->h, ESCP_LINKS_MAX)) {
    free(l);
    l = NULL;
  }
  int log = !l && !r->lfull_logged; /* once */
  if (log) r->lfull_logged = 1;
  size_t held = r->links.count;
  pthread_mutex_unlock(&r->lmu);
  if (log) escp__log(s, "fino %llu: hard-link leader not remembered (%zu held)", (unsigned long long)f->fino, held);
}

/* The leader fino: a copy of its rel (malloc'd) and identity. ESCP_OK, E_UNKNOWN_FILE, E_NOMEM. */
static int links_find(struct escp_rx *r, uint64_t fino, char **rel, uint64_t *dev, uint64_t *ino) {
  int rc = ESCP_E_UNKNOWN_FILE;
  pthread_mutex_lock(&r->lmu);
  const rx_link *l = (const rx_link *)escp__htab_find(&r->links, fino);
  if (l) {
    *rel = strdup(l->rel);
    *dev = l->dev, *ino = l->ino;
    rc = *rel ? ESCP_OK : ESCP_E_NOMEM;
  }
  pthread_mutex_unlock(&r->lmu);
  return rc;
}

void escp__rx_links_free(struct escp_rx *r) { escp__htab_free(&r->links); }

void escp__rx_commit(escp_session *s, rx_file *f, const uint8_t digest[32]) {
  static const uint8_t zero[32];
  if (!f->rel && !f->tofd) return; /* discarded blocks: nothing was kept, nothing to check or name */
  if (s->param[ESCP_P_CHECKSUM] &&
      (!f->have_want || memcmp(f->want, digest, 32) != 0 || memcmp(digest, zero, 32) == 0)) {
    escp__rx_file_fail(f, ESCP_E_DIGEST, 0, "digest mismatch");
    return;
  }
  if (escp__rx_dummy(s) || !f->rel) return; /* nothing was written, or only to stream_fd's fd */
  if (f->ranged) { /* verified: escp__rx_range_complete (rx_finalize) seals and maybe commits it */
    f->rdone = 1;
    return;
  }
  escp_dirref *ref;
  const char *leaf;
  int err = 0;
  if (escp_dest_parent(s->rx->dest, f->rel, 0, &ref, &leaf, &err) != ESCP_OK) {
    escp__rx_file_fail(f, ESCP_E_WRITE, err ? err : ENOTDIR, "open directory");
    return;
  }
  /* A hard-link leader's identity comes from what we hold, never from its new name: the
   * unnamed file's fd, else the named temporary's or the partial's identity (rx_journal.c). */
  struct stat st;
  int leader = f->meta[ESCP_META_NLINK] > 1;
  uint64_t dev = f->tmp_dev, ino = f->tmp_ino;
  if (leader && f->anon) {
    if (fstat(f->fd, &st) == 0) dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
    else leader = 0;
  }
  const char *what = "rename";
  err = commit_name(s, f, escp_dirref_fd(ref), leaf, &what);
  escp_dest_put(s->rx->dest, ref);
  if (err) {
    escp__rx_file_fail(f, ESCP_E_WRITE, err, what);
    return;
  }
  f->tmp[0] = 0; /* named: nothing left to remove */
  if (leader) links_add(s, f, dev, ino);
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

/* Let go of everything f holds on the disk side: a temporary still named is removed (a
 * journaled partial kept when keep, see escp__rx_file_free), fds closed, the tracker freed. */
static void file_release(escp_session *s, rx_file *f, int keep) {
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
  if (f->rdg) {
    __atomic_fetch_sub(&r->pending, (int64_t)escp_rdigest_pending(f->rdg), __ATOMIC_RELAXED);
    escp_rdigest_free(f->rdg);
    free(f->rdg);
  }
  free(f->rsubs);
}

void escp__rx_file_free(escp_session *s, rx_file *f, int keep) {
  file_release(s, f, keep);
  pthread_mutex_destroy(&f->mu);
  free(f->rel);
  free(f->xattrs);
  free(f);
}

void escp__rx_store_whole(escp_session *s, rx_file *f, const uint8_t *data, const uint8_t digest[32]) {
  if (!escp__rx_dummy(s)) {
    int err = escp__rx_create(s, f);
    if (err) {
      escp__rx_file_fail(f, ESCP_E_WRITE, err, "create");
    } else {
      f->kept = 1; /* its fd is held until it is named (commit_meta, the link) */
      __atomic_add_fetch(&s->rx->kept, 1, __ATOMIC_RELAXED);
      int64_t w = f->size ? s->io->pwrite(f->fd, data, (size_t)f->size, 0) : 0;
      if (w < 0) escp__rx_file_fail(f, ESCP_E_WRITE, (int)-w, "write");
      seal_meta(s, f);
    }
  }
  if (f->status == ESCP_OK) escp__rx_commit(s, f, digest);
  file_release(s, f, 0);
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
  return escp_rx_dir_add_x(h, fino, rel, meta, NULL, 0);
}

typedef struct xblob {
  const uint8_t *b;
  size_t len;
} xblob;

static int dir_xattrs(void *arg, int fd) {
  const xblob *x = arg;
  return escp_xattrs_apply(fd, x->b, x->len);
}

/* dir_add, then the directory's extended attributes through its fd (checked first: a
 * malformed blob is ESCP_E_PROTO and nothing is made). -p and ESCP_P_OWNER: its record. */
ESCP_API int32_t escp_rx_dir_add_x(void *h, uint64_t fino, const char *rel, const int64_t *meta, const uint8_t *xattrs,
                                   int32_t xlen) {
  escp_session *s;
  struct escp_rx *r = rx_of(h, &s);
  if (!r || !rel || !meta) return s ? ESCP_E_STATE : ESCP_E_INVAL;
  if (xlen < 0 || (xlen > 0 && !xattrs)) return ESCP_E_INVAL;
  if (escp_xattrs_check(xattrs, (size_t)xlen) != ESCP_OK) {
    ESCP_ERR(s, "%s: malformed extended attributes (%d bytes)", rel, (int)xlen);
    return ESCP_E_PROTO;
  }
  /* ESCP_P_BUNDLE: remembered by fino for bundle records (made or failed); once only */
  int32_t rc = s->param[ESCP_P_BUNDLE] && fino ? escp__rx_dir_room(s, fino, rel) : 1;
  if (rc < 0) return rc;
  int note = rc == ESCP_OK; /* 1: made, not remembered */
  int keep = (s->param[ESCP_P_PRESERVE] ? ESCP_DEST_KEEP_MODE : 0) | (s->param[ESCP_P_OWNER] ? ESCP_DEST_KEEP_OWNER : 0);
  xblob x = {xattrs, (size_t)xlen};
  int err;
  rc = escp_dest_mkdir_fn(r->dest, rel, meta, keep, fino, xlen ? dir_xattrs : NULL, &x, &err);
  int32_t nrc = note ? escp__rx_dir_note(s, fino, rel, rc, rc == ESCP_OK ? 0 : err) : ESCP_OK;
  rc = dest_status(s, rc, err, rel);
  return rc == ESCP_OK ? nrc : rc;
}

/* ---- symlinks and hard links (archive mode; JS thread) ---- */

/* The arguments every archive-mode entry shares: a receiver session, not stopping, a name
 * the receiver accepts. ESCP_OK or the status to return. */
static int32_t entry_check(void *h, escp_session **sp, const char *rel) {
  escp_session *s = escp__session(h);
  *sp = s;
  if (!s || !rel) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER || escp__stopping(s)) return ESCP_E_STATE;
  if (!escp_dest_name_ok(rel)) return dest_status(s, ESCP_E_PATH, 0, rel);
  return ESCP_OK;
}

/* Owner and times of the symlink just made at tmp, through an O_PATH fd of it that is checked
 * to be ours (a symlink with one name; to be chowned, of this user), so a swap in the
 * directory meanwhile is never chowned. 0 or an errno value. */
static int symlink_meta(escp_session *s, int dfd, const char *tmp, const int64_t *meta) {
  int own = (int)s->param[ESCP_P_OWNER], pres = (int)s->param[ESCP_P_PRESERVE];
  if (!own && !pres) return 0;
  int fd = openat(dfd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int err = fstat(fd, &st) < 0 ? errno : 0;
  if (!err && (!S_ISLNK(st.st_mode) || st.st_nlink != 1 || (own && st.st_uid != geteuid()))) err = EPERM;
  if (!err && own) err = escp_dest_chown(fd, meta);
  if (!err && pres) {
    struct timespec ts[2] = {{meta[ESCP_META_ATIME_S], meta[ESCP_META_ATIME_NS]},
                             {meta[ESCP_META_MTIME_S], meta[ESCP_META_MTIME_NS]}};
    if (utimensat(fd, "", ts, AT_EMPTY_PATH) < 0) err = errno;
    /* kernels before 5.8 refuse AT_EMPTY_PATH here: by name then, still not followed */
    if (err == EINVAL && utimensat(dfd, tmp, ts, AT_SYMLINK_NOFOLLOW) == 0) err = 0;
  }
  close(fd);
  return err;
}

ESCP_API int32_t escp_rx_symlink(void *h, uint64_t fino, const char *rel, const char *target, const int64_t *meta) {
  escp_session *s;
  int32_t rc = entry_check(h, &s, rel);
  if (rc == ESCP_OK && (!target || !meta)) rc = ESCP_E_INVAL;
  size_t tlen = rc == ESCP_OK ? strnlen(target, ESCP_MAX_PATH + 1) : 0;
  if (rc == ESCP_OK && (tlen == 0 || tlen > ESCP_MAX_PATH)) rc = ESCP_E_INVAL;
  if (rc != ESCP_OK || escp__rx_dummy(s)) return rc;
  struct escp_rx *r = s->rx;
  escp_dirref *ref;
  const char *leaf;
  int err = 0;
  if ((rc = escp_dest_parent(r->dest, rel, 1, &ref, &leaf, &err)) != ESCP_OK) return dest_status(s, rc, err, rel);
  int dfd = escp_dirref_fd(ref);
  char tmp[96];
  err = EEXIST;
  for (int retry = 0; retry < 3 && err == EEXIST; retry++) {
    tmp_name_of(s, fino, retry, "link", tmp, sizeof tmp);
    err = symlinkat(target, dfd, tmp) == 0 ? 0 : errno;
  }
  int made = !err;
  if (!err) err = symlink_meta(s, dfd, tmp, meta);
  if (!err && renameat(dfd, tmp, dfd, leaf) < 0) err = errno; /* over a directory: EISDIR */
  if (err && made) (void)unlinkat(dfd, tmp, 0);
  escp_dest_put(r->dest, ref);
  if (err) return dest_status(s, ESCP_E_SYS, err, rel);
  s->last_errno = 0;
  return ESCP_OK;
}

ESCP_API int32_t escp_rx_hardlink(void *h, uint64_t fino, const char *rel, uint64_t leader_fino) {
  escp_session *s;
  int32_t rc = entry_check(h, &s, rel);
  if (rc != ESCP_OK || escp__rx_dummy(s)) return rc;
  struct escp_rx *r = s->rx;
  char *lrel = NULL;
  uint64_t dev = 0, ino = 0;
  if ((rc = links_find(r, leader_fino, &lrel, &dev, &ino)) != ESCP_OK) {
    if (rc == ESCP_E_UNKNOWN_FILE) ESCP_ERR(s, "%s: hard link target #%llu was not written", rel, (unsigned long long)leader_fino);
    s->last_errno = 0;
    return rc;
  }
  escp_dirref *lref = NULL, *ref = NULL;
  const char *lleaf, *leaf;
  int err = 0;
  if ((rc = escp_dest_parent(r->dest, lrel, 0, &lref, &lleaf, &err)) != ESCP_OK) {
    rc = dest_status(s, rc, err, lrel);
    free(lrel);
    return rc;
  }
  if ((rc = escp_dest_parent(r->dest, rel, 1, &ref, &leaf, &err)) != ESCP_OK) {
    escp_dest_put(r->dest, lref);
    free(lrel);
    return dest_status(s, rc, err, rel);
  }
  int dfd = escp_dirref_fd(ref);
  char tmp[96];
  err = EEXIST;
  for (int retry = 0; retry < 3 && err == EEXIST; retry++) {
    tmp_name_of(s, fino, retry, "link", tmp, sizeof tmp);
    err = linkat(escp_dirref_fd(lref), lleaf, dfd, tmp, 0) == 0 ? 0 : errno; /* a symlink there: itself */
  }
  int made = !err;
  struct stat st;
  if (!err && fstatat(dfd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0) err = errno;
  else if (!err && ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino)) err = ESTALE; /* not what we wrote */
  if (!err && renameat(dfd, tmp, dfd, leaf) < 0) err = errno;
  else if (!err) { /* rel already was this inode: rename(2) did nothing and tmp is still there */
    made = 0;
    if (fstatat(dfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino)
      (void)unlinkat(dfd, tmp, 0);
  }
  if (err && made) (void)unlinkat(dfd, tmp, 0);
  escp_dest_put(r->dest, ref);
  escp_dest_put(r->dest, lref);
  if (err == ESTALE) {
    s->last_errno = err;
    ESCP_ERR(s, "%s: %s (hard link target #%llu) is no longer the file written there", rel, lrel,
             (unsigned long long)leader_fino);
    rc = ESCP_E_SYS;
  } else if (err) {
    rc = dest_status(s, ESCP_E_SYS, err, rel);
  } else {
    s->last_errno = 0;
  }
  free(lrel);
  return rc;
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
