/* fault.h — fault injection for reliability tests. Only the `make fi` build
 * (build/libescp-fi.so, -DESCP_FAULT_INJECTION) has it; in the normal build ESCP_FI()
 * is the constant 0 and the hooks compile away.
 *
 * Environment, read once per session by escp_session_start (N counts from 1, per session,
 * counted with atomics across that session's threads; only the Nth call fails):
 *   ESCP_FI_PWRITE_FAIL_AT=N  the Nth file pwrite fails with ESCP_FI_ERRNO (default ENOSPC)
 *   ESCP_FI_PREAD_FAIL_AT=N   the Nth file pread fails with ESCP_FI_ERRNO (default EIO)
 *   ESCP_FI_SEND_FAIL_AT=N    the Nth frame send after start (data, keepalive, BYE or
 *                             control) shuts that socket down instead: a network drop
 *   ESCP_FI_ACK_FAIL_AT=N     the same for the Nth ACK a receiver sends (reconnect)
 *   ESCP_FI_DIGEST_FAIL_AT=N  the Nth small file a sender packs into a bundle goes with a
 *                             wrong digest (byte 0 flipped): a lying sender
 *   ESCP_FI_ERRNO=E           errno for the pwrite/pread faults (decimal) */
#ifndef ESCP_FAULT_H
#define ESCP_FAULT_H
#include <stdint.h>

enum { ESCP_FI_PWRITE = 0, ESCP_FI_PREAD = 1, ESCP_FI_SEND = 2, ESCP_FI_ACK = 3, ESCP_FI_DIGEST = 4, ESCP_FI_N = 5 };

#ifdef ESCP_FAULT_INJECTION
typedef struct escp_fi {
  int64_t at[ESCP_FI_N];          /* 0 = off, else the 1-based call number that fails */
  int err[ESCP_FI_N];             /* errno to report for that call */
  _Atomic int64_t n[ESCP_FI_N];   /* calls so far */
} escp_fi;
void escp__fi_init(escp_fi *fi);
/* Count one call of kind `which`; returns the errno to fail it with, or 0. */
int escp__fi_hit(escp_fi *fi, int which);
#define ESCP_FI(s, which) escp__fi_hit(&(s)->fi, (which))
#else
#define ESCP_FI(s, which) 0
#endif

#endif
