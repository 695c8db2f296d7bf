/* relay.c — the byte splicer of a relayed third-party transfer (`-3`, relay mode). Both
 * remote hosts listen; the local host opens nconns (= T+1) TCP connections to each and
 * copies bytes both ways between connection k to host1 and connection k to host2, without
 * looking at them: the sessions' handshake and every frame are end to end (docs/protocol.md
 * §4), the relay holds no key and sees only the challenge, sealed HELLOs and ciphertext.
 *
 * Pairing: host1 (answering listener, ESCP_P_HELLO_ON_ACCEPT) picks each connection's
 * stream id when the challenge reaches it and names it in its HELLO; host2 (challenging
 * listener) accepts a HELLO for any free id in any order. So pairs need no ordering: pair k
 * is simply fixed for the connection's life, and all 2 x nconns connections are opened at
 * once (a host1 connection whose host2 half is still connecting just gets its challenge
 * later, in order, well inside the 5 s hello deadline).
 *
 * One thread per pair: poll() on both sockets and the stop eventfd (no timer, no
 * sleeping). Per direction: socket -> pipe -> socket with splice(2), so payload pages are
 * never copied to user space. A FIN from one side is forwarded as shutdown(SHUT_WR) on the
 * other once everything before it is delivered; an error or a reset on either side, or
 * stop, resets both (SO_LINGER 0), so each session sees its stream die at once instead of a
 * clean-looking end. Liveness: SO_KEEPALIVE and TCP_USER_TIMEOUT from the timeout on every
 * socket (net.c), so a vanished host resets its pair; the sessions' own keepalive frames
 * cross the relay like any other bytes. SIGPIPE is blocked in the pair threads (splice
 * into a reset socket raises it; a blocked thread-directed signal dies with the thread). */
#define _GNU_SOURCE /* splice, F_SETPIPE_SZ, pthread_setname_np */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "relay.h"

/* Pipe capacity per direction, bytes: the largest power of two <= RELAY_PIPE_BUDGET / (2 x
 * pairs), within [64 KiB, 1 MiB] (1 MiB: fs.pipe-max-size for unprivileged users). Pipe
 * pages count against fs.pipe-user-pages-soft (default 16384 pages = 64 MiB per user, all
 * of the user's pipes); past it the kernel hands out 2-page pipes, so the relay keeps to
 * half of it. A refused size keeps what the kernel gave (the `full` flag copes with any).
 * Measured on loopback (2 vCPUs shared by the relay process and raw TCP endpoints in
 * another, 5 pairs x 1 GB one way, 3 runs; relay CPU = user + system of its process):
 *   splice, 1 MiB pipes:   1.2-1.7 GB/s, 0.39 CPU-s per GB
 *   splice, 256 KiB pipes: 1.1-1.5 GB/s, 0.64 CPU-s per GB
 *   splice, 64 KiB pipes:  ~1.0 GB/s,    0.74 CPU-s per GB
 *   recv/send through a 1 MiB user buffer: 0.93 GB/s, 0.63 CPU-s per GB
 * so splice with the largest pipe the budget allows (`make bench-relay` measures it). */
#define RELAY_PIPE_BUDGET (32u << 20)
#define RELAY_PIPE_MIN (64u << 10)
#define RELAY_PIPE_MAX (1u << 20)

static size_t pipe_target(int pairs) {
  size_t want = RELAY_PIPE_BUDGET / (2u * (unsigned)pairs), b = RELAY_PIPE_MAX;
  while (b > RELAY_PIPE_MIN && b > want) b >>= 1;
  return b;
}

void escp__relay_err(escp_relay *r, const char *fmt, ...) {
  pthread_mutex_lock(&r->mu);
  if (!r->err[0]) { /* the first failure is the one worth reporting */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&r->mu);
}

void escp__close_reset(int fd) {
  if (fd < 0) return;
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static int pipe_open(rdir *d, size_t bytes) {
  int pf[2];
  if (pipe2(pf, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
  d->pipe_r = pf[0];
  d->pipe_w = pf[1];
  int cap = fcntl(d->pipe_w, F_SETPIPE_SZ, (int)bytes);
  if (cap < 0) cap = fcntl(d->pipe_w, F_GETPIPE_SZ);
  d->cap = cap > 0 ? (size_t)cap : 65536;
  return 0;
}

static void pipe_close(rdir *d) {
  if (d->pipe_r >= 0) close(d->pipe_r);
  if (d->pipe_w >= 0) close(d->pipe_w);
  d->pipe_r = d->pipe_w = -1;
}

/* Move what can move in direction k (fd[k] -> fd[1-k]) given poll's verdicts. Returns 0,
 * or an errno (the pair is then reset) with *where naming the failing side. */
static int dir_move(escp_relay *r, rpair *p, int k, short in_ev, short out_ev, int *where) {
  rdir *d = &p->d[k];
  int src = p->fd[k], dst = p->fd[1 - k];
  if ((in_ev & (POLLIN | POLLERR | POLLHUP)) && !d->eof && !d->full) {
    ssize_t n = splice(src, NULL, d->pipe_w, NULL, d->cap - d->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->queued += (size_t)n;
      d->full = d->queued >= d->cap; /* never ask for 0 bytes: that would read as EOF */
      out_ev |= POLLOUT;             /* likely writable: save a poll round */
    } else if (n == 0) {
      d->eof = 1; /* FIN: forwarded once the pipe is empty */
    } else if (errno == EAGAIN) {
      d->full = d->queued > 0; /* readable but refused: the pipe ran out of slots, drain first */
    } else if (errno != EINTR) {
      return *where = k, errno;
    }
  }
  if ((out_ev & (POLLOUT | POLLERR | POLLHUP)) && d->queued > 0) {
    ssize_t n = splice(d->pipe_r, NULL, dst, NULL, d->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->queued -= (size_t)n;
      d->full = 0;
      atomic_fetch_add_explicit(&r->ctr[k == 0 ? ESCP_R_BYTES_12 : ESCP_R_BYTES_21], (uint64_t)n,
                                memory_order_relaxed);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return *where = 1 - k, errno;
    }
  }
  if (d->eof && d->queued == 0 && !d->done) {
    shutdown(dst, SHUT_WR); /* the half-close crosses the relay */
    d->done = 1;
  }
  return 0;
}

/* Splice until both directions ended with FIN (0), an error (its errno), or stop
 * (ECANCELED). *where: the side (0 host1, 1 host2) an error came from. */
static int pair_loop(escp_relay *r, rpair *p, int *where) {
  while (!(p->d[0].done && p->d[1].done)) {
    struct pollfd pf[3];
    pf[0] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
    for (int x = 0; x < 2; x++) {
      const rdir *out = &p->d[x], *in = &p->d[1 - x]; /* from x, and toward x */
      short ev = (short)((!out->eof && !out->full ? POLLIN : 0) | (in->queued > 0 ? POLLOUT : 0));
      /* An fd with nothing wanted stays out: its POLLHUP would otherwise spin this loop. */
      pf[1 + x] = (struct pollfd){.fd = ev ? p->fd[x] : -1, .events = ev};
    }
    if (poll(pf, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return *where = -1, errno;
    }
    if (pf[0].revents || atomic_load(&r->stop)) return *where = -1, ECANCELED;
    for (int k = 0; k < 2; k++) {
      int e = dir_move(r, p, k, pf[1 + k].revents, pf[2 - k].revents, where);
      if (e) return e;
    }
  }
  return 0;
}

static void *pair_thread(void *arg) {
  rpair *p = arg;
  escp_relay *r = p->r;
  sigset_t pipe_sig;
  sigemptyset(&pipe_sig);
  sigaddset(&pipe_sig, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
  int where = -1;
  int e = pair_loop(r, p, &where);
  if (e == 0) {
    close(p->fd[0]);
    close(p->fd[1]);
  } else {
    if (e != ECANCELED)
      escp__relay_err(r, "pair %d: %s: %s", p->idx, where == 0 ? "host1" : where == 1 ? "host2" : "poll", strerror(e));
    escp__close_reset(p->fd[0]);
    escp__close_reset(p->fd[1]);
  }
  p->fd[0] = p->fd[1] = -1;
  pipe_close(&p->d[0]);
  pipe_close(&p->d[1]);
  atomic_fetch_add(&r->ctr[e == 0 ? ESCP_R_PAIRS_DONE : ESCP_R_PAIRS_FAILED], 1);
  atomic_fetch_sub(&r->ctr[ESCP_R_PAIRS_UP], 1);
  return NULL;
}

/* ---- lifecycle ---- */

static escp_relay *relay_of(void *h) {
  escp_relay *r = h;
  return r && r->magic == ESCP_RELAY_MAGIC ? r : NULL;
}

/* New relay with a timeout of timeout_ms (1000..86400000, as ESCP_P_TIMEOUT_MS): the connect
 * deadline and the TCP liveness of every socket. NULL on a bad timeout or no memory. */
ESCP_API void *escp_relay_new(int32_t timeout_ms) {
  if (timeout_ms < 1000 || timeout_ms > 86400000) return NULL;
  escp_relay *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->timeout_ms = timeout_ms;
  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  pthread_mutex_init(&r->mu, NULL);
  for (int k = 0; k < ESCP_MAX_STREAMS; k++) {
    rpair *p = &r->p[k];
    p->r = r;
    p->idx = k;
    p->fd[0] = p->fd[1] = -1;
    for (int x = 0; x < 2; x++) p->d[x].pipe_r = p->d[x].pipe_w = -1;
  }
  r->magic = ESCP_RELAY_MAGIC;
  if (r->wake_fd < 0) {
    escp_relay_free(r);
    return NULL;
  }
  return r;
}

/* One thread per pair. ESCP_OK, E_INVAL, E_STATE (not connected, twice, stopped), E_SYS. */
ESCP_API int32_t escp_relay_start(void *h) {
  escp_relay *r = relay_of(h);
  if (!r) return ESCP_E_INVAL;
  if (r->state != RELAY_CONNECTED || atomic_load(&r->stop)) return ESCP_E_STATE;
  r->state = RELAY_STARTED;
  for (int k = 0; k < r->n; k++) {
    rpair *p = &r->p[k];
    for (int x = 0; x < 2; x++)
      if (pipe_open(&p->d[x], pipe_target(r->n)) < 0) {
        escp__relay_err(r, "pair %d: pipe: %s", k, strerror(errno));
        escp_relay_stop(r); /* the pairs already running are reset */
        return ESCP_E_SYS;
      }
    atomic_fetch_add(&r->ctr[ESCP_R_PAIRS_UP], 1);
    if (pthread_create(&p->thr, NULL, pair_thread, p) != 0) {
      atomic_fetch_sub(&r->ctr[ESCP_R_PAIRS_UP], 1);
      escp__relay_err(r, "pair %d: pthread_create failed", k);
      escp_relay_stop(r);
      return ESCP_E_SYS;
    }
    p->live = 1;
    char name[16]; /* visible in top -H */
    snprintf(name, sizeof name, "escp-relay%u", (unsigned)k % 100u);
    pthread_setname_np(p->thr, name);
  }
  return ESCP_OK;
}

/* Reset every pair still running and end connect early. Returns at once; idempotent. */
ESCP_API int32_t escp_relay_stop(void *h) {
  escp_relay *r = relay_of(h);
  if (!r) return ESCP_E_INVAL;
  atomic_store(&r->stop, 1);
  uint64_t one = 1;
  if (write(r->wake_fd, &one, sizeof one) < 0) { /* already signalled: fine */
  }
  return ESCP_OK;
}

/* Wait for every pair thread. Requires stop first (ESCP_E_STATE) unless no pair is left
 * running. Blocks; idempotent. */
ESCP_API int32_t escp_relay_join(void *h) {
  escp_relay *r = relay_of(h);
  if (!r) return ESCP_E_INVAL;
  if (!atomic_load(&r->stop) && atomic_load(&r->ctr[ESCP_R_PAIRS_UP]) > 0) return ESCP_E_STATE;
  for (int k = 0; k < ESCP_MAX_STREAMS; k++) {
    if (!r->p[k].live) continue;
    pthread_join(r->p[k].thr, NULL);
    r->p[k].live = 0;
  }
  return ESCP_OK;
}

/* Stop, join and release everything. NULL or a stale handle: no-op. */
ESCP_API void escp_relay_free(void *h) {
  escp_relay *r = relay_of(h);
  if (!r) return;
  escp_relay_stop(r);
  escp_relay_join(r);
  for (int k = 0; k < ESCP_MAX_STREAMS; k++) {
    escp__close_reset(r->p[k].fd[0]); /* connected, never started */
    escp__close_reset(r->p[k].fd[1]);
    pipe_close(&r->p[k].d[0]);
    pipe_close(&r->p[k].d[1]);
  }
  if (r->wake_fd >= 0) close(r->wake_fd);
  pthread_mutex_destroy(&r->mu);
  r->magic = 0;
  free(r);
}

/* Copy up to n counters (ESCP_R_*). Returns the count copied, or ESCP_E_INVAL. Any thread. */
ESCP_API int32_t escp_relay_stats_read(void *h, uint64_t *out, int32_t n) {
  escp_relay *r = relay_of(h);
  if (!r || !out || n < 0) return ESCP_E_INVAL;
  if (n > ESCP_R_COUNT) n = ESCP_R_COUNT;
  for (int32_t i = 0; i < n; i++) out[i] = atomic_load_explicit(&r->ctr[i], memory_order_relaxed);
  return n;
}

/* The first failure ("pair 2: host2: Connection reset by peer"), NUL-terminated, truncated
 * to len. Returns its full length (0: none), or ESCP_E_INVAL. */
ESCP_API int32_t escp_relay_last_error(void *h, char *buf, int32_t len) {
  escp_relay *r = relay_of(h);
  if (!r || (!buf && len > 0) || len < 0) return ESCP_E_INVAL;
  pthread_mutex_lock(&r->mu);
  int32_t n = (int32_t)strlen(r->err);
  if (len > 0) snprintf(buf, (size_t)len, "%s", r->err);
  pthread_mutex_unlock(&r->mu);
  return n;
}
