/* answer.c — the answering listener (ESCP_P_HELLO_ON_ACCEPT = 1). In a relayed third-party
 * transfer both hosts listen and the relay splices connection k of one with connection k of
 * the other, so the challenger (host2) is at the far end of each connection host1 accepts:
 * host1 must play the connector's part of the handshake on them. Per accepted connection
 * (the accept loop, pending table, caps and deadline are accept.c's):
 *   1. read the peer's 16-byte challenge (it may come late: the relay opens both halves of a
 *      pair before splicing them);
 *   2. pick a stream id (below), derive that connection's keys, send HELLO;
 *   3. read the 80-byte HELLO_ACK echoing the challenge; only then is the stream up.
 * Stream ids are chosen here, by the HELLO sender, as a connector does: the challenger
 * accepts a HELLO for any free id in any order, so neither the splice order nor the order
 * in which the two halves connect matters. A stranger that sends a fake challenge gets a
 * HELLO (authenticated, it carries no secret), never a stream: it cannot make a HELLO_ACK,
 * so it is dropped at its deadline or at its first wrong byte. */
#include "net.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* The stream id for p's HELLO: the lowest id neither up nor claimed by any HELLO awaiting
 * its ACK; failing that, the lowest one not claimed by a HELLO sent to p's own source
 * address; -1 if none (p waits in ESCP_PD_NOID). Sharing an id across sources is what keeps
 * strangers from locking the relay out: a stranger's HELLO reaches no challenger, so its
 * claim can never collide with a real one at the far end, while two real connections (one
 * relay, one source address) never share an id. A flood from the relay's own address can
 * hold its ids until their deadlines, as it can crowd out a connector (docs/protocol.md §4). */
static int pick_stream(const escp_session *s, const escp_ptable *t, const escp_pend *p) {
  uint8_t any[ESCP_MAX_STREAMS] = {0}, same[ESCP_MAX_STREAMS] = {0};
  for (int k = 0; k < t->n; k++) {
    const escp_pend *q = &t->p[k];
    if (q->state != ESCP_PD_ACK) continue;
    any[q->stream] = 1;
    if (memcmp(q->src, p->src, sizeof q->src) == 0) same[q->stream] = 1;
  }
  int fallback = -1;
  for (int i = 0; i < s->nstreams; i++) {
    if (s->st[i].fd >= 0) continue;
    if (!any[i]) return i;
    if (!same[i] && fallback < 0) fallback = i;
  }
  return fallback;
}

/* Seal p's HELLO for stream i with keys derived from the peer's challenge and send it (80
 * bytes into an empty send buffer: one non-blocking send). The keys are dropped at once and
 * derived again when the HELLO_ACK arrives, so a pending connection holds no keys and the
 * session's stream slots stay untouched until a stream is really up. */
static int send_hello(escp_session *s, escp_pend *p, int i) {
  uint8_t hello[ESCP_HELLO_WIRE];
  int rc = escp__chan_pair_init(s, i, p->challenge);
  if (rc == ESCP_OK) rc = escp__hello_seal(s, &s->st[i].tx, i, ESCP_FT_HELLO, p->challenge, hello);
  escp__chan_pair_free(s, i);
  if (rc == ESCP_OK && send(p->fd, hello, sizeof hello, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof hello)
    rc = ESCP_E_CONNECT;
  if (rc != ESCP_OK) {
    escp__log(s, "answering listener: HELLO for stream %d not sent: %s", i, escp_status_name(rc));
    return rc;
  }
  p->state = ESCP_PD_ACK;
  p->stream = i;
  p->got = 0;
  return ESCP_OK;
}

/* A full HELLO_ACK is in p->buf. Cheap header checks first (type, length, seq 0, the id our
 * HELLO claimed, still free); only then derive the keys, authenticate it and check every
 * field including the echoed challenge. ESCP_OK = stream p->stream is up. */
static int ack_check(escp_session *s, escp_pend *p) {
  escp_frame_hdr fh; /* claimed, not yet trusted: authenticated as the AAD */
  escp_frame_hdr_decode(p->buf, &fh);
  int i = p->stream;
  if (fh.type != ESCP_FT_HELLO_ACK || fh.body_len != ESCP_HELLO_LEN || fh.seq != 0 || fh.stream != i)
    return ESCP_E_PROTO;
  if (s->st[i].fd >= 0) return ESCP_E_DUP;
  uint8_t again[ESCP_HELLO_WIRE];
  int rc = escp__chan_pair_init(s, i, p->challenge);
  /* Our HELLO used seq 0 of our direction: sealing it once more (the same bytes) moves the
   * fresh channel on to seq 1, where the stream continues. */
  if (rc == ESCP_OK) rc = escp__hello_seal(s, &s->st[i].tx, i, ESCP_FT_HELLO, p->challenge, again);
  if (rc == ESCP_OK) rc = escp__hello_open(s, &s->st[i].rx, i, ESCP_FT_HELLO_ACK, p->challenge, p->buf);
  if (rc != ESCP_OK) {
    escp__chan_pair_free(s, i); /* this connection's keys die with it; the id stays free */
    return rc;
  }
  escp__stream_install(s, p->fd, i);
  return ESCP_OK;
}

int escp__answer_read(escp_session *s, escp_ptable *t, escp_pend *p) {
  uint8_t *dst = p->state == ESCP_PD_CHALLENGE ? p->challenge : p->buf;
  uint32_t want = p->state == ESCP_PD_CHALLENGE ? ESCP_CHALLENGE : p->state == ESCP_PD_ACK ? ESCP_HELLO_WIRE : 1;
  ssize_t r = recv(p->fd, dst + p->got, want - p->got, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  if (r <= 0 || p->state == ESCP_PD_NOID) return -1; /* gone, or spoke before our HELLO */
  p->got += (uint32_t)r;
  if (p->got < want) return 0;
  if (p->state == ESCP_PD_CHALLENGE) {
    p->state = ESCP_PD_NOID;
    p->got = 0;
    int i = pick_stream(s, t, p);
    return i < 0 || send_hello(s, p, i) == ESCP_OK ? 0 : -1;
  }
  int rc = ack_check(s, p);
  if (rc != ESCP_OK) escp__log(s, "rejected hello-ack for stream %d: %s", p->stream, escp_status_name(rc));
  return rc == ESCP_OK ? 1 : -1;
}

void escp__answer_assign(escp_session *s, escp_ptable *t) {
  for (int k = t->n - 1; k >= 0; k--) { /* backwards: a close moves the last entry into k */
    escp_pend *p = &t->p[k];
    if (p->state != ESCP_PD_NOID) continue;
    int i = pick_stream(s, t, p);
    if (i >= 0 && send_hello(s, p, i) != ESCP_OK) escp__pend_close(s, t, k);
  }
}
