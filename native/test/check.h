/* check.h — fail-fast assertions shared by the session-level C tests: print the failing
 * expression with file:line and exit non-zero (test programs only; never in the library). */
#ifndef ESCP_TEST_CHECK_H
#define ESCP_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

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

#endif
