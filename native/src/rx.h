/* rx.h — private to the receiver role: the file record shared by rx.c (registration, data
 * stream threads, completion) and rx_store.c (everything that touches the destination:
 * create, seal, verify + name, discard). Locks: rx->mu guards the table, the commit queue
 * and refs/done/final; each file's mu guards the rest of its record. */
#ifndef ESCP_RX_H
#define ESCP_RX_H
#include <pthread.h>
#include <stdint.h>
#include "bundle.h"
#include "dest.h"
#include "digest.h"
#include "journal.h"
#include "rdigest.h"
#include "resume.h"
#include "session.h"

/* Out-of-order block records (40 B each) all files of a session may hold at once: a sender
 * sending blocks far out of order is a protocol error past this, not unbounded memory. */
#define ESCP_RX_PENDING_MAX (1 << 20)

/* A chained hash table of records keyed by file number (hard-link leaders, bundles'
 * directories): each record begins with an escp_hnode. Its owner's mutex guards it. */
typedef struct escp_hnode {
  struct escp_hnode *next;
  uint64_t key;
} escp_hnode;
typedef struct escp_htab {
  escp_hnode **tab;                /* nb buckets (a power of two, 0 = none yet) */
  size_t nb, count;
} escp_htab;
escp_hnode *escp__htab_find(const escp_htab *h, uint64_t key);
/* Insert n (n->key set) unless the table holds max records (or cannot be made): 1, else 0.
 * It doubles from 256 buckets as it fills (a failed growth keeps the smaller table). */
int escp__htab_add(escp_htab *h, escp_hnode *n, size_t max);
/* free() every record, then the table. */
void escp__htab_free(escp_htab *h);

typedef struct rx_file {
  struct rx_file *hnext;           /* hash chain (rx->mu) */
  struct rx_file *qnext;           /* commit queue link (rx->mu), or probe queue link */
  uint64_t fino, size, nblocks;    /* announced size; blocks it implies (>= 1) */
  uint64_t nrecv;                  /* blocks to receive: nblocks minus those held (resume) */
  char *rel;                       /* destination below the root; NULL = discard the blocks */
  int64_t meta[ESCP_META_COUNT];   /* mode, times, owner, link count as announced */
  uint8_t *xattrs;                 /* packed extended attributes (checked), set at seal; NULL = none */
  uint32_t xlen;
  int refs, done, final;           /* rx->mu: threads using it; removed; finalising */
  int sealed;                      /* rx->mu + mu: all blocks in, fd closed (or kept) */
  pthread_mutex_t mu;              /* guards everything below */
  int fd, open_tried, opened, direct;
  int anon;                        /* fd is an unnamed O_TMPFILE file; commit links it */
  int kept;                        /* sealed, fd kept open for that link (counted in rx->kept) */
  char tmp[256];                   /* named temporary or partial in rel's directory ("" = none) */
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
  /* streams (escp.h "streams"): size and nblocks unknown (nrecv UINT64_MAX) until
   * stream_expect; its mu guards the shape seen so far, rx->mu the stream_fd front */
  int stream;                      /* file_add with ESCP_SIZE_STREAM, or stream_fd */
  int sized;                       /* stream_expect gave size and nblocks */
  int tofd;                        /* stream_fd: the bytes go to sfd, in order */
  int sfd;
  uint64_t smax;                   /* 1 + the highest block index received (0 = none) */
  uint64_t shidx;                  /* the short block received (hasshort): index, length */
  uint32_t shlen;
  int hasshort;
  uint64_t front;                  /* stream_fd (rx->mu): bytes written to sfd so far */
  int wfail;                       /* stream_fd (rx->mu): the stream's writes stopped (failed) */
  /* resume (rx_journal.c): a journaled partial; rx->mu guards awaiting, the rest is the
   * file's (its mu, or only one thread at a time by the lifecycle) */
  int journaled;                   /* written to the partial tmp with the journal jname */
  int awaiting;                    /* an offer is being made or decided: blocks wait */
  int pfd;                         /* the earlier run's partial, opened and locked at add, or -1 */
  escp_jrn_state *jst;             /* what the probe read, until the decision */
  escp_offer off;                  /* the probe's offer, until the decision */
  uint8_t *offer;                  /* ... encoded */
  size_t offer_len;
  escp_jrn_atom *fine, *trees;     /* the probe's finest runs; the held runs once accepted */
  size_t nfine, ntrees;
  uint64_t held;                   /* blocks held (accepted) */
  char jname[256];                 /* the journal's name ("" = none made or found) */
  int jfd;                         /* the journal, open while the file is written, else -1 */
  uint64_t jend;                   /* where the next record goes */
  uint8_t jcheck[16];              /* the journal header's check (binds its records) */
  /* group commit (rx->jmu) */
  uint8_t *jpend;                  /* records of written blocks not yet durable */
  uint32_t npend;
  uint64_t pend_since;             /* ms of the oldest of them */
  int jqueued, jbusy, jclosed;     /* on the journal thread's list; being committed; no more commits */
  struct rx_file *jnext;
  /* a byte range of the file (shards, issue #17; rx_journal.c "ranges"): blocks
   * [rfirst, rfirst+rcount) into the shared partial (flock LOCK_SH), its own journal (LOCK_EX) */
  int ranged;
  uint64_t rfirst, rcount;
  escp_rdigest *rdg;               /* its subtree digest (instead of dg) */
  uint8_t *rsubs;                  /* at seal: the packed subtrees (rdigest.h), nrsub of them */
  uint32_t nrsub;
  int rdone;                       /* verified and sealed with a RANGE record: keep partial and journal */
} rx_file;

/* What a range session learnt at its end, for escp_rx_range_take (rx->mu). */
typedef struct rx_rres {
  struct rx_rres *next;
  uint64_t fino;
  uint32_t committed, n;
  uint8_t whole[32];
  uint8_t packed[];                /* n * ESCP_RSUB_REC */
} rx_rres;

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
  /* resume (rx_journal.c) */
  unsigned umask;                  /* the process umask, read once */
  int jdisabled;                   /* ESCP_JOURNAL=0 in the environment */
  pthread_mutex_t jmu;             /* the journal thread's list and every file's pending records */
  pthread_cond_t jcv;              /* records added, a commit done, or stop */
  rx_file *jhead;                  /* files with records to commit */
  pthread_t jthr;
  int jlive;
  uint32_t jgroup, jhard;          /* commit at jgroup records; writers wait at jhard */
  uint64_t jms;                    /* ... or when the oldest is this many ms old */
  int jsync;                       /* ESCP_JOURNAL_SYNC=1: fdatasync at every group commit */
  rx_file *phead, *ptail;          /* files to probe (rx->mu) */
  pthread_cond_t pcv;
  pthread_t pthr;
  int plive;
  /* archive mode (rx_store.c): where files with more than one link landed */
  pthread_mutex_t lmu;             /* the table: commits insert, escp_rx_hardlink looks up */
  escp_htab links;                 /* rx_link records by fino */
  int lfull_logged;
  /* bundles (rx_bundle.c): directories by file number, and the reports for take */
  pthread_mutex_t dmu;             /* the directory table */
  pthread_cond_t dcv;              /* a directory was registered, or stop */
  escp_htab dirs;                  /* rx_dir records by fino */
  size_t dir_bytes;                /* their names (+1 each), within ESCP_DIRS_BYTES (dmu) */
  size_t dirs_max;                 /* ESCP_DIRS_MAX, or lower with ESCP_DIRS_LIMIT in the environment (tests) */
  uint64_t dir_top;                /* the highest fino dir_add / dir_refuse took, remembered or not (dmu) */
  escp_rq rq;                      /* bundle reports, for escp_rx_bundle_take */
  rx_rres *rres;                   /* range results not yet taken (rx->mu), at most ESCP_RRES_MAX */
  size_t nrres;
};
#define ESCP_RRES_MAX 65536

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
/* Free the record; a temporary still named is removed (nothing half-written survives),
 * except a journaled partial when keep (the session ends with it unfinished: resumable). */
void escp__rx_file_free(escp_session *s, rx_file *f, int keep);

/* A whole small file (a bundle record) at once: f (fino, rel, size, meta, want; fds -1) is
 * created in its directory, written with data, given its metadata (seal_meta) and, verified
 * against digest (the receiver's BLAKE3 of data), named (escp__rx_commit) — the steps of a
 * file of blocks, in one call, on the same helpers. f->status says how it went; nothing of a
 * failed one is left under any name; f itself (not allocated by this) is left released. */
void escp__rx_store_whole(escp_session *s, rx_file *f, const uint8_t *data, const uint8_t digest[32]);

/* Free the hard-link table (escp__rx_free). */
void escp__rx_links_free(struct escp_rx *r);

/* The registered file fino, or NULL. Under rx->mu. */
rx_file *escp__rx_find(struct escp_rx *r, uint64_t fino);

/* ---- rx_bundle.c ---- */
void escp__rx_bundle_new(struct escp_rx *r);
void escp__rx_bundle_free(struct escp_rx *r);
void escp__rx_bundle_wake(struct escp_rx *r);
/* dir_add (JS thread, ESCP_P_BUNDLE): may fino, named rel (NULL: refused), be registered?
 * ESCP_OK, E_DUP, or 1: past ESCP_DIRS_MAX / ESCP_DIRS_BYTES — make it, but it is not
 * remembered (a record naming it fails). */
int32_t escp__rx_dir_room(escp_session *s, uint64_t fino, const char *rel);
/* ... then remember it: rel (rc ESCP_OK), or failed with err (any other rc). ESCP_OK, E_NOMEM. */
int32_t escp__rx_dir_note(escp_session *s, uint64_t fino, const char *rel, int32_t rc, int err);
/* A DATA frame flagged BUNDLE (*dh; body = its plaintext, dh->len bytes): check it whole,
 * store its records, queue the report. 1 = done, 0 = stopping, -1 = the session failed
 * (event pushed). Stream threads. */
int escp__rx_bundle(escp_session *s, escp_stream *st, const escp_data_hdr *dh, const uint8_t *body);

/* ---- rx_journal.c ---- */
int escp__rx_journal_new(escp_session *s);   /* at rx_new: locks, tunables, umask */
void escp__rx_journal_stop(escp_session *s); /* join the journal and probe threads (stopping) */
void escp__rx_journal_free(escp_session *s);
/* file_add, before f is registered: decide whether f is journaled; lock an earlier partial.
 * ESCP_OK (nothing to wait for), 1 (f->awaiting: probe it once registered), ESCP_E_BUSY,
 * E_SYS (errno in *err). */
int escp__rx_journal_add(escp_session *s, rx_file *f, int *err);
void escp__rx_probe_queue(escp_session *s, rx_file *f);
/* Create (or take over the resumed) partial and its journal; f->fd set. 0 or an errno value. */
int escp__rx_journal_create(escp_session *s, rx_file *f, int dfd, const char *leaf);
/* Block idx (with its CV) is written: queue its record (may wait for a commit). */
void escp__rx_journal_note(escp_session *s, rx_file *f, uint64_t idx, const uint8_t cv[32]);
/* Stop committing f's records and close its journal (seal, finalize, free). */
void escp__rx_journal_close(escp_session *s, rx_file *f);
/* A range verified (f->rdone set by the caller's check): its records and a RANGE record made
 * durable, then, if every range of the file is in, the file committed (named, metadata, range
 * journals removed). The outcome is queued for escp_rx_range_take. */
void escp__rx_range_complete(escp_session *s, rx_file *f);
/* Verified and renamed: remove the journal. Failed: remove partial and journal. Ended
 * unfinished (keep): write a SEAL record. dfd = rel's directory. */
void escp__rx_journal_done(escp_session *s, rx_file *f, int dfd, int keep);

#endif
