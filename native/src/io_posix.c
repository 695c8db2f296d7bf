/* io_posix.c — file engine over pread/pwrite with O_DIRECT when asked, falling back per
 * file when the filesystem refuses it (EINVAL at open or at the first I/O). */
#define _GNU_SOURCE /* O_DIRECT, accept4 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io.h"

static int open_common(const char *path, int flags, unsigned mode, int *direct, int *fd_out) {
  int fd = -1;
  if (*direct) {
    fd = open(path, flags | O_DIRECT | O_CLOEXEC, (mode_t)mode);
    if (fd < 0 && errno != EINVAL) return errno;
  }
  if (fd < 0) {
    *direct = 0;
    do fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
  }
  *fd_out = fd;
  return 0;
}

static int px_open_read(const char *path, int *direct, int *fd_out) {
  return open_common(path, O_RDONLY, 0, direct, fd_out);
}

static int px_open_tmp(int dirfd, const char *name, unsigned mode, int *direct, int *fd_out) {
  int fd;
  do fd = name ? openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode)
               : openat(dirfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, (mode_t)mode);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  /* O_DIRECT after the fact: an O_EXCL open must not be retried (the first try created it). */
  int fl = *direct ? fcntl(fd, F_GETFL) : -1;
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) *direct = 0;
  *fd_out = fd;
  return 0;
}

static int px_link_tmp(int fd, int dirfd, const char *name) {
  char proc[40]; /* works unprivileged; AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH */
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0) return 0;
  int err = errno;
  if (err == ENOENT && linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0) return 0; /* no /proc */
  return err;
}

static int64_t px_pread(int fd, void *buf, size_t len, uint64_t off, int direct) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) break;
    got += (size_t)r;
    /* O_DIRECT: a read that stops off alignment hit EOF; reading on would be EINVAL. */
    if (direct && got % ESCP_IO_ALIGN) break;
  }
  return (int64_t)got;
}

static int64_t px_pwrite(int fd, const void *buf, size_t len, uint64_t off) {
  size_t put = 0;
  while (put < len) {
    ssize_t r = pwrite(fd, (const char *)buf + put, len - put, (off_t)(off + put));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return -EIO;
    put += (size_t)r;
  }
  return (int64_t)put;
}

static int px_truncate(int fd, uint64_t size) {
  struct stat st; /* sinks such as /dev/null cannot be truncated and need not be */
  if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) return 0;
  int r;
  do r = ftruncate(fd, (off_t)size);
  while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

static int px_drop_direct(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0) return errno;
  return 0;
}

static void px_close(int fd) {
  if (fd >= 0) close(fd);
}

static void px_fill(const struct stat *st, escp_fstat *out) {
  out->size = (uint64_t)st->st_size;
  out->ino = (uint64_t)st->st_ino;
  out->dev = (uint64_t)st->st_dev;
  out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
  out->alloc = (uint64_t)st->st_blocks * 512u;
  out->regular = S_ISREG(st->st_mode);
}

static int px_fstat(int fd, escp_fstat *out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return errno;
  px_fill(&st, out);
  return 0;
}

static int px_stat(const char *path, escp_fstat *out) {
  struct stat st;
  if (stat(path, &st) < 0) return errno;
  px_fill(&st, out);
  return 0;
}

static int64_t px_seek_data(int fd, uint64_t off) {
  off_t r = lseek(fd, (off_t)off, SEEK_DATA); /* the return value is this call's own */
  if (r >= 0) return (int64_t)r;
  return errno == EINVAL ? (int64_t)off : -errno; /* EINVAL: no SEEK_DATA here, all data */
}

const escp_io escp_io_posix = {"posix", px_open_read, px_open_tmp, px_link_tmp, px_pread, px_pwrite,
                               px_truncate, px_drop_direct, px_close, px_fstat, px_stat, px_seek_data};
