/* ctl.c — control stream 0: a reader thread that authenticates CTL frames and queues
 * their plaintext for escp_ctl_recv, and escp_ctl_send, which seals and sends one message
 * from the JS thread. Messages are opaque here (FlatBuffers built by TS), 1..ESCP_CTL_MAX B. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "net.h"

static int32_t sock_status(int64_t r) {
  return r == -ETIMEDOUT ? ESCP_E_TIMEOUT : ESCP_E_CLOSED;
}

/* recv failed or hit EOF after r bytes: report why (silence for a whole timeout is FATAL). */
static void ctl_recv_failed(escp_session *s, int64_t r, const char *what) {
  if (r == -EAGAIN) escp__rcv_timeout(s, 0, 0);
  else escp__stream_down(s, 0, sock_status(r), r < 0 ? (int)-r : 0, r < 0 ? "recv" : what, 0);
}

/* Read one frame. Returns 1 = message queued, 0 = clean end (BYE/stop), -1 = stream dead
 * (event already pushed). */
static int ctl_read_one(escp_session *s, escp_stream *st) {
  uint8_t hdr[ESCP_FRAME_HDR];
  int64_t r = escp__recv_all(st->fd, hdr, sizeof hdr);
  if (r != (int64_t)sizeof hdr) {
    ctl_recv_failed(s, r, "EOF");
    return -1;
  }
  escp_frame_hdr fh;
  int rc = escp_chan_check(&st->rx, hdr, ESCP_CTL_MAX, &fh);
  if (rc == ESCP_OK && fh.type != ESCP_FT_CTL && fh.type != ESCP_FT_BYE) rc = ESCP_E_PROTO;
  if (rc != ESCP_OK) {
    escp__reject(s, 0, rc, "bad control header");
    return -1;
  }
  escp_ctlmsg *m = malloc(sizeof *m + (size_t)fh.body_len + ESCP_TAG);
  if (!m) {
    escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_NOMEM, 0, 0, 0, "control message");
    return -1;
  }
  r = escp__recv_all(st->fd, m->data, (size_t)fh.body_len + ESCP_TAG);
  if (r != (int64_t)fh.body_len + ESCP_TAG) {
    free(m);
    ctl_recv_failed(s, r, "EOF inside a frame");
    return -1;
  }
  rc = escp_chan_open(&st->rx, hdr, m->data, fh.body_len, m->data + fh.body_len);
  if (rc == ESCP_OK && (fh.type == ESCP_FT_BYE) != (fh.body_len == 0)) rc = ESCP_E_PROTO;
  if (rc != ESCP_OK || fh.type == ESCP_FT_BYE) {
    free(m);
    if (rc != ESCP_OK) escp__reject(s, 0, rc, "bad control frame");
    return rc == ESCP_OK ? 0 : -1;
  }
  m->len = fh.body_len;
  if (escp_ctlq_push(&s->ctl, m, &s->stop) < 0) {
    free(m);
    return 0;
  }
  return 1;
}

void *escp__ctl_thread(void *arg) {
  escp_stream *st = arg;
  escp_session *s = st->s;
  while (!escp__stopping(s) && ctl_read_one(s, st) == 1) {
  }
  escp__stream_gone(s, 0);
  return NULL;
}

/* Seal and send one control message (1..ESCP_CTL_MAX bytes, copied). Blocks at most
 * timeout_ms when the peer does not read. Returns ESCP_OK, E_INVAL, E_TOOBIG, E_STATE
 * (streams not up / stopped), E_TIMEOUT or E_CLOSED (the stream is then unusable). JS thread. */
ESCP_API int32_t escp_ctl_send(void *h, const uint8_t *buf, int32_t len) {
  escp_session *s = escp__session(h);
  if (!s || !buf || len <= 0) return ESCP_E_INVAL;
  if (len > ESCP_CTL_MAX) return ESCP_E_TOOBIG;
  pthread_mutex_lock(&s->mu);
  int up = s->streams_up && !escp__stopping(s);
  pthread_mutex_unlock(&s->mu);
  if (!up) return ESCP_E_STATE;
  pthread_mutex_lock(&s->ctl_mu);
  int32_t rc = s->ctl_broken ? ESCP_E_CLOSED : ESCP_OK;
  size_t need = ESCP_FRAME_HDR + (size_t)len + ESCP_TAG;
  if (rc == ESCP_OK && s->ctl_cap < need) {
    uint8_t *nb = realloc(s->ctl_buf, need);
    if (nb) {
      s->ctl_buf = nb;
      s->ctl_cap = need;
    } else {
      rc = ESCP_E_NOMEM;
    }
  }
  if (rc == ESCP_OK) {
    uint8_t *body = s->ctl_buf + ESCP_FRAME_HDR;
    memcpy(body, buf, (size_t)len);
    rc = escp_chan_seal(&s->st[0].tx, ESCP_FT_CTL, 0, s->ctl_buf, body, (uint32_t)len, body + len);
  }
  if (rc == ESCP_OK) {
    int fi = ESCP_FI(s, ESCP_FI_SEND); /* fault-injection build only: a network drop */
    if (fi) shutdown(s->st[0].fd, SHUT_RDWR);
    int r = fi ? -fi : escp__send_all(s->st[0].fd, s->ctl_buf, need);
    if (r != 0) {
      s->ctl_broken = 1; /* a partial frame may be on the wire: nothing can follow it */
      rc = r == -EAGAIN || r == -EWOULDBLOCK || r == -ETIMEDOUT ? ESCP_E_TIMEOUT : ESCP_E_CLOSED;
      ESCP_ERR(s, "control send: %s", strerror(-r));
    }
  }
  pthread_mutex_unlock(&s->ctl_mu);
  return rc;
}

/* Best-effort BYE on the control stream (called by escp_session_stop): tells the peer this
 * end is closing on purpose, so its reader exits quietly instead of reporting STREAM_DOWN.
 * Never blocks: skipped if a ctl_send is in progress or the socket buffer is full. */
void escp__ctl_bye(escp_session *s) {
  if (pthread_mutex_trylock(&s->ctl_mu) != 0) return;
  pthread_mutex_lock(&s->mu);
  int ok = s->streams_up && s->st[0].fd >= 0 && !s->ctl_broken;
  pthread_mutex_unlock(&s->mu);
  if (ok) {
    uint8_t fr[ESCP_FRAME_HDR + ESCP_TAG];
    if (escp_chan_seal(&s->st[0].tx, ESCP_FT_BYE, 0, fr, fr + ESCP_FRAME_HDR, 0, fr + ESCP_FRAME_HDR) == ESCP_OK)
      (void)send(s->st[0].fd, fr, sizeof fr, MSG_NOSIGNAL | MSG_DONTWAIT);
    s->ctl_broken = 1; /* nothing may follow a BYE */
  }
  pthread_mutex_unlock(&s->ctl_mu);
}

/* Copy the next received control message into buf. Returns its length, 0 if none is
 * queued, ESCP_E_TOOBIG if cap is too small (the message stays queued; ESCP_CTL_MAX
 * always suffices), ESCP_E_INVAL. JS thread. */
ESCP_API int32_t escp_ctl_recv(void *h, uint8_t *buf, int32_t cap) {
  escp_session *s = escp__session(h);
  if (!s || cap < 0 || (!buf && cap > 0)) return ESCP_E_INVAL;
  return escp_ctlq_pop(&s->ctl, buf, cap);
}
