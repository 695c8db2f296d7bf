/* accept.c — the listener side: escp_listen binds a port from a range, then one thread
 * poll()s the listening socket and pending connections, authenticates each connection's
 * HELLO (within timeout_ms), answers HELLO_ACK and, when all T+1 streams are up, closes
 * the listener and pushes ESCP_EV_STREAMS_UP. Strangers are closed and counted. */
#define _GNU_SOURCE /* O_DIRECT, accept4 */
#include "net.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct pend {
  int fd;
  uint64_t deadline;  /* ms, CLOCK_MONOTONIC: the full HELLO must be here by then */
  uint32_t got;
  uint8_t buf[ESCP_HELLO_WIRE];
} pend;

/* Try to bind+listen one address on ports [start, start+count). Returns fd or -errno. */
static int bind_range(escp_session *s, const struct addrinfo *ai, int start, int count, int *port) {
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1, mode = (int)s->param[ESCP_P_IP_MODE];
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ai->ai_family == AF_INET6) {
    int v6only = mode == 6;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  escp__sock_pre(s, fd); /* buffer sizes are inherited by accepted sockets */
  int err = EADDRINUSE;
  for (int p = start; p < start + count; p++) {
    struct sockaddr_storage sa;
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    if (sa.ss_family == AF_INET6) ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)p);
    else ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)p);
    if (bind(fd, (struct sockaddr *)&sa, ai->ai_addrlen) == 0 && listen(fd, ESCP_MAX_PENDING) == 0) {
      socklen_t sl = sizeof sa;
      getsockname(fd, (struct sockaddr *)&sa, &sl);
      *port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&sa)->sin_port);
      return fd;
    }
    err = errno;
    if (err != EADDRINUSE && err != EACCES) break;
  }
  close(fd);
  return -err;
}

static int listen_any(escp_session *s, const char *addr, int start, int count, int *port) {
  int mode = (int)s->param[ESCP_P_IP_MODE];
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  /* "" = any address: "::" (dual stack unless mode 6), or 0.0.0.0 for mode 4 / no IPv6. */
  const char *host = *addr ? addr : mode == 4 ? "0.0.0.0" : "::";
  hints.ai_family = mode == 4 ? AF_INET : mode == 6 ? AF_INET6 : AF_UNSPEC;
  int g = getaddrinfo(host, "0", &hints, &res);
  if (g != 0 && !*addr && mode == 0) g = getaddrinfo("0.0.0.0", "0", &hints, &res);
  if (g != 0) {
    ESCP_ERR(s, "listen: resolve '%s': %s", addr, gai_strerror(g));
    return ESCP_E_BIND;
  }
  int fd = -EADDRNOTAVAIL;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) fd = bind_range(s, ai, start, count, port);
  if (fd < 0 && !*addr && mode == 0 && res->ai_family == AF_INET6) {
    freeaddrinfo(res); /* no IPv6 on this host: fall back to IPv4 any */
    res = NULL;
    if (getaddrinfo("0.0.0.0", "0", &hints, &res) == 0) fd = bind_range(s, res, start, count, port);
  }
  if (res) freeaddrinfo(res);
  if (fd < 0) {
    ESCP_ERR(s, "listen on '%s' ports %d..%d: %s", addr, start, start + count - 1, strerror(-fd));
    return ESCP_E_BIND;
  }
  return fd;
}

/* Bind a listening socket on addr ("" = any; IPv6 literals allowed) at the first free
 * port of [port_start, port_start + port_count) — port_start 0 = any free port — and start
 * accepting the connector's streams in the background. Returns the bound port (> 0) or
 * ESCP_E_INVAL/E_RANGE/E_STATE/E_BIND/E_SYS. JS thread. */
ESCP_API int32_t escp_listen(void *h, const char *addr, int32_t port_start, int32_t port_count) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (!addr) addr = "";
  if (port_start < 0 || port_start > 65535 || port_count < 1 ||
      (port_start > 0 && (int64_t)port_start + port_count - 1 > 65535)) {
    ESCP_ERR(s, "listen: port range %d+%d out of bounds", (int)port_start, (int)port_count);
    return ESCP_E_RANGE;
  }
  if (s->net != ESCP_NET_NONE || !s->have_key || escp__stopping(s)) {
    ESCP_ERR(s, "listen: needs a key, no prior listen/connect, not stopped");
    return ESCP_E_STATE;
  }
  if (escp__buffers_check(s) != ESCP_OK) return ESCP_E_RANGE;
  s->frozen = 1;
  s->nstreams = (int)s->param[ESCP_P_THREADS] + 1;
  s->io = s->param[ESCP_P_IO_ENGINE] == ESCP_IO_DUMMY ? &escp_io_dummy : &escp_io_posix;
  int rc = escp__chans_init(s);
  if (rc != ESCP_OK) {
    ESCP_ERR(s, "listen: channel setup failed (%s)", escp_status_name(rc));
    return rc;
  }
  int port = 0;
  int fd = listen_any(s, addr, port_start, port_start == 0 ? 1 : port_count, &port);
  if (fd < 0) return fd;
  s->listen_fd = fd;
  s->listen_deadline_ms = escp__now_ms() + (uint64_t)s->param[ESCP_P_TIMEOUT_MS];
  s->net = ESCP_NET_LISTENING;
  if (pthread_create(&s->accept_thr, NULL, escp__accept_thread, s) != 0) {
    ESCP_ERR(s, "listen: pthread_create failed");
    return ESCP_E_SYS;
  }
  s->accept_live = 1;
  return port;
}

/* ---- accept thread ---- */

static void pend_drop(escp_session *s, pend *p, int *np, int k) {
  close(p[k].fd);
  escp__stat_add(s, ESCP_S_FRAMES_REJECTED, 1);
  p[k] = p[--*np];
}

/* A full 64-byte HELLO is in p->buf: authenticate, answer, install. 0 = stream up. */
static int pend_hello(escp_session *s, pend *p) {
  escp_frame_hdr fh;
  escp_frame_hdr_decode(p->buf, &fh);
  int i = fh.stream;
  if (i >= s->nstreams || s->st[i].fd >= 0 || !s->st[i].chans) return ESCP_E_DUP;
  int rc = escp__hello_open(s, i, ESCP_FT_HELLO, p->buf);
  if (rc != ESCP_OK) {
    /* The tag verified but a field did not: seq 0 is spent, so rebuild the slot. */
    if (s->st[i].rx.seq != 0) escp__chan_reset(s, i);
    escp__log(s, "rejected hello for stream %d: %s", i, escp_status_name(rc));
    return rc;
  }
  uint8_t ack[ESCP_HELLO_WIRE];
  rc = escp__hello_seal(s, i, ESCP_FT_HELLO_ACK, ack);
  if (rc == ESCP_OK && escp__set_nonblock(p->fd, 0) == 0 && escp__send_all(p->fd, ack, sizeof ack) == 0) {
    escp__sock_post(s, p->fd, i);
    pthread_mutex_lock(&s->mu);
    s->st[i].fd = p->fd;
    pthread_mutex_unlock(&s->mu);
    escp__stat_add(s, ESCP_S_STREAMS_UP, 1);
    return ESCP_OK;
  }
  escp__chan_reset(s, i); /* the slot's sequence numbers were used: start over */
  return ESCP_E_CONNECT;
}

/* Read what is there of the HELLO (never blocks). 1 = stream up, 0 = keep, -1 = drop. */
static int pend_read(escp_session *s, pend *p) {
  ssize_t r = recv(p->fd, p->buf + p->got, sizeof p->buf - p->got, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  if (r <= 0) return -1;
  p->got += (uint32_t)r;
  if (p->got < sizeof p->buf) return 0;
  return pend_hello(s, p) == ESCP_OK ? 1 : -1;
}

static void accept_new(escp_session *s, pend *p, int *np) {
  for (;;) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN: drained; EMFILE etc.: retried on the next readiness */
    }
    if (*np >= ESCP_MAX_PENDING) { /* flood: refuse rather than starve the real peer */
      close(fd);
      escp__stat_add(s, ESCP_S_FRAMES_REJECTED, 1);
      continue;
    }
    p[*np].fd = fd;
    p[*np].got = 0;
    p[*np].deadline = escp__now_ms() + (uint64_t)s->param[ESCP_P_TIMEOUT_MS];
    (*np)++;
  }
}

static int streams_all_up(const escp_session *s) {
  for (int i = 0; i < s->nstreams; i++)
    if (s->st[i].fd < 0) return 0;
  return 1;
}

/* One poll round. Returns 1 when all streams are up, -1 on stop/deadline, 0 to go on. */
static int accept_round(escp_session *s, pend *p, int *np) {
  struct pollfd pf[ESCP_MAX_PENDING + 2];
  uint64_t now = escp__now_ms(), wake = s->listen_deadline_ms;
  if (now >= s->listen_deadline_ms) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_TIMEOUT, 0, 0, 0, "streams not up in time");
    return -1;
  }
  pf[0] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
  pf[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
  for (int k = 0; k < *np; k++) {
    pf[k + 2] = (struct pollfd){.fd = p[k].fd, .events = POLLIN};
    if (p[k].deadline < wake) wake = p[k].deadline;
  }
  int n = poll(pf, (nfds_t)*np + 2, wake > now ? (int)(wake - now) : 0);
  if (pf[0].revents || escp__stopping(s)) return -1;
  now = escp__now_ms();
  for (int k = *np - 1; n > 0 && k >= 0; k--) { /* backwards: pend_drop moves the last */
    int r = pf[k + 2].revents ? pend_read(s, &p[k]) : 0;
    if (r == 1) p[k] = p[--*np]; /* fd now owned by the stream */
    else if (r < 0) pend_drop(s, p, np, k);
  }
  for (int k = *np - 1; k >= 0; k--)
    if (p[k].deadline <= now) pend_drop(s, p, np, k);
  if (streams_all_up(s)) return 1;
  if (n > 0 && pf[1].revents) accept_new(s, p, np);
  return 0;
}

void *escp__accept_thread(void *arg) {
  escp_session *s = arg;
  pend p[ESCP_MAX_PENDING];
  int np = 0, r;
  while ((r = accept_round(s, p, &np)) == 0) {
  }
  while (np > 0) pend_drop(s, p, &np, np - 1);
  pthread_mutex_lock(&s->mu);
  close(s->listen_fd); /* no more strangers: the port is free again */
  s->listen_fd = -1;
  if (r == 1) s->streams_up = 1;
  pthread_mutex_unlock(&s->mu);
  if (r == 1) {
    escp__event_simple(s, ESCP_EV_STREAMS_UP, ESCP_OK, 0, 0, 0, NULL);
    escp__launch(s);
  }
  return NULL;
}
