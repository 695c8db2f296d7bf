/* dest.c — the receiver's destination tree through directory fds (see dest.h): name checks,
 * the no-symlink component walk, the cache of parent-directory fds, and -p directory
 * records. EScp differs: it opened, chmod-ed and renamed by path, following any symlink a
 * local user planted meanwhile. */
#define _GNU_SOURCE /* O_CLOEXEC, futimens */
#include "dest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escp.h"

struct escp_dirref {
  char *rel;       /* the directory, relative to the root ("" = the root itself) */
  size_t len;
  uint32_t hash;
  int fd;          /* -1 = free slot */
  int refs;        /* callers using fd now: never closed while > 0 */
  uint64_t used;   /* LRU tick */
  int kind;        /* REF_CACHED, REF_ROOT (never closed here), REF_TEMP (closed at put) */
};
enum { REF_CACHED = 0, REF_ROOT = 1, REF_TEMP = 2 };

typedef struct meta_rec {
  char *rel;
  int64_t meta[ESCP_META_COUNT];
  int created;     /* this session made it: set-id/sticky bits may be applied */
  int keep;        /* ESCP_DEST_KEEP_*: what to apply */
  uint64_t tag;    /* the caller's name for it (the receiver: its file number) */
  dev_t dev;       /* the directory the record is for: another one found at rel later */
  ino_t ino;       /* (renamed in by a local user) is left alone */
} meta_rec;

struct escp_dest {
  pthread_mutex_t mu;
  int jail_fd;     /* --restrict DIR, or -1 */
  int root_fd;     /* -1 until escp_dest_root */
  int root_created;
  escp_dirref root;
  escp_dirref slot[ESCP_DEST_CACHE];
  uint64_t tick;
  meta_rec *rec;   /* ring of -p records: [head, head + n) modulo cap */
  size_t head, n, cap, bytes;
};

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

escp_dest *escp_dest_new(void) {
  escp_dest *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  pthread_mutex_init(&d->mu, NULL);
  d->jail_fd = d->root_fd = -1;
  for (int i = 0; i < ESCP_DEST_CACHE; i++) d->slot[i].fd = -1;
  d->root.kind = REF_ROOT;
  d->root.rel = (char *)"";
  return d;
}

void escp_dest_free(escp_dest *d) {
  if (!d) return;
  for (int i = 0; i < ESCP_DEST_CACHE; i++) {
    if (d->slot[i].fd >= 0) close(d->slot[i].fd);
    free(d->slot[i].rel);
  }
  for (size_t i = 0; i < d->n; i++) free(d->rec[(d->head + i) % d->cap].rel);
  free(d->rec);
  if (d->root_fd >= 0) close(d->root_fd);
  if (d->jail_fd >= 0) close(d->jail_fd);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

int escp_dest_name_ok(const char *rel) {
  size_t len = strlen(rel);
  if (len == 0 || len > ESCP_MAX_PATH || rel[0] == '/') return 0;
  for (const char *p = rel;;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || n > ESCP_MAX_SEGMENT || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return 0;
    if (!e) return 1;
    p = e + 1;
  }
}

static uint32_t hash_of(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

static int sys_fail(int *err, int e) {
  *err = e;
  return e == ELOOP || e == ENOTDIR || e == EMLINK ? ESCP_E_PATH : ESCP_E_SYS;
}

/* Open one component below dir without following it; mkdir it first when create and
 * missing. *made = 1 when this call created it. Returns an fd or -1 (*err set). */
static int step(int dir, const char *comp, int create, int *made, int *err) {
  int fd = openat(dir, comp, DIR_FLAGS);
  if (fd < 0 && errno == ENOENT && create) {
    if (mkdirat(dir, comp, 0777) == 0) *made = 1;
    else if (errno != EEXIST) {
      *err = errno;
      return -1;
    }
    fd = openat(dir, comp, DIR_FLAGS);
  }
  if (fd < 0) *err = errno;
  return fd;
}

/* Walk rel[0..len) (valid segments) from base. Returns an owned fd, or <0 status. */
static int walk(int base, const char *rel, size_t len, int create, int *made, int *err) {
  char comp[ESCP_MAX_SEGMENT + 1];
  int cur = -1; /* owned; -1 = still at base */
  *made = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && rel[j] != '/') j++;
    memcpy(comp, rel + i, j - i);
    comp[j - i] = 0;
    *made = 0;
    int nfd = step(cur >= 0 ? cur : base, comp, create, made, err);
    if (cur >= 0) close(cur);
    if (nfd < 0) return sys_fail(err, *err);
    cur = nfd;
    i = j + 1;
  }
  if (cur < 0) cur = fcntl(base, F_DUPFD_CLOEXEC, 0);
  if (cur < 0) return sys_fail(err, errno);
  return cur;
}

/* Cached ref for rel[0..len), or NULL. Under mu. */
static escp_dirref *cache_find(escp_dest *d, const char *rel, size_t len, uint32_t h) {
  for (int i = 0; i < ESCP_DEST_CACHE; i++) {
    escp_dirref *r = &d->slot[i];
    if (r->fd >= 0 && r->hash == h && r->len == len && memcmp(r->rel, rel, len) == 0) return r;
  }
  return NULL;
}

/* Deepest cached ancestor of rel[0..len) (or the root): its fd and how much of rel it covers. */
static int cached_base(escp_dest *d, const char *rel, size_t len, size_t *covered) {
  for (size_t k = len; k > 0; k--) {
    if (rel[k - 1] != '/') continue;
    escp_dirref *r = cache_find(d, rel, k - 1, hash_of(rel, k - 1));
    if (r) {
      *covered = k;
      return r->fd;
    }
  }
  *covered = 0;
  return d->root_fd;
}

/* A slot for a new entry: a free one, else the least recently used unreferenced one. */
static escp_dirref *cache_slot(escp_dest *d) {
  escp_dirref *best = NULL;
  for (int i = 0; i < ESCP_DEST_CACHE; i++) {
    escp_dirref *r = &d->slot[i];
    if (r->fd < 0) return r;
    if (r->refs == 0 && (!best || r->used < best->used)) best = r;
  }
  if (best) {
    close(best->fd);
    free(best->rel);
    best->fd = -1;
    best->rel = NULL;
  }
  return best;
}

/* Reference rel[0..len) ("" = the root), walking (and creating) on a miss. Under mu. */
static int lookup(escp_dest *d, const char *rel, size_t len, int create, escp_dirref **out, int *made, int *err) {
  *made = 0;
  if (len == 0) {
    *out = &d->root;
    return ESCP_OK;
  }
  uint32_t h = hash_of(rel, len);
  escp_dirref *r = cache_find(d, rel, len, h);
  if (!r) {
    size_t covered;
    int base = cached_base(d, rel, len, &covered);
    int fd = walk(base, rel + covered, len - covered, create, made, err);
    if (fd < 0) return fd;
    char *copy = malloc(len + 1);
    r = copy ? cache_slot(d) : NULL;
    if (!r) r = calloc(1, sizeof *r); /* every slot busy (or no memory): a one-off ref */
    if (!r) {
      close(fd);
      free(copy);
      return ESCP_E_NOMEM;
    }
    if (copy) memcpy(copy, rel, len), copy[len] = 0;
    *r = (escp_dirref){.rel = copy, .len = len, .hash = h, .fd = fd, .kind = copy && r >= d->slot && r < d->slot + ESCP_DEST_CACHE ? REF_CACHED : REF_TEMP};
  }
  r->refs++;
  r->used = ++d->tick;
  *out = r;
  return ESCP_OK;
}

int escp_dest_parent(escp_dest *d, const char *rel, int create, escp_dirref **ref, const char **leaf, int *err) {
  *err = 0;
  if (!escp_dest_name_ok(rel)) return ESCP_E_PATH;
  const char *slash = strrchr(rel, '/');
  *leaf = slash ? slash + 1 : rel;
  pthread_mutex_lock(&d->mu);
  int made, rc = d->root_fd < 0 ? ESCP_E_STATE : lookup(d, rel, slash ? (size_t)(slash - rel) : 0, create, ref, &made, err);
  pthread_mutex_unlock(&d->mu);
  return rc;
}

int escp_dirref_fd(const escp_dirref *r) { return r->fd; }

void escp_dest_put(escp_dest *d, escp_dirref *r) {
  if (!r || r->kind == REF_ROOT) return;
  pthread_mutex_lock(&d->mu);
  if (--r->refs == 0 && r->kind == REF_TEMP) {
    close(r->fd);
    free(r->rel);
    free(r);
  }
  pthread_mutex_unlock(&d->mu);
}

/* ---- the root (and the jail it may live in) ---- */

int escp_dest_jail(escp_dest *d, const char *dir, int *err) {
  *err = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the administrator's path: followed */
  if (fd < 0) return sys_fail(err, errno);
  pthread_mutex_lock(&d->mu);
  if (d->jail_fd >= 0) close(d->jail_fd);
  d->jail_fd = fd;
  pthread_mutex_unlock(&d->mu);
  return ESCP_OK;
}

/* A path under the jail as a clean relative name in out ("" = the jail itself): empty and
 * "." segments dropped, a leading "/" means the jail, ".." is refused. */
static int jail_rel(const char *path, char *out, size_t cap) {
  size_t n = 0;
  for (const char *p = path; *p;) {
    while (*p == '/') p++;
    const char *e = p;
    while (*e && *e != '/') e++;
    size_t k = (size_t)(e - p);
    if (k == 2 && p[0] == '.' && p[1] == '.') return ESCP_E_PATH;
    if (k > ESCP_MAX_SEGMENT) return ESCP_E_PATH;
    if (k > 0 && !(k == 1 && p[0] == '.')) {
      if (n + k + 2 > cap) return ESCP_E_PATH;
      if (n) out[n++] = '/';
      memcpy(out + n, p, k);
      n += k;
    }
    p = e;
  }
  out[n] = 0;
  return ESCP_OK;
}

/* Open the directory holding the last segment of a jailed path (walked, not followed).
 * Returns an owned fd and *last (into buf; "" for the jail itself), or <0. */
static int jail_parent(escp_dest *d, const char *path, char *buf, size_t cap, const char **last, int *err) {
  int rc = jail_rel(path, buf, cap);
  if (rc != ESCP_OK) return rc;
  char *slash = strrchr(buf, '/');
  *last = slash ? slash + 1 : buf;
  int made;
  return walk(d->jail_fd, buf, slash ? (size_t)(slash - buf) : 0, 0, &made, err);
}

int escp_dest_probe(escp_dest *d, const char *path, int *kind, int *err) {
  *err = 0;
  struct stat st;
  int r;
  if (d->jail_fd < 0) {
    r = stat(path, &st); /* the user's own destination: followed, as scp does */
  } else {
    char buf[ESCP_MAX_PATH + 1];
    const char *last;
    int pfd = jail_parent(d, path, buf, sizeof buf, &last, err);
    if (pfd == ESCP_E_SYS && (*err == ENOENT || *err == ENOTDIR)) {
      *kind = ESCP_KIND_MISSING;
      return ESCP_OK;
    }
    if (pfd < 0) return pfd;
    r = *last ? fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) : fstat(pfd, &st);
    close(pfd);
  }
  if (r < 0 && (errno == ENOENT || errno == ENOTDIR)) {
    *kind = ESCP_KIND_MISSING;
    return ESCP_OK;
  }
  if (r < 0) return sys_fail(err, errno);
  *kind = S_ISDIR(st.st_mode) ? ESCP_KIND_DIR : ESCP_KIND_FILE;
  return ESCP_OK;
}

/* The root's fd: by path (followed: the user named it), or beneath the jail. */
static int root_open(escp_dest *d, const char *path, int create, int *made, int *err) {
  *made = 0;
  if (d->jail_fd < 0) {
    if (create && mkdir(path, 0777) == 0) *made = 1;
    else if (create && errno != EEXIST) return sys_fail(err, errno);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 ? fd : sys_fail(err, errno);
  }
  char buf[ESCP_MAX_PATH + 1];
  const char *last;
  int pfd = jail_parent(d, path, buf, sizeof buf, &last, err);
  if (pfd < 0 || !*last) return pfd;
  int fd = step(pfd, last, create, made, err);
  close(pfd);
  return fd >= 0 ? fd : sys_fail(err, *err);
}

int escp_dest_root(escp_dest *d, const char *path, int create, int *err) {
  *err = 0;
  pthread_mutex_lock(&d->mu);
  int made = 0, rc = ESCP_OK;
  int fd = d->root_fd >= 0 ? ESCP_E_STATE : root_open(d, path, create, &made, err);
  if (fd >= 0 && faccessat(fd, ".", W_OK | X_OK, 0) < 0) { /* say "not writable" now, not per file */
    rc = sys_fail(err, errno);
    close(fd);
  } else if (fd >= 0) {
    d->root_fd = d->root.fd = fd;
    d->root_created = made;
  } else {
    rc = fd;
  }
  pthread_mutex_unlock(&d->mu);
  return rc;
}

/* ---- directories and their -p records ---- */

int escp_dest_chown(int fd, const int64_t *meta) {
  int64_t u = meta[ESCP_META_UID], g = meta[ESCP_META_GID];
  if (u < 0 || u >= (int64_t)UINT32_MAX || g < 0 || g >= (int64_t)UINT32_MAX) return EINVAL; /* -1 would mean "leave it" */
  return fchownat(fd, "", (uid_t)u, (gid_t)g, AT_EMPTY_PATH) == 0 ? 0 : errno;
}

/* Owner, exact mode and times (as the record asks) through the directory's own fd, if rel
 * still names the directory the record was made for. 0 or an errno value. */
static int apply_meta(escp_dest *d, const meta_rec *m) {
  int made, err = 0, own = 0, fd = d->root_fd;
  if (*m->rel) {
    fd = walk(d->root_fd, m->rel, strlen(m->rel), 0, &made, &err);
    if (fd < 0) return err ? err : EPERM;
    own = 1;
  }
  struct stat st;
  mode_t bits = (mode_t)(m->meta[ESCP_META_MODE] & (m->created ? 07777 : 0777));
  struct timespec ts[2] = {{m->meta[ESCP_META_ATIME_S], m->meta[ESCP_META_ATIME_NS]},
                           {m->meta[ESCP_META_MTIME_S], m->meta[ESCP_META_MTIME_NS]}};
  if (fstat(fd, &st) < 0) err = errno;
  else if (st.st_dev != m->dev || st.st_ino != m->ino) err = ESTALE; /* swapped: not ours */
  else if (m->keep & ESCP_DEST_KEEP_OWNER) err = escp_dest_chown(fd, m->meta);
  if (!err && (m->keep & ESCP_DEST_KEEP_MODE) && (fchmod(fd, bits) < 0 || futimens(fd, ts) < 0)) err = errno;
  if (own) close(fd);
  return err;
}

/* Keep a record; past the byte cap, apply (and drop) the oldest first. Under mu. */
static int keep_record(escp_dest *d, const char *rel, size_t len, const int64_t *meta, int keep, int created,
                       uint64_t tag, const struct stat *st) {
  while (d->n > 0 && d->bytes + len + 1 > ESCP_DEST_META_BYTES) {
    meta_rec *old = &d->rec[d->head];
    (void)apply_meta(d, old); /* early: its mtime may still move; bounded memory wins */
    d->bytes -= strlen(old->rel) + 1;
    free(old->rel);
    d->head = (d->head + 1) % d->cap;
    d->n--;
  }
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 64;
    meta_rec *nr = malloc(cap * sizeof *nr);
    if (!nr) return ESCP_E_NOMEM;
    for (size_t i = 0; i < d->n; i++) nr[i] = d->rec[(d->head + i) % d->cap];
    free(d->rec);
    d->rec = nr;
    d->cap = cap;
    d->head = 0;
  }
  meta_rec *m = &d->rec[(d->head + d->n) % d->cap];
  if (!(m->rel = malloc(len + 1))) return ESCP_E_NOMEM;
  memcpy(m->rel, rel, len);
  m->rel[len] = 0;
  memcpy(m->meta, meta, sizeof m->meta);
  m->created = created;
  m->keep = keep;
  m->tag = tag;
  m->dev = st->st_dev;
  m->ino = st->st_ino;
  d->n++;
  d->bytes += len + 1;
  return ESCP_OK;
}

int escp_dest_mkdir(escp_dest *d, const char *rel, const int64_t *meta, int keep_meta, uint64_t tag, int *err) {
  return escp_dest_mkdir_fn(d, rel, meta, keep_meta, tag, NULL, NULL, err);
}

int escp_dest_mkdir_fn(escp_dest *d, const char *rel, const int64_t *meta, int keep_meta, uint64_t tag,
                       int (*fn)(void *arg, int fd), void *arg, int *err) {
  *err = 0;
  size_t len = strlen(rel);
  if (len > 0 && !escp_dest_name_ok(rel)) return ESCP_E_PATH;
  pthread_mutex_lock(&d->mu);
  escp_dirref *r = NULL;
  int made = 0;
  int rc = d->root_fd < 0 ? ESCP_E_STATE : lookup(d, rel, len, 1, &r, &made, err);
  if (len == 0) made = d->root_created; /* "" is the root itself */
  struct stat st;
  if (rc == ESCP_OK && keep_meta && meta && fstat(r->fd, &st) < 0) rc = sys_fail(err, errno);
  if (rc == ESCP_OK && keep_meta && meta) rc = keep_record(d, rel, len, meta, keep_meta, made, tag, &st);
  int e = rc == ESCP_OK && fn ? fn(arg, r->fd) : 0;
  if (e) *err = e, rc = ESCP_E_SYS;
  if (r && r->kind != REF_ROOT) {
    if (--r->refs == 0 && r->kind == REF_TEMP) {
      close(r->fd);
      free(r->rel);
      free(r);
    }
  }
  pthread_mutex_unlock(&d->mu);
  return rc;
}

int escp_dest_dirs_finish(escp_dest *d, uint64_t *failed, int cap) {
  int n_failed = 0;
  pthread_mutex_lock(&d->mu);
  while (d->n > 0) {
    meta_rec *m = &d->rec[(d->head + d->n - 1) % d->cap]; /* latest first: children before parents */
    int err = d->root_fd >= 0 ? apply_meta(d, m) : 0;
    if (err && 2 * (n_failed + 1) <= cap) {
      failed[2 * n_failed] = m->tag;
      failed[2 * n_failed + 1] = (uint64_t)err;
    }
    n_failed += err != 0;
    d->bytes -= strlen(m->rel) + 1;
    free(m->rel);
    d->n--;
  }
  pthread_mutex_unlock(&d->mu);
  return n_failed;
}
