/* relay_connect.c — escp_relay_connect: open nconns TCP connections to each of the two
 * listening hosts, all at once (non-blocking connect, one poll loop), so pair k's halves
 * come up within one round trip of each other. An address that refuses a connection is
 * given up for that side and the side starts over on the next address getaddrinfo gave;
 * nothing is kept unless all 2 x nconns connections are up. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "relay.h"

typedef struct rside {
  const char *name;        /* "host1" / "host2", for the error text */
  struct addrinfo *res;    /* getaddrinfo result, freed by the caller */
  struct addrinfo *ai;     /* the address being tried */
  char where[80];          /* ai as text */
  int gen;                 /* bumped when the side starts over on its next address */
  uint8_t up[ESCP_MAX_STREAMS]; /* connection k of this side is established */
} rside;

/* Reset side x's connections: a listener sees them die at once, not end cleanly. */
static void side_close(escp_relay *r, int x) {
  for (int k = 0; k < ESCP_MAX_STREAMS; k++) {
    escp__close_reset(r->p[k].fd[x]);
    r->p[k].fd[x] = -1;
  }
}

/* Start r->n non-blocking connects to side x's current address. ESCP_OK or E_CONNECT. */
static int side_open(escp_relay *r, rside *sd, int x) {
  escp__fmt_addr(sd->ai->ai_addr, sd->where, sizeof sd->where);
  memset(sd->up, 0, sizeof sd->up);
  for (int k = 0; k < r->n; k++) {
    int fd = socket(sd->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, sd->ai->ai_addr, sd->ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
      escp__relay_err(r, "relay: connect %s %s: %s", sd->name, sd->where, strerror(errno));
      if (fd >= 0) close(fd);
      return ESCP_E_CONNECT;
    }
    r->p[k].fd[x] = fd;
  }
  return ESCP_OK;
}

static int resolve(escp_relay *r, rside *sd, const char *addr, int32_t port) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char ps[8];
  snprintf(ps, sizeof ps, "%d", (int)port);
  int g = getaddrinfo(addr, ps, &hints, &sd->res);
  if (g != 0) {
    escp__relay_err(r, "relay: resolve %s %s:%d: %s", sd->name, addr, (int)port, gai_strerror(g));
    return ESCP_E_CONNECT;
  }
  sd->ai = sd->res;
  return ESCP_OK;
}

/* Connection (k, x) finished connecting: ESCP_OK, or on failure the side moves to its next
 * address (ESCP_OK: keep polling) or gives up (E_CONNECT, detail set). */
static int conn_done(escp_relay *r, rside *sd, int x, int k) {
  int err = 0;
  socklen_t el = sizeof err;
  if (getsockopt(r->p[k].fd[x], SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
  if (!err) {
    sd->up[k] = 1;
    return ESCP_OK;
  }
  side_close(r, x);
  if (!sd->ai->ai_next) {
    escp__relay_err(r, "relay: connect %s %s: %s", sd->name, sd->where, strerror(err));
    return ESCP_E_CONNECT;
  }
  sd->ai = sd->ai->ai_next;
  sd->gen++; /* fds of this side in the current poll set are stale (numbers may be reused) */
  return side_open(r, sd, x);
}

/* Poll until every connection of both sides is up, one side runs out of addresses, the
 * deadline (ms, CLOCK_MONOTONIC) passes or stop is called. */
static int connect_wait(escp_relay *r, rside sd[2], uint64_t deadline) {
  struct pollfd pf[1 + 2 * ESCP_MAX_STREAMS];
  int who[2 * ESCP_MAX_STREAMS]; /* pf[1 + j] is connection (who[j] % 2, who[j] / 2) */
  for (;;) {
    int m = 0;
    pf[0] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
    for (int k = 0; k < r->n; k++)
      for (int x = 0; x < 2; x++)
        if (!sd[x].up[k]) {
          who[m] = k * 2 + x;
          pf[1 + m++] = (struct pollfd){.fd = r->p[k].fd[x], .events = POLLOUT};
        }
    if (m == 0) return ESCP_OK;
    int gen[2] = {sd[0].gen, sd[1].gen};
    uint64_t now = escp__now_ms();
    if (now >= deadline) {
      escp__relay_err(r, "relay: %d of %d connections up after %d ms", 2 * r->n - m, 2 * r->n, (int)r->timeout_ms);
      return ESCP_E_TIMEOUT;
    }
    int n = poll(pf, (nfds_t)m + 1, (int)(deadline - now));
    if (n < 0 && errno != EINTR) {
      escp__relay_err(r, "relay: poll: %s", strerror(errno));
      return ESCP_E_SYS;
    }
    if (n > 0 && (pf[0].revents || atomic_load(&r->stop))) {
      escp__relay_err(r, "relay: connect stopped");
      return ESCP_E_ABORTED;
    }
    for (int j = 0; n > 0 && j < m; j++) {
      int k = who[j] / 2, x = who[j] % 2;
      if (!pf[1 + j].revents || sd[x].gen != gen[x]) continue; /* side restarted */
      int rc = conn_done(r, &sd[x], x, k);
      if (rc != ESCP_OK) return rc;
    }
  }
}

/* Options of an established relay socket: liveness from the timeout, and no Nagle delay,
 * so a small control frame is forwarded at once, as its sender wrote it. */
static void sock_opts(escp_relay *r, int fd) {
  (void)escp__tcp_liveness(fd, (unsigned int)r->timeout_ms);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Open nconns (1..ESCP_MAX_STREAMS; T+1) connections to addr1:port1 and to addr2:port2
 * and pair them k <-> k. Blocks up to the timeout. ESCP_OK, E_INVAL, E_STATE (not new,
 * stopped), E_CONNECT (resolve/refused; detail via escp_relay_last_error), E_TIMEOUT,
 * E_ABORTED (stop from another thread), E_SYS. On failure no connection is kept. */
ESCP_API int32_t escp_relay_connect(void *h, const char *addr1, int32_t port1, const char *addr2,
                                    int32_t port2, int32_t nconns) {
  escp_relay *r = h;
  if (!r || r->magic != ESCP_RELAY_MAGIC) return ESCP_E_INVAL;
  if (!addr1 || !*addr1 || !addr2 || !*addr2 || port1 < 1 || port1 > 65535 || port2 < 1 ||
      port2 > 65535 || nconns < 1 || nconns > ESCP_MAX_STREAMS)
    return ESCP_E_INVAL;
  if (r->state != RELAY_NEW || atomic_load(&r->stop)) return ESCP_E_STATE;
  rside sd[2];
  memset(sd, 0, sizeof sd);
  sd[0].name = "host1";
  sd[1].name = "host2";
  uint64_t deadline = escp__now_ms() + (uint64_t)r->timeout_ms;
  r->n = nconns;
  int rc = resolve(r, &sd[0], addr1, port1);
  if (rc == ESCP_OK) rc = resolve(r, &sd[1], addr2, port2);
  if (rc == ESCP_OK) rc = side_open(r, &sd[0], 0);
  if (rc == ESCP_OK) rc = side_open(r, &sd[1], 1);
  if (rc == ESCP_OK) rc = connect_wait(r, sd, deadline);
  for (int x = 0; x < 2; x++)
    if (sd[x].res) freeaddrinfo(sd[x].res);
  if (rc != ESCP_OK) {
    side_close(r, 0);
    side_close(r, 1);
    r->n = 0;
    return rc;
  }
  for (int k = 0; k < r->n; k++) {
    sock_opts(r, r->p[k].fd[0]);
    sock_opts(r, r->p[k].fd[1]);
  }
  r->state = RELAY_CONNECTED;
  return ESCP_OK;
}
