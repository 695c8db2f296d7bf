/* xattr.h — packed extended attributes (escp.h "archive mode"): the one parser of the blob
 * format, applying a blob through an fd, and reading a file's into a blob (escp_xattrs_read).
 * Records: [u8 name_len 1..255][name, no NUL][u32 LE value_len 0..65536][value]. */
#ifndef ESCP_XATTR_H
#define ESCP_XATTR_H
#include <stddef.h>
#include <stdint.h>

#define ESCP_XATTR_VALUE_MAX 65536 /* XATTR_SIZE_MAX: the largest value the kernel takes */

/* ESCP_OK when b[0..len) is a well-formed blob (every length inside it, names non-empty
 * without a NUL, len <= ESCP_XATTRS_MAX), else ESCP_E_PROTO. */
int escp_xattrs_check(const uint8_t *b, size_t len);
/* Set every attribute of a checked blob on fd (fsetxattr: create or replace); a process not
 * running as root skips names outside "user.". 0 or the first failure's errno. */
int escp_xattrs_apply(int fd, const uint8_t *b, size_t len);

#endif
