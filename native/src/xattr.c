/* xattr.c — packed extended attributes (xattr.h): the sender reads a file's into a blob
 * (escp_xattrs_read), the receiver checks a blob from the wire before keeping it and sets it
 * through the entry's own fd. Only this file parses the format. */
#define _GNU_SOURCE
#include "xattr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "escp.h"
#include "le.h"

#define HDR_NAME 1  /* u8 name length */
#define HDR_VALUE 4 /* u32 value length */
#define LIST_RETRIES 8

int escp_xattrs_check(const uint8_t *b, size_t len) {
  if (len > ESCP_XATTRS_MAX || (len && !b)) return ESCP_E_PROTO;
  for (size_t at = 0; at < len;) {
    size_t n = b[at];
    if (n == 0 || len - at < HDR_NAME + n + HDR_VALUE) return ESCP_E_PROTO;
    if (memchr(b + at + HDR_NAME, 0, n)) return ESCP_E_PROTO; /* a name with a NUL would be cut short */
    uint32_t v = escp_get32(b + at + HDR_NAME + n);
    at += HDR_NAME + n + HDR_VALUE;
    if (v > ESCP_XATTR_VALUE_MAX || len - at < v) return ESCP_E_PROTO;
    at += v;
  }
  return ESCP_OK;
}

int escp_xattrs_apply(int fd, const uint8_t *b, size_t len) {
  int all = geteuid() == 0; /* other namespaces (trusted., security.) need privileges */
  char name[256];
  for (size_t at = 0; at < len;) {
    size_t n = b[at];
    memcpy(name, b + at + HDR_NAME, n);
    name[n] = 0;
    uint32_t v = escp_get32(b + at + HDR_NAME + n);
    const uint8_t *val = b + at + HDR_NAME + n + HDR_VALUE;
    at += HDR_NAME + n + HDR_VALUE + v;
    if (!all && strncmp(name, "user.", 5) != 0) continue;
    if (fsetxattr(fd, name, val, v, 0) < 0) return errno;
  }
  return 0;
}

/* The name list of path (NUL-separated) in a malloc'd *out: its length, 0 = none, or -errno.
 * A list that grew between sizing and reading is read again, a bounded number of times. */
static ssize_t list_names(const char *path, int nofollow, char **out) {
  *out = NULL;
  for (int i = 0; i < LIST_RETRIES; i++) {
    ssize_t n = nofollow ? llistxattr(path, NULL, 0) : listxattr(path, NULL, 0);
    if (n <= 0) return n < 0 ? -errno : 0;
    char *buf = malloc((size_t)n);
    if (!buf) return -ENOMEM;
    ssize_t m = nofollow ? llistxattr(path, buf, (size_t)n) : listxattr(path, buf, (size_t)n);
    if (m >= 0) {
      *out = buf;
      return m;
    }
    int e = errno;
    free(buf);
    if (e != ERANGE) return -e;
  }
  return -ERANGE;
}

/* Pack path's attributes into out[0..cap). Each value is read straight into its place with
 * the room left: ERANGE there means it does not fit (it may have grown since it was listed,
 * which is the same answer), so no value is ever read twice. */
ESCP_API int32_t escp_xattrs_read(const char *path, int32_t nofollow, uint8_t *out, int32_t cap, int32_t *err) {
  int32_t dummy;
  if (!err) err = &dummy;
  *err = 0;
  if (!path || cap < 0 || (cap > 0 && !out)) return ESCP_E_INVAL;
  size_t lim = (size_t)cap < ESCP_XATTRS_MAX ? (size_t)cap : ESCP_XATTRS_MAX;
  char *names;
  ssize_t nl = list_names(path, nofollow, &names);
  if (nl == -ENOTSUP || nl == -ENODATA) return 0; /* no xattrs on this filesystem */
  if (nl == -ENOMEM) return ESCP_E_NOMEM;
  if (nl < 0) {
    *err = (int32_t)-nl;
    return ESCP_E_SYS;
  }
  int32_t rc = ESCP_OK;
  size_t at = 0;
  for (ssize_t i = 0; i < nl && rc == ESCP_OK;) {
    const char *name = names + i;
    size_t n = strnlen(name, (size_t)(nl - i));
    i += (ssize_t)n + 1;
    if (n == 0 || n > 255) continue; /* not a name the format (or the kernel) has */
    if (lim - at < HDR_NAME + n + HDR_VALUE) {
      rc = ESCP_E_TOOBIG;
      break;
    }
    size_t room = lim - at - HDR_NAME - n - HDR_VALUE;
    if (room > ESCP_XATTR_VALUE_MAX) room = ESCP_XATTR_VALUE_MAX;
    uint8_t *val = out + at + HDR_NAME + n + HDR_VALUE;
    /* size 0 asks for the length instead: with no room left only an empty value fits */
    ssize_t v = room ? (nofollow ? lgetxattr(path, name, val, room) : getxattr(path, name, val, room))
                     : (nofollow ? lgetxattr(path, name, NULL, 0) : getxattr(path, name, NULL, 0));
    if (v < 0 && errno == ENODATA) continue; /* removed since it was listed */
    if ((v < 0 && errno == ERANGE) || (!room && v > 0)) rc = ESCP_E_TOOBIG;
    else if (v < 0) *err = errno, rc = ESCP_E_SYS;
    if (rc != ESCP_OK) break;
    out[at] = (uint8_t)n;
    memcpy(out + at + HDR_NAME, name, n);
    escp_put32(out + at + HDR_NAME + n, (uint32_t)v);
    at += HDR_NAME + n + HDR_VALUE + (size_t)v;
  }
  free(names);
  return rc == ESCP_OK ? (int32_t)at : rc;
}
