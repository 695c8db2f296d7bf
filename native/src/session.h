/* session.h — the private session object behind the void* handle of escp.h, shared by
 * session.c (lifecycle), net.c (sockets, connector), accept.c (listener), ctl.c (control
 * stream), tx.c (sender data streams) and rx.c (receiver data streams).
 *
 * Resource bounds (T = data streams, B = block size, independent of the file count):
 *  - Sender fds: a file is opened when its first block is read and closed when its last
 *    block is accounted. Threads claim blocks from the head file only, so at most T + 1
 *    files are open (one per thread's claimed block, plus the head file between claims).
 *  - Receiver fds: a file is opened at its first block and closed as soon as the blocks
 *    its announced size implies (size_hint) are all in (tail truncated, digest folded to
 *    32 bytes) — it does not wait for escp_rx_file_expect. Only files with blocks still in
 *    the T stream pipelines (socket buffers) stay open, plus files the sender aborted
 *    until their expect arrives.
 *  - Memory: per queued/registered file one small record + path (freed when its
 *    FILE_DONE/FILE_ERROR is pushed); per open file one escp_digest (~2.1 KiB + the
 *    out-of-order window); per stream one block buffer (B + 8 KiB); the event ring
 *    (ESCP_EVRING_CAP x 128 B, fixed) and the control queue (<= ESCP_CTLQ_LIMIT bytes).
 *    Nothing is kept per completed file.
 * Liveness (timeout_ms = ESCP_P_TIMEOUT_MS): every stream socket has SO_SNDTIMEO,
 * SO_RCVTIMEO and TCP_USER_TIMEOUT = timeout and TCP keepalive probes inside it; sender
 * data threads idle for timeout/3 send a KEEPALIVE frame, TS sends a control keepalive
 * every timeout/3, so a silent stream for a whole timeout means the peer is gone. */
#ifndef ESCP_SESSION_H
#define ESCP_SESSION_H
#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdint.h>
#include "escp.h"
#include "fault.h"
#include "frame.h"
#include "io.h"
#include "prof.h"
#include "ring.h"

#define ESCP_P_MAX ESCP_P_BUNDLE /* highest parameter id */
#define ESCP_MAX_DATA 64                /* T upper bound (ESCP_P_THREADS) */
#define ESCP_MAX_STREAMS (ESCP_MAX_DATA + 1)
#define ESCP_SESSION_MAGIC 0x53504345u  /* guards against stale or foreign handles */
#define ESCP_HELLO_WIRE (ESCP_FRAME_HDR + ESCP_HELLO_LEN + ESCP_TAG) /* 80 bytes */
#define ESCP_HDR_AREA ESCP_IO_ALIGN     /* bytes before a 4096-aligned payload in block buffers */
#define ESCP_DIRECT_MIN (256u << 10)  /* files smaller than this are read and written buffered */

enum { ESCP_NET_NONE = 0, ESCP_NET_LISTENING = 1, ESCP_NET_CONNECTED = 2 };

typedef struct escp_session escp_session;

typedef struct escp_stream {
  escp_session *s;
  int idx;            /* 0 = control, 1..T = data */
  int fd;             /* -1 until authenticated; closed only in free */
  escp_chan tx;       /* seals frames in my direction */
  escp_chan rx;       /* opens frames in the peer's direction */
  int chans;          /* tx/rx derived (per connection, from its challenge) */
  pthread_t thr;
  int thr_live;       /* thread created and not yet joined */
  escp_prof_ring *prof; /* spans of this stream's thread (ESCP_P_PROFILE), else NULL */
  void *zc;           /* streaming zstd context of this stream's direction (ESCP_P_COMPRESS) */
  /* Reconnect (ESCP_P_RETRIES, escp.h "Reconnect"); data streams only. */
  int nfd;            /* listener: a re-established connection the accept thread handed over, or -1 (s->mu) */
  escp_chan ntx, nrx; /* ... its channels (nchans, s->mu) */
  int nchans;
  uint64_t dframes;   /* DATA frames over all connections: sender = sent, receiver = consumed */
  uint64_t acked;     /* sender: consumed per the peer's last ACK; receiver: the count it last sent */
  int fails;          /* reconnect attempts since the last frame consumed (bounded by the retries) */
  int bye;            /* receiver: the BYE was consumed; sender: its final ACK came */
  int gone;           /* the stream's thread has ended (s->mu): it is never re-established */
  struct escp_unacked *ua; /* sender: (file, block) of each frame not yet acknowledged */
  uint8_t ackbuf[ESCP_ACK_WIRE]; /* sender: an ACK frame being read ... */
  uint32_t ackgot;    /* ... bytes of it so far */
} escp_stream;

struct escp_session {
  uint32_t magic;
  int32_t role;                    /* ESCP_ROLE_* */
  int64_t param[ESCP_P_MAX + 1];
  uint8_t key[ESCP_KEY_LEN], sid[ESCP_SID_LEN];
  int have_key;
  int frozen;                      /* params fixed (listen/connect/file added) */
  int nstreams;                    /* T + 1 once listen/connect ran */
  escp_stream st[ESCP_MAX_STREAMS];
  const escp_io *io;
  pthread_mutex_t mu;              /* lifecycle flags, fds in st[], error detail */
  int net;                         /* ESCP_NET_* */
  int started, launched, joined, streams_up;
  atomic_int stop;
  int wake_fd;                     /* eventfd, written once by stop: wakes poll() loops */
  int listen_fd;
  atomic_int reconnect;            /* ESCP_P_RETRIES > 0 and not an answering listener: set at listen/connect, may go 0 until start */
  pthread_cond_t recon_cv;         /* (s->mu) the accept thread handed a stream its new connection */
  struct sockaddr_storage peer;    /* connector: the address all streams came up on (redials go there) */
  socklen_t peer_len;
  uint8_t aff[ESCP_AFFINITY_MAX];  /* escp_affinity_set: CPUs the stream threads pin to (bit i = CPU i) ... */
  int aff_len;                     /* ... bytes of it in use, 0 = no placement */
  int sndbuf;                      /* sender: SO_SNDBUF escp__size_send_buffers set on data streams, 0 = none */
  uint64_t listen_deadline_ms;     /* CLOCK_MONOTONIC ms by which all streams must be up */
  pthread_t accept_thr;
  int accept_live;
  char err[256];                   /* last error detail, "[file:line] text" */
  int last_errno;                  /* errno of the last failing destination call (JS thread) */
  escp_evring ev;
  escp_ctlq ctl;
  pthread_mutex_t ctl_mu;          /* serialises escp_ctl_send */
  uint8_t *ctl_buf;                /* frame scratch for ctl_send, grows to 32 + ESCP_CTL_MAX */
  size_t ctl_cap;
  int ctl_broken;                  /* a send timed out mid-frame: stream unusable */
  _Atomic uint64_t stats[ESCP_S_COUNT];
  atomic_int byes;                 /* data streams that ended with BYE */
  struct escp_tx *tx;              /* role SENDER */
  struct escp_rx *rx;              /* role RECEIVER */
#ifdef ESCP_FAULT_INJECTION
  escp_fi fi;                      /* fault-injection counters, set by escp_session_start */
#endif
};

/* ---- session.c helpers ---- */
escp_session *escp__session(void *h);       /* NULL unless h is a live session */
uint64_t escp__now_ms(void);                /* CLOCK_MONOTONIC milliseconds */
/* *ts = CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a monotonic condvar. */
void escp__deadline(struct timespec *ts, uint64_t ms);
void escp__cond_init_mono(pthread_cond_t *cv);
/* Stream idx got nothing for a whole timeout (SO_RCVTIMEO): FATAL E_TIMEOUT unless stopping
 * (blocks = reconnect attempts that failed before). */
void escp__rcv_timeout(escp_session *s, int idx, int attempts);
void escp__set_err(escp_session *s, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define ESCP_ERR(s, ...) escp__set_err((s), __FILE__, __LINE__, __VA_ARGS__)
/* Push an event; may_block = 0 from the JS thread (it is the ring's only drainer). */
void escp__event(escp_session *s, const escp_event *ev, int may_block);
void escp__event_simple(escp_session *s, uint32_t type, int32_t status, int32_t sys_errno,
                        uint32_t stream, uint64_t fino, const char *text);
void escp__log(escp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void escp__stat_add(escp_session *s, int i, uint64_t v) {
  atomic_fetch_add_explicit(&s->stats[i], v, memory_order_relaxed);
}
static inline int escp__stopping(const escp_session *s) { return atomic_load(&s->stop); }
/* Start the stream threads once both escp_session_start ran and all streams are up.
 * Takes s->mu. */
void escp__launch(escp_session *s);
/* A stream thread ends: clean = BYE/stop (quiet), else STREAM_DOWN or FATAL per caller. */
void escp__stream_gone(escp_session *s, int idx);
/* A data stream finished with BYE; the last one pushes ESCP_EV_DRAINED. */
void escp__data_bye(escp_session *s);
/* Frame rejected on stream idx: count it, push FATAL, shut the socket down. */
void escp__reject(escp_session *s, int idx, int32_t status, const char *what);
/* The stream ended unexpectedly (EOF/socket error): STREAM_DOWN unless stopping (blocks =
 * reconnect attempts that failed before). */
void escp__stream_down(escp_session *s, int idx, int32_t status, int sys_errno, const char *what, int attempts);

/* T x block size within ESCP_BUFFERS_MAX (each stream holds a block buffer, two with -C):
 * a peer's session init cannot make this process allocate more. ESCP_OK or ESCP_E_RANGE
 * with the detail set. */
int escp__buffers_check(escp_session *s);

/* ---- net.c ---- */
/* Channels of stream i (my direction into tx, the peer's into rx) for the connection whose
 * challenger sent `challenge`, seq 0. On failure both are freed. */
int escp__chans_derive(escp_session *s, int i, const uint8_t challenge[ESCP_CHALLENGE], escp_chan *tx, escp_chan *rx);
/* escp__chans_derive into st[i].tx/rx (freeing the old ones). */
int escp__chan_pair_init(escp_session *s, int i, const uint8_t challenge[ESCP_CHALLENGE]);
void escp__chan_pair_free(escp_session *s, int i);
void escp__chans_free(escp_session *s);
void escp__key_wipe(escp_session *s); /* the session key is no longer needed */
int escp__hello_seal(escp_session *s, escp_chan *tx, int i, uint8_t type, const uint8_t challenge[ESCP_CHALLENGE],
                     uint8_t out[ESCP_HELLO_WIRE]);
int escp__hello_open(escp_session *s, escp_chan *rx, int i, uint8_t type, const uint8_t challenge[ESCP_CHALLENGE],
                     uint8_t in[ESCP_HELLO_WIRE]);
/* Connector, stream i's connection broke: dial the peer again and authenticate (a fresh
 * challenge, HELLO, keys) by deadline (ms). ESCP_OK with *fd (blocking, options set) and its
 * channels, or a status (detail set; nothing left open). */
int escp__redial(escp_session *s, int i, uint64_t deadline, int *fd, escp_chan *tx, escp_chan *rx);
/* Sender: the send buffer escp__size_send_buffers chose (s->sndbuf, 0 = autotuning) on fd,
 * e.g. a redialled stream's. 1 = forced past net.core.wmem_max. */
int escp__sock_sndbuf(escp_session *s, int fd);
void escp__sock_pre(escp_session *s, int fd);            /* before connect/listen */
void escp__sock_post(escp_session *s, int fd, int idx);  /* once a stream is up */
/* SO_KEEPALIVE + TCP_USER_TIMEOUT from tmo ms (net.c; also the relay's): 0 or an errno. */
int escp__tcp_liveness(int fd, unsigned int tmo);
/* Sender role, all streams up (whoever listened): size data send buffers from the RTT. */
void escp__size_send_buffers(escp_session *s);
int escp__set_nonblock(int fd, int on);
/* send all bytes (MSG_NOSIGNAL, EINTR retried): 0 or -errno; -EAGAIN = no byte moved for
 * a whole SO_SNDTIMEO (the peer stopped reading). */
int escp__send_all(int fd, const void *buf, size_t len);
/* recv exactly len bytes: returns len, fewer on EOF (bytes got), or -errno; -EAGAIN = no
 * byte for a whole SO_RCVTIMEO (the peer is silent). */
int64_t escp__recv_all(int fd, void *buf, size_t len);
void escp__fmt_addr(const void *sa, char *out, size_t cap);

/* ---- ctl.c / tx.c / rx.c ---- */
void *escp__ctl_thread(void *arg);   /* arg: escp_stream* of stream 0 */
void escp__ctl_bye(escp_session *s); /* best-effort BYE on stream 0, from stop */
int escp__tx_new(escp_session *s);
void escp__tx_free(escp_session *s);
void escp__tx_wake(escp_session *s);
void *escp__tx_thread(void *arg);    /* arg: escp_stream* of a data stream */
int escp__rx_new(escp_session *s);
void escp__rx_free(escp_session *s);
void escp__rx_wake(escp_session *s);
void *escp__rx_thread(void *arg);

/* ---- reconnect.c ---- */
/* Stream st's connection broke (what: why, for the log): re-establish it (escp.h
 * "Reconnect"). ESCP_OK: st->fd and its channels are a new authenticated connection (the
 * caller resyncs, then calls escp__reconnected). Else the status to report as without reconnect (E_CLOSED, E_TIMEOUT,
 * E_ABORTED at stop); *attempts says how many were made. Stream thread. */
int32_t escp__reconnect(escp_session *s, escp_stream *st, const char *what, int *attempts);
/* Receiver: send an ACK of st->dframes (flags ESCP_ACKF_*). 0 or -errno. */
int escp__ack_send(escp_session *s, escp_stream *st, uint32_t flags);
/* Listener: an authenticated connection re-established stream i (the accept thread): the
 * stream takes fd and the channels (ESCP_OK), or ESCP_E_STATE when its thread has ended
 * (the caller closes fd and frees them). */
int escp__handover(escp_session *s, int i, int fd, escp_chan *tx, escp_chan *rx);
/* The stream works again (the resync went through): count it, push ESCP_EV_RECONNECT. */
void escp__reconnected(escp_session *s, escp_stream *st, const char *what, int attempts);
/* A stream is lost for good: push type (STREAM_DOWN or FATAL) with blocks = the reconnect
 * attempts that failed; nothing at stop. */
void escp__lost_event(escp_session *s, uint32_t type, int32_t status, int sys_errno, int idx, int attempts, const char *text);

/* ---- accept.c ---- */
void *escp__accept_thread(void *arg); /* arg: escp_session* */

#endif
