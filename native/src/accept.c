/* accept.c — the listener side: escp_listen binds a port from a range, then one thread
 * poll()s the listening socket and pending connections. Each new connection is sent a fresh
 * 16-byte challenge at once; its HELLO must arrive within min(timeout, 5 s); only a complete
 * HELLO costs a key derivation (its keys are bound to that challenge). A good HELLO is
 * answered with HELLO_ACK and installs the stream; when all T+1 streams are up the listener
 * closes, the session key is wiped and ESCP_EV_STREAMS_UP is pushed. The pending table is
 * bounded and fair (net.h): a flood, from one source or many, evicts the oldest pending
 * connections instead of refusing new ones, so strangers cannot lock the real peer out.
 * With ESCP_P_HELLO_ON_ACCEPT the listener answers challenges instead (answer.c): the
 * accept loop, table, caps and deadlines here are the same. Either way the data role
 * (sender/receiver) is independent of listening. */
#define _GNU_SOURCE /* O_DIRECT, accept4 */
#include "net.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

typedef escp_pend pend;
typedef escp_ptable ptable;

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
  int port = 0;
  int fd = listen_any(s, addr, port_start, port_start == 0 ? 1 : port_count, &port);
  if (fd < 0) return fd;
  s->listen_fd = fd;
  s->reconnect = s->param[ESCP_P_RETRIES] > 0 && !s->param[ESCP_P_HELLO_ON_ACCEPT];
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

/* Counted before the close, so a peer that sees EOF also sees the count. */
void escp__pend_close(escp_session *s, ptable *t, int k) {
  escp__stat_add(s, ESCP_S_FRAMES_REJECTED, 1);
  close(t->p[k].fd);
  t->p[k] = t->p[--t->n];
}

void escp__stream_install_opts(escp_session *s, int fd, int i) {
  escp__set_nonblock(fd, 0); /* stream threads block (bounded by SO_SNDTIMEO/SO_RCVTIMEO) */
  escp__sock_post(s, fd, i);
  escp__sock_sndbuf(s, fd); /* a no-op until the streams are up and sized */
}

void escp__stream_install(escp_session *s, int fd, int i) {
  escp__stream_install_opts(s, fd, i);
  pthread_mutex_lock(&s->mu);
  s->st[i].fd = fd;
  pthread_mutex_unlock(&s->mu);
  escp__stat_add(s, ESCP_S_STREAMS_UP, 1);
}

/* A full HELLO is in p->buf. Cheap header checks first; only then derive this connection's
 * keys (from its challenge), authenticate, answer HELLO_ACK and install. ESCP_OK = up. */
static int pend_hello(escp_session *s, pend *p, const escp_frame_hdr *fh) {
  int i = fh->stream;
  if (fh->type != ESCP_FT_HELLO || fh->body_len != ESCP_HELLO_LEN || fh->seq != 0 || i >= s->nstreams)
    return ESCP_E_PROTO;
  /* Once all streams are up (reconnect on), a HELLO re-establishes data stream i. */
  int again = s->streams_up;
  if (again ? i == 0 : s->st[i].fd >= 0) return ESCP_E_DUP;
  if (again) { /* a stream whose thread has ended is never re-established */
    pthread_mutex_lock(&s->mu);
    int gone = s->st[i].gone;
    pthread_mutex_unlock(&s->mu);
    if (gone) return ESCP_E_STATE;
  }
  escp_chan tx, rx;
  uint8_t ack[ESCP_HELLO_WIRE];
  int rc = escp__chans_derive(s, i, p->challenge, &tx, &rx);
  if (rc == ESCP_OK) rc = escp__hello_open(s, &rx, i, ESCP_FT_HELLO, p->challenge, p->buf);
  if (rc == ESCP_OK) rc = escp__hello_seal(s, &tx, i, ESCP_FT_HELLO_ACK, p->challenge, ack);
  /* 80 bytes into the empty send buffer of a fresh socket: this never blocks. */
  if (rc == ESCP_OK && (escp__set_nonblock(p->fd, 0) != 0 || escp__send_all(p->fd, ack, sizeof ack) != 0))
    rc = ESCP_E_CONNECT;
  if (rc != ESCP_OK) {
    escp_chan_free(&tx); /* this connection's keys die with it; the slot stays free */
    escp_chan_free(&rx);
    return rc;
  }
  if (again && escp__handover(s, i, p->fd, &tx, &rx) != ESCP_OK) rc = ESCP_E_STATE;
  if (rc != ESCP_OK) { /* the stream has ended: this connection is dropped after its HELLO_ACK */
    escp_chan_free(&tx);
    escp_chan_free(&rx);
    return rc;
  }
  if (again) return ESCP_OK;
  pthread_mutex_lock(&s->mu);
  s->st[i].tx = tx;
  s->st[i].rx = rx;
  s->st[i].chans = 1;
  pthread_mutex_unlock(&s->mu);
  escp__stream_install(s, p->fd, i);
  return ESCP_OK;
}

/* Read what is there of the HELLO (never blocks). 1 = stream up, 0 = keep, -1 = drop. */
static int pend_read(escp_session *s, pend *p) {
  ssize_t r = recv(p->fd, p->buf + p->got, sizeof p->buf - p->got, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  if (r <= 0) return -1;
  p->got += (uint32_t)r;
  if (p->got < sizeof p->buf) return 0;
  escp_frame_hdr fh; /* claimed, not yet trusted: authenticated as the AAD */
  escp_frame_hdr_decode(p->buf, &fh);
  int rc = pend_hello(s, p, &fh);
  if (rc != ESCP_OK) escp__log(s, "rejected hello for stream %u: %s", fh.stream, escp_status_name(rc));
  return rc == ESCP_OK ? 1 : -1;
}

/* The source address of a connection as 16 bytes (IPv4 as ::ffff:a.b.c.d, the form a
 * dual-stack socket reports), so one host counts as one source either way. */
static void source_of(const struct sockaddr_storage *sa, uint8_t out[16]) {
  memset(out, 0, 16);
  if (sa->ss_family == AF_INET6) {
    memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  } else if (sa->ss_family == AF_INET) {
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  }
}

/* Room for one more connection from src: close that source's oldest pending connection
 * when it is at its cap, else the oldest overall when the table is full. */
static void make_room(escp_session *s, ptable *t, const uint8_t src[16]) {
  int same = 0, oldest_same = -1, oldest = -1;
  for (int k = 0; k < t->n; k++) {
    if (oldest < 0 || t->p[k].order < t->p[oldest].order) oldest = k;
    if (memcmp(t->p[k].src, src, 16) != 0) continue;
    same++;
    if (oldest_same < 0 || t->p[k].order < t->p[oldest_same].order) oldest_same = k;
  }
  if (same >= ESCP_PENDING_PER_SOURCE(s->nstreams)) escp__pend_close(s, t, oldest_same);
  else if (t->n >= ESCP_MAX_PENDING) escp__pend_close(s, t, oldest);
}

/* Give a new connection a slot and, as a challenger, its fresh challenge (16 bytes into an
 * empty send buffer: one non-blocking send suffices). An answerer waits for the peer's. */
static void admit(escp_session *s, ptable *t, int fd, const uint8_t src[16]) {
  make_room(s, t, src);
  pend *p = &t->p[t->n];
  memset(p, 0, sizeof *p);
  p->state = s->param[ESCP_P_HELLO_ON_ACCEPT] ? ESCP_PD_CHALLENGE : ESCP_PD_HELLO;
  p->stream = -1;
  if (p->state == ESCP_PD_HELLO &&
      (getrandom(p->challenge, sizeof p->challenge, 0) != (ssize_t)sizeof p->challenge ||
       send(fd, p->challenge, sizeof p->challenge, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof p->challenge)) {
    escp__stat_add(s, ESCP_S_FRAMES_REJECTED, 1);
    close(fd);
    return;
  }
  uint64_t tmo = (uint64_t)s->param[ESCP_P_TIMEOUT_MS]; /* ms */
  p->fd = fd;
  p->deadline = escp__now_ms() + (tmo < ESCP_HELLO_DEADLINE_MS ? tmo : ESCP_HELLO_DEADLINE_MS);
  p->order = t->next_order++;
  memcpy(p->src, src, 16);
  t->n++;
}

/* Accept what the backlog holds, at most one table's worth per round so HELLOs already in
 * are judged between bursts of a flood. */
static void accept_new(escp_session *s, ptable *t) {
  for (int k = 0; k < ESCP_MAX_PENDING; k++) {
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    int fd = accept4(s->listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN: drained; EMFILE etc.: retried on the next readiness */
    }
    uint8_t src[16];
    source_of(&sa, src);
    admit(s, t, fd, src);
  }
}

static int streams_all_up(const escp_session *s) {
  for (int i = 0; i < s->nstreams; i++)
    if (s->st[i].fd < 0) return 0;
  return 1;
}

/* One poll round. Returns 1 when all streams are up, -1 on stop/deadline, 0 to go on.
 * After all are up (reconnect on) it only re-establishes streams: 0 until stop. */
static int accept_round(escp_session *s, ptable *t) {
  struct pollfd pf[ESCP_MAX_PENDING + 2];
  int up = s->streams_up; /* written by this thread only */
  uint64_t now = escp__now_ms(), wake = up ? UINT64_MAX : s->listen_deadline_ms;
  if (!up && now >= s->listen_deadline_ms) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_TIMEOUT, 0, 0, 0, "streams not up in time");
    return -1;
  }
  pf[0] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
  pf[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
  for (int k = 0; k < t->n; k++) {
    pf[k + 2] = (struct pollfd){.fd = t->p[k].fd, .events = POLLIN};
    if (t->p[k].deadline < wake) wake = t->p[k].deadline;
  }
  int n = poll(pf, (nfds_t)t->n + 2, wake == UINT64_MAX ? -1 : wake > now ? (int)(wake - now) : 0);
  if (pf[0].revents || escp__stopping(s)) return -1;
  now = escp__now_ms();
  int answer = (int)s->param[ESCP_P_HELLO_ON_ACCEPT];
  for (int k = t->n - 1; n > 0 && k >= 0; k--) { /* backwards: removal moves the last */
    int r = !pf[k + 2].revents ? 0 : answer ? escp__answer_read(s, t, &t->p[k]) : pend_read(s, &t->p[k]);
    if (r == 1) t->p[k] = t->p[--t->n]; /* fd now owned by the stream */
    else if (r < 0) escp__pend_close(s, t, k);
  }
  for (int k = t->n - 1; k >= 0; k--)
    if (t->p[k].deadline <= now) escp__pend_close(s, t, k);
  if (!up && streams_all_up(s)) return 1;
  if (n > 0 && pf[1].revents) accept_new(s, t);
  if (answer) escp__answer_assign(s, t); /* ids freed by the drops and evictions above */
  return 0;
}

/* All streams are up: wipe the key and close the port unless streams may be re-established
 * (then both stay until the session ends), tell TS, start the threads. */
static void all_up(escp_session *s) {
  /* Every stream holds its own connection keys now: the session key is not needed any more.
   * Wiped before STREAMS_UP so an observer of it sees it gone. */
  if (!s->reconnect) escp__key_wipe(s);
  pthread_mutex_lock(&s->mu);
  if (!s->reconnect) {
    close(s->listen_fd); /* no more strangers: the port is free again */
    s->listen_fd = -1;
  }
  s->streams_up = 1;
  pthread_mutex_unlock(&s->mu);
  escp__size_send_buffers(s); /* a listening sender sizes them as a connecting one does */
  escp__event_simple(s, ESCP_EV_STREAMS_UP, ESCP_OK, 0, 0, 0, NULL);
  escp__launch(s);
}

void *escp__accept_thread(void *arg) {
  escp_session *s = arg;
  ptable *t = calloc(1, sizeof *t); /* ~36 KiB: kept off the thread stack */
  int r = -1;
  if (!t) escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, 0, 0, "listener: pending table");
  while (t && (r = accept_round(s, t)) == 0) {
  }
  if (r == 1) all_up(s);
  while (t && r == 1 && s->reconnect && accept_round(s, t) == 0) { /* re-establishing until stop */
  }
  while (t && t->n > 0) escp__pend_close(s, t, t->n - 1);
  free(t);
  escp__key_wipe(s);
  pthread_mutex_lock(&s->mu);
  if (s->listen_fd >= 0) close(s->listen_fd);
  s->listen_fd = -1;
  pthread_mutex_unlock(&s->mu);
  return NULL;
}
