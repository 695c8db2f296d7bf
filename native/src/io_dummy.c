/* io_dummy.c — a file engine with no disk: opens always succeed, reads return the
 * requested length of zeros, writes are discarded. For benchmarks of the network + crypto
 * path alone. Zeros, not whatever the buffer holds: block buffers are encrypted in place, so
 * a reused one holds ciphertext, and `--ioengine dummy::posix` promises zeros on disk (a
 * memset per block costs far less than the block's AEAD). */
#include <errno.h>
#include <string.h>
#include "io.h"

static int dm_open(const char *path, int *direct, int *fd_out) {
  (void)path;
  *direct = 0;
  *fd_out = -1; /* never a real descriptor: nothing must be closed */
  return 0;
}

static int dm_open_tmp(int dirfd, const char *name, unsigned mode, int *direct, int *fd_out) {
  (void)dirfd, (void)mode;
  return dm_open(name, direct, fd_out);
}

static int dm_link_tmp(int fd, int dirfd, const char *name) {
  (void)fd, (void)dirfd, (void)name;
  return 0;
}

static int64_t dm_pread(int fd, void *buf, size_t len, uint64_t off, int direct) {
  (void)fd, (void)off, (void)direct;
  memset(buf, 0, len);
  return (int64_t)len;
}

static int64_t dm_pwrite(int fd, const void *buf, size_t len, uint64_t off) {
  (void)fd, (void)buf, (void)off;
  return (int64_t)len;
}

static int dm_truncate(int fd, uint64_t size) {
  (void)fd, (void)size;
  return 0;
}

static int dm_drop_direct(int fd) {
  (void)fd;
  return 0;
}

static void dm_close(int fd) { (void)fd; }

/* No file behind the descriptor: nothing to compare, the sender skips its change checks. */
static int dm_fstat(int fd, escp_fstat *out) {
  (void)fd, (void)out;
  return ENOSYS;
}

static int dm_stat(const char *path, escp_fstat *out) {
  (void)path, (void)out;
  return ENOSYS;
}

static int64_t dm_seek_data(int fd, uint64_t off) {
  (void)fd;
  return (int64_t)off; /* no holes */
}

/* The receiver never calls open_tmp/link_tmp with this engine (nothing is written). */
const escp_io escp_io_dummy = {"dummy", dm_open, dm_open_tmp, dm_link_tmp, dm_pread, dm_pwrite,
                               dm_truncate, dm_drop_direct, dm_close, dm_fstat, dm_stat, dm_seek_data};
