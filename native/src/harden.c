/* harden.c — process hardening for a process that holds session keys: no core dumps and
 * not dumpable, so neither a crash nor another process of the same user (ptrace,
 * /proc/PID/mem, /proc/PID/environ) can read the keys out of memory. */
#include <sys/prctl.h>
#include <sys/resource.h>

#include "escp.h"

/* Idempotent: both settings only ever move to "off", which is always permitted. Neither is
 * undone by later calls; children that exec get the default dumpable state back (Linux
 * resets it on execve), RLIMIT_CORE 0 is inherited. */
ESCP_API int32_t escp_process_harden(void) {
  int rc = ESCP_OK;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) rc = ESCP_E_SYS;
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) rc = ESCP_E_SYS;
  return rc;
}
