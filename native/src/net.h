/* net.h — socket plumbing shared by the connector (net.c) and listener (accept.c).
 * The prototypes live in session.h (they take the session); this header only documents
 * the module boundary so includes stay one-way. */
#ifndef ESCP_NET_H
#define ESCP_NET_H
#include "session.h"

/* Listener pending table: unauthenticated connections waiting for their HELLO. A new
 * connection always gets a slot: if its source address already holds
 * ESCP_PENDING_PER_SOURCE(nstreams) of them, that source's oldest is closed; else if the
 * table is full, the oldest overall is closed (both counted rejected). 256 >= 4 x 65. */
#define ESCP_MAX_PENDING 256
#define ESCP_PENDING_PER_SOURCE(nstreams) (2 * (nstreams) + 8)
/* A pending connection must deliver its whole HELLO (answering listener: its challenge and
 * a valid HELLO_ACK) within min(timeout, this) ms of accept. */
#define ESCP_HELLO_DEADLINE_MS 5000

/* States of a pending connection. A challenging listener (the default) sends its challenge
 * at accept and reads the HELLO; an answering one (ESCP_P_HELLO_ON_ACCEPT = 1) reads the
 * peer's challenge, sends a HELLO for a stream id it picks and reads the HELLO_ACK. */
enum {
  ESCP_PD_HELLO = 0,     /* challenger: challenge sent, reading the 80-byte HELLO */
  ESCP_PD_CHALLENGE = 1, /* answerer: reading the peer's 16-byte challenge */
  ESCP_PD_NOID = 2,      /* answerer: challenge in, no stream id free for it yet */
  ESCP_PD_ACK = 3,       /* answerer: HELLO sent for `stream`, reading the HELLO_ACK */
};

typedef struct escp_pend {
  int fd;
  int state;          /* ESCP_PD_* */
  int stream;         /* answerer in ESCP_PD_ACK: the stream id its HELLO claimed */
  uint64_t deadline;  /* ms, CLOCK_MONOTONIC: the handshake must be complete by then */
  uint64_t order;     /* accept sequence number: lower = older */
  uint8_t src[16];    /* source address, IPv4 as v4-mapped IPv6 */
  uint32_t got;       /* bytes of the challenge / HELLO / HELLO_ACK read so far */
  uint8_t challenge[ESCP_CHALLENGE];
  uint8_t buf[ESCP_HELLO_WIRE];
} escp_pend;

typedef struct escp_ptable {
  escp_pend p[ESCP_MAX_PENDING];
  int n;
  uint64_t next_order;
} escp_ptable;

/* accept.c: close pending connection k (counted rejected); the last entry moves into k. */
void escp__pend_close(escp_session *s, escp_ptable *t, int k);
/* accept.c: an authenticated connection becomes stream i (liveness options, blocking). */
void escp__stream_install(escp_session *s, int fd, int i);
/* accept.c: the options part of it (blocking, liveness, pacing, send buffer). */
void escp__stream_install_opts(escp_session *s, int fd, int i);
/* answer.c (answering listener): read what is there on p. 1 = stream up, 0 = keep, -1 = drop. */
int escp__answer_read(escp_session *s, escp_ptable *t, escp_pend *p);
/* answer.c: give connections waiting in ESCP_PD_NOID a stream id if one is free for them. */
void escp__answer_assign(escp_session *s, escp_ptable *t);

#endif
