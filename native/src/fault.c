/* fault.c — fault-injection counters (see fault.h). Empty in the normal build. */
#include "fault.h"

#ifdef ESCP_FAULT_INJECTION
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

static int64_t env_num(const char *name, int64_t def) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  char *end;
  long long n = strtoll(v, &end, 10);
  return (*end || n < 0) ? def : (int64_t)n;
}

void escp__fi_init(escp_fi *fi) {
  static const char *const names[ESCP_FI_N] = {"ESCP_FI_PWRITE_FAIL_AT", "ESCP_FI_PREAD_FAIL_AT",
                                               "ESCP_FI_SEND_FAIL_AT", "ESCP_FI_ACK_FAIL_AT", "ESCP_FI_DIGEST_FAIL_AT"};
  static const int defaults[ESCP_FI_N] = {ENOSPC, EIO, ECONNRESET, ECONNRESET, EBADMSG};
  for (int i = 0; i < ESCP_FI_N; i++) {
    fi->at[i] = env_num(names[i], 0);
    fi->err[i] = i >= ESCP_FI_SEND ? defaults[i] : (int)env_num("ESCP_FI_ERRNO", defaults[i]);
    if (fi->err[i] <= 0) fi->err[i] = defaults[i];
    atomic_store(&fi->n[i], 0);
  }
}

int escp__fi_hit(escp_fi *fi, int which) {
  if (fi->at[which] <= 0) return 0;
  return atomic_fetch_add(&fi->n[which], 1) + 1 == fi->at[which] ? fi->err[which] : 0;
}
#else
typedef int escp_fault_unused; /* ISO C wants a non-empty translation unit */
#endif
