/* reconnect.c — re-establishing a data stream whose connection broke (ESCP_P_RETRIES,
 * escp.h "Reconnect"). The connector dials that stream again; the listener, which keeps
 * listening while the session lives, authenticates the new connection on its accept thread
 * and hands it over (escp__handover). Either way the stream thread adopts the new socket and
 * channels and then resyncs: the receiver's first frame on it is an ACK of what it consumed
 * (escp__ack_send), the sender resends the rest (tx.c). Attempts are bounded: at most
 * ESCP_P_RETRIES in a row without a consumed frame in between, within one timeout of the
 * break (connector) or two (listener: the connector may need a whole timeout to notice). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "le.h"
#include "net.h"

/* st's connection becomes fd with channels tx/rx (moved: the sources are zeroed). */
static void adopt(escp_session *s, escp_stream *st, int fd, escp_chan *tx, escp_chan *rx) {
  pthread_mutex_lock(&s->mu);
  int old = st->fd;
  st->fd = fd;
  escp_chan_free(&st->tx);
  escp_chan_free(&st->rx);
  st->tx = *tx;
  st->rx = *rx;
  st->chans = 1;
  memset(tx, 0, sizeof *tx);
  memset(rx, 0, sizeof *rx);
  if (escp__stopping(s)) shutdown(fd, SHUT_RDWR); /* stop ran between: it saw the old fd */
  pthread_mutex_unlock(&s->mu);
  if (old >= 0) close(old);
}

int escp__handover(escp_session *s, int i, int fd, escp_chan *tx, escp_chan *rx) {
  escp__stream_install_opts(s, fd, i);
  pthread_mutex_lock(&s->mu);
  escp_stream *st = &s->st[i];
  if (st->gone) { /* its thread ended (cleanly, or the stream was rejected): nothing to resume */
    pthread_mutex_unlock(&s->mu);
    return ESCP_E_STATE;
  }
  if (st->nfd >= 0) close(st->nfd); /* an earlier attempt the peer gave up on */
  escp_chan_free(&st->ntx);
  escp_chan_free(&st->nrx);
  st->nfd = fd;
  st->ntx = *tx;
  st->nrx = *rx;
  st->nchans = 1;
  /* The peer (authenticated) started over on this stream: whatever the thread is blocked
   * on is dead to it. */
  if (st->fd >= 0) shutdown(st->fd, SHUT_RDWR);
  pthread_cond_broadcast(&s->recon_cv);
  pthread_mutex_unlock(&s->mu);
  escp__log(s, "stream %d: a re-established connection was accepted", i);
  return ESCP_OK;
}

/* Listener: wait until the accept thread hands st a connection, or deadline / stop. */
static int32_t take_handover(escp_session *s, escp_stream *st, uint64_t deadline) {
  struct timespec dl;
  uint64_t now = escp__now_ms();
  escp__deadline(&dl, deadline > now ? deadline - now : 0);
  pthread_mutex_lock(&s->mu);
  int late = 0;
  while (st->nfd < 0 && !escp__stopping(s) && !late)
    late = pthread_cond_timedwait(&s->recon_cv, &s->mu, &dl) == ETIMEDOUT;
  int fd = st->nfd;
  escp_chan tx = st->ntx, rx = st->nrx;
  st->nfd = -1;
  st->nchans = 0;
  memset(&st->ntx, 0, sizeof st->ntx);
  memset(&st->nrx, 0, sizeof st->nrx);
  pthread_mutex_unlock(&s->mu);
  if (fd < 0) return ESCP_E_TIMEOUT;
  adopt(s, st, fd, &tx, &rx);
  return ESCP_OK;
}

/* Connector: wait ms before the next dial, unless stopped. */
static void backoff(escp_session *s, uint64_t ms) {
  struct pollfd pf = {.fd = s->wake_fd, .events = POLLIN};
  (void)poll(&pf, 1, (int)ms);
}

int32_t escp__reconnect(escp_session *s, escp_stream *st, const char *what, int *attempts) {
  *attempts = 0;
  if (!s->reconnect || escp__stopping(s)) return escp__stopping(s) ? ESCP_E_ABORTED : ESCP_E_CLOSED;
  int retries = (int)s->param[ESCP_P_RETRIES], connector = s->net == ESCP_NET_CONNECTED;
  uint64_t tmo = (uint64_t)s->param[ESCP_P_TIMEOUT_MS];
  uint64_t deadline = escp__now_ms() + (connector ? tmo : 2 * tmo);
  escp__stat_add(s, ESCP_S_RECONNECTING, 1);
  escp__log(s, "stream %d: connection lost (%s): re-establishing", st->idx, what);
  int32_t rc = ESCP_E_CLOSED;
  while (st->fails < retries && !escp__stopping(s) && escp__now_ms() < deadline) {
    st->fails++;
    (*attempts)++;
    if (!connector) {
      rc = take_handover(s, st, deadline);
      break; /* the listener can only wait: one wait is the whole window */
    }
    if (*attempts > 1) { /* 250 ms, 500 ms, 1 s, 2 s, then 4 s apart */
      uint64_t wait = (uint64_t)250 << (*attempts - 2 < 4 ? *attempts - 2 : 4), now = escp__now_ms();
      backoff(s, now + wait < deadline ? wait : deadline > now ? deadline - now : 0);
      if (escp__stopping(s) || escp__now_ms() >= deadline) break;
    }
    int fd = -1;
    escp_chan tx, rx;
    rc = escp__redial(s, st->idx, deadline, &fd, &tx, &rx);
    if (rc == ESCP_OK) {
      adopt(s, st, fd, &tx, &rx);
      break;
    }
    escp__log(s, "stream %d: attempt %d: %s", st->idx, *attempts, s->err);
  }
  atomic_fetch_sub(&s->stats[ESCP_S_RECONNECTING], 1);
  if (escp__stopping(s)) return ESCP_E_ABORTED;
  return rc != ESCP_OK && (rc == ESCP_E_TIMEOUT || rc == ESCP_E_CONNECT) ? ESCP_E_CLOSED : rc;
}

void escp__reconnected(escp_session *s, escp_stream *st, const char *what, int attempts) {
  escp__stat_add(s, ESCP_S_RECONNECTS, 1);
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = ESCP_EV_RECONNECT;
  ev.stream = (uint32_t)st->idx;
  ev.blocks = (uint64_t)attempts;
  snprintf(ev.text, sizeof ev.text, "%s", what);
  escp__event(s, &ev, 1);
}

int escp__ack_send(escp_session *s, escp_stream *st, uint32_t flags) {
  uint8_t fr[ESCP_ACK_WIRE], *body = fr + ESCP_FRAME_HDR;
  escp_put64(body, st->dframes);
  escp_put32(body + 8, flags);
  escp_put32(body + 12, 0);
  if (escp_chan_seal(&st->tx, ESCP_FT_ACK, 0, fr, body, ESCP_ACK_LEN, body + ESCP_ACK_LEN) != ESCP_OK) return -EPROTO;
  int fi = ESCP_FI(s, ESCP_FI_ACK); /* fault-injection build only: a drop as the ACK goes out */
  if (fi) shutdown(st->fd, SHUT_RDWR);
  int r = fi ? -fi : escp__send_all(st->fd, fr, sizeof fr);
  if (r == 0) st->acked = st->dframes;
  (void)s; /* only the fault-injection build looks at it */
  return r;
}

void escp__lost_event(escp_session *s, uint32_t type, int32_t status, int sys_errno, int idx, int attempts, const char *text) {
  if (escp__stopping(s)) return;
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.status = status;
  ev.sys_errno = sys_errno;
  ev.stream = (uint32_t)idx;
  ev.blocks = (uint64_t)(attempts > 0 ? attempts : 0);
  if (text) snprintf(ev.text, sizeof ev.text, "%s", text);
  escp__event(s, &ev, 1);
}
