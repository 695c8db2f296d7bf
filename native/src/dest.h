/* dest.h — the receiver's destination, touched only through directory fds. The root is
 * opened once; every name below it is relative and resolved one component at a time with
 * O_NOFOLLOW|O_DIRECTORY from the root fd (or from a cached fd of one of its ancestors), so
 * a symlink or a non-directory anywhere below the root is refused (ESCP_E_PATH) whatever a
 * local user swaps in while the session runs. Under a jail (server --restrict DIR) the
 * root itself is resolved the same way beneath DIR.
 * Open directory fds are bounded: a cache of ESCP_DEST_CACHE parents (LRU among the unused)
 * plus one per caller holding a reference. -p directory metadata is kept as records (at
 * most ESCP_DEST_META_BYTES of names; beyond that the oldest records are applied early).
 * Thread-safe: one mutex; walks run under it (a cache miss costs a few openat calls). */
#ifndef ESCP_DEST_H
#define ESCP_DEST_H
#include <stdint.h>

#define ESCP_DEST_CACHE 128                /* cached directory fds (> T+1 concurrent users) */
#define ESCP_DEST_META_BYTES (64u << 20)  /* -p directory records kept for the end, bytes */

typedef struct escp_dest escp_dest;
typedef struct escp_dirref escp_dirref; /* a referenced directory fd: put it back after use */

escp_dest *escp_dest_new(void);
void escp_dest_free(escp_dest *d); /* closes every fd; NULL is a no-op */

/* Every function returning int: ESCP_OK, ESCP_E_PATH (bad name, symlink or non-directory
 * below the root / jail), ESCP_E_STATE (no root yet), ESCP_E_NOMEM, or ESCP_E_SYS with
 * *err = errno. */
int escp_dest_jail(escp_dest *d, const char *dir, int *err);
int escp_dest_probe(escp_dest *d, const char *path, int *kind, int *err);
int escp_dest_root(escp_dest *d, const char *path, int create, int *err);
/* The directory that holds rel (its parent, created with mkdir -p when create), with a
 * reference; *leaf points into rel at its last segment. */
int escp_dest_parent(escp_dest *d, const char *rel, int create, escp_dirref **ref, const char **leaf, int *err);
int escp_dirref_fd(const escp_dirref *r);
void escp_dest_put(escp_dest *d, escp_dirref *r);
/* What a directory record applies (escp_dest_mkdir's keep_meta, a mask; 0 = no record). */
#define ESCP_DEST_KEEP_MODE 1  /* -p: exact mode and times */
#define ESCP_DEST_KEEP_OWNER 2 /* ESCP_P_OWNER: uid and gid, before the mode */
/* mkdir -p rel; remember meta (ESCP_META_*) and tag (the caller's name for it, e.g. its
 * file number) for escp_dest_dirs_finish when keep_meta (ESCP_DEST_KEEP_*). */
int escp_dest_mkdir(escp_dest *d, const char *rel, const int64_t *meta, int keep_meta, uint64_t tag, int *err);
/* The same, then fn(arg, fd of rel) when fn: a non-zero errno it returns is ESCP_E_SYS (the
 * directory stays, its record too). Under the destination's lock: fn must not call back. */
int escp_dest_mkdir_fn(escp_dest *d, const char *rel, const int64_t *meta, int keep_meta, uint64_t tag,
                       int (*fn)(void *arg, int fd), void *arg, int *err);
/* chown the file fd refers to (any kind of fd, O_PATH included: a symlink itself) to meta's
 * ESCP_META_UID/GID. 0 or an errno value (EINVAL: an id out of range). */
int escp_dest_chown(int fd, const int64_t *meta);
/* Apply the kept directory records, latest first (children before parents): owner (first:
 * chown may clear set-id bits), exact mode (set-id/sticky bits only on directories this
 * session created) and times, as each record asks, through each directory's own fd, and only
 * if rel still names the directory the record was made for (else ESTALE). Best effort, like
 * scp -p: returns how many failed; the first cap/2 failures go to failed[] as (tag, errno)
 * pairs (failed may be NULL with cap 0). Records applied early (past the byte cap) are not
 * reported. */
int escp_dest_dirs_finish(escp_dest *d, uint64_t *failed, int cap);
/* 1 when rel is a relative name the receiver accepts: no empty, "." or ".." segment, no
 * leading "/", segments <= ESCP_MAX_SEGMENT, whole <= ESCP_MAX_PATH bytes. */
int escp_dest_name_ok(const char *rel);

#endif
