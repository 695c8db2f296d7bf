/* check.h — fail-fast assertions shared by the session-level C tests: print the failing
 * expression with file:line and exit non-zero; and slurp, a whole file read under them
 * (test programs only; never in the library). */
#ifndef ESCP_TEST_CHECK_H
#define ESCP_TEST_CHECK_H
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);   \
      exit(1);                                                                \
    }                                                                         \
  } while (0)
#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    long long a_ = (long long)(a), b_ = (long long)(b);                                  \
    if (a_ != b_) {                                                                      \
      fprintf(stderr, "%s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

/* The whole file at path (malloc'd, one spare byte), its length in *len. */
static __attribute__((unused)) uint8_t *slurp(const char *path, uint64_t *len) {
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  uint8_t *b = malloc((size_t)st.st_size + 1);
  CHECK(b);
  CHECK(read(fd, b, (size_t)st.st_size) == (ssize_t)st.st_size);
  close(fd);
  *len = (uint64_t)st.st_size;
  return b;
}

#endif
