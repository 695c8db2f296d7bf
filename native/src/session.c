/* session.c — session lifecycle (new/params/key/start/stop/join/free), the parameter
 * bounds table, error details, status names, event/stat access, and the small helpers the
 * stream threads share (event pushes, stream end bookkeeping, thread launch). */
#define _GNU_SOURCE /* pthread_setname_np, pthread_*affinity_np, CPU_* */
#include "session.h"
#include "b3.h"
#include "digest.h"
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The event layout is ABI: src/native/symbols.ts reads fields at these offsets. */
_Static_assert(sizeof(escp_event) == 128, "escp_event must be 128 bytes");
_Static_assert(offsetof(escp_event, type) == 0, "escp_event.type");
_Static_assert(offsetof(escp_event, status) == 4, "escp_event.status");
_Static_assert(offsetof(escp_event, sys_errno) == 8, "escp_event.sys_errno");
_Static_assert(offsetof(escp_event, stream) == 12, "escp_event.stream");
_Static_assert(offsetof(escp_event, fino) == 16, "escp_event.fino");
_Static_assert(offsetof(escp_event, bytes) == 24, "escp_event.bytes");
_Static_assert(offsetof(escp_event, blocks) == 32, "escp_event.blocks");
_Static_assert(offsetof(escp_event, digest) == 40, "escp_event.digest");
_Static_assert(offsetof(escp_event, text) == 72, "escp_event.text");

/* ---- library ---- */

/* ABI version of this build; TS refuses to run against another. Any thread. */
ESCP_API uint32_t escp_abi_version(void) { return ESCP_ABI_VERSION; }

/* sizeof(escp_event): lets TS check its generated layout at load time. */
ESCP_API uint32_t escp_event_size(void) { return (uint32_t)sizeof(escp_event); }

/* Static name of a status code ("ESCP_E_AUTH"), "ESCP_E_UNKNOWN" for others. */
ESCP_API const char *escp_status_name(int32_t status) {
  static const char *const names[] = {
      "ESCP_OK", "ESCP_E_INVAL", "ESCP_E_NOMEM", "ESCP_E_STATE", "ESCP_E_RANGE",
      "ESCP_E_SYS", "ESCP_E_CRYPTO", "ESCP_E_AUTH", "ESCP_E_PROTO", "ESCP_E_REPLAY",
      "ESCP_E_TIMEOUT", "ESCP_E_CLOSED", "ESCP_E_BIND", "ESCP_E_CONNECT", "ESCP_E_OPEN",
      "ESCP_E_READ", "ESCP_E_WRITE", "ESCP_E_SHORT", "ESCP_E_UNKNOWN_FILE", "ESCP_E_DIGEST",
      "ESCP_E_FULL", "ESCP_E_TOOBIG", "ESCP_E_ABORTED", "ESCP_E_VERSION", "ESCP_E_DUP", "ESCP_E_CHANGED",
      "ESCP_E_PATH", "ESCP_E_BUSY"};
  if (status > 0 || -status >= (int32_t)(sizeof names / sizeof names[0])) return "ESCP_E_UNKNOWN";
  return names[-status];
}

/* The one table of parameter bounds; escp_param_set validates against it (plus the
 * power-of-two and enum checks noted). */
static const struct {
  int32_t id;
  int64_t min, max, def;
} bounds[] = {
    {ESCP_P_THREADS, 1, ESCP_MAX_DATA, 4},
    {ESCP_P_BLOCK_SIZE, 65536, 67108864, 1048576}, /* power of two */
    {ESCP_P_IO_ENGINE, ESCP_IO_POSIX, ESCP_IO_DUMMY, ESCP_IO_POSIX},
    {ESCP_P_DIRECT, 0, 1, 1},
    {ESCP_P_CHECKSUM, 0, 1, 1},
    {ESCP_P_SPARSE, 0, 1, 0},
    {ESCP_P_TIMEOUT_MS, 1000, 86400000, 30000},
    {ESCP_P_RATE_LIMIT, 0, (int64_t)1 << 40, 0},   /* bytes/s per socket */
    {ESCP_P_SOCK_BUF, 0, (int64_t)1 << 30, 0},     /* bytes */
    {ESCP_P_IP_MODE, 0, 6, 0},                     /* one of 0, 4, 6 */
    {ESCP_P_VERBOSE, 0, 1, 0},
    {ESCP_P_PROFILE, 0, 1, 0},
    {ESCP_P_COMPRESS, 0, 19, 0},                   /* zstd level, 0 = off */
    {ESCP_P_PRESERVE, 0, 1, 0},
    {ESCP_P_HELLO_ON_ACCEPT, 0, 1, 0},
    {ESCP_P_RESUME, 0, 2, 0},
    {ESCP_P_RETRIES, 0, ESCP_RETRIES_MAX, 0},
    {ESCP_P_HOLES, 0, 1, 0},
    {ESCP_P_OWNER, 0, 1, 0},
    {ESCP_P_BUNDLE, 0, 1, 0},
};

static int bounds_find(int32_t param) {
  for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
    if (bounds[i].id == param) return (int)i;
  return -1;
}

/* Bounds of a parameter; any out pointer may be NULL. ESCP_OK or ESCP_E_INVAL. Any thread. */
ESCP_API int32_t escp_param_bounds(int32_t param, int64_t *min_out, int64_t *max_out,
                                   int64_t *default_out) {
  int i = bounds_find(param);
  if (i < 0) return ESCP_E_INVAL;
  if (min_out) *min_out = bounds[i].min;
  if (max_out) *max_out = bounds[i].max;
  if (default_out) *default_out = bounds[i].def;
  return ESCP_OK;
}

/* ---- helpers shared by the modules ---- */

escp_session *escp__session(void *h) {
  escp_session *s = h;
  return (s && s->magic == ESCP_SESSION_MAGIC) ? s : NULL;
}

uint64_t escp__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void escp__deadline(struct timespec *ts, uint64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

void escp__cond_init_mono(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

void escp__rcv_timeout(escp_session *s, int idx, int attempts) {
  if (escp__stopping(s)) return;
  char t[56];
  snprintf(t, sizeof t, "no data from peer for %lld s on stream %d",
           (long long)(s->param[ESCP_P_TIMEOUT_MS] + 999) / 1000, idx);
  escp__lost_event(s, ESCP_EV_FATAL, ESCP_E_TIMEOUT, 0, idx, attempts, t);
}

void escp__set_err(escp_session *s, const char *file, int line, const char *fmt, ...) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  pthread_mutex_lock(&s->mu);
  int n = snprintf(s->err, sizeof s->err, "[%s:%d] ", base, line);
  if (n < 0 || (size_t)n >= sizeof s->err) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
  va_end(ap);
  pthread_mutex_unlock(&s->mu);
}

void escp__event(escp_session *s, const escp_event *ev, int may_block) {
  escp_evring_push(&s->ev, ev, may_block, 0, &s->stop);
}

void escp__event_simple(escp_session *s, uint32_t type, int32_t status, int32_t sys_errno,
                        uint32_t stream, uint64_t fino, const char *text) {
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.status = status;
  ev.sys_errno = sys_errno;
  ev.stream = stream;
  ev.fino = fino;
  if (text) snprintf(ev.text, sizeof ev.text, "%s", text);
  escp__event(s, &ev, 1);
}

void escp__log(escp_session *s, const char *fmt, ...) {
  if (!s->param[ESCP_P_VERBOSE]) return;
  escp_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = ESCP_EV_LOG;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ev.text, sizeof ev.text, fmt, ap);
  va_end(ap);
  escp_evring_push(&s->ev, &ev, 0, 1, &s->stop); /* debug text never blocks a thread */
}

void escp__stream_gone(escp_session *s, int idx) {
  pthread_mutex_lock(&s->mu);
  s->st[idx].gone = 1;
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_sub(&s->stats[ESCP_S_STREAMS_UP], 1);
}

void escp__data_bye(escp_session *s) {
  if (atomic_fetch_add(&s->byes, 1) + 1 == s->nstreams - 1)
    escp__event_simple(s, ESCP_EV_DRAINED, ESCP_OK, 0, 0, 0, NULL);
}

void escp__reject(escp_session *s, int idx, int32_t status, const char *what) {
  escp__stat_add(s, ESCP_S_FRAMES_REJECTED, 1);
  shutdown(s->st[idx].fd, SHUT_RDWR);
  if (escp__stopping(s)) return;
  char t[56];
  snprintf(t, sizeof t, "stream %d: %s", idx, what);
  escp__event_simple(s, ESCP_EV_FATAL, status, 0, (uint32_t)idx, 0, t);
}

void escp__stream_down(escp_session *s, int idx, int32_t status, int sys_errno, const char *what, int attempts) {
  escp__lost_event(s, ESCP_EV_STREAM_DOWN, status, sys_errno, idx, attempts, what);
}

/* Every stream thread starts here: pinned first (escp_affinity_set), so that the block
 * buffers its role function allocates and first touches next (tx.c and rx.c allocate them
 * inside the thread: nothing else to move) get pages of the pinned CPUs' node. */
static void *stream_main(void *arg) {
  escp_stream *st = arg;
  escp_session *s = st->s;
  if (s->aff_len > 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < s->aff_len * 8; c++)
      if (s->aff[c / 8] & (1u << (c % 8))) CPU_SET(c, &set);
    int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (e != 0) escp__log(s, "stream %d: pthread_setaffinity_np failed, errno %d (runs unpinned)", st->idx, e);
  }
  return st->idx == 0 ? escp__ctl_thread(st)
         : s->role == ESCP_ROLE_SENDER ? escp__tx_thread(st) : escp__rx_thread(st);
}

void escp__launch(escp_session *s) {
  pthread_mutex_lock(&s->mu);
  int go = s->started && s->streams_up && !s->launched && !escp__stopping(s);
  if (go) s->launched = 1;
  for (int i = 0; go && i < s->nstreams; i++) {
    if (s->param[ESCP_P_PROFILE] && !s->st[i].prof && (s->st[i].prof = calloc(1, sizeof(escp_prof_ring))))
      s->st[i].prof->stream = (uint16_t)i; /* no memory: this stream is simply not profiled */
    if (pthread_create(&s->st[i].thr, NULL, stream_main, &s->st[i]) == 0) {
      s->st[i].thr_live = 1;
      char name[16]; /* visible in top -H and /proc/PID/task/TID/comm */
      snprintf(name, sizeof name, "escp-%s%u", i == 0 ? "ctl" : s->role == ESCP_ROLE_SENDER ? "tx" : "rx", (unsigned)i % 100u);
      pthread_setname_np(s->st[i].thr, name);
    } else {
      pthread_mutex_unlock(&s->mu);
      escp__event_simple(s, ESCP_EV_FATAL, ESCP_E_SYS, errno, (uint32_t)i, 0, "pthread_create");
      pthread_mutex_lock(&s->mu);
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
}

/* ---- session lifecycle ---- */

/* New session of one role (ESCP_ROLE_SENDER or ESCP_ROLE_RECEIVER) with default params.
 * Returns the handle (owned by the caller until escp_session_free) or NULL. JS thread. */
ESCP_API void *escp_session_new(int32_t role) {
  if (role != ESCP_ROLE_SENDER && role != ESCP_ROLE_RECEIVER) return NULL;
  escp_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->role = role;
  for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) s->param[bounds[i].id] = bounds[i].def;
  s->listen_fd = -1;
  for (int i = 0; i < ESCP_MAX_STREAMS; i++) {
    s->st[i].s = s;
    s->st[i].idx = i;
    s->st[i].fd = -1;
    s->st[i].nfd = -1;
  }
  pthread_mutex_init(&s->mu, NULL);
  escp__cond_init_mono(&s->recon_cv);
  pthread_mutex_init(&s->ctl_mu, NULL);
  s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int rc = s->wake_fd < 0 ? ESCP_E_SYS : escp_evring_init(&s->ev, ESCP_EVRING_CAP);
  if (rc == ESCP_OK) rc = escp_ctlq_init(&s->ctl, ESCP_CTLQ_LIMIT);
  if (rc == ESCP_OK) rc = role == ESCP_ROLE_SENDER ? escp__tx_new(s) : escp__rx_new(s);
  s->magic = ESCP_SESSION_MAGIC;
  if (rc != ESCP_OK) {
    escp_session_free(s);
    return NULL;
  }
  return s;
}

/* Set a parameter before listen/connect/first file. ESCP_OK, E_INVAL (unknown id or
 * handle), E_RANGE (out of bounds / not a power of two / bad enum), E_STATE. JS thread. */
ESCP_API int32_t escp_param_set(void *h, int32_t param, int64_t value) {
  escp_session *s = escp__session(h);
  int i = bounds_find(param);
  if (!s || i < 0) return ESCP_E_INVAL;
  /* ESCP_P_RESUME is read only by file_add (JS thread): it may be set until the first file.
   * ESCP_P_RETRIES may be turned off until start (the peer turned out not to reconnect);
   * ESCP_P_HOLES, ESCP_P_OWNER and ESCP_P_BUNDLE (read when a file is sealed, a directory
   * record made or a symlink made, a small file queued or a bundle received) may be set until
   * start, once the peer's session init said what to do. */
  int late_off = param == ESCP_P_RETRIES && value == 0 && !s->started;
  int late = late_off || ((param == ESCP_P_HOLES || param == ESCP_P_OWNER || param == ESCP_P_BUNDLE) && !s->started);
  if ((s->frozen && param != ESCP_P_RESUME && !late) || escp__stopping(s)) return ESCP_E_STATE;
  if (value < bounds[i].min || value > bounds[i].max) return ESCP_E_RANGE;
  if (param == ESCP_P_BLOCK_SIZE && (value & (value - 1))) return ESCP_E_RANGE;
  if (param == ESCP_P_IP_MODE && value != 0 && value != 4 && value != 6) return ESCP_E_RANGE;
  s->param[param] = value;
  if (late_off) atomic_store(&s->reconnect, 0);
  return ESCP_OK;
}

/* Current value of a parameter (>= 0), or ESCP_E_INVAL. JS thread. */
ESCP_API int64_t escp_param_get(void *h, int32_t param) {
  escp_session *s = escp__session(h);
  if (!s || bounds_find(param) < 0) return ESCP_E_INVAL;
  return s->param[param];
}

int escp__buffers_check(escp_session *s) {
  int64_t need = s->param[ESCP_P_THREADS] * s->param[ESCP_P_BLOCK_SIZE];
  if (need <= (int64_t)ESCP_BUFFERS_MAX) return ESCP_OK;
  ESCP_ERR(s, "%lld streams x %lld-byte blocks exceed the %d MiB buffer limit",
           (long long)s->param[ESCP_P_THREADS], (long long)s->param[ESCP_P_BLOCK_SIZE], ESCP_BUFFERS_MAX >> 20);
  return ESCP_E_RANGE;
}

/* Install the 32-byte session key and 16-byte session id (copied) before listen/connect.
 * Hardens the process first (best effort: the control plane calls escp_process_harden
 * itself and reports a failure). */
ESCP_API int32_t escp_session_key_set(void *h, const uint8_t *key32, const uint8_t *sid16) {
  escp_session *s = escp__session(h);
  if (!s || !key32 || !sid16) return ESCP_E_INVAL;
  if (s->net != ESCP_NET_NONE || escp__stopping(s)) return ESCP_E_STATE;
  (void)escp_process_harden();
  memcpy(s->key, key32, ESCP_KEY_LEN);
  memcpy(s->sid, sid16, ESCP_SID_LEN);
  s->have_key = 1;
  return ESCP_OK;
}

/* The CPUs the stream threads pin to (escp.h: affinity_set). JS thread. */
ESCP_API int32_t escp_affinity_set(void *h, const uint8_t *mask, int32_t len) {
  escp_session *s = escp__session(h);
  if (!s || len < 0 || len > ESCP_AFFINITY_MAX || (!mask && len > 0)) return ESCP_E_INVAL;
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (len > 0 && pthread_getaffinity_np(pthread_self(), sizeof mine, &mine) != 0) return ESCP_E_SYS;
  uint8_t keep[ESCP_AFFINITY_MAX] = {0};
  int any = 0;
  for (int c = 0; c < len * 8; c++)
    if ((mask[c / 8] & (1u << (c % 8))) && CPU_ISSET(c, &mine)) keep[c / 8] |= (uint8_t)(1u << (c % 8)), any = 1;
  if (len > 0 && !any) {
    ESCP_ERR(s, "affinity: none of the mask's CPUs exists or may be used by this process");
    return ESCP_E_INVAL;
  }
  pthread_mutex_lock(&s->mu); /* the accept thread launches the streams under it */
  int ok = !s->started && !escp__stopping(s);
  if (ok) memcpy(s->aff, keep, sizeof keep), s->aff_len = len;
  pthread_mutex_unlock(&s->mu);
  return ok ? ESCP_OK : ESCP_E_STATE;
}

/* Start the stream threads (now, or when the listener has all streams). Returns at once.
 * ESCP_E_STATE before listen/connect, twice, or after stop. JS thread. */
ESCP_API int32_t escp_session_start(void *h) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  pthread_mutex_lock(&s->mu);
  int ok = s->net != ESCP_NET_NONE && !s->started && !escp__stopping(s);
  if (ok) s->started = 1;
#ifdef ESCP_FAULT_INJECTION
  if (ok) escp__fi_init(&s->fi);
#endif
  pthread_mutex_unlock(&s->mu);
  if (!ok) {
    ESCP_ERR(s, "start: session not listening/connected, already started, or stopped");
    return ESCP_E_STATE;
  }
  escp__launch(s);
  return ESCP_OK;
}

/* Ask every thread to end: set the flag, shut sockets down, wake every wait. Returns at
 * once; idempotent; valid in any state. JS thread (or any thread). */
ESCP_API int32_t escp_session_stop(void *h) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (!escp__stopping(s)) escp__ctl_bye(s);
  atomic_store(&s->stop, 1);
  uint64_t one = 1;
  if (write(s->wake_fd, &one, sizeof one) < 0) { /* already signalled: fine */
  }
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->nstreams; i++)
    if (s->st[i].fd >= 0) shutdown(s->st[i].fd, SHUT_RDWR);
  pthread_cond_broadcast(&s->recon_cv);
  pthread_mutex_unlock(&s->mu);
  escp_evring_wake(&s->ev);
  escp_ctlq_wake(&s->ctl);
  if (s->tx) escp__tx_wake(s);
  if (s->rx) escp__rx_wake(s);
  return ESCP_OK;
}

/* Wait for every thread to exit. Requires escp_session_stop first (ESCP_E_STATE).
 * Blocks; idempotent. JS thread. */
ESCP_API int32_t escp_session_join(void *h) {
  escp_session *s = escp__session(h);
  if (!s) return ESCP_E_INVAL;
  if (!escp__stopping(s)) return ESCP_E_STATE;
  if (s->accept_live) {
    pthread_join(s->accept_thr, NULL);
    s->accept_live = 0;
  }
  /* The accept thread may launch workers; after it is joined nothing else can. */
  for (int i = 0; i < ESCP_MAX_STREAMS; i++) {
    if (!s->st[i].thr_live) continue;
    pthread_join(s->st[i].thr, NULL);
    s->st[i].thr_live = 0;
  }
  s->joined = 1;
  return ESCP_OK;
}

/* Release everything (stops and joins first if needed). NULL or a stale handle: no-op. */
ESCP_API void escp_session_free(void *h) {
  escp_session *s = escp__session(h);
  if (!s) return;
  escp_session_stop(s);
  escp_session_join(s);
  for (int i = 0; i < ESCP_MAX_STREAMS; i++) {
    if (s->st[i].fd >= 0) close(s->st[i].fd);
    if (s->st[i].nfd >= 0) close(s->st[i].nfd);
    free(s->st[i].prof);
  }
  if (s->listen_fd >= 0) close(s->listen_fd);
  escp__key_wipe(s);
  escp__chans_free(s);
  if (s->tx) escp__tx_free(s);
  if (s->rx) escp__rx_free(s);
  escp_ctlq_free(&s->ctl);
  escp_evring_free(&s->ev);
  if (s->wake_fd >= 0) close(s->wake_fd);
  free(s->ctl_buf);
  pthread_mutex_destroy(&s->ctl_mu);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->recon_cv);
  s->magic = 0;
  free(s);
}

/* errno of the last destination call that failed with ESCP_E_SYS (escp_rx_*), else 0. JS thread. */
ESCP_API int32_t escp_last_errno(void *h) {
  escp_session *s = escp__session(h);
  return s ? s->last_errno : ESCP_E_INVAL;
}

/* Copy the last error detail ("[file:line] text", NUL-terminated, truncated to len).
 * Returns its full length, or ESCP_E_INVAL. JS thread. */
ESCP_API int32_t escp_last_error_detail(void *h, char *buf, int32_t len) {
  escp_session *s = escp__session(h);
  if (!s || (!buf && len > 0) || len < 0) return ESCP_E_INVAL;
  pthread_mutex_lock(&s->mu);
  int32_t n = (int32_t)strlen(s->err);
  if (len > 0) snprintf(buf, (size_t)len, "%s", s->err);
  pthread_mutex_unlock(&s->mu);
  return n;
}

/* Move up to max events into out. Returns the count (0 if none). JS thread. */
ESCP_API int32_t escp_event_poll(void *h, escp_event *out, int32_t max) {
  escp_session *s = escp__session(h);
  if (!s || !out || max < 0) return ESCP_E_INVAL;
  return escp_evring_poll(&s->ev, out, max);
}

/* Copy up to n counters (ESCP_S_*) into out. Returns the count copied. Any thread. */
ESCP_API int32_t escp_stats_read(void *h, uint64_t *out, int32_t n) {
  escp_session *s = escp__session(h);
  if (!s || !out || n < 0) return ESCP_E_INVAL;
  if (n > ESCP_S_COUNT) n = ESCP_S_COUNT;
  for (int32_t i = 0; i < n; i++) out[i] = atomic_load_explicit(&s->stats[i], memory_order_relaxed);
  return n;
}

/* Test hook: BLAKE3 of buf computed the way the data path does it — per block of
 * block_size bytes (a power of two >= 1024), merged in forward or reverse order.
 * Writes 32 bytes to out32. Returns ESCP_OK or ESCP_E_*. Any thread. */
ESCP_API int32_t escp_digest_buffer(const uint8_t *buf, uint64_t len, uint32_t block_size,
                                    int32_t reverse, uint8_t *out32) {
  if ((!buf && len) || !out32 || block_size < 1024 || (block_size & (block_size - 1)))
    return ESCP_E_INVAL;
  uint64_t nblocks = len == 0 ? 1 : (len + block_size - 1) / block_size;
  escp_digest d;
  escp_digest_init(&d);
  int rc = ESCP_OK;
  for (uint64_t k = 0; k < nblocks && rc == ESCP_OK; k++) {
    uint64_t i = reverse ? nblocks - 1 - k : k;
    uint64_t off = i * block_size;
    uint64_t n = len - off < block_size ? len - off : block_size;
    uint8_t cv[32], root[32];
    escp_b3_block(buf ? buf + off : (const uint8_t *)"", (size_t)n, off / ESCP_B3_CHUNK, cv,
                  i == 0 ? root : NULL);
    rc = escp_digest_add(&d, i, cv, i == 0 ? root : NULL);
  }
  if (rc == ESCP_OK) rc = escp_digest_final(&d, nblocks, out32);
  escp_digest_free(&d);
  return rc;
}
