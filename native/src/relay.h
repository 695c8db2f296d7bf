/* relay.h — the private relay object behind the void* handle of escp_relay_* (relay.c:
 * lifecycle and the per-pair splicing threads; relay_connect.c: opening the connections). */
#ifndef ESCP_RELAY_H
#define ESCP_RELAY_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "session.h" /* ESCP_MAX_STREAMS, escp__tcp_liveness, escp__now_ms */

#define ESCP_RELAY_MAGIC 0x594c4552u /* guards against stale or foreign handles */

enum { RELAY_NEW = 0, RELAY_CONNECTED = 1, RELAY_STARTED = 2 };

/* One direction of a pair: bytes from fd[k] through a pipe to fd[1 - k]. */
typedef struct rdir {
  int pipe_r, pipe_w;
  size_t cap;     /* pipe capacity, bytes */
  size_t queued;  /* bytes in the pipe */
  int full;       /* the pipe refused more (out of slots before cap bytes): drain first */
  int eof;        /* the source sent FIN */
  int done;       /* FIN forwarded: everything delivered, shutdown(SHUT_WR) on the destination */
} rdir;

typedef struct escp_relay escp_relay;

typedef struct rpair {
  escp_relay *r;
  int idx;
  int fd[2];      /* [0] the connection to host1, [1] the one to host2; -1 when closed */
  rdir d[2];      /* d[0] host1 -> host2, d[1] host2 -> host1 */
  pthread_t thr;
  int live;       /* thread created and not yet joined */
} rpair;

struct escp_relay {
  uint32_t magic;
  int32_t timeout_ms;
  int n;                            /* pairs (nconns) once connected */
  int state;                        /* RELAY_* (JS thread only) */
  atomic_int stop;
  int wake_fd;                      /* eventfd, written by stop: wakes every poll() */
  pthread_mutex_t mu;               /* err */
  char err[256];                    /* the first failure */
  _Atomic uint64_t ctr[ESCP_R_COUNT];
  rpair p[ESCP_MAX_STREAMS];
};

/* Record the first failure's text (later ones are dropped). */
void escp__relay_err(escp_relay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reset a connection instead of closing it cleanly (SO_LINGER 0: the peer gets RST). */
void escp__close_reset(int fd);

#endif
