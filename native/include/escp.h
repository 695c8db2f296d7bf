/* escp.h — the one C contract between the TypeScript control plane and libescp.so.
 *
 * Lifecycle of a session handle. The role says who sends file data (ESCP_ROLE_SENDER reads
 * files and sends DATA, ESCP_ROLE_RECEIVER writes them); it is independent of who listens
 * and who connects, and of which end of a connection issues the challenge:
 *   push:   the remote receiver listens, the local sender connects;
 *   pull:   the remote sender listens, the local receiver connects;
 *   -3 --direct: host2 (receiver) listens, host1 (sender) connects to it;
 *   -3 relay: both listen — host2 (receiver) challenges as usual, host1 (sender) sets
 *           ESCP_P_HELLO_ON_ACCEPT = 1 — and the local escp_relay_* splicer (below) connects
 *           T+1 connections to each and joins them pairwise.
 *   1. h = escp_session_new(ESCP_ROLE_SENDER | ESCP_ROLE_RECEIVER)
 *   2. escp_param_set(h, ESCP_P_*, value) ...          (bounds: escp_param_bounds)
 *   3. escp_session_key_set(h, key32, sid16)            (key made by the sender, carried over SSH;
 *                                                   wiped once all streams are up, see below)
 *   4. port = escp_listen(h, addr, start, count)  on one side (or both, relayed),
 *      escp_connect(h, addr, port)                on the other (blocking: T+1 sockets,
 *                                                   authenticated hello + hello-ack each)
 *      On each connection the challenger sends a 16-byte challenge and the other end answers
 *      with HELLO for a stream id it picks; the challenger checks it and sends HELLO_ACK. A
 *      listener challenges (default) or, with ESCP_P_HELLO_ON_ACCEPT = 1, answers: it then
 *      waits for each accepted connection's challenge, sends HELLO for the lowest stream id
 *      free for that connection's source address and installs the stream only on a valid
 *      HELLO_ACK echoing that challenge (strangers get a HELLO, never a stream; the pending
 *      table, per-source cap and hello deadline are the same). A connector always answers.
 *      Either way the listener pushes ESCP_EV_STREAMS_UP once all T+1 are up; escp_connect
 *      returning ESCP_OK means the same for the connector.
 *   5. escp_session_start(h)                      returns at once; C threads run
 *   6. TS drives: tx_file_add / tx_finish (sender), rx_file_add / rx_file_expect
 *      (receiver), ctl_send / ctl_recv, event_poll, stats_read — all from the JS thread.
 *   7. escp_session_stop(h) (returns at once) → escp_session_join(h) (blocks) → escp_session_free(h)
 * Misuse returns a status; it never crashes. escp_session_free(NULL) is a no-op.
 * C threads never call into JS: they report through the event ring, the control ring and
 * counters that TS polls. No function here calls exit().
 * Every export is one line `ESCP_API <type> escp_<noun>_<verb>(...);` — native/gen-ffi.ts
 * parses those lines to generate src/native/symbols.ts. Keep that shape.
 */
#ifndef ESCP_H
#define ESCP_H
#include <stdint.h>

#define ESCP_API __attribute__((visibility("default")))
#define ESCP_ABI_VERSION 9 /* 9: streams of unknown length (escp_tx_stream_add, the block API escp_tx_stream_open/block_claim/block_submit/stream_end, escp_rx_stream_expect, escp_rx_stream_fd); 8: escp_affinity_set (stream threads pinned to a CPU set, e.g. the NIC's NUMA node); 7: escp_dir_scan reads small files ahead (ra_kib, ESCP_DS_FLAGS); 6: small files in BUNDLE frames (ESCP_P_BUNDLE, escp_tx_small_add, escp_*_bundle_take, escp_rx_dir_refuse); 5: ESCP_META_COUNT 9 (archive mode: uid, gid, link count) */
#define ESCP_PROTOCOL_VERSION 2 /* data-plane wire protocol; also the SessionInit major (src/control/messages.ts) */

/* roles */
#define ESCP_ROLE_SENDER 1
#define ESCP_ROLE_RECEIVER 2

/* status codes: 0 ok, negative errors. Append only; never renumber. */
#define ESCP_OK 0
#define ESCP_E_INVAL -1         /* bad argument or misuse */
#define ESCP_E_NOMEM -2         /* allocation failed */
#define ESCP_E_STATE -3         /* call not valid in this lifecycle state */
#define ESCP_E_RANGE -4         /* parameter value out of bounds */
#define ESCP_E_SYS -5           /* a system call failed (errno in detail/event) */
#define ESCP_E_CRYPTO -6        /* OpenSSL reported a failure */
#define ESCP_E_AUTH -7          /* AEAD tag did not verify */
#define ESCP_E_PROTO -8         /* malformed frame: bad type, length or field */
#define ESCP_E_REPLAY -9        /* frame sequence number is not the expected one */
#define ESCP_E_TIMEOUT -10      /* deadline passed */
#define ESCP_E_CLOSED -11       /* peer closed the connection */
#define ESCP_E_BIND -12         /* no port in the range could be bound */
#define ESCP_E_CONNECT -13      /* connect or hello failed */
#define ESCP_E_OPEN -14         /* file open failed */
#define ESCP_E_READ -15         /* file read failed */
#define ESCP_E_WRITE -16        /* file write failed */
#define ESCP_E_SHORT -17        /* file shorter than announced */
#define ESCP_E_UNKNOWN_FILE -18 /* data for a file number never announced */
#define ESCP_E_DIGEST -19       /* digest missing or mismatched */
#define ESCP_E_FULL -20         /* queue full, retry later */
#define ESCP_E_TOOBIG -21       /* message larger than the limit or the buffer */
#define ESCP_E_ABORTED -22      /* file or session aborted by the peer or by stop */
#define ESCP_E_VERSION -23      /* protocol version not supported */
#define ESCP_E_DUP -24          /* duplicate file number or stream id */
#define ESCP_E_CHANGED -25      /* source file grew, shrank, was modified or replaced while sent */
#define ESCP_E_PATH -26         /* destination name refused: invalid, or a component below the root is a symlink or not a directory */
#define ESCP_E_BUSY -27         /* another process is writing this destination file (its partial is locked) */

/* parameters (int64 values); all range checks live in escp_param_bounds */
#define ESCP_P_THREADS 1      /* data streams T, 1..64, default 4 */
#define ESCP_P_BLOCK_SIZE 2   /* bytes, power of two, 65536..67108864, default 1048576 */
#define ESCP_P_IO_ENGINE 3    /* ESCP_IO_POSIX (default) or ESCP_IO_DUMMY */
#define ESCP_P_DIRECT 4       /* O_DIRECT with per-file fallback: 0/1, default 1 */
#define ESCP_P_CHECKSUM 5     /* per-file BLAKE3: 0/1, default 1 */
#define ESCP_P_SPARSE 6       /* receiver skips all-zero blocks: 0/1, default 0 */
#define ESCP_P_TIMEOUT_MS 7   /* connect/hello/wait deadline and stream silence limit, 1000..86400000, default 30000 */
#define ESCP_P_RATE_LIMIT 8   /* SO_MAX_PACING_RATE bytes/s per socket, 0 = off */
#define ESCP_P_SOCK_BUF 9     /* SO_SNDBUF/SO_RCVBUF bytes, 0 = kernel autotuning */
#define ESCP_P_IP_MODE 10     /* 0 any, 4 IPv4 only, 6 IPv6 only */
#define ESCP_P_VERBOSE 11     /* 0/1: emit ESCP_EV_LOG debug events, default 0 */
#define ESCP_P_PROFILE 12     /* 0/1: record per-stage spans for escp_prof_drain, default 0 */
#define ESCP_P_COMPRESS 13    /* zstd level for DATA payloads, 0 = off, 1..19 (sender; the receiver just needs it non-zero to accept compressed frames) */
#define ESCP_P_PRESERVE 14    /* receiver: 0/1, -p: exact modes (set-id bits only on what this session created) and times */
#define ESCP_P_HELLO_ON_ACCEPT 15 /* listener: 0 = send a challenge on each accepted connection (default), 1 = answer the peer's challenge with HELLO instead (-3 relay: host1; see the lifecycle); no effect on escp_connect */
#define ESCP_P_RESUME 16      /* receiver: 0 = no journal (default), 1 = files of more than one block go to a journaled partial (an earlier one is replaced), 2 = the same, and an earlier partial is offered for resume (see "resume" below); needs checksums and the posix engine, else 0; settable until the first file_add, even after listen/connect */
#define ESCP_P_RETRIES 17     /* data-stream reconnects: 0 = off (a dropped data stream ends the session, the default); N = a dropped data stream is re-established (the connector redials, the listener keeps listening) and carries on from the frames the receiver had not consumed, with up to N attempts in a row that move nothing; both sides must agree (SessionInit); 0 in effect with ESCP_P_HELLO_ON_ACCEPT; may be set to 0 (only) after listen/connect until start. See "Reconnect" below */
#define ESCP_P_HOLES 18       /* sender: 0/1 (default 0), settable until start: a block wholly inside a hole of a sparse source (SEEK_DATA; not the last block) is neither read nor sent, a DATA frame flagged ZERO (no payload) stands for it; only for a receiver of protocol 2.4 or later (every receiver of this library takes such frames: it hashes zeros and leaves the hole) */
#define ESCP_P_OWNER 19       /* receiver: 0/1 (default 0), settable until start: chown files, directories and symlinks to meta's ESCP_META_UID/GID (-a when the receiver runs as root); a chown that fails fails the entry as a chmod would. Directories: applied by dirs_finish (as -p's modes are) */
#define ESCP_P_BUNDLE 20      /* both roles, 0/1 (default 0), settable until start. Sender: escp_tx_small_add may queue files that travel packed in BUNDLE frames. Receiver: BUNDLE frames are accepted (without it one is a session-scope ESCP_E_PROTO), and escp_rx_dir_add / escp_rx_dir_refuse remember directories by file number for them (see "bundles" below) */

/* profiler stages (span.stage; src/profile/stages.ts mirrors them) */
#define ESCP_STG_READ 0       /* disk read (pread) */
#define ESCP_STG_HASH 1       /* BLAKE3 */
#define ESCP_STG_COMPRESS 2   /* zstd */
#define ESCP_STG_SEAL 3       /* AES-GCM encrypt */
#define ESCP_STG_SEND 4       /* socket send (incl. waiting for window) */
#define ESCP_STG_RECV 5       /* socket recv (incl. waiting for data) */
#define ESCP_STG_OPEN 6       /* AES-GCM decrypt + authenticate */
#define ESCP_STG_DECOMPRESS 7 /* zstd */
#define ESCP_STG_WRITE 8      /* disk write (pwrite) */
#define ESCP_STG_IDLE 9       /* waiting for work (file list / registration) */
#define ESCP_STG_META 10      /* file open/close/stat/truncate/rename */
#define ESCP_STG_COUNT 11
#define ESCP_SPAN_SIZE 24     /* u64 t0_ns, u64 dur_ns, u32 bytes, u16 stream, u8 stage, u8 flags (LE) */

#define ESCP_IO_POSIX 1
#define ESCP_IO_DUMMY 2

/* event types (ring records written by C threads, drained by TS) */
#define ESCP_EV_FILE_DONE 1   /* a file finished: sender = all blocks read+sent; receiver = all expected blocks written+hashed */
#define ESCP_EV_FILE_ERROR 2  /* a file failed (status, sys_errno, text); blocks = blocks sent/consumed */
#define ESCP_EV_STREAM_DOWN 3 /* a stream ended without BYE (status says why; with ESCP_P_RETRIES, blocks = reconnect attempts that failed) */
#define ESCP_EV_FATAL 4       /* session-scope failure; TS must stop the session */
#define ESCP_EV_LOG 5         /* debug text from C (only when verbose) */
#define ESCP_EV_STREAMS_UP 6  /* listener (either role, challenging or answering): all T+1 streams authenticated */
#define ESCP_EV_DRAINED 7     /* sender: queue empty after tx_finish and BYE sent on every stream;
                                 receiver: BYE received on every data stream */
#define ESCP_EV_OFFER 8       /* receiver: the resume offer of fino is ready (escp_rx_offer); blocks/bytes = held,
                                 text = why an earlier partial could not be used ("" if none) */
#define ESCP_EV_RECONNECT 9   /* a data stream's connection broke and was re-established (ESCP_P_RETRIES): stream,
                                 blocks = attempts it took, text = what broke */

/* file flags for rx_file_expect */
#define ESCP_XF_ABORTED 1     /* sender gave up on this file: discard, report ESCP_E_ABORTED */

/* stats indexes for escp_stats_read (u64 counters, monotonic) */
#define ESCP_S_BYTES_FILE 0   /* payload bytes read (sender) or written (receiver) */
#define ESCP_S_BYTES_WIRE 1   /* bytes sent or received on data sockets incl. framing */
#define ESCP_S_BLOCKS 2       /* data frames moved */
#define ESCP_S_FILES_DONE 3   /* FILE_DONE + FILE_ERROR events produced */
#define ESCP_S_STREAMS_UP 4   /* streams currently authenticated (incl. control) */
#define ESCP_S_FRAMES_REJECTED 5 /* frames or connections rejected (auth/proto/replay) */
#define ESCP_S_BYTES_CHECKED 6 /* receiver: bytes of earlier partials re-hashed before a resume offer */
#define ESCP_S_RECONNECTS 7   /* data-stream connections re-established (ESCP_P_RETRIES) */
#define ESCP_S_RECONNECTING 8 /* data streams re-establishing right now (a gauge: TS counts it as progress) */
#define ESCP_S_COUNT 16

#define ESCP_CTL_MAX (1 << 20) /* largest control message payload, bytes */
#define ESCP_MAX_FILE_SIZE 9007199254740991 /* 2^53 - 1 bytes: the largest size a file may be announced with (exact in a JS number) */
#define ESCP_OFFER_MAX 393344 /* bytes of one resume offer at most: a 128-byte header and 8192 runs of 48 (resume.h) */
#define ESCP_MAX_PATH 4095    /* bytes of a relative destination name (PATH_MAX without the NUL) */
#define ESCP_MAX_SEGMENT 255  /* bytes of one name segment (NAME_MAX) */
#define ESCP_RETRIES_MAX 1000 /* ESCP_P_RETRIES at most (--retries) */
#define ESCP_AFFINITY_MAX 128 /* bytes of an escp_affinity_set mask: CPUs 0..1023 (glibc's CPU_SETSIZE) */
#define ESCP_BUFFERS_MAX (1 << 30) /* T x block size may not exceed this many bytes (per-stream block buffers) */
#define ESCP_XATTRS_MAX 65536 /* bytes of one entry's packed extended attributes (see "archive mode" below) */
#define ESCP_RANGE_BLOCKS_MAX 1048576 /* blocks of one byte range (--shard) at most: a journal is read up to this many runs (journal.h), and a range's committer needs every block's */
#define ESCP_LINKS_MAX 1048576 /* hard-link leaders one session remembers (escp_rx_hardlink); later ones are not */
#define ESCP_BUNDLE_FILES_MAX 4096   /* records in one bundle at most */
#define ESCP_BUNDLE_FILE_MAX 1048576 /* largest file that may travel in a bundle, bytes (it must also fit one bundle: see "bundles") */
#define ESCP_DIRS_MAX 1048576        /* directories a receiver remembers by file number for bundles; a sender addresses no more */
#define ESCP_DIRS_BYTES 268435456    /* bytes of their names (each + 1) a receiver remembers; past this or ESCP_DIRS_MAX a directory is made but not remembered, and a record naming it fails ESCP_E_PATH ("too many dirs"); a sender bundles into at most ESCP_DIRS_MAX directories whose wire names (each + 1) take at most half of this */

/* Metadata of a destination entry: an int64 array of ESCP_META_COUNT values, by index. */
#define ESCP_META_MODE 0      /* st_mode permission bits (07777 used) */
#define ESCP_META_ATIME_S 1
#define ESCP_META_ATIME_NS 2
#define ESCP_META_MTIME_S 3
#define ESCP_META_MTIME_NS 4
#define ESCP_META_SRC_INO 5   /* files: the source's inode number (resume identity; 0 = unknown) */
#define ESCP_META_UID 6       /* -a: owner and group, numeric (0..2^32-2); applied only with ESCP_P_OWNER */
#define ESCP_META_GID 7
#define ESCP_META_NLINK 8     /* files: the source's link count; > 1: the receiver remembers where the file landed, for escp_rx_hardlink */
#define ESCP_META_COUNT 9

/* escp_rx_probe results */
#define ESCP_KIND_MISSING 0
#define ESCP_KIND_FILE 1      /* anything that is not a directory */
#define ESCP_KIND_DIR 2
#define ESCP_KEY_LEN 32
#define ESCP_SID_LEN 16
#define ESCP_CHALLENGE_LEN 16  /* the challenger's per-connection challenge, bytes (docs/protocol.md §4) */
#define ESCP_DIGEST_LEN 32

/* One event record, 128 bytes, layout pinned by _Static_assert in session.c and mirrored
 * by generated offsets in src/native/symbols.ts. */
typedef struct escp_event {
  uint32_t type;        /* ESCP_EV_* */
  int32_t status;       /* ESCP_OK or ESCP_E_* */
  int32_t sys_errno;    /* errno when a syscall failed, else 0 */
  uint32_t stream;      /* stream id (0 = control) when relevant */
  uint64_t fino;        /* file number when relevant */
  uint64_t bytes;       /* file payload bytes moved */
  uint64_t blocks;      /* blocks moved (sender: sent; receiver: consumed) */
  uint8_t digest[32];   /* BLAKE3 of the file (FILE_DONE with checksum on), else zero */
  char text[56];        /* NUL-terminated short detail: the failing operation or log text */
} escp_event;

/* ---- library ---- */
/* Make this process hold keys safely: no core dumps (RLIMIT_CORE 0/0), not dumpable
 * (PR_SET_DUMPABLE 0: /proc/PID/mem, environ etc. owned by root, no ptrace attach by
 * same-uid processes). Idempotent, irreversible. ESCP_OK or ESCP_E_SYS. Any thread. */
ESCP_API int32_t escp_process_harden(void);
ESCP_API uint32_t escp_abi_version(void);
ESCP_API uint32_t escp_event_size(void);
ESCP_API const char *escp_status_name(int32_t status);
ESCP_API int32_t escp_param_bounds(int32_t param, int64_t *min_out, int64_t *max_out, int64_t *default_out);

/* ---- session lifecycle ---- */
ESCP_API void *escp_session_new(int32_t role);
ESCP_API int32_t escp_param_set(void *h, int32_t param, int64_t value);
ESCP_API int64_t escp_param_get(void *h, int32_t param);
/* key_set also calls escp_process_harden (best effort). The library keeps its copy of the
 * key only until every stream is up: a listener (challenging or answering) wipes it when its
 * accept thread ends, the connector when escp_connect returns (success or failure; a retry
 * needs key_set again), and escp_session_free always. Channels keep only per-connection
 * secrets. Whoever listens, only the sender role sizes its send buffers from the RTT. */
ESCP_API int32_t escp_session_key_set(void *h, const uint8_t *key32, const uint8_t *sid16);
/* affinity_set: the CPUs the session's stream threads (control and data) may run on, for
 * NUMA placement (src/transfer/numa.ts picks them from sysfs). mask: bit i of byte i/8 = CPU
 * i, len 1..ESCP_AFFINITY_MAX bytes (copied); len 0 (mask may be NULL) = no placement (the
 * default). What is kept is the mask's intersection with the calling thread's own affinity:
 * ESCP_E_INVAL when that is empty (no CPU of the mask exists or may be used), or for a bad
 * length. Each stream thread pins itself with it as its first act, before it allocates or
 * touches its block buffers, so their pages come from its node (first touch; no mempolicy
 * or libnuma). A pin that fails is an ESCP_EV_LOG line (verbose), never fatal. Valid until
 * escp_session_start (ESCP_E_STATE after it or after stop). JS thread. */
ESCP_API int32_t escp_affinity_set(void *h, const uint8_t *mask, int32_t len);
ESCP_API int32_t escp_listen(void *h, const char *addr, int32_t port_start, int32_t port_count);
ESCP_API int32_t escp_connect(void *h, const char *addr, int32_t port);
ESCP_API int32_t escp_session_start(void *h);
ESCP_API int32_t escp_session_stop(void *h);
ESCP_API int32_t escp_session_join(void *h);
ESCP_API void escp_session_free(void *h);
ESCP_API int32_t escp_last_error_detail(void *h, char *buf, int32_t len);

/* ---- sender: files ---- */
ESCP_API int32_t escp_tx_file_add(void *h, uint64_t fino, const char *path, uint64_t size);
/* Like tx_file_add, for a file the receiver holds part of: `held` is its resume offer
 * (docs/protocol.md §6: sorted aligned runs that stop before the last block), checked against
 * size and the block size (ESCP_E_PROTO if it breaks a rule). Those blocks are neither read
 * nor sent; their CVs enter the digest; FILE_DONE.blocks counts only the blocks sent (and
 * FILE_DONE.bytes only their bytes). *held_bytes (may be NULL) = the bytes held. */
ESCP_API int32_t escp_tx_file_add_held(void *h, uint64_t fino, const char *path, uint64_t size, const uint8_t *held, int32_t len, uint64_t *held_bytes);
/* Does the file at path still hold what the offer says (its size, and the CVs of the offer's
 * first and last runs, read from the file)? ESCP_OK, ESCP_E_CHANGED (no), ESCP_E_PROTO (a
 * malformed offer), ESCP_E_OPEN/E_READ (errno in *err), E_NOMEM. Any thread; no session. */
ESCP_API int32_t escp_tx_offer_check(const char *path, uint64_t size, int32_t block_size, const uint8_t *held, int32_t len, int32_t *err);
ESCP_API int32_t escp_tx_finish(void *h);

/* ---- small files in bundles (ESCP_P_BUNDLE = 1 on both sides; protocol 2.6) ----
 * small_add (sender, JS thread): queue a batch of small files, `len` bytes of records packed
 * back to back, each ESCP_SA_HDR bytes then its path then its leaf, zero-padded to a multiple
 * of 8. The whole buffer is checked first; ESCP_E_INVAL and nothing queued if a record runs
 * past len, a length is out of range, a path or leaf holds a NUL, seq is not exactly the last
 * seq + 1 (the first is 1; each call continues from the last), dir is 0, size is over
 * ESCP_BUNDLE_FILE_MAX, or a record cannot fit a bundle on its own (16 + 88 + leaf + size >
 * the block size). ESCP_E_STATE unless a sender with ESCP_P_BUNDLE = 1 before tx_finish (and
 * not stopped); ESCP_E_NOMEM. The files join the FIFO of tx_file_add's files, in order; the
 * directory (dir: its announced fino, registered by the receiver's dir_add) must be announced
 * over the control stream first. A data stream whose next item is a small file packs it and
 * the consecutive small files behind it that fit (block size bytes, ESCP_BUNDLE_FILES_MAX
 * records; it never waits for more) into one DATA frame flagged BUNDLE: each opened
 * (O_RDONLY|O_NONBLOCK, links followed), checked to be a regular file of the listed size (and
 * inode, when not 0), its listed size read, checked again (size, mtime, ctime, inode: one that
 * grew or shrank fails here), hashed (BLAKE3;
 * zero with checksums off); its mode, owner and ns times travel with it (from the first
 * fstat). A file that fails stays out of the bundle. Bundles are numbered 1, 2, 3 ... per
 * session. With ESCP_P_RETRIES a bundle is kept (names, identity, digest) until acknowledged
 * and resent by re-reading its files: one that changed meanwhile is FATAL ESCP_E_CHANGED.
 * Stats: BYTES_FILE += bytes read, BLOCKS += 1 per bundle frame, FILES_DONE += its files.
 * tx_bundle_take (JS thread; no event: poll it): once a bundle's frame was handed to the
 * socket (or none was sent because no file of the claim made it: bundle 0), a group
 * {ESCP_BG_*: bundle, n} with n sender entries (ESCP_BT_*, in queue order) is ready. Moves as
 * many whole ready groups as fit into out; returns the bytes written (0 = none ready),
 * ESCP_E_TOOBIG when the first alone exceeds cap (ESCP_BG_HDR + ESCP_BUNDLE_FILES_MAX x
 * ESCP_BT_ENT always suffices), E_INVAL, E_STATE. Ready groups are bounded (16 MiB): a data
 * stream waits for take beyond that.
 * Receiver: dir_add / dir_add_x (with ESCP_P_BUNDLE = 1) remember fino -> rel on success, or
 * fino -> failed with its errno; dir_refuse remembers fino as refused. A second registration
 * of a fino is ESCP_E_DUP; past ESCP_DIRS_MAX directories or ESCP_DIRS_BYTES of their names one
 * is still made (or refused) but not remembered, and records naming it fail at once (E_PATH,
 * "too many dirs": a record naming a fino at or below the highest one taken never waits); dir_refuse is
 * ESCP_E_STATE without ESCP_P_BUNDLE or on a sender, ESCP_E_INVAL for fino 0. A BUNDLE frame
 * is checked whole before anything is written (any structural fault: session FATAL
 * ESCP_E_PROTO, nothing written); then each record in order: its directory (a stream waits
 * for a fino not yet registered, up to the timeout: then FATAL ESCP_E_PROTO "bundle names
 * directory #N, never announced"); refused: ESCP_E_PATH "directory"; failed: ESCP_E_WRITE
 * with that errno, "directory" (ESCP_E_PATH when dir_add said ESCP_E_PATH); its leaf (1..255 bytes, no '/', not "." or "..", the whole
 * name <= ESCP_MAX_PATH, else ESCP_E_PATH "name"); then created, written, verified (digest:
 * ESCP_E_DIGEST "digest"), given owner (ESCP_P_OWNER), mode (-p exact; else minus the umask)
 * and -p times, and named exactly as a file of file_add is (the same commit path; a
 * directory at the name fails the record; nothing of a failed record is left under any
 * name). The dummy engine checks and discards. Stats: BYTES_FILE += bytes written, BLOCKS
 * += 1, FILES_DONE += records.
 * rx_bundle_take (JS thread): each bundle's report, a group {bundle, n = its records} with
 * n receiver entries (ESCP_BR_*, each followed by its leaf zero-padded to 8), as tx's take
 * (ESCP_BG_HDR + ESCP_BUNDLE_FILES_MAX x (ESCP_BR_ENT + 256) always suffices). Reports are
 * bounded (16 MiB): a data stream waits for take beyond that. */
/* escp_tx_small_add input records, packed back to back, each padded to a multiple of 8 bytes */
#define ESCP_SA_SEQ 0       /* u64: the caller's number for the file, 1, 2, 3 ... over the session (each call continues from the last) */
#define ESCP_SA_DIR 8       /* u64: fino of the announced directory that holds it (not 0) */
#define ESCP_SA_SIZE 16     /* u64: its size as the walk saw it */
#define ESCP_SA_INO 24      /* u64: its inode as the walk saw it (0 = unknown: not checked) */
#define ESCP_SA_PATH_LEN 32 /* u16: bytes of the path to open it by (1..ESCP_MAX_PATH) */
#define ESCP_SA_LEAF_LEN 34 /* u16: bytes of its name in that directory (1..ESCP_MAX_SEGMENT) */
#define ESCP_SA_HDR 40      /* then path bytes, then leaf bytes (no NULs), then zero padding to a multiple of 8 */
/* escp_tx_bundle_take / escp_rx_bundle_take output: groups, each a header then n entries */
#define ESCP_BG_BUNDLE 0    /* u64: bundle number (sender: 0 = none of these files went on the wire) */
#define ESCP_BG_COUNT 8     /* u32: n entries */
#define ESCP_BG_HDR 16      /* (u32 at 12 is 0) */
#define ESCP_BT_SEQ 0       /* sender entry, 64 bytes: u64 seq */
#define ESCP_BT_SIZE 8      /* u64: bytes read and sent (the size it had) */
#define ESCP_BT_STATUS 16   /* i32: ESCP_OK = in the bundle; else not sent: ESCP_E_OPEN, ESCP_E_READ, ESCP_E_CHANGED (changed since listed or while read), ESCP_E_TOOBIG (no longer fits a bundle) */
#define ESCP_BT_ERRNO 20    /* i32 */
#define ESCP_BT_DIGEST 24   /* 32 bytes: BLAKE3 of its contents (zero with checksums off or on failure) */
#define ESCP_BT_WHAT 56     /* 8 bytes: NUL-padded failing step ("open", "read", "fstat", "changed", ...) */
#define ESCP_BT_ENT 64
#define ESCP_BR_DIR 0       /* receiver entry, 72 bytes + leaf padded to 8: u64 directory fino */
#define ESCP_BR_SIZE 8      /* u64: bytes of the file */
#define ESCP_BR_STATUS 16   /* i32: ESCP_OK = verified and named; else ESCP_E_PATH (bad leaf name, directory refused or failed), ESCP_E_DIGEST, ESCP_E_WRITE (errno, what) */
#define ESCP_BR_ERRNO 20    /* i32 */
#define ESCP_BR_DIGEST 24   /* 32 bytes: BLAKE3 of what the receiver wrote (zero with checksums off) */
#define ESCP_BR_WHAT 56     /* 14 bytes: NUL-padded failing step ("create", "write", "chmod", "link", "rename", "directory", "name", "digest") */
#define ESCP_BR_LEAF_LEN 70 /* u16: bytes of the leaf name, which follows the 72-byte entry, zero-padded to a multiple of 8 */
#define ESCP_BR_ENT 72
ESCP_API int32_t escp_tx_small_add(void *h, const uint8_t *recs, int32_t len);
ESCP_API int32_t escp_tx_bundle_take(void *h, uint8_t *out, int32_t cap);
ESCP_API int32_t escp_rx_dir_refuse(void *h, uint64_t fino);
ESCP_API int32_t escp_rx_bundle_take(void *h, uint8_t *out, int32_t cap);

/* ---- receiver: the destination ----
 * The receiver touches the destination only through directory fds: escp_rx_root opens the
 * destination root once; every name below it is relative and walked one component at a
 * time with O_NOFOLLOW|O_DIRECTORY (a symlink, or a non-directory, anywhere below the root
 * is ESCP_E_PATH); files are created unnamed (O_TMPFILE) or O_EXCL under a temporary name
 * in their directory and named (linkat/renameat) only after their digest verified; -p modes
 * and times are applied with fchmod/futimens on the file's own fd. escp_rx_jail (server
 * --restrict DIR) makes every path, the root's included, resolve beneath DIR the same way.
 * System errors: ESCP_E_SYS with escp_last_errno(). All of these run on the JS thread. */
ESCP_API int32_t escp_rx_jail(void *h, const char *dir);
ESCP_API int32_t escp_rx_probe(void *h, const char *path);
ESCP_API int32_t escp_rx_root(void *h, const char *path, int32_t create);
ESCP_API int32_t escp_rx_dir_add(void *h, uint64_t fino, const char *rel, const int64_t *meta);
ESCP_API int32_t escp_rx_dirs_finish(void *h, uint64_t *failed, int32_t cap);
ESCP_API int32_t escp_last_errno(void *h);
/* probe: ESCP_KIND_* of path (jail: beneath it, the last component not followed), or <0.
 * root: path as the destination root (create = 1: mkdir it first if missing; its parent
 * must exist). dir_add: mkdir -p rel below the root (mode 0777 minus the umask); with
 * ESCP_P_PRESERVE its meta is applied by dirs_finish (children first, only to the directory
 * made or found then: one renamed in meanwhile is ESTALE) — kept for at most 64 MiB of
 * names, beyond which the oldest are applied early. dirs_finish returns how many could not
 * be applied and puts the first cap/2 as (fino, errno) pairs in failed. */

/* ---- receiver: files ---- */
ESCP_API int32_t escp_rx_file_add(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta);
ESCP_API int32_t escp_rx_file_expect(void *h, uint64_t fino, uint64_t blocks, uint32_t flags, const uint8_t *digest32);
ESCP_API int32_t escp_rx_offer(void *h, uint64_t fino, uint8_t *out, int32_t cap);
ESCP_API int32_t escp_rx_file_decide(void *h, uint64_t fino, int32_t accept);
/* Byte ranges of a file (shards, issue #17; docs/reliability.md "Ranges"). Sender —
 * tx_file_add_range: queue only blocks [first, first+count) of the file at path (size bytes;
 * the range inside it, else ESCP_E_RANGE), with the receiver's resume offer for the range
 * (held/len: NULL/0 for none; every held run inside the range and before its last block, else
 * ESCP_E_PROTO). FILE_DONE.digest is the range digest: BLAKE3 of the range's subtree list —
 * the range cut into maximal aligned power-of-two runs of blocks, each packed as
 * ESCP_RSUB_* (48 bytes: u64 first block, u32 log2, u32 0, the run's BLAKE3 chaining value).
 * Receiver — rx_file_add_range: as file_add, for that range of a file of more than one block
 * (count < its blocks; ESCP_E_RANGE otherwise; ESCP_E_STATE without ESCP_P_RESUME or
 * checksums). Its blocks go into the shared partial ".<leaf>.escp-part" (flock LOCK_SH,
 * extended to size, never truncated below it; LOCK_EX elsewhere for more than 2 s:
 * ESCP_E_BUSY) with the range's own journal ".<leaf>.escp-journal.<offset>" (LOCK_EX: a second
 * session of the same range is ESCP_E_BUSY); a block outside the range is a session
 * ESCP_E_PROTO; expect's block count is the range's (minus held). FILE_DONE: the range digest
 * matched; the range is sealed (RANGE record) and, if every block of the file is in verified
 * ranges, the file was committed by this session. rx_range_take (JS thread, after that
 * FILE_DONE): u32 committed, u32 n, 32 bytes whole-file BLAKE3 (zero unless committed), n
 * packed subtrees; returns its length (40 + 48 n <= ESCP_RANGE_TAKE_MAX), 0 = none,
 * ESCP_E_TOOBIG. */
/* BLAKE3 parent node: the chaining value of left || right (is_root: the root output, i.e. the
 * digest), as the receiver joins range subtrees into the whole file's BLAKE3. Any thread. */
ESCP_API void escp_b3_parent(const uint8_t *left, const uint8_t *right, int32_t is_root, uint8_t *out);
#define ESCP_RANGE_TAKE_MAX 6184 /* 40 + 128 x 48 */
ESCP_API int32_t escp_tx_file_add_range(void *h, uint64_t fino, const char *path, uint64_t size, uint64_t first, uint64_t count, const uint8_t *held, int32_t len, uint64_t *held_bytes);
ESCP_API int32_t escp_rx_file_add_range(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta, uint64_t first, uint64_t count);
ESCP_API int32_t escp_rx_range_take(void *h, uint64_t fino, uint8_t *out, int32_t cap);
/* Resume (ESCP_P_RESUME 1 or 2). A file of more than one block is written to
 * ".<leaf>.escp-part" beside its target with a journal ".<leaf>.escp-journal"
 * (native/src/journal.h): a block is recorded only after its write returned (group commit
 * after ESCP_JOURNAL_BYTES of blocks — default 64 MiB — or ESCP_JOURNAL_MS ms — default
 * 1000 — whichever first; ESCP_JOURNAL_SYNC=1: fdatasync the data before and the journal
 * after every group; a SEAL is always written that way; ESCP_JOURNAL=0 turns partials off:
 * every file takes the unnamed path, as at level 0). The
 * partial is locked (flock) while a session uses it: one another process holds is ESCP_E_BUSY
 * from file_add. With ESCP_P_RESUME 2, file_add returns 1 when an earlier partial exists for
 * rel: it is read and, unless the session that wrote it ended cleanly, checked block by block
 * on a C thread; ESCP_EV_OFFER then says the offer is ready: escp_rx_offer copies it (its
 * length, or 0 = nothing to offer; E_TOOBIG if cap is short) — the runs it holds, given that
 * the source (size, mtime, inode in meta) is the one it was written from. Blocks of that file
 * wait for escp_rx_file_decide: accept = 1 takes the held blocks as received (expect's block
 * count is then the rest), 0 starts the file over. A partial that cannot be used is replaced
 * and the event text says why; an offer of nothing needs no decision. A file that fails loses
 * its partial; one left unfinished when the session ends keeps it, sealed (no re-check
 * needed next time). Otherwise file_add returns 0 (nothing to wait for). */
/* file_add: rel below the root (missing parent directories are created), or NULL to
 * consume and discard the file's blocks (a refused name). size is what the sender
 * announced (<= ESCP_MAX_FILE_SIZE): its blocks are exactly ceil(size/B) (1 for an empty
 * file), block i holding min(B, size - i*B) bytes; any other block, or a block twice, is a
 * session-scope ESCP_E_PROTO. The file is closed once all its blocks are in; expect must
 * give exactly that block count (ESCP_E_PROTO otherwise; fewer only with ESCP_XF_ABORTED)
 * and the sender's digest. FILE_DONE = verified against it and named; FILE_ERROR otherwise
 * (nothing of it is left under any name). Liveness: each side must send a control message
 * (e.g. a keepalive) when it has sent none for timeout/3; a stream silent for a whole
 * timeout is ESCP_EV_FATAL ESCP_E_TIMEOUT. FILE_ERROR ESCP_E_CHANGED: the source changed
 * while it was sent. */

/* ---- streams: files of unknown length (stdin, a pipe, an application's data) ----
 * A stream is a file whose size is learnt at its end. Its blocks are B = ESCP_P_BLOCK_SIZE
 * bytes each, the last one shorter (0 bytes only for an empty stream, which is one empty
 * block, as an empty file is); they are striped over all T data streams like any file's,
 * hashed the same way, so the digest is `b3sum` of the stream's bytes.
 * Sender, from a file descriptor — tx_stream_add: queue fino (FIFO order, like tx_file_add)
 * whose bytes are read from fd, sequentially, by whichever data stream claims its next
 * block (only the read is serialised; hash, seal and send run in parallel). fd stays the
 * caller's (never closed) and must stay open until the FILE_DONE / FILE_ERROR of fino. A
 * block is read in full (short reads and EINTR looped) unless EOF comes first; EOF ends the
 * stream. While a data stream waits for the producer (poll) or for the stream's read turn it
 * sends KEEPALIVEs as an idle one does. FILE_DONE: bytes = the stream's length, blocks =
 * blocks sent, digest. FILE_ERROR ESCP_E_READ (errno) when read fails, ESCP_E_TOOBIG past
 * ESCP_MAX_FILE_SIZE. ESCP_E_STATE with ESCP_P_RETRIES > 0 (a stream cannot be read twice)
 * or ESCP_P_HOLES; otherwise as tx_file_add.
 * Sender, the block API (C/C++ applications; zero copy) — stream_open: queue fino as a
 * stream fed by block_submit. block_claim: a buffer of B bytes (4096-aligned, with room for
 * the frame around it: seal in place) from the session's pool of ESCP_POOL_BLOCKS x T
 * buffers, or NULL when none is free within timeout_ms (0: do not wait; -1: wait, until
 * the session stops). Any thread. block_submit: hand a claimed buffer back holding len
 * bytes of stream fino at offset (a multiple of B; len = B except for the last block, which
 * may be shorter; 0 only for offset 0 of an empty stream); blocks may be submitted in any
 * order, from any thread; the buffer returns to the pool once its frame is on the socket.
 * ESCP_E_INVAL (not a claimed buffer, misaligned offset, len > B, or a short block before
 * a later one), ESCP_E_DUP (that offset twice), ESCP_E_STATE (not an open stream, or
 * ended). stream_end: the stream is size bytes long: every block below size must be (or
 * get) submitted, none past it (ESCP_E_INVAL: a block past size or a short one not at
 * the end; the stream then fails with FILE_ERROR ESCP_E_INVAL). FILE_DONE once all are
 * sent, with the digest. A buffer claimed and never submitted stays out of the pool, as does
 * one whose submit was refused (it is still the caller's: submit it again). Blocks go on
 * the wire in offset order (so a stream_fd receiver never holds a block whose predecessor is
 * queued behind it on the same connection): a block submitted ahead of a missing one waits
 * in its buffer, so a producer must not hold every pool buffer ahead of a block it has yet
 * to submit. stream_open: also ESCP_E_DUP (fino is an open stream), ESCP_E_STATE with
 * ESCP_P_RETRIES > 0. After stream_end a block must have its exact place and length.
 * Receiver — file_add / file_add_x with size ESCP_SIZE_STREAM: blocks at any multiple of
 * B below ESCP_MAX_FILE_SIZE, each B bytes except one shorter block that ends the stream
 * (a block past it, a second short one, or a block twice: session-scope ESCP_E_PROTO),
 * written like any file's (never a resume partial). stream_expect replaces file_expect for
 * it: size = the stream's length, blocks = ceil(size/B) (1 when size is 0), as the sender's
 * FILE_DONE said; a received block that disagrees is ESCP_E_PROTO. stream_fd: register fino
 * (instead of file_add) as a stream whose bytes go to fd in order (stdout): a data stream
 * holding a block waits until every byte before it was written, then writes it (full
 * writes, EINTR looped) — memory stays at one block per data stream whatever the order of
 * arrival; a write that fails (EPIPE: the reader went away) is FILE_ERROR ESCP_E_WRITE with
 * its errno and the rest of the stream is consumed and discarded. fd stays the caller's.
 * FILE_DONE when the digest matched (after the last write). stream_expect: ESCP_E_INVAL on a
 * file that is not a stream (file_expect likewise on a stream); with ESCP_XF_ABORTED size is
 * ignored and blocks is the count sent. stream_fd needs no destination root; its fd may be
 * non-blocking (polled); SIGPIPE is blocked in the writing thread around its writes. */
#define ESCP_SIZE_STREAM 18446744073709551615ULL /* file_add size of a stream (UINT64_MAX) */
#define ESCP_POOL_BLOCKS 2 /* block API buffers per data stream */
ESCP_API int32_t escp_tx_stream_add(void *h, uint64_t fino, int32_t fd);
ESCP_API int32_t escp_tx_stream_open(void *h, uint64_t fino);
ESCP_API void *escp_tx_block_claim(void *h, int32_t timeout_ms);
ESCP_API int32_t escp_tx_block_submit(void *h, uint64_t fino, void *buf, uint64_t offset, uint32_t len);
ESCP_API int32_t escp_tx_stream_end(void *h, uint64_t fino, uint64_t size);
ESCP_API int32_t escp_rx_stream_expect(void *h, uint64_t fino, uint64_t size, uint64_t blocks, uint32_t flags, const uint8_t *digest32);
ESCP_API int32_t escp_rx_stream_fd(void *h, uint64_t fino, int32_t fd);

/* ---- receiver: archive mode (-a) ----
 * Packed extended attributes, the one format (parsed only here, in C): repeated records
 * [u8 name_len 1..255][name, no NUL][u32 LE value_len 0..65536][value], the whole blob at most
 * ESCP_XATTRS_MAX bytes; xlen 0 (xattrs may then be NULL) = none. A malformed blob (a length
 * past the buffer, an empty name or one holding a NUL, over the max) is ESCP_E_PROTO and
 * registers nothing. A receiver not running as root applies only names that start with
 * "user." (the others are skipped); root applies all.
 * file_add_x: as file_add (file_add is xlen = 0); the attributes are set with fsetxattr on the
 * file's own fd when all its blocks are in (after the owner, mode and times, before it is
 * named; with or without ESCP_P_PRESERVE; not with the dummy engine; a resumable partial of
 * ESCP_P_RESUME gets them, and its owner, at the commit instead: one left unfinished must stay
 * this user's for a later run to take it up); a failure fails the file (FILE_ERROR
 * ESCP_E_WRITE, errno, "setxattr"; "chown" for the owner).
 * dir_add_x: as dir_add (dir_add is xlen = 0); the attributes are set now, through the
 * directory's fd: ESCP_E_SYS (escp_last_errno) if that fails.
 * symlink: rel (missing parent directories made, names checked as for file_add) becomes a
 * symlink holding target verbatim (1..ESCP_MAX_PATH bytes, else ESCP_E_INVAL; never followed
 * by escp): made under a temporary name in rel's directory, chowned with ESCP_P_OWNER, given
 * meta's times with ESCP_P_PRESERVE (Linux symlinks have no mode), then renamed over rel — an
 * existing file or symlink is replaced, a directory is not (ESCP_E_SYS, EISDIR). ESCP_OK,
 * E_PATH, E_SYS (escp_last_errno; nothing is left under the temporary name), E_INVAL, E_STATE.
 * hardlink: rel becomes another name of the file leader_fino, which this session committed
 * with meta[ESCP_META_NLINK] > 1 (at most ESCP_LINKS_MAX such files are remembered): linked
 * from the leader's name (never following a symlink) to a temporary name in rel's directory
 * (made if missing), checked to be the very inode the leader was written to (else ESCP_E_SYS
 * with ESTALE: its name was replaced meanwhile; the temporary goes), then renamed over rel
 * (rel already that inode: success). ESCP_OK, E_UNKNOWN_FILE (the leader was not written, or
 * not remembered), E_PATH, E_SYS (escp_last_errno: EXDEV, ESTALE, ...), E_INVAL, E_STATE.
 * With the dummy engine symlink and hardlink check their arguments and do nothing.
 * Owner (ESCP_P_OWNER = 1; ids 0..2^32-2, else EINVAL): files are chowned through their fd
 * before their mode is set (set-id bits of -p are still applied at the commit), directories
 * by dirs_finish before their mode, symlinks through an O_PATH fd of the one just made. The
 * receiver functions here run on the JS thread. */
ESCP_API int32_t escp_rx_file_add_x(void *h, uint64_t fino, const char *rel, uint64_t size, const int64_t *meta, const uint8_t *xattrs, int32_t xlen);
ESCP_API int32_t escp_rx_dir_add_x(void *h, uint64_t fino, const char *rel, const int64_t *meta, const uint8_t *xattrs, int32_t xlen);
ESCP_API int32_t escp_rx_symlink(void *h, uint64_t fino, const char *rel, const char *target, const int64_t *meta);
ESCP_API int32_t escp_rx_hardlink(void *h, uint64_t fino, const char *rel, uint64_t leader_fino);
/* xattrs_read (the sender): path's extended attributes packed into out (nofollow: those of
 * a symlink itself), in the order the filesystem lists them. Returns the length (0 = none,
 * also when the filesystem has none: ENOTSUP), ESCP_E_TOOBIG past cap or ESCP_XATTRS_MAX (a
 * value that grew since it was listed and no longer fits, too), ESCP_E_SYS with *err = errno
 * (err may be NULL), ESCP_E_NOMEM, ESCP_E_INVAL. Any thread; no session. */
ESCP_API int32_t escp_xattrs_read(const char *path, int32_t nofollow, uint8_t *out, int32_t cap, int32_t *err);
/* dir_scan (the sender's walk): every name of directory path ("." and ".." left out), sorted
 * by its bytes, each with its stat (lstat with nofollow), packed into out as entries of
 * ESCP_DS_ENT bytes followed by the name, zero-padded to a multiple of 8. An entry whose stat
 * failed has ESCP_DS_ERRNO set and zero stat fields. Read-ahead: in name order, regular files
 * of 1..ESCP_RA_FILE_MAX bytes are handed to the kernel's read-ahead (posix_fadvise WILLNEED:
 * the reads are queued at once, not waited for) while their sizes add up to at most ra_kib
 * KiB (the first that would not fit ends it); each gets ESCP_DS_F_RA in ESCP_DS_FLAGS. Every
 * file of that kind gets ESCP_DS_F_RA_SMALL, read ahead or not (the caller's budget counts
 * them). A file that cannot be opened is left alone. ra_kib 0: none. Returns the bytes written;
 * ESCP_E_TOOBIG with *err = the bytes needed when cap is short (call again with more; nothing
 * was read ahead); ESCP_E_SYS with *err = errno when the directory cannot be opened or read;
 * ESCP_E_NOMEM; ESCP_E_INVAL. Any thread; no session. */
ESCP_API int32_t escp_dir_scan(const char *path, int32_t nofollow, int32_t ra_kib, uint8_t *out, int32_t cap, int32_t *err);
#define ESCP_DS_SIZE 0       /* u64 st_size */
#define ESCP_DS_INO 8        /* u64 st_ino */
#define ESCP_DS_DEV 16       /* u64 st_dev */
#define ESCP_DS_MTIME_S 24   /* i64 */
#define ESCP_DS_ATIME_S 32   /* i64 */
#define ESCP_DS_MTIME_NS 40  /* u32 */
#define ESCP_DS_ATIME_NS 44  /* u32 */
#define ESCP_DS_MODE 48      /* u32 st_mode (type and permission bits) */
#define ESCP_DS_UID 52       /* u32 */
#define ESCP_DS_GID 56       /* u32 */
#define ESCP_DS_NLINK 60     /* u32 (saturated) */
#define ESCP_DS_ERRNO 64     /* i32: the stat's errno, 0 = the fields hold it */
#define ESCP_DS_NAME_LEN 68  /* u16: bytes of the name that follows the entry */
#define ESCP_DS_FLAGS 70     /* u16: ESCP_DS_F_* */
#define ESCP_DS_F_RA 1       /* handed to the read-ahead */
#define ESCP_DS_F_RA_SMALL 2 /* a regular file of 1..ESCP_RA_FILE_MAX bytes: one the read-ahead takes */
#define ESCP_RA_FILE_MAX 1048576 /* largest file dir_scan reads ahead, bytes */
#define ESCP_DS_ENT 72

/* ---- control messages, events, counters ---- */
ESCP_API int32_t escp_ctl_send(void *h, const uint8_t *buf, int32_t len);
ESCP_API int32_t escp_ctl_recv(void *h, uint8_t *buf, int32_t cap);
ESCP_API int32_t escp_event_poll(void *h, escp_event *out, int32_t max);
ESCP_API int32_t escp_stats_read(void *h, uint64_t *out, int32_t n);
/* Reconnect (ESCP_P_RETRIES = N > 0 on both sides). The receiver acknowledges consumed DATA
 * frames on each data stream (ESCP_FT_ACK, docs/protocol.md §8); the sender keeps the
 * (file, block) of each frame not yet acknowledged (at most ESCP_UNACKED_MAX per stream: it
 * waits for an ACK beyond that) and keeps the record of a completed file while one of its
 * blocks is unacknowledged. When a data connection breaks (EOF, reset, TCP_USER_TIMEOUT,
 * silence for a whole timeout) the connector dials that stream again (a fresh challenge,
 * HELLO and keys) and the listener, which keeps listening while the session lives, hands the
 * authenticated connection to the stream; the receiver's first frame on it is an ACK with its
 * consumed count, and the sender re-reads and resends the rest from its files (a source that
 * changed since is a FATAL ESCP_E_CHANGED). The session key is kept until free. A stream ends
 * with BYE answered by a final ACK, so a break at the very end is recovered too. Attempts:
 * at most N in a row without a consumed frame in between, within one timeout (connector) or
 * two (listener) of the break; then ESCP_EV_STREAM_DOWN / FATAL as without reconnect. */

/* Profiler (ESCP_P_PROFILE = 1): move up to cap bytes of recorded spans (whole 24-byte
 * records, oldest first, all streams) into out; returns bytes written. JS thread. */
ESCP_API int32_t escp_prof_drain(void *h, uint8_t *out, int32_t cap);
/* Exact per-stream per-stage totals: out[(stream * ESCP_STG_COUNT + stage) * 3 + {0 ns, 1 bytes,
 * 2 count}] for streams 0..T; then one more u64: spans dropped (ring full). Returns the
 * number of u64 written, or <0. */
ESCP_API int32_t escp_prof_totals(void *h, uint64_t *out, int32_t n);
/* CLOCK_MONOTONIC in ns: the clock spans are stamped with. */
ESCP_API uint64_t escp_prof_clock(void);

/* ---- test hooks ---- */
ESCP_API int32_t escp_digest_buffer(const uint8_t *buf, uint64_t len, uint32_t block_size, int32_t reverse, uint8_t *out32);
/* Frame decoder hooks for the property suite (native/src/testhook.c; tests only, never on a
 * data path). The channel is the one of (dir, stream) on a connection whose challenger sent
 * the 16-byte challenge16. seal: the frame a sending channel at `seq` would produce -> its
 * length (16 + body_len + 16), ESCP_E_TOOBIG if cap is short, ESCP_E_INVAL on bad args.
 * open: a receiving channel expecting `expect_seq` checks, authenticates and parses `len`
 * bytes -> ESCP_OK or the receiver's typed status (E_PROTO, E_REPLAY, E_AUTH, ...). */
ESCP_API int32_t escp_test_frame_seal(const uint8_t *key32, const uint8_t *sid16, const uint8_t *challenge16, int32_t dir, int32_t stream, uint64_t seq, int32_t type, const uint8_t *body, int32_t body_len, uint8_t *out, int32_t cap);
ESCP_API int32_t escp_test_frame_open(const uint8_t *key32, const uint8_t *sid16, const uint8_t *challenge16, int32_t dir, int32_t stream, uint64_t expect_seq, int32_t max_body, int32_t block_size, const uint8_t *frame, int32_t len);
/* 1 when the session's copy of the session key is all zero (wiped), 0 if not, ESCP_E_INVAL. */
ESCP_API int32_t escp_test_key_wiped(void *h);
ESCP_API int32_t escp_test_events_fill(void *h, int32_t n);
/* The receiver's structural check of a BUNDLE body (native/src/bundle.h) for a session of
 * block_size: ESCP_OK or ESCP_E_PROTO (ESCP_E_INVAL: bad arguments). Nothing is written. */
ESCP_API int32_t escp_test_bundle_parse(const uint8_t *body, int32_t len, int32_t block_size);

/* ---- relay: the local splicer of a relayed third-party transfer (-3; relay.c) ----
 * Both remote hosts listen (host2: the data receiver, challenging as usual; host1: the data
 * sender with ESCP_P_HELLO_ON_ACCEPT = 1); this process opens nconns = T+1 TCP connections
 * to each and copies bytes both ways between connection k to host1 and connection k to
 * host2, never looking at them (no key; it sees only challenges, sealed HELLOs and
 * ciphertext). A FIN from one side becomes shutdown(SHUT_WR) on the other once everything
 * before it is delivered; an error or reset on either side, or stop, resets both. Sockets
 * get SO_KEEPALIVE and TCP_USER_TIMEOUT from the timeout. C threads only; no exit().
 *   1. r = escp_relay_new(timeout_ms)            (1000..86400000 ms, else NULL)
 *   2. escp_relay_connect(r, addr1, port1, addr2, port2, nconns)   blocks <= timeout: all
 *      2 x nconns connected (ESCP_OK), or none kept (E_CONNECT, E_TIMEOUT, E_ABORTED by stop)
 *   3. escp_relay_start(r)                       returns at once; one thread per pair
 *   4. escp_relay_stats_read(r, ...)             poll: pairs end by themselves when both
 *      sessions have closed (DONE) or on an error (FAILED; escp_relay_last_error says why)
 *   5. escp_relay_stop(r) (at once; resets pairs still running) -> escp_relay_join(r)
 *      (blocks; needs stop unless no pair is running) -> escp_relay_free(r) (NULL: no-op) */
#define ESCP_R_BYTES_12 0     /* bytes forwarded host1 -> host2 */
#define ESCP_R_BYTES_21 1     /* bytes forwarded host2 -> host1 */
#define ESCP_R_PAIRS_UP 2     /* pairs being spliced now */
#define ESCP_R_PAIRS_DONE 3   /* pairs that ended with a FIN each way, all bytes delivered */
#define ESCP_R_PAIRS_FAILED 4 /* pairs that ended by an error, a reset or stop: both sides reset */
#define ESCP_R_COUNT 8
ESCP_API void *escp_relay_new(int32_t timeout_ms);
ESCP_API int32_t escp_relay_connect(void *r, const char *addr1, int32_t port1, const char *addr2, int32_t port2, int32_t nconns);
ESCP_API int32_t escp_relay_start(void *r);
ESCP_API int32_t escp_relay_stop(void *r);
ESCP_API int32_t escp_relay_join(void *r);
ESCP_API void escp_relay_free(void *r);
ESCP_API int32_t escp_relay_stats_read(void *r, uint64_t *out, int32_t n);
ESCP_API int32_t escp_relay_last_error(void *r, char *buf, int32_t len);

/* ---- streaming zstd codec for DATA payloads (native/src/zc.c; zc.h has the full rules) ----
 * One compressor per sending stream, one decompressor per receiving stream, blocks in stream
 * order; window bounded (a larger one from the peer is ESCP_E_PROTO). RAW rule: every block
 * sent RAW resets the stream on both sides — escp_zc_compress returning 0 already reset the
 * sender; the receiver calls escp_zc_raw for each RAW block (so does a sender that sends a
 * block RAW without calling compress). A handle is used by one thread; free(NULL) is a no-op.
 * compress: cap >= n; >0 compressed length, 0 = send RAW (nothing useful in out), <0 ESCP_E_*.
 * decompress: ESCP_OK when exactly n bytes came out and all clen were consumed, else
 * ESCP_E_PROTO (never writes past out[n-1]; ESCP_E_INVAL only for NULL, negative or a
 * compressor handle). escp_zstd_block: one independent frame per block (the original EScp's
 * way; benchmark baseline): size, or <0 (ESCP_E_TOOBIG: cap). */
ESCP_API void *escp_zc_new(int32_t level);
ESCP_API void *escp_zc_new_rx(void);
ESCP_API void escp_zc_free(void *z);
ESCP_API int32_t escp_zc_compress(void *z, const uint8_t *in, int32_t n, uint8_t *out, int32_t cap);
ESCP_API int32_t escp_zc_decompress(void *z, const uint8_t *in, int32_t clen, uint8_t *out, int32_t n);
ESCP_API void escp_zc_raw(void *z);
ESCP_API int32_t escp_zstd_block(const uint8_t *in, int32_t n, uint8_t *out, int32_t cap, int32_t level);

#endif
