/* io.h — the file I/O engine vtable used by the sender (read side) and receiver (write
 * side): POSIX (pread/pwrite, O_DIRECT with per-file fallback) or dummy (no disk). */
#ifndef ESCP_IO_H
#define ESCP_IO_H
#include <stddef.h>
#include <stdint.h>

#define ESCP_IO_ALIGN 4096 /* O_DIRECT buffer/offset/length alignment, bytes */

/* What the sender compares at open and when a file's last block is done, to catch a
 * source that grew, shrank, was rewritten or replaced while it was being sent. */
typedef struct escp_fstat {
  uint64_t size;               /* bytes */
  uint64_t ino, dev;
  int64_t mtime_ns, ctime_ns;  /* ns since the epoch */
  uint64_t alloc;              /* bytes allocated (st_blocks x 512): < size means holes */
  int regular;                 /* S_ISREG: only regular files are checked */
} escp_fstat;

typedef struct escp_io {
  const char *name;
  /* *direct in: 1 to try O_DIRECT; out: whether the fd really has it (EINVAL → retried
   * without). Returns 0 or an errno value. */
  int (*open_read)(const char *path, int *direct, int *fd_out);
  /* A new file in directory dirfd for writing, with mode (minus the umask): unnamed
   * (O_TMPFILE: no name until link_tmp gives it one; it vanishes if the process dies first)
   * when name is NULL, else O_CREAT|O_EXCL|O_NOFOLLOW under that name (never an existing
   * entry, never through a symlink). O_DIRECT is added afterwards when *direct is 1 and
   * the filesystem takes it (*direct says whether it did). Returns 0 or an errno value
   * (EOPNOTSUPP/EISDIR/EINVAL for an unnamed file: no O_TMPFILE on this filesystem). */
  int (*open_tmp)(int dirfd, const char *name, unsigned mode, int *direct, int *fd_out);
  /* Give the unnamed file fd the name `name` in dirfd (never replaces: EEXIST). */
  int (*link_tmp)(int fd, int dirfd, const char *name);
  /* Read up to len bytes at off, looping until len or end of file. direct = the fd has
   * O_DIRECT (a short aligned read then means EOF). Returns bytes read or -errno. */
  int64_t (*pread)(int fd, void *buf, size_t len, uint64_t off, int direct);
  /* Write all len bytes at off. Returns len or -errno. */
  int64_t (*pwrite)(int fd, const void *buf, size_t len, uint64_t off);
  int (*truncate)(int fd, uint64_t size);   /* 0 or errno */
  int (*drop_direct)(int fd);               /* clear O_DIRECT on an open fd: 0 or errno */
  void (*close)(int fd);
  /* fstat / stat into *out: 0 or errno. ENOSYS = this engine cannot tell (dummy). */
  int (*fstat)(int fd, escp_fstat *out);
  int (*stat)(const char *path, escp_fstat *out);
  /* The first offset >= off that holds data (lseek SEEK_DATA), or -errno: -ENXIO = only a
   * hole from off to the end. An engine or filesystem without holes returns off. */
  int64_t (*seek_data)(int fd, uint64_t off);
} escp_io;

extern const escp_io escp_io_posix;
extern const escp_io escp_io_dummy;

#endif
