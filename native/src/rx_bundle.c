/* rx_bundle.c — receiver role, small files in bundles (escp.h "small files in bundles"):
 * the directories TypeScript announced, remembered by file number (dir_add / dir_refuse on
 * the JS thread), and the stream threads' handling of a DATA frame flagged BUNDLE: the whole
 * body is checked first (bundle.h), then each record is stored through the one commit path
 * (escp__rx_store_whole: create, write, metadata, verify, name) and the bundle's report is
 * queued for escp_rx_bundle_take. Memory: one record per remembered directory (its name);
 * reports bounded by ESCP_REPORTS_MAX (a stream waits for take beyond it); nothing else is
 * allocated from the peer's lengths (a report is never larger than its bundle's body). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "b3.h"
#include "le.h"
#include "rx.h"

enum { DIR_OK = 0, DIR_FAILED = 1, DIR_REFUSED = 2, DIR_FORGOTTEN = 3 };

typedef struct rx_dir {
  escp_hnode h;                    /* key: its fino (dmu); never removed before rx_free */
  int state;                       /* DIR_* */
  int32_t status;                  /* DIR_FAILED: what dir_add returned */
  int err;                         /* ... and its errno */
  size_t len;
  char rel[];                      /* DIR_OK: its name below the root ("" = the root) */
} rx_dir;

void escp__rx_bundle_new(struct escp_rx *r) {
  /* ESCP_DIRS_LIMIT=N (tests): remember fewer directories, to reach the limit cheaply */
  const char *lim = getenv("ESCP_DIRS_LIMIT");
  long v = lim ? strtol(lim, NULL, 10) : 0;
  r->dirs_max = v > 0 && v < ESCP_DIRS_MAX ? (size_t)v : ESCP_DIRS_MAX;
  pthread_mutex_init(&r->dmu, NULL);
  escp__cond_init_mono(&r->dcv); /* timed waits for a directory not yet announced */
  escp__rq_init(&r->rq);
}

void escp__rx_bundle_free(struct escp_rx *r) {
  escp__htab_free(&r->dirs);
  escp__rq_free(&r->rq);
  pthread_mutex_destroy(&r->dmu);
  pthread_cond_destroy(&r->dcv);
}

void escp__rx_bundle_wake(struct escp_rx *r) {
  pthread_mutex_lock(&r->dmu);
  pthread_cond_broadcast(&r->dcv);
  pthread_mutex_unlock(&r->dmu);
  escp__rq_wake(&r->rq);
}

/* Under dmu. */
static rx_dir *dir_find(const struct escp_rx *r, uint64_t fino) { return (rx_dir *)escp__htab_find(&r->dirs, fino); }

int32_t escp__rx_dir_room(escp_session *s, uint64_t fino, const char *rel) {
  struct escp_rx *r = s->rx;
  size_t need = (rel ? strlen(rel) : 0) + 1;
  pthread_mutex_lock(&r->dmu);
  int32_t rc = dir_find(r, fino) ? ESCP_E_DUP
               : r->dirs.count >= r->dirs_max || r->dir_bytes + need > (size_t)ESCP_DIRS_BYTES ? 1 : ESCP_OK;
  if (rc == 1 && fino > r->dir_top) { /* made, not remembered: records naming it fail, never wait */
    r->dir_top = fino;
    pthread_cond_broadcast(&r->dcv);
  }
  pthread_mutex_unlock(&r->dmu);
  return rc;
}

int32_t escp__rx_dir_note(escp_session *s, uint64_t fino, const char *rel, int32_t rc, int err) {
  struct escp_rx *r = s->rx;
  size_t len = rel && rc == ESCP_OK ? strlen(rel) : 0;
  rx_dir *d = malloc(sizeof *d + len + 1);
  if (!d) return ESCP_E_NOMEM;
  *d = (rx_dir){.h = {NULL, fino}, .state = !rel ? DIR_REFUSED : rc == ESCP_OK ? DIR_OK : DIR_FAILED, .status = rc,
                .err = err, .len = len};
  memcpy(d->rel, rel && rc == ESCP_OK ? rel : "", len + 1);
  pthread_mutex_lock(&r->dmu);
  int ok = escp__htab_add(&r->dirs, &d->h, ESCP_DIRS_MAX);
  if (ok) {
    r->dir_bytes += (rel ? strlen(rel) : 0) + 1;
    if (fino > r->dir_top) r->dir_top = fino;
    pthread_cond_broadcast(&r->dcv); /* a stream may be waiting for it */
  }
  pthread_mutex_unlock(&r->dmu);
  if (!ok) free(d);
  return ok ? ESCP_OK : ESCP_E_NOMEM;
}

/* Remember fino as a directory TypeScript refused: records naming it fail (escp.h). */
ESCP_API int32_t escp_rx_dir_refuse(void *h, uint64_t fino) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER || !s->param[ESCP_P_BUNDLE]) return ESCP_E_STATE;
  if (fino == 0) return ESCP_E_INVAL;
  int32_t rc = escp__rx_dir_room(s, fino, NULL);
  return rc == ESCP_OK ? escp__rx_dir_note(s, fino, NULL, ESCP_E_PATH, 0) : rc == 1 ? ESCP_OK : rc;
}

/* Move bundle reports (whole groups) into out (escp.h). JS thread. */
ESCP_API int32_t escp_rx_bundle_take(void *h, uint8_t *out, int32_t cap) {
  escp_session *s = escp__session(h);
  if (!s || cap < 0 || (cap > 0 && !out)) return ESCP_E_INVAL;
  if (s->role != ESCP_ROLE_RECEIVER) return ESCP_E_STATE;
  return escp__rq_take(&s->rx->rq, out, cap);
}

/* What a record naming a directory made but not remembered (past ESCP_DIRS_MAX or
 * ESCP_DIRS_BYTES) gets: it fails at once. */
static const rx_dir forgotten = {.state = DIR_FORGOTTEN};

/* The directory fino, waiting (up to the timeout) for its registration — unless a later one
 * was taken already (directories are announced in fino order: one not remembered by then
 * never will be). NULL: timeout or stop. Entries live until rx_free, so the pointer stays valid. */
static const rx_dir *dir_wait(escp_session *s, uint64_t fino) {
  struct escp_rx *r = s->rx;
  struct timespec dl;
  int late = 0, armed = 0;
  pthread_mutex_lock(&r->dmu);
  const rx_dir *d;
  while (!(d = dir_find(r, fino)) && !escp__stopping(s) && !late) {
    if (fino <= r->dir_top) {
      d = &forgotten;
      break;
    }
    if (!armed) escp__deadline(&dl, (uint64_t)s->param[ESCP_P_TIMEOUT_MS]), armed = 1;
    late = pthread_cond_timedwait(&r->dcv, &r->dmu, &dl) == ETIMEDOUT;
  }
  pthread_mutex_unlock(&r->dmu);
  return d;
}

/* A leaf the receiver names a file with: no '/', no NUL, not "." or "..". (Its length,
 * 1..ESCP_MAX_SEGMENT, was checked with the body.) */
static int leaf_ok(const uint8_t *leaf, size_t n) {
  if ((n == 1 && leaf[0] == '.') || (n == 2 && leaf[0] == '.' && leaf[1] == '.')) return 0;
  return !memchr(leaf, '/', n) && !memchr(leaf, 0, n);
}

static void br_fail(uint8_t *e, int32_t status, int err, const char *what) {
  escp_put32(e + ESCP_BR_STATUS, (uint32_t)status);
  escp_put32(e + ESCP_BR_ERRNO, (uint32_t)err);
  strncpy((char *)e + ESCP_BR_WHAT, what, ESCP_BR_LEAF_LEN - ESCP_BR_WHAT);
}

/* Store record r (its directory d) of bundle `bundle`, index i; its report entry at e (zeroed,
 * dir/size/leaf filled). Returns the bytes written (0 if it failed). */
static uint64_t rec_store(escp_session *s, escp_prof_ring *pr, uint64_t bundle, uint32_t i, const escp_brec *r,
                          const rx_dir *d, uint8_t *e) {
  if (d->state == DIR_REFUSED || (d->state == DIR_FAILED && d->status == ESCP_E_PATH)) {
    br_fail(e, ESCP_E_PATH, d->err, "directory");
    return 0;
  }
  if (d->state == DIR_FORGOTTEN) {
    br_fail(e, ESCP_E_PATH, 0, "too many dirs");
    return 0;
  }
  if (d->state == DIR_FAILED) {
    br_fail(e, ESCP_E_WRITE, d->err, "directory");
    return 0;
  }
  char rel[ESCP_MAX_PATH + 1];
  size_t pre = d->len ? d->len + 1 : 0;
  if (!leaf_ok(r->leaf, r->leaf_len) || pre + r->leaf_len > ESCP_MAX_PATH) {
    br_fail(e, ESCP_E_PATH, 0, "name");
    return 0;
  }
  memcpy(rel, d->rel, d->len);
  if (d->len) rel[d->len] = '/';
  memcpy(rel + pre, r->leaf, r->leaf_len);
  rel[pre + r->leaf_len] = 0;
  uint8_t root[32] = {0}, cv[32];
  uint64_t t = escp__prof_t0(pr);
  if (s->param[ESCP_P_CHECKSUM]) {
    escp_b3_block(r->data, (size_t)r->size, 0, cv, root);
    t = escp__prof_end(pr, ESCP_STG_HASH, t, r->size);
    memcpy(e + ESCP_BR_DIGEST, root, 32);
    if (memcmp(root, r->digest, 32) != 0) { /* corrupt or lying: nothing is made */
      br_fail(e, ESCP_E_DIGEST, 0, "digest");
      return 0;
    }
  }
  rx_file f;
  memset(&f, 0, sizeof f);
  f.fino = 0x8000000000000000ull | (bundle << 12) | i; /* for a temporary's name only */
  f.rel = rel;
  f.size = f.nblocks = r->size;
  f.fd = f.pfd = f.jfd = -1;
  f.meta[ESCP_META_MODE] = r->mode;
  f.meta[ESCP_META_ATIME_S] = r->atime_s, f.meta[ESCP_META_ATIME_NS] = r->atime_ns;
  f.meta[ESCP_META_MTIME_S] = r->mtime_s, f.meta[ESCP_META_MTIME_NS] = r->mtime_ns;
  f.meta[ESCP_META_UID] = r->uid, f.meta[ESCP_META_GID] = r->gid;
  memcpy(f.want, r->digest, 32);
  f.have_want = 1;
  escp__rx_store_whole(s, &f, r->data, root);
  escp__prof_end(pr, ESCP_STG_WRITE, t, f.status == ESCP_OK ? r->size : 0);
  if (f.status != ESCP_OK) {
    br_fail(e, f.status, f.sys_errno, f.status == ESCP_E_DIGEST ? "digest" : f.what ? f.what : "error");
    return 0;
  }
  return r->size;
}

int escp__rx_bundle(escp_session *s, escp_stream *st, const escp_data_hdr *dh, const uint8_t *body) {
  uint32_t count = 0;
  if (!s->param[ESCP_P_BUNDLE] ||
      escp__bundle_check(body, dh->len, (uint32_t)s->param[ESCP_P_BLOCK_SIZE], &count) != ESCP_OK) {
    escp__reject(s, st->idx, ESCP_E_PROTO, s->param[ESCP_P_BUNDLE] ? "malformed bundle" : "a bundle without bundles on");
    return -1;
  }
  size_t len = ESCP_BG_HDR, pos = ESCP_BUNDLE_HDR;
  escp_brec r;
  for (uint32_t i = 0; i < count; i++) { /* the report's size: no larger than the body */
    escp__bundle_next(body, &pos, &r);
    len += ESCP_BR_ENT + ESCP_BUNDLE_PAD8(r.leaf_len);
  }
  escp_rq_ent *g = escp__rq_alloc(len, dh->fino, count);
  if (!g) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, (uint32_t)st->idx, 0, "bundle report");
    shutdown(st->fd, SHUT_RDWR);
    return -1;
  }
  const rx_dir *d = NULL;
  uint64_t bytes = 0;
  uint8_t *e = g->b + ESCP_BG_HDR;
  pos = ESCP_BUNDLE_HDR;
  for (uint32_t i = 0; i < count; i++) {
    escp__bundle_next(body, &pos, &r);
    escp_put64(e + ESCP_BR_DIR, r.dir);
    escp_put64(e + ESCP_BR_SIZE, r.size);
    escp_put16(e + ESCP_BR_LEAF_LEN, r.leaf_len);
    memcpy(e + ESCP_BR_ENT, r.leaf, r.leaf_len);
    if (!d || d->h.key != r.dir) {
      uint64_t t = escp__prof_t0(st->prof);
      d = dir_wait(s, r.dir);
      escp__prof_end(st->prof, ESCP_STG_IDLE, t, 0);
    }
    if (!d) {
      free(g);
      if (escp__stopping(s)) return 0;
      char t[56];
      snprintf(t, sizeof t, "bundle names directory #%llu, never announced", (unsigned long long)r.dir);
      escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_PROTO, 0, (uint32_t)st->idx, r.dir, t);
      shutdown(st->fd, SHUT_RDWR); /* the sender's blocked send fails instead of hanging */
      return -1;
    }
    bytes += rec_store(s, st->prof, dh->fino, i, &r, d, e);
    e += ESCP_BR_ENT + ESCP_BUNDLE_PAD8(r.leaf_len);
  }
  escp__stat_add(s, ESCP_S_BYTES_FILE, bytes);
  escp__stat_add(s, ESCP_S_FILES_DONE, count);
  escp__rq_push(&s->rx->rq, g, &s->stop);
  return 1;
}
