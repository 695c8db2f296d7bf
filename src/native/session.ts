// A typed handle over one native session: parameters, connect/listen, file queues,
// control messages, event drain and counters. Every call runs on the JS thread.
import type { Pointer } from "bun:ffi";
import { EscpError } from "../errors/escp-error.ts";
import type { ErrorCode } from "../errors/codes.ts";
import { cstr, loadNative, type NativeLib } from "./lib.ts";
import { codeForStatus, decodeEvents, errnoText, statusName, type NativeEvent } from "./events.ts";
import * as C from "./symbols.ts";

export type Role = "sender" | "receiver";

/** A range session's end on the receiver (rxRangeTake). */
export interface RangeOutcome {
  committed: boolean;
  whole: Uint8Array;
  /** The range's subtrees, 48 bytes each: u64 first block, u32 log2, u32 0, 32-byte CV. */
  packed: Uint8Array;
}

export interface SessionParams {
  threads: number;
  blockSize: number;
  ioEngine: "posix" | "dummy";
  direct: boolean;
  checksum: boolean;
  sparse: boolean;
  timeoutMs: number;
  rateLimit: number;
  ipMode: 0 | 4 | 6;
  /** Emit ESCP_EV_LOG debug events (-v). */
  verbose: boolean;
  /** Record per-stage spans (--profile). */
  profile: boolean;
  /** zstd level of DATA payloads (sender) / accept compressed frames (receiver); 0 = off. */
  compressLevel: number;
  /** Receiver, -p: exact modes and times through each file's and directory's fd. */
  preserve: boolean;
  /** A listener that answers each connection's challenge instead of sending one (-3 relay, host1). */
  helloOnAccept?: boolean;
  /** Receiver: resumable partials (escp.h "Resume"): 0 off, 1 journal but start over, 2 resume. */
  resume?: 0 | 1 | 2;
  /** Reconnect attempts in a row for a dropped data stream (escp.h "Reconnect"); both sides
   * must agree (SessionInit.retries). 0 or absent: a drop ends the session. */
  retries?: number;
  /** Sender: blocks in holes of a sparse source travel as ZERO frames (the receiver must be
   * protocol 2.4 or later). */
  holes?: boolean;
  /** Receiver, -a as root: files, directories and symlinks get the announced owner and group. */
  owner?: boolean;
  /** Small files travel packed in BUNDLE frames (sender: txSmallAdd; receiver: takes them). */
  bundle?: boolean;
}

/** Mode and times of a destination entry, as the sender announced them (ino: the source's
 * inode, 0 = unknown; it identifies the source a resumable partial was written from). */
export interface EntryMeta {
  mode: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ino?: number;
  /** -a: owner and group, and a file's link count (> 1: remembered for later hard links). */
  uid?: number;
  gid?: number;
  nlink?: number;
  /** --xattrs: packed by libescp. */
  xattrs?: Uint8Array;
}

/** What rxFileAdd did with a file: registered (`probing`: an earlier partial is being read;
 * an "offer" event follows), or why it could not be (`busy`: another process holds its
 * partial). */
export type FileAddResult = { ok: true; probing: boolean } | { ok: false; busy: true } | (DestResult & { ok: false; busy?: false });

/** escp_tx_offer_check's verdict on a resume offer against the source file. */
export type OfferCheck = "ok" | "changed" | { code: ErrorCode; errno: number };

export type PathKind = "missing" | "file" | "dir";

/** Outcome of a destination call that may refuse a name or fail on the file system. */
export type DestResult = { ok: true } | { ok: false; refused: boolean; errno: number; detail: string };

/** Harden this process before it holds a session key: no core dumps, not dumpable, so no
 *  crash file, debugger or /proc reader of the same user gets the key (escp.h
 *  escp_process_harden). Idempotent. False when the kernel refused. */
export function hardenProcess(): boolean {
  return loadNative().escp_process_harden() === C.ESCP_OK;
}

const EVENT_BATCH = 256;
/** What a control send to a peer that is gone says (the reader's STREAM_DOWN says the same). */
export const PEER_CLOSED_CONTROL = "peer closed the control stream unexpectedly (it exited or was killed)";
/** Directories whose -p metadata failed that are named one by one (the rest are counted). */
const DIRS_FAILED_MAX = 4096;
const CTL_BUF_BYTES = C.ESCP_CTL_MAX + 64;
/** One take call's buffer: room for the largest receiver group (its entries with whole leaves). */
const BUNDLE_TAKE_BYTES = C.ESCP_BG_HDR + C.ESCP_BUNDLE_FILES_MAX * (C.ESCP_BR_ENT + 256);

/** Map a native status code to the escp error code users see. */
export function codeForStatusCode(status: number): ErrorCode {
  return codeForStatus(statusName(status));
}

/** Does the file at path still hold what a resume offer says (size, first and last held
 * runs)? Reads up to 128 MiB of it; no session needed. */
export function txOfferCheck(path: string, size: number, blockSize: number, held: Uint8Array): OfferCheck {
  const err = new Int32Array(1);
  const st = loadNative().escp_tx_offer_check(cstr(path), size, blockSize, held, held.length, err);
  if (st === C.ESCP_OK) return "ok";
  if (st === C.ESCP_E_CHANGED) return "changed";
  if (st === C.ESCP_E_PROTO) return { code: "E_PROTOCOL", errno: 0 };
  return { code: codeForStatusCode(st), errno: err[0] ?? 0 };
}

/** A path's extended attributes packed for the wire (empty: none), or why they cannot be
 * read (nofollow: those of a symbolic link itself, not of what it names). */
export function xattrsRead(path: string, nofollow: boolean): Uint8Array | { why: string } {
  const err = new Int32Array(1);
  const buf = (xattrBuf ??= new Uint8Array(C.ESCP_XATTRS_MAX));
  const n = loadNative().escp_xattrs_read(cstr(path), nofollow ? 1 : 0, buf, buf.length, err);
  if (n >= 0) return buf.slice(0, n);
  if (n === C.ESCP_E_TOOBIG) return { why: `they take more than ${C.ESCP_XATTRS_MAX} bytes` };
  return { why: errnoText(err[0] ?? 0) };
}
let xattrBuf: Uint8Array | undefined;
const NONE = new Uint8Array(0);

/** Sessions not yet closed: a signal closes them before the process exits, so the receiver's
 * unfinished partials are sealed for a later run (escp.h "Resume"). */
const live = new Set<NativeSession>();

/** Close every open session (stop, join, free). For the signal handlers; idempotent.
 * farewell: a control message each session sends first where it can (the peer then knows
 * why: a stop alone ends the control stream with a quiet BYE). */
export function closeAllSessions(farewell?: Uint8Array): void {
  for (const s of [...live]) {
    if (farewell) {
      try {
        s.ctlSend(farewell);
      } catch {
        // streams not up, or the control stream already broken: the BYE (or EOF) must do
      }
    }
    s.close();
  }
}

export class NativeSession {
  readonly role: Role;
  private readonly lib: NativeLib;
  private handle: Pointer | null;
  private readonly eventBuf = new Uint8Array(EVENT_BATCH * C.EVENT_SIZE);
  private readonly ctlBuf = new Uint8Array(CTL_BUF_BYTES);
  private readonly statsBuf = new BigUint64Array(C.ESCP_S_COUNT);
  private readonly detailBuf = new Uint8Array(512);
  private readonly profBuf = new Uint8Array(4096 * C.ESCP_SPAN_SIZE);
  private offerBuf: Uint8Array | undefined;
  private streams = 0;
  /** ESCP_P_BLOCK_SIZE: every block-API buffer holds this many bytes. */
  blockSize = 0;

  constructor(role: Role, params: SessionParams) {
    this.lib = loadNative();
    this.role = role;
    const h = this.lib.escp_session_new(role === "sender" ? C.ESCP_ROLE_SENDER : C.ESCP_ROLE_RECEIVER);
    if (!h) throw new EscpError("E_INTERNAL", "escp_session_new failed (out of memory?)");
    this.handle = h as Pointer;
    live.add(this);
    try {
      this.setParams(params);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private get h(): Pointer {
    if (this.handle === null) throw new EscpError("E_INTERNAL", "native session used after free");
    return this.handle;
  }

  private setParams(p: SessionParams): void {
    const set = (id: number, v: number, flag: string): void => {
      const st = this.lib.escp_param_set(this.h, id, v);
      if (st !== 0) throw this.error(st, `invalid value ${v} for ${flag}`);
    };
    set(C.ESCP_P_THREADS, p.threads, "-t");
    set(C.ESCP_P_BLOCK_SIZE, p.blockSize, "--blocksize");
    set(C.ESCP_P_IO_ENGINE, p.ioEngine === "dummy" ? C.ESCP_IO_DUMMY : C.ESCP_IO_POSIX, "--ioengine");
    set(C.ESCP_P_DIRECT, p.direct ? 1 : 0, "--nodirect");
    set(C.ESCP_P_CHECKSUM, p.checksum ? 1 : 0, "--nochecksum");
    set(C.ESCP_P_SPARSE, p.sparse ? 1 : 0, "--sparse");
    set(C.ESCP_P_TIMEOUT_MS, p.timeoutMs, "--timeout");
    set(C.ESCP_P_RATE_LIMIT, p.rateLimit, "--limit");
    set(C.ESCP_P_IP_MODE, p.ipMode, "-4/-6");
    set(C.ESCP_P_VERBOSE, p.verbose ? 1 : 0, "-v");
    set(C.ESCP_P_PROFILE, p.profile ? 1 : 0, "--profile");
    set(C.ESCP_P_COMPRESS, p.compressLevel, "--compress-level");
    set(C.ESCP_P_PRESERVE, p.preserve ? 1 : 0, "-p");
    set(C.ESCP_P_HELLO_ON_ACCEPT, p.helloOnAccept ? 1 : 0, "-3");
    set(C.ESCP_P_RESUME, p.resume ?? 0, "--resume");
    set(C.ESCP_P_RETRIES, p.retries ?? 0, "--retries");
    set(C.ESCP_P_HOLES, p.holes ? 1 : 0, "holes");
    set(C.ESCP_P_OWNER, p.owner ? 1 : 0, "-a");
    set(C.ESCP_P_BUNDLE, p.bundle ? 1 : 0, "--bundle-max");
    this.streams = p.threads + 1;
    this.blockSize = p.blockSize;
  }

  /** Not yet closed: C memory claimed from it (block buffers) may still be touched. */
  get open(): boolean {
    return this.handle !== null;
  }

  /** The receiver's resume level, once the peer's protocol version is known (before any file). */
  setResume(level: 0 | 1 | 2): void {
    const st = this.lib.escp_param_set(this.h, C.ESCP_P_RESUME, level);
    if (st !== 0) throw this.error(st, "resume level");
  }

  /** Spans recorded since the last call (24-byte records), or an empty array. */
  profDrain(): Uint8Array {
    const parts: Uint8Array[] = [];
    for (;;) {
      const n = this.lib.escp_prof_drain(this.h, this.profBuf, this.profBuf.length);
      if (n <= 0) break;
      parts.push(this.profBuf.slice(0, n));
      if (n < this.profBuf.length) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Exact per-stream per-stage totals as little-endian u64 bytes, and the dropped-span count. */
  profTotals(): { totals: Uint8Array; dropped: number } {
    const n = this.streams * C.ESCP_STG_COUNT * 3 + 1;
    const out = new BigUint64Array(n);
    const got = this.lib.escp_prof_totals(this.h, out, n);
    if (got !== n) return { totals: new Uint8Array((n - 1) * 8), dropped: 0 };
    return { totals: new Uint8Array(out.buffer.slice(0, (n - 1) * 8)), dropped: Number(out[n - 1]) };
  }

  /** The clock spans are stamped with (CLOCK_MONOTONIC ns). */
  clockNs(): number {
    return Number(this.lib.escp_prof_clock());
  }

  /** Text the library kept for the last failing call ("what [file:line]"). */
  detail(): string {
    const n = this.lib.escp_last_error_detail(this.h, this.detailBuf, this.detailBuf.length);
    if (n <= 0) return "";
    const end = this.detailBuf.indexOf(0);
    return new TextDecoder().decode(this.detailBuf.subarray(0, end < 0 ? n : end));
  }

  error(status: number, what: string): EscpError {
    const d = this.handle === null ? "" : this.detail();
    const name = this.lib.escp_status_name(status)?.toString() ?? String(status);
    return new EscpError(codeForStatusCode(status), `${what}: ${d || name}`);
  }

  private check(status: number, what: string): number {
    if (status < 0) throw this.error(status, what);
    return status;
  }

  setKey(key: Uint8Array, sessionId: Uint8Array): void {
    this.check(this.lib.escp_session_key_set(this.h, key, sessionId), "session key");
  }

  /** Bind the data port; returns the port bound. */
  listen(address: string, portStart: number, portCount: number): number {
    const st = this.lib.escp_listen(this.h, cstr(address), portStart, portCount);
    if (st < 0) {
      const last = portStart + Math.max(portCount, 1) - 1;
      throw new EscpError(
        st === C.ESCP_E_BIND ? "E_CONNECT" : codeForStatusCode(st),
        `cannot listen on ${address || "*"} ports ${portStart}-${last}: ${this.detail()}`,
      );
    }
    return st;
  }

  /** Open and authenticate every stream (blocks until up or failed). */
  connect(address: string, port: number): void {
    const st = this.lib.escp_connect(this.h, cstr(address), port);
    if (st >= 0) return;
    const err = this.error(st, `data connection to ${address}:${port}`);
    throw err.code === "E_PROTOCOL" || err.code === "E_VERSION" ? err : new EscpError("E_CONNECT", err.message);
  }

  start(): void {
    this.check(this.lib.escp_session_start(this.h), "start session");
  }

  /** Queue a stream of unknown length read from fd (stdin): its FILE_DONE gives its length. */
  txStreamAdd(fino: number, fd: number): void {
    this.check(this.lib.escp_tx_stream_add(this.h, fino, fd), "queue the stream");
  }

  /** Block API: queue fino as a stream fed by txBlockSubmit (escp.h "streams"). */
  txStreamOpen(fino: number): void {
    this.check(this.lib.escp_tx_stream_open(this.h, fino), "open the stream");
  }

  /** Block API: a free buffer of blockSize bytes from the pool, or null when none is free now
   * (never waits: C threads never call into JS, so JS polls). */
  txBlockClaim(): Pointer | null {
    return (this.lib.escp_tx_block_claim(this.h, 0) as Pointer | null) ?? null;
  }

  /** Block API: hand a claimed buffer back holding len bytes of stream fino at offset. */
  txBlockSubmit(fino: number, buf: Pointer, offset: number, len: number): void {
    this.check(this.lib.escp_tx_block_submit(this.h, fino, buf, offset, len), `submit block at ${offset} of stream #${fino}`);
  }

  /** Block API: stream fino is size bytes long (every block below it submitted or to come). */
  txStreamEnd(fino: number, size: number): void {
    this.check(this.lib.escp_tx_stream_end(this.h, fino, size), `end stream #${fino}`);
  }

  txFileAdd(fino: number, path: string, size: number): void {
    this.check(this.lib.escp_tx_file_add(this.h, fino, cstr(path), size), `queue ${path}`);
  }

  /** Queue a file the receiver holds part of: `held` is its resume offer (those blocks are
   * never read nor sent). Returns the bytes held. */
  txFileAddHeld(fino: number, path: string, size: number, held: Uint8Array): number {
    const out = new BigUint64Array(1);
    const st = this.lib.escp_tx_file_add_held(this.h, fino, cstr(path), size, held, held.length, out);
    if (st === C.ESCP_E_PROTO) throw new EscpError("E_PROTOCOL", `resume offer for file #${fino}: ${this.detail()}`);
    this.check(st, `queue ${path}`);
    return Number(out[0]);
  }

  /** Queue blocks [first, first+count) of a file only (a shard's byte range), with the
   * receiver's resume offer for the range (empty: none). Returns the bytes held. */
  txFileAddRange(fino: number, path: string, size: number, first: number, count: number, held: Uint8Array): number {
    const out = new BigUint64Array(1);
    const st = this.lib.escp_tx_file_add_range(this.h, fino, cstr(path), size, first, count, held.length > 0 ? held : null, held.length, out);
    if (st === C.ESCP_E_PROTO) throw new EscpError("E_PROTOCOL", `resume offer for file #${fino}: ${this.detail()}`);
    this.check(st, `queue ${path}`);
    return Number(out[0]);
  }

  /** Queue small files packed by SmallFileBatch (bundles.ts): they travel in BUNDLE frames. */
  txSmallAdd(recs: Uint8Array, len: number): void {
    const st = this.lib.escp_tx_small_add(this.h, recs, len);
    if (st !== C.ESCP_OK) throw this.error(st, "queue small files");
  }

  /** The sender's groups of bundles sent since the last call (bundles.ts decodes them): a view
   * valid until the next call, empty when none is ready. */
  txBundleTake(): Uint8Array {
    const buf = (this.bundleBuf ??= new Uint8Array(BUNDLE_TAKE_BYTES));
    return buf.subarray(0, this.check(this.lib.escp_tx_bundle_take(this.h, buf, buf.length), "bundles sent"));
  }

  /** The receiver's reports of bundles written since the last call (bundles.ts decodes them):
   * a view valid until the next call, empty when none is ready. */
  rxBundleTake(): Uint8Array {
    const buf = (this.bundleBuf ??= new Uint8Array(BUNDLE_TAKE_BYTES));
    return buf.subarray(0, this.check(this.lib.escp_rx_bundle_take(this.h, buf, buf.length), "bundles written"));
  }

  /** A directory this sink will not write: bundled files naming it fail (E_REJECTED_PATH). */
  rxDirRefuse(fino: number): void {
    const st = this.lib.escp_rx_dir_refuse(this.h, fino);
    if (st === C.ESCP_E_DUP) throw new EscpError("E_PROTOCOL", `directory #${fino} announced twice`);
    this.check(st, `refuse directory #${fino}`);
  }

  /** Sender: the receiver takes bundles (both peers speak 2.6 and asked for them). Until start. */
  useBundles(): void {
    const st = this.lib.escp_param_set(this.h, C.ESCP_P_BUNDLE, 1);
    if (st !== C.ESCP_OK) throw new EscpError("E_INTERNAL", `bundles: ${this.detail()}`);
  }

  private bundleBuf: Uint8Array | undefined;

  txFinish(): void {
    this.check(this.lib.escp_tx_finish(this.h), "finish sending");
  }

  private readonly metaBuf = new BigInt64Array(C.ESCP_META_COUNT);

  private meta(m: EntryMeta): BigInt64Array {
    const b = this.metaBuf;
    b[C.ESCP_META_MODE] = BigInt(m.mode);
    b[C.ESCP_META_ATIME_S] = BigInt(m.atimeSec);
    b[C.ESCP_META_ATIME_NS] = BigInt(m.atimeNsec);
    b[C.ESCP_META_MTIME_S] = BigInt(m.mtimeSec);
    b[C.ESCP_META_MTIME_NS] = BigInt(m.mtimeNsec);
    b[C.ESCP_META_SRC_INO] = BigInt(m.ino ?? 0);
    b[C.ESCP_META_UID] = BigInt(m.uid ?? 0);
    b[C.ESCP_META_GID] = BigInt(m.gid ?? 0);
    b[C.ESCP_META_NLINK] = BigInt(m.nlink ?? 0);
    return b;
  }

  private dest(st: number, what: string): DestResult {
    if (st >= 0) return { ok: true };
    if (st !== C.ESCP_E_PATH && st !== C.ESCP_E_SYS) throw this.error(st, what);
    return { ok: false, refused: st === C.ESCP_E_PATH, errno: this.lib.escp_last_errno(this.h), detail: this.detail() };
  }

  /** Server --restrict DIR: every later destination path resolves beneath DIR. */
  rxJail(dir: string): DestResult {
    return this.dest(this.lib.escp_rx_jail(this.h, cstr(dir)), `--restrict ${dir}`);
  }

  /** What path is, resolved the way rxRoot would resolve it. */
  rxProbe(path: string): PathKind | DestResult {
    const st = this.lib.escp_rx_probe(this.h, cstr(path));
    if (st === C.ESCP_KIND_DIR) return "dir";
    if (st === C.ESCP_KIND_FILE) return "file";
    if (st === C.ESCP_KIND_MISSING) return "missing";
    return this.dest(st, `destination ${path}`);
  }

  /** Open path as the destination root, once (create: mkdir it when missing). */
  rxRoot(path: string, create: boolean): DestResult {
    return this.dest(this.lib.escp_rx_root(this.h, cstr(path), create ? 1 : 0), `destination ${path}`);
  }

  /** mkdir -p rel below the root ("" = the root); with -p its meta is applied at the end. */
  rxDirAdd(fino: number, rel: string, m: EntryMeta): DestResult {
    const x = m.xattrs ?? NONE;
    const st = this.lib.escp_rx_dir_add_x(this.h, fino, cstr(rel), this.meta(m), x.length > 0 ? x : null, x.length);
    if (st === C.ESCP_E_PROTO) throw new EscpError("E_PROTOCOL", `directory #${fino}: ${this.detail()}`);
    if (st === C.ESCP_E_DUP) throw new EscpError("E_PROTOCOL", `directory #${fino} announced twice`);
    return this.dest(st, `directory ${rel}`);
  }

  /** -a: a symbolic link at rel holding target (created beside it, then renamed over it). */
  rxSymlink(fino: number, rel: string, target: string, m: EntryMeta): DestResult {
    const st = this.lib.escp_rx_symlink(this.h, fino, cstr(rel), cstr(target), this.meta(m));
    if (st === C.ESCP_E_INVAL) throw new EscpError("E_PROTOCOL", `symbolic link #${fino}: ${this.detail()}`);
    return this.dest(st, `symbolic link ${rel}`);
  }

  /** -a: rel as another name of the file leader (committed earlier in this session);
   * notWritten: the session named no such file (it failed, or was never a file). */
  rxHardlink(fino: number, rel: string, leader: number): DestResult | { ok: false; notWritten: true } {
    const st = this.lib.escp_rx_hardlink(this.h, fino, cstr(rel), leader);
    if (st === C.ESCP_E_UNKNOWN_FILE) return { ok: false, notWritten: true };
    return this.dest(st, `hard link ${rel}`);
  }

  /** -p: directory modes and times, children first. The directories (by fino) whose mode or
   * times could not be applied, with the errno (at most DIRS_FAILED_MAX named; `more` counts
   * the rest). */
  rxDirsFinish(): { failed: { fino: number; errno: number }[]; more: number } {
    const buf = new BigUint64Array(2 * DIRS_FAILED_MAX);
    const n = this.check(this.lib.escp_rx_dirs_finish(this.h, buf, buf.length), "directory metadata");
    const failed: { fino: number; errno: number }[] = [];
    for (let i = 0; i < Math.min(n, DIRS_FAILED_MAX); i++) failed.push({ fino: Number(buf[2 * i]), errno: Number(buf[2 * i + 1]) });
    return { failed, more: n - failed.length };
  }

  /** Register a file for rel below the root (null: discard its blocks). C creates it, checks
   * it against the digest given to rxFileExpect and names it (FILE_DONE = committed). */
  rxFileAdd(fino: number, rel: string | null, size: number | "stream", m: EntryMeta): FileAddResult {
    const x = m.xattrs ?? NONE;
    const sz = size === "stream" ? C.ESCP_SIZE_STREAM : size; // the u64 sentinel stays a bigint: bun:ffi passes it whole
    const st = this.lib.escp_rx_file_add_x(this.h, fino, rel === null ? null : cstr(rel), sz, this.meta(m), x.length > 0 ? x : null, x.length);
    if (st === C.ESCP_E_PROTO) throw new EscpError("E_PROTOCOL", `file #${fino}: ${this.detail()}`);
    if (st === C.ESCP_E_RANGE) throw new EscpError("E_PROTOCOL", `file #${fino} announced with ${size} bytes, over the ${C.ESCP_MAX_FILE_SIZE}-byte limit`);
    if (st === C.ESCP_E_DUP) throw new EscpError("E_PROTOCOL", `file #${fino} announced twice`);
    if (st === C.ESCP_E_BUSY) return { ok: false, busy: true };
    const r = this.dest(st, `register file #${fino}`);
    return r.ok ? { ok: true, probing: st === 1 } : r;
  }

  /** Register a byte range of a file (blocks [first, first+count)): written into the shared
   * partial with its own journal (escp.h "Byte ranges"). */
  rxFileAddRange(fino: number, rel: string | null, size: number, m: EntryMeta, first: number, count: number): FileAddResult {
    const st = this.lib.escp_rx_file_add_range(this.h, fino, rel === null ? null : cstr(rel), size, this.meta(m), first, count);
    if (st === C.ESCP_E_RANGE) throw new EscpError("E_PROTOCOL", `file #${fino}: a range outside its announced size (${size} bytes)`);
    if (st === C.ESCP_E_DUP) throw new EscpError("E_PROTOCOL", `file #${fino} announced twice`);
    if (st === C.ESCP_E_BUSY) return { ok: false, busy: true };
    const r = this.dest(st, `register file #${fino}`);
    return r.ok ? { ok: true, probing: st === 1 } : r;
  }

  /** What a range session's end decided (after its FILE_DONE): whether it committed the
   * file, the whole file's BLAKE3 then, and the range's subtrees. null when none is queued. */
  rxRangeTake(fino: number): RangeOutcome | null {
    const buf = new Uint8Array(C.ESCP_RANGE_TAKE_MAX);
    const n = this.check(this.lib.escp_rx_range_take(this.h, fino, buf, buf.length), `range result of file #${fino}`);
    if (n === 0) return null;
    const dv = new DataView(buf.buffer, 0, n);
    const count = dv.getUint32(4, true);
    return {
      committed: dv.getUint32(0, true) === 1,
      whole: buf.slice(8, 40),
      packed: buf.slice(40, 40 + count * 48),
    };
  }

  /** A stream's end, from the source's FileDone: its length and block count, and the digest. */
  rxStreamExpect(fino: number, size: number, blocks: number, aborted: boolean, senderDigest?: Uint8Array): void {
    const d = senderDigest && senderDigest.length === 32 ? senderDigest : null;
    const st = this.lib.escp_rx_stream_expect(this.h, fino, size, blocks, aborted ? C.ESCP_XF_ABORTED : 0, d);
    if (st === C.ESCP_E_PROTO)
      throw new EscpError("E_PROTOCOL", `completion of stream #${fino} names ${size} bytes in ${blocks} blocks, which disagrees with the blocks received`);
    this.check(st, `expect stream #${fino}`);
  }

  /** Register fino as a stream written, in order, to fd (stdout) instead of a file. */
  rxStreamFd(fino: number, fd: number): void {
    const st = this.lib.escp_rx_stream_fd(this.h, fino, fd);
    if (st === C.ESCP_E_DUP) throw new EscpError("E_PROTOCOL", `file #${fino} announced twice`);
    this.check(st, `register stream #${fino}`);
  }

  /** The resume offer the probe made for fino (after its "offer" event), or an empty array. */
  rxOffer(fino: number): Uint8Array {
    this.offerBuf ??= new Uint8Array(C.ESCP_OFFER_MAX); // what libescp packs at most
    const n = this.check(this.lib.escp_rx_offer(this.h, fino, this.offerBuf, this.offerBuf.length), `resume offer of file #${fino}`);
    return this.offerBuf.slice(0, n);
  }

  /** The sender's answer to fino's offer: take the held blocks, or start the file over. */
  rxDecide(fino: number, accept: boolean): void {
    this.check(this.lib.escp_rx_file_decide(this.h, fino, accept ? 1 : 0), `resume decision for file #${fino}`);
  }

  rxFileExpect(fino: number, blocks: number, aborted: boolean, senderDigest?: Uint8Array): void {
    const d = senderDigest && senderDigest.length === 32 ? senderDigest : null;
    const st = this.lib.escp_rx_file_expect(this.h, fino, blocks, aborted ? C.ESCP_XF_ABORTED : 0, d);
    if (st === C.ESCP_E_PROTO)
      throw new EscpError("E_PROTOCOL", `completion of file #${fino} names ${blocks} blocks, not the blocks its announced size implies`);
    this.check(st, `expect file #${fino}`);
  }

  /** Send one control message. The peer gone (its end closed or reset) is the same error a
   * reader sees: `peer closed the control stream …` (E_TIMEOUT, stream 0); callers put the
   * peer's name in front (peerClosedSend). */
  ctlSend(msg: Uint8Array): void {
    const st = this.lib.escp_ctl_send(this.h, msg, msg.length);
    if (st === C.ESCP_E_CLOSED) throw new EscpError("E_TIMEOUT", PEER_CLOSED_CONTROL, { stream: 0 });
    this.check(st, "send control message");
  }

  /** Next control message, or null when none is queued. A view of a buffer the next call
   *  overwrites: decode it before asking again (decodeControl copies what it keeps). */
  ctlRecv(): Uint8Array | null {
    const n = this.check(this.lib.escp_ctl_recv(this.h, this.ctlBuf, this.ctlBuf.length), "receive control message");
    return n === 0 ? null : this.ctlBuf.subarray(0, n);
  }

  pollEvents(): NativeEvent[] {
    const out: NativeEvent[] = [];
    for (;;) {
      const n = this.check(this.lib.escp_event_poll(this.h, this.eventBuf, EVENT_BATCH), "poll events");
      if (n === 0) return out;
      out.push(...decodeEvents(this.eventBuf, n));
      if (n < EVENT_BATCH) return out;
    }
  }

  /** One pass over both rings, control messages first (a peer's last words explain the
   * stream events after them); onControl gets a view valid only during the call. Returns
   * whether anything was found. */
  drain(onControl: (msg: Uint8Array) => void, onEvent: (ev: NativeEvent) => void): boolean {
    let busy = false;
    for (let m = this.ctlRecv(); m; m = this.ctlRecv()) {
      busy = true;
      onControl(m);
    }
    for (const ev of this.pollEvents()) {
      busy = true;
      onEvent(ev);
    }
    return busy;
  }

  stats(): {
    bytesFile: number;
    bytesWire: number;
    blocks: number;
    filesDone: number;
    streamsUp: number;
    rejected: number;
    bytesChecked: number;
    reconnects: number;
    reconnecting: number;
  } {
    this.lib.escp_stats_read(this.h, this.statsBuf, C.ESCP_S_COUNT);
    const s = this.statsBuf;
    return {
      bytesFile: Number(s[C.ESCP_S_BYTES_FILE]),
      bytesWire: Number(s[C.ESCP_S_BYTES_WIRE]),
      blocks: Number(s[C.ESCP_S_BLOCKS]),
      filesDone: Number(s[C.ESCP_S_FILES_DONE]),
      streamsUp: Number(s[C.ESCP_S_STREAMS_UP]),
      rejected: Number(s[C.ESCP_S_FRAMES_REJECTED]),
      bytesChecked: Number(s[C.ESCP_S_BYTES_CHECKED]),
      reconnects: Number(s[C.ESCP_S_RECONNECTS]),
      reconnecting: Number(s[C.ESCP_S_RECONNECTING]),
    };
  }

  /** The peer does not re-establish streams (an older minor version): turn reconnect off.
   * Valid until start, even after listen/connect. */
  noRetries(): void {
    const st = this.lib.escp_param_set(this.h, C.ESCP_P_RETRIES, 0);
    if (st !== C.ESCP_OK) throw new EscpError("E_INTERNAL", `--retries: ${this.detail()}`);
  }

  /** Sender: the receiver takes ZERO frames (2.4 or later): send holes as such. Until start. */
  sendHoles(): void {
    const st = this.lib.escp_param_set(this.h, C.ESCP_P_HOLES, 1);
    if (st !== C.ESCP_OK) throw new EscpError("E_INTERNAL", `holes: ${this.detail()}`);
  }

  /** Pin the stream threads to these CPUs (bit i of byte i/8 = CPU i; numa.ts picks them).
   * Before start. False: refused, none of them may be used by this process (taskset, cgroup). */
  setAffinity(mask: Uint8Array): boolean {
    const st = this.lib.escp_affinity_set(this.h, mask, mask.length);
    if (st === C.ESCP_E_INVAL && mask.length > 0 && mask.length <= C.ESCP_AFFINITY_MAX) return false;
    if (st !== C.ESCP_OK) throw new EscpError("E_INTERNAL", `--numa: ${statusName(st)}: ${this.detail()}`);
    return true;
  }

  /** stop → join → free; safe to call more than once. */
  close(): void {
    if (this.handle === null) return;
    live.delete(this);
    this.lib.escp_session_stop(this.handle);
    this.lib.escp_session_join(this.handle);
    this.lib.escp_session_free(this.handle);
    this.handle = null;
  }
}
