/* net.c — sockets for the data plane: per-stream channel setup, HELLO/HELLO_ACK sealing
 * and checking, socket options, send-all/recv-all, and escp_connect (the connector opens
 * T+1 TCP connections in parallel and authenticates each with a hello round trip). */
#include "net.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>

static uint32_t my_dir(const escp_session *s) {
  return s->role == ESCP_ROLE_SENDER ? ESCP_DIR_S2R : ESCP_DIR_R2S;
}

void escp__chan_pair_free(escp_session *s, int i) {
  escp_chan_free(&s->st[i].tx); /* idempotent: also frees what a failed connect derived */
  escp_chan_free(&s->st[i].rx);
  s->st[i].chans = 0;
}

/* Keys of stream i exist only per connection: derived from the session key and that
 * connection's challenge, so a retried or replayed connection never shares them. */
int escp__chans_derive(escp_session *s, int i, const uint8_t challenge[ESCP_CHALLENGE], escp_chan *tx, escp_chan *rx) {
  uint32_t me = my_dir(s), peer = me == ESCP_DIR_S2R ? ESCP_DIR_R2S : ESCP_DIR_S2R;
  int rc = escp_chan_init(tx, s->key, s->sid, challenge, me, (uint16_t)i, 1);
  if (rc != ESCP_OK) {
    escp_chan_free(tx);
    return rc;
  }
  rc = escp_chan_init(rx, s->key, s->sid, challenge, peer, (uint16_t)i, 0);
  if (rc != ESCP_OK) {
    escp_chan_free(tx);
    escp_chan_free(rx);
  }
  return rc;
}

int escp__chan_pair_init(escp_session *s, int i, const uint8_t challenge[ESCP_CHALLENGE]) {
  escp__chan_pair_free(s, i);
  int rc = escp__chans_derive(s, i, challenge, &s->st[i].tx, &s->st[i].rx);
  s->st[i].chans = rc == ESCP_OK;
  return rc;
}

void escp__chans_free(escp_session *s) {
  for (int i = 0; i < ESCP_MAX_STREAMS; i++) {
    escp__chan_pair_free(s, i);
    if (!s->st[i].nchans) continue;
    escp_chan_free(&s->st[i].ntx);
    escp_chan_free(&s->st[i].nrx);
    s->st[i].nchans = 0;
  }
}

void escp__key_wipe(escp_session *s) {
  OPENSSL_cleanse(s->key, sizeof s->key);
}

int escp__hello_seal(escp_session *s, escp_chan *tx, int i, uint8_t type, const uint8_t challenge[ESCP_CHALLENGE],
                     uint8_t out[ESCP_HELLO_WIRE]) {
  escp_hello h;
  memset(&h, 0, sizeof h);
  h.version = ESCP_PROTOCOL_VERSION;
  h.stream = (uint16_t)i;
  h.streams = (uint16_t)(s->nstreams - 1);
  h.role = (uint16_t)s->role;
  memcpy(h.sid, s->sid, ESCP_SID_LEN);
  memcpy(h.challenge, challenge, ESCP_CHALLENGE);
  uint8_t *body = out + ESCP_FRAME_HDR;
  escp_hello_encode(&h, body);
  return escp_chan_seal(tx, type, 0, out, body, ESCP_HELLO_LEN, body + ESCP_HELLO_LEN);
}

/* Authenticate an 80-byte HELLO/HELLO_ACK on stream i (channels derived from `challenge`)
 * and check every field against this session and connection. On success the stream's rx
 * channel has advanced to seq 1. */
int escp__hello_open(escp_session *s, escp_chan *rx, int i, uint8_t type, const uint8_t challenge[ESCP_CHALLENGE],
                     uint8_t in[ESCP_HELLO_WIRE]) {
  escp_frame_hdr fh;
  int rc = escp_chan_check(rx, in, ESCP_HELLO_LEN, &fh);
  if (rc != ESCP_OK) return rc;
  if (fh.type != type || fh.body_len != ESCP_HELLO_LEN) return ESCP_E_PROTO;
  uint8_t *body = in + ESCP_FRAME_HDR;
  rc = escp_chan_open(rx, in, body, ESCP_HELLO_LEN, body + ESCP_HELLO_LEN);
  if (rc != ESCP_OK) return rc;
  escp_hello h;
  rc = escp_hello_decode(body, &h);
  if (rc != ESCP_OK) return rc;
  if (h.version != ESCP_PROTOCOL_VERSION) return ESCP_E_VERSION;
  int peer_role = s->role == ESCP_ROLE_SENDER ? ESCP_ROLE_RECEIVER : ESCP_ROLE_SENDER;
  if (h.stream != i || h.streams != s->nstreams - 1 || h.role != peer_role ||
      memcmp(h.sid, s->sid, ESCP_SID_LEN) != 0 || memcmp(h.challenge, challenge, ESCP_CHALLENGE) != 0)
    return ESCP_E_PROTO;
  return ESCP_OK;
}

void escp__sock_pre(escp_session *s, int fd) {
  int buf = (int)s->param[ESCP_P_SOCK_BUF]; /* bounded to 1 GiB by the table */
  if (buf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  }
}

/* TCP-level liveness, all derived from tmo (ms, 1000..86400000):
 *  - TCP_USER_TIMEOUT: unacknowledged data older than the timeout kills the connection;
 *  - SO_KEEPALIVE: idle timeout/3 (>= 1 s), then 3 probes timeout/9 (>= 1 s) apart, so a
 *    vanished host or a dead path is noticed within about 2/3 of the timeout even when
 *    nothing is being sent (the kernel of a frozen peer still answers: see SO_RCVTIMEO).
 * Shared with the relay (relay.c). Returns 0 or the errno of the first option refused. */
int escp__tcp_liveness(int fd, unsigned int tmo) {
  int err = 0;
  if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &tmo, sizeof tmo) < 0) err = errno;
  int one = 1, cnt = 3;
  int idle = (int)(tmo / 3000) > 0 ? (int)(tmo / 3000) : 1;   /* s, <= 28800 */
  int intvl = (int)(tmo / 9000) > 0 ? (int)(tmo / 9000) : 1;  /* s */
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0)
    err = err ? err : errno;
  return err;
}

/* Liveness of a stream socket: escp__tcp_liveness, plus
 *  - SO_SNDTIMEO: a send that moves no byte for the whole timeout fails with EAGAIN (a
 *    peer that stopped reading), so no thread blocks forever in send();
 *  - SO_RCVTIMEO: a recv that gets no byte for the whole timeout fails with EAGAIN. Peers
 *    send a KEEPALIVE frame (data streams) or a control keepalive (stream 0) every
 *    timeout/3 when idle, so this only fires when the peer is gone or frozen. */
static void sock_liveness(escp_session *s, int fd, int idx) {
  unsigned int tmo = (unsigned int)s->param[ESCP_P_TIMEOUT_MS]; /* ms, <= 86400000 */
  int err = escp__tcp_liveness(fd, tmo);
  if (err) escp__log(s, "stream %d: TCP_USER_TIMEOUT/keepalive: %s", idx, strerror(err));
  struct timeval tv = {(time_t)(tmo / 1000), (suseconds_t)(tmo % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
    escp__log(s, "stream %d: SO_SNDTIMEO/SO_RCVTIMEO: %s", idx, strerror(errno));
}

/* Options of an authenticated stream. Failures are not fatal (older kernels lack some),
 * they are logged when verbose. */
void escp__sock_post(escp_session *s, int fd, int idx) {
  sock_liveness(s, fd, idx);
  if (idx == 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return;
  }
  uint64_t rate = (uint64_t)s->param[ESCP_P_RATE_LIMIT]; /* bytes/s */
  if (rate == 0) return;
  int r;
  if (rate < UINT32_MAX) {
    uint32_t r32 = (uint32_t)rate;
    r = setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &r32, sizeof r32);
  } else {
    r = setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof rate); /* Linux >= 5.x */
  }
  if (r < 0) escp__log(s, "stream %d: SO_MAX_PACING_RATE: %s", idx, strerror(errno));
}

int escp__set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
  return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int escp__send_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t r = send(fd, p, len, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno; /* SO_SNDTIMEO expired */
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

int64_t escp__recv_all(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = recv(fd, (uint8_t *)buf + got, len - got, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno; /* SO_RCVTIMEO expired */
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int64_t)got;
}

void escp__fmt_addr(const void *sa, char *out, size_t cap) {
  const struct sockaddr *a = sa;
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = sa;
    inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
    snprintf(out, cap, "[%s]:%u", ip, ntohs(a6->sin6_port));
  } else if (a->sa_family == AF_INET) {
    const struct sockaddr_in *a4 = sa;
    inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
    snprintf(out, cap, "%s:%u", ip, ntohs(a4->sin_port));
  } else {
    snprintf(out, cap, "?");
  }
}

/* ---- connector ---- */

/* Connector states: TCP connect in progress -> reading the listener's 16-byte challenge ->
 * HELLO sent, reading the 80-byte HELLO_ACK -> authenticated. */
enum { CC_CONNECTING = 0, CC_CHALLENGE = 1, CC_WAIT_ACK = 2, CC_UP = 3 };
typedef struct cconn {
  int fd, state;
  escp_chan *tx, *rx; /* where this connection's channels go */
  uint32_t got; /* bytes of the challenge or HELLO_ACK read so far */
  uint8_t challenge[ESCP_CHALLENGE];
  uint8_t buf[ESCP_HELLO_WIRE];
} cconn;

/* Read what is there toward `want` bytes at dst (never blocks): 1 = complete, 0 = more to
 * come, ESCP_E_CONNECT = EOF or error (detail set). */
static int cc_fill(escp_session *s, cconn *c, int i, const char *where, uint8_t *dst, uint32_t want) {
  ssize_t r = recv(c->fd, dst + c->got, want - c->got, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  if (r <= 0) {
    ESCP_ERR(s, "%s (stream %d) closed during hello: %s (%s)", where, i, r < 0 ? strerror(errno) : "EOF",
             c->state == CC_CHALLENGE ? "no challenge: not an escp protocol 2 listener, or evicted by a flood?"
                                      : "wrong key, session id, stream count or role?");
    return ESCP_E_CONNECT;
  }
  c->got += (uint32_t)r;
  return c->got == want;
}

/* The challenge is in: derive this connection's keys from it and send the HELLO. */
static int cc_send_hello(escp_session *s, cconn *c, int i, const char *where) {
  uint8_t hello[ESCP_HELLO_WIRE];
  escp_chan_free(c->tx); /* an earlier connection's (a no-op on zeroed channels) */
  escp_chan_free(c->rx);
  int rc = escp__chans_derive(s, i, c->challenge, c->tx, c->rx);
  if (rc == ESCP_OK) rc = escp__hello_seal(s, c->tx, i, ESCP_FT_HELLO, c->challenge, hello);
  if (rc != ESCP_OK) {
    ESCP_ERR(s, "stream %d: sealing HELLO failed (%s)", i, escp_status_name(rc));
    return rc;
  }
  /* 80 bytes into a fresh socket's empty send buffer: one non-blocking send suffices. */
  ssize_t r = send(c->fd, hello, sizeof hello, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (r != (ssize_t)sizeof hello) {
    ESCP_ERR(s, "send HELLO to %s (stream %d): %s", where, i, r < 0 ? strerror(errno) : "short send");
    return ESCP_E_CONNECT;
  }
  c->state = CC_WAIT_ACK;
  c->got = 0;
  return ESCP_OK;
}

/* One poll event on connection i. Returns ESCP_OK or a status (detail set). */
static int cc_step(escp_session *s, cconn *c, int i, const char *where) {
  if (c->state == CC_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
    if (err) {
      ESCP_ERR(s, "connect %s (stream %d): %s", where, i, strerror(err));
      return ESCP_E_CONNECT;
    }
    c->state = CC_CHALLENGE;
    c->got = 0;
    return ESCP_OK;
  }
  if (c->state == CC_CHALLENGE) {
    int r = cc_fill(s, c, i, where, c->challenge, sizeof c->challenge);
    return r <= 0 ? r : cc_send_hello(s, c, i, where);
  }
  int r = cc_fill(s, c, i, where, c->buf, sizeof c->buf);
  if (r <= 0) return r;
  int rc = escp__hello_open(s, c->rx, i, ESCP_FT_HELLO_ACK, c->challenge, c->buf);
  if (rc != ESCP_OK) {
    ESCP_ERR(s, "%s (stream %d): bad HELLO_ACK (%s)", where, i, escp_status_name(rc));
    return rc == ESCP_E_AUTH || rc == ESCP_E_VERSION ? rc : ESCP_E_CONNECT;
  }
  c->state = CC_UP;
  return ESCP_OK;
}

static int cc_open_all(escp_session *s, const struct addrinfo *ai, cconn *c, const char *where) {
  for (int i = 0; i < s->nstreams; i++) {
    c[i].fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c[i].fd < 0) {
      ESCP_ERR(s, "socket for %s: %s", where, strerror(errno));
      return ESCP_E_CONNECT;
    }
    escp__sock_pre(s, c[i].fd);
    if (connect(c[i].fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
      ESCP_ERR(s, "connect %s (stream %d): %s", where, i, strerror(errno));
      return ESCP_E_CONNECT;
    }
  }
  return ESCP_OK;
}

/* Poll all connections until every one is authenticated, one fails, or the deadline. */
static int cc_wait_all(escp_session *s, cconn *c, uint64_t deadline, const char *where) {
  struct pollfd pf[ESCP_MAX_STREAMS + 1];
  for (;;) {
    int up = 0;
    pf[0] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
    for (int i = 0; i < s->nstreams; i++) {
      up += c[i].state == CC_UP;
      short ev = c[i].state == CC_CONNECTING ? POLLOUT : POLLIN;
      pf[i + 1] = (struct pollfd){.fd = c[i].state == CC_UP ? -1 : c[i].fd, .events = ev};
    }
    if (up == s->nstreams) return ESCP_OK;
    uint64_t now = escp__now_ms();
    if (now >= deadline) {
      ESCP_ERR(s, "connect %s: %d of %d streams up after %lld ms", where, up, s->nstreams,
               (long long)s->param[ESCP_P_TIMEOUT_MS]);
      return ESCP_E_TIMEOUT;
    }
    int n = poll(pf, (nfds_t)s->nstreams + 1, (int)(deadline - now));
    if (n < 0 && errno != EINTR) {
      ESCP_ERR(s, "poll: %s", strerror(errno));
      return ESCP_E_SYS;
    }
    if (n <= 0) continue;
    if (pf[0].revents || escp__stopping(s)) {
      ESCP_ERR(s, "connect %s: session stopped", where);
      return ESCP_E_ABORTED;
    }
    for (int i = 0; i < s->nstreams; i++) {
      if (!pf[i + 1].revents) continue;
      int rc = cc_step(s, &c[i], i, where);
      if (rc != ESCP_OK) return rc;
    }
  }
}

static int connect_one_addr(escp_session *s, const struct addrinfo *ai, uint64_t deadline) {
  char where[80];
  escp__fmt_addr(ai->ai_addr, where, sizeof where);
  cconn c[ESCP_MAX_STREAMS];
  memset(c, 0, sizeof c);
  for (int i = 0; i < ESCP_MAX_STREAMS; i++) {
    c[i].fd = -1;
    c[i].tx = &s->st[i].tx;
    c[i].rx = &s->st[i].rx;
  }
  int rc = cc_open_all(s, ai, c, where);
  if (rc == ESCP_OK) rc = cc_wait_all(s, c, deadline, where);
  for (int i = 0; rc == ESCP_OK && i < s->nstreams; i++) {
    escp__set_nonblock(c[i].fd, 0);
    escp__sock_post(s, c[i].fd, i);
  }
  if (rc != ESCP_OK) {
    for (int i = 0; i < s->nstreams; i++)
      if (c[i].fd >= 0) close(c[i].fd);
    escp__chans_free(s);
    return rc;
  }
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nstreams; i++) {
    s->st[i].fd = c[i].fd;
    s->st[i].chans = 1;
  }
  memcpy(&s->peer, ai->ai_addr, ai->ai_addrlen); /* a redial goes where this worked */
  s->peer_len = ai->ai_addrlen;
  pthread_mutex_unlock(&s->mu);
  return ESCP_OK;
}

int escp__redial(escp_session *s, int i, uint64_t deadline, int *fd, escp_chan *tx, escp_chan *rx) {
  char where[80];
  escp__fmt_addr(&s->peer, where, sizeof where);
  cconn c;
  memset(&c, 0, sizeof c);
  c.tx = tx;
  c.rx = rx;
  memset(tx, 0, sizeof *tx);
  memset(rx, 0, sizeof *rx);
  int rc = ESCP_OK;
  c.fd = socket(s->peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    ESCP_ERR(s, "socket for %s: %s", where, strerror(errno));
    return ESCP_E_CONNECT;
  }
  escp__sock_pre(s, c.fd);
  if (connect(c.fd, (struct sockaddr *)&s->peer, s->peer_len) < 0 && errno != EINPROGRESS) {
    ESCP_ERR(s, "connect %s (stream %d): %s", where, i, strerror(errno));
    rc = ESCP_E_CONNECT;
  }
  while (rc == ESCP_OK && c.state != CC_UP) {
    uint64_t now = escp__now_ms();
    if (now >= deadline) {
      ESCP_ERR(s, "connect %s (stream %d): not up in time", where, i);
      rc = ESCP_E_TIMEOUT;
      break;
    }
    struct pollfd pf[2] = {{.fd = s->wake_fd, .events = POLLIN},
                           {.fd = c.fd, .events = c.state == CC_CONNECTING ? POLLOUT : POLLIN}};
    int n = poll(pf, 2, (int)(deadline - now));
    if (n < 0 && errno != EINTR) rc = ESCP_E_SYS;
    else if (pf[0].revents || escp__stopping(s)) rc = ESCP_E_ABORTED;
    else if (n > 0 && pf[1].revents) rc = cc_step(s, &c, i, where);
  }
  if (rc != ESCP_OK) {
    close(c.fd);
    escp_chan_free(tx);
    escp_chan_free(rx);
    return rc;
  }
  escp__set_nonblock(c.fd, 0);
  escp__sock_post(s, c.fd, i);
  escp__sock_sndbuf(s, c.fd);
  *fd = c.fd;
  return ESCP_OK;
}

/* Sender, once all streams are up (connector or listener alike): on a long path (RTT >= ESCP_BDP_MIN_RTT_US) size each data
 * stream's send buffer from the bandwidth-delay product instead of leaving it to autotuning,
 * whose ceiling (net.ipv4.tcp_wmem, often 4 MiB) caps a stream at ceiling / RTT (≈ 80 MB/s
 * at 50 ms). Target: the streams together keep ESCP_BDP_RATE bytes/s in flight with 2x
 * headroom. SO_SNDBUFFORCE (CAP_NET_ADMIN) may exceed net.core.wmem_max; without it the
 * kernel clamps SO_SNDBUF to wmem_max (still 2x the autotuning ceiling, as it doubles the
 * value). An explicit ESCP_P_SOCK_BUF always wins. */
#define ESCP_BDP_MIN_RTT_US 2000
#define ESCP_BDP_RATE 1250000000.0 /* 10 Gbit/s in bytes/s */
#define ESCP_BDP_MAX (256 << 20)
int escp__sock_sndbuf(escp_session *s, int fd) {
  int buf = s->sndbuf;
  if (buf <= 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) == 0) return 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  return 0;
}

void escp__size_send_buffers(escp_session *s) {
  if (s->param[ESCP_P_SOCK_BUF] > 0 || s->role != ESCP_ROLE_SENDER) return;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(s->st[0].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || ti.tcpi_rtt < ESCP_BDP_MIN_RTT_US) return;
  double want = 2.0 * ESCP_BDP_RATE * ti.tcpi_rtt / 1e6 / (s->nstreams - 1);
  int buf = want > ESCP_BDP_MAX ? ESCP_BDP_MAX : want < (4 << 20) ? (4 << 20) : (int)want;
  int forced = 0;
  s->sndbuf = buf;
  for (int i = 1; i < s->nstreams; i++) forced |= escp__sock_sndbuf(s, s->st[i].fd);
  int got = 0;
  len = sizeof got;
  (void)getsockopt(s->st[s->nstreams - 1].fd, SOL_SOCKET, SO_SNDBUF, &got, &len);
  escp__log(s, "rtt %u us: send buffers %d KiB per stream (%s)", ti.tcpi_rtt, got >> 10,
            forced ? "SO_SNDBUFFORCE" : "SO_SNDBUF, capped by net.core.wmem_max");
}

/* Resolve addr and try each address in turn until all streams are up on one of them. */
static int connect_addrs(escp_session *s, const char *addr, int32_t port) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  int mode = (int)s->param[ESCP_P_IP_MODE];
  hints.ai_family = mode == 4 ? AF_INET : mode == 6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char ps[8];
  snprintf(ps, sizeof ps, "%d", (int)port);
  int g = getaddrinfo(addr, ps, &hints, &res);
  if (g != 0) {
    ESCP_ERR(s, "resolve %s:%d: %s", addr, (int)port, gai_strerror(g));
    return ESCP_E_CONNECT;
  }
  uint64_t deadline = escp__now_ms() + (uint64_t)s->param[ESCP_P_TIMEOUT_MS];
  int rc = ESCP_E_CONNECT;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    rc = connect_one_addr(s, ai, deadline); /* fresh connections, challenges and keys each */
    if (rc != ESCP_E_CONNECT) break; /* success, or a failure another address won't fix */
  }
  freeaddrinfo(res);
  return rc;
}

/* Connect all T+1 streams to addr:port and authenticate them. Blocks up to timeout_ms.
 * Returns ESCP_OK, E_INVAL, E_STATE, E_CONNECT, E_TIMEOUT, E_AUTH, E_VERSION, E_ABORTED
 * (stop from another thread); details via escp_last_error_detail. JS thread. */
ESCP_API int32_t escp_connect(void *h, const char *addr, int32_t port) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (!addr || !*addr || port < 1 || port > 65535) {
    ESCP_ERR(s, "connect: bad address or port %d", (int)port);
    return ESCP_E_INVAL;
  }
  if (s->net != ESCP_NET_NONE || !s->have_key || escp__stopping(s)) {
    ESCP_ERR(s, "connect: needs a key, no prior listen/connect, not stopped");
    return ESCP_E_STATE;
  }
  if (escp__buffers_check(s) != ESCP_OK) return ESCP_E_RANGE;
  s->frozen = 1;
  s->nstreams = (int)s->param[ESCP_P_THREADS] + 1;
  s->io = s->param[ESCP_P_IO_ENGINE] == ESCP_IO_DUMMY ? &escp_io_dummy : &escp_io_posix;
  s->reconnect = s->param[ESCP_P_RETRIES] > 0;
  int rc = connect_addrs(s, addr, port);
  /* Every stream is up, or this attempt is over (a retry needs key_set). Redials need the
   * key until the session ends. */
  if (rc != ESCP_OK || !s->reconnect) {
    escp__key_wipe(s);
    s->have_key = 0;
  }
  if (rc != ESCP_OK) return rc;
  pthread_mutex_lock(&s->mu);
  s->net = ESCP_NET_CONNECTED;
  s->streams_up = 1;
  pthread_mutex_unlock(&s->mu);
  atomic_store(&s->stats[ESCP_S_STREAMS_UP], (uint64_t)s->nstreams);
  escp__log(s, "connected %d streams to %s:%d", s->nstreams, addr, (int)port);
  escp__size_send_buffers(s);
  return ESCP_OK;
}
