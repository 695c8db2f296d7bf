/* scan.c — the sender's directory listing (escp_dir_scan): every name of one directory with
 * its stat, in one call, so the walk in TypeScript makes one FFI call per directory instead
 * of a stat call (and a BigInt stat object) per entry. Names come sorted by their bytes.
 * Any thread; no session; no state kept between calls. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escp.h"
#include "le.h"

#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* All names of the open directory d ("." and ".." left out) into *names (one block: the
 * pointers, then the strings). 0 or an errno value. */
static int list_names(DIR *d, char ***names, size_t *n) {
  size_t cap = 64, count = 0, bytes = 0, bcap = 4096;
  char **v = malloc(cap * sizeof *v);
  char *pool = malloc(bcap);
  size_t *off = malloc(cap * sizeof *off);
  if (!v || !pool || !off) goto nomem;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno) {
        int err = errno;
        free(v), free(pool), free(off);
        return err;
      }
      break;
    }
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    size_t len = strlen(e->d_name) + 1;
    if (count == cap) {
      cap *= 2;
      char **nv = realloc(v, cap * sizeof *v);
      if (nv) v = nv;
      size_t *no = realloc(off, cap * sizeof *off);
      if (no) off = no;
      if (!nv || !no) goto nomem;
    }
    if (bytes + len > bcap) {
      while (bytes + len > bcap) bcap *= 2;
      char *np = realloc(pool, bcap);
      if (!np) goto nomem;
      pool = np;
    }
    memcpy(pool + bytes, e->d_name, len);
    off[count++] = bytes;
    bytes += len;
  }
  /* one block: pointers then strings, so the caller frees once */
  char **out = malloc(count * sizeof *out + bytes + 1);
  if (!out) goto nomem;
  char *strs = (char *)(out + count);
  memcpy(strs, pool, bytes);
  for (size_t i = 0; i < count; i++) out[i] = strs + off[i];
  free(v), free(pool), free(off);
  qsort(out, count, sizeof *out, by_name);
  *names = out;
  *n = count;
  return 0;
nomem:
  free(v), free(pool), free(off);
  return ENOMEM;
}

static void put_stat(uint8_t *e, const struct stat *st) {
  escp_put64(e + ESCP_DS_SIZE, (uint64_t)st->st_size);
  escp_put64(e + ESCP_DS_INO, (uint64_t)st->st_ino);
  escp_put64(e + ESCP_DS_DEV, (uint64_t)st->st_dev);
  escp_put64(e + ESCP_DS_MTIME_S, (uint64_t)(int64_t)st->st_mtim.tv_sec);
  escp_put64(e + ESCP_DS_ATIME_S, (uint64_t)(int64_t)st->st_atim.tv_sec);
  escp_put32(e + ESCP_DS_MTIME_NS, (uint32_t)st->st_mtim.tv_nsec);
  escp_put32(e + ESCP_DS_ATIME_NS, (uint32_t)st->st_atim.tv_nsec);
  escp_put32(e + ESCP_DS_MODE, (uint32_t)st->st_mode);
  escp_put32(e + ESCP_DS_UID, (uint32_t)st->st_uid);
  escp_put32(e + ESCP_DS_GID, (uint32_t)st->st_gid);
  escp_put32(e + ESCP_DS_NLINK, st->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)st->st_nlink);
}

/* Queue the reads of a small file without waiting for them: a cold tree's files are then
 * fetched many at a time (the disk's queue kept full) while the walk and the ssh login go
 * on, instead of one synchronous read each later. Non-blocking open (the name may have
 * become a FIFO since its stat). 1 when the hint was given. */
static int read_ahead(int dfd, const char *name, int nofollow, off_t size) {
  int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
  if (fd < 0) return 0;
  int ok = posix_fadvise(fd, 0, size, POSIX_FADV_WILLNEED) == 0;
  close(fd);
  return ok;
}

ESCP_API int32_t escp_dir_scan(const char *path, int32_t nofollow, int32_t ra_kib, uint8_t *out, int32_t cap, int32_t *err) {
  int e0 = 0;
  if (!err) err = &e0;
  *err = 0;
  if (!path || cap < 0 || (cap > 0 && !out) || ra_kib < 0) return ESCP_E_INVAL;
  int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    *err = errno;
    return ESCP_E_SYS;
  }
  DIR *d = fdopendir(dfd);
  if (!d) {
    *err = errno;
    close(dfd);
    return ESCP_E_SYS;
  }
  char **names = NULL;
  size_t n = 0;
  int rc = list_names(d, &names, &n);
  if (rc) {
    closedir(d);
    *err = rc;
    return rc == ENOMEM ? ESCP_E_NOMEM : ESCP_E_SYS;
  }
  size_t need = 0;
  for (size_t i = 0; i < n; i++) need += ESCP_DS_ENT + PAD8(strlen(names[i]));
  if (need > (size_t)cap || need > INT32_MAX) {
    closedir(d);
    free(names);
    *err = need > INT32_MAX ? INT32_MAX : (int32_t)need;
    return ESCP_E_TOOBIG;
  }
  size_t at = 0;
  int flags = nofollow ? AT_SYMLINK_NOFOLLOW : 0;
  uint64_t ra = (uint64_t)ra_kib * 1024u;
  for (size_t i = 0; i < n; i++) {
    uint8_t *e = out + at;
    size_t len = strlen(names[i]);
    memset(e, 0, ESCP_DS_ENT + PAD8(len));
    struct stat st;
    if (fstatat(dirfd(d), names[i], &st, flags) == 0) {
      put_stat(e, &st);
      if (S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= ESCP_RA_FILE_MAX) {
        uint16_t fl = ESCP_DS_F_RA_SMALL;
        if ((uint64_t)st.st_size > ra) ra = 0; /* the budget ends at the first file past it */
        else if (read_ahead(dirfd(d), names[i], nofollow, st.st_size)) {
          ra -= (uint64_t)st.st_size;
          fl |= ESCP_DS_F_RA;
        }
        escp_put16(e + ESCP_DS_FLAGS, fl);
      }
    } else {
      escp_put32(e + ESCP_DS_ERRNO, (uint32_t)errno);
    }
    escp_put16(e + ESCP_DS_NAME_LEN, (uint16_t)len);
    memcpy(e + ESCP_DS_ENT, names[i], len);
    at += ESCP_DS_ENT + PAD8(len);
  }
  closedir(d);
  free(names);
  return (int32_t)at;
}
