/* rx.h — private to the receiver role: the file record shared by rx.c (registration, data
 * stream threads, completion) and rx_store.c (everything that touches the destination:
 * create, seal, verify + name, discard). Locks: rx->mu guards the table, the commit queue
 * and refs/done/final; each file's mu guards the rest of its record. */
#ifndef ESCP_RX_H
#define ESCP_RX_H
#include <pthread.h>
#include <stdint.h>
#include "dest.h"
#include "digest.h"
#include "session.h"

/* Out-of-order block records (40 B each) all files of a session may hold at once: a sender
 * sending blocks far out of order is a protocol error past this, not unbounded memory. */
#define ESCP_RX_PENDING_MAX (1 << 20)

typedef struct rx_file {
  struct rx_file *hnext;           /* hash chain (rx->mu) */
  struct rx_file *qnext;           /* commit queue link (rx->mu) */
  uint64_t fino, size, nblocks;    /* announced size; blocks it implies (>= 1) */
  char *rel;                       /* destination below the root; NULL = discard the blocks */
  int64_t meta[ESCP_META_COUNT];   /* mode and times as announced */
  int refs, done, final;           /* rx->mu: threads using it; removed; finalising */
  int sealed;                      /* rx->mu + mu: all blocks in, fd closed (or kept) */
  pthread_mutex_t mu;              /* guards everything below */
  int fd, open_tried, opened, direct;
  int anon;                        /* fd is an unnamed O_TMPFILE file; commit links it */
  int kept;                        /* sealed, fd kept open for that link (counted in rx->kept) */
  char tmp[64];                    /* named temporary in rel's directory ("" = none) */
  uint64_t tmp_ino, tmp_dev;       /* its identity, checked when -p reopens it */
  int32_t status;
  int sys_errno;
  const char *what;
  uint64_t consumed, expected, bytes, disk_end;
  int have_expect, have_want;
  uint32_t xflags;
  uint8_t want[32];                /* the sender's digest (from expect) */
  escp_digest *dg;                 /* block tracker (+ BLAKE3 with checksums); freed at seal */
  int have_root;
  uint8_t root[32];                /* the file's digest, once sealed with checksums */
} rx_file;

struct escp_rx {
  pthread_mutex_t mu;
  pthread_cond_t cv;               /* a file was added, or stop */
  rx_file **tab;
  size_t nb, count;                /* buckets (power of two), files */
  rx_file *qhead, *qtail;          /* files to finalise on the commit thread */
  pthread_cond_t qcv;              /* queue not empty, or stop */
  pthread_t commit_thr;
  int commit_live;
  int anon_ok;                     /* try O_TMPFILE (cleared when the filesystem refuses it) */
  int kept, kept_max;              /* sealed unnamed files holding an fd (atomic), its cap */
  int cap_logged;                  /* the cap was reached (logged once, atomic) */
  int64_t pending;                 /* out-of-order block records held (atomic) */
  escp_dest *dest;
};

static inline int escp__rx_dummy(const escp_session *s) { return s->param[ESCP_P_IO_ENGINE] == ESCP_IO_DUMMY; }

/* ---- rx_store.c (the file's own mu held unless said otherwise) ---- */
void escp__rx_file_fail(rx_file *f, int32_t status, int err, const char *what);
/* Create f in its directory (unnamed, else under a temporary name). 0 or an errno value. */
int escp__rx_create(escp_session *s, rx_file *f);
/* All blocks are in: cut the O_DIRECT padding, -p mode and times via the fd, close (or keep
 * the fd of an unnamed file for its link), fold the digest. Takes f->mu itself. */
void escp__rx_seal(escp_session *s, rx_file *f);
/* Verified against the sender's digest, then named. Sets the status on failure. */
void escp__rx_commit(escp_session *s, rx_file *f, const uint8_t digest[32]);
/* Free the record; a temporary still named is removed (nothing half-written survives). */
void escp__rx_file_free(escp_session *s, rx_file *f);

#endif
