// Plain-object codec for escp's control messages over the flatc-generated code (schema/escp.fbs):
// SessionInit/SessionReply here, the control Envelope in envelope-codec.ts. Decoders verify the
// buffer structurally and semantically and throw only EscpError (E_PROTOCOL / E_VERSION).
import * as flatbuffers from "flatbuffers";
import { EscpError } from "../errors/escp-error.ts";
import { ESCP_PROTOCOL_VERSION } from "../native/symbols.ts";
import { SESSION_INIT, SESSION_REPLY, VERSION_ONLY, verifyBuffer } from "./fb-verify.ts";
import { guarded, text, validateSessionInit, validateSessionReply } from "./message-checks.ts";
import { IoEngine } from "./schema/generated/escp/control/io-engine.ts";
import { ReplyError } from "./schema/generated/escp/control/reply-error.ts";
import { Role } from "./schema/generated/escp/control/role.ts";
import { SessionInit as FbSessionInit } from "./schema/generated/escp/control/session-init.ts";
import { SessionReply as FbSessionReply } from "./schema/generated/escp/control/session-reply.ts";
import { SourceName } from "./schema/generated/escp/control/source-name.ts";

export { decodeControl, encodeControl, MAX_CONTROL_BYTES } from "./envelope-codec.ts";
export * from "./third-party-codec.ts";

/** The session-init major is the data-plane protocol version of native/include/escp.h (one
 *  number, kept in C): peers of another major cannot talk on the data streams either. */
export const PROTOCOL_MAJOR = ESCP_PROTOCOL_VERSION;
/** 1: pull (a spawned Sender with source_paths; the reply's sources and totals).
 *  2: resume (SessionInit.resume, FileEntry.ino, ResumeOffer/ResumeDecision), FileResult.path
 *     and .resumed, SessionInit.retries (not acted on) and FileReports.
 *  3: reconnect: SessionInit.retries is honoured (ACK frames on data streams, docs/protocol.md §4).
 *  4: DATA frames flagged ZERO stand for blocks in a hole of a sparse source (§4); a non-fatal
 *     Error with code E_NOTICE is a notice.
 *  5: archive mode (SessionInit.archive/.xattrs; FileEntry kinds symlink and hardlink, uid/gid,
 *     nlink, target, linkTo, xattrs).
 *  6: bundles (SessionInit.bundleMax; DATA frames flagged BUNDLE carry many small files, each
 *     answered in a BundleResult).
 *  7: streams (FileEntry.stream: a file of unknown length, stdin; its FileDone.bytes is its
 *     length). */
export const PROTOCOL_MINOR = 8;
/** Byte ranges (--shard) need a receiving peer of at least this minor. */
export const RANGE_MINOR = 8;
/** A stream (`escp - host:path`) needs a receiving peer of at least this minor. */
export const STREAM_MINOR = 7;
/** Bundles are used only when both peers speak at least this minor (else files travel one by one). */
export const BUNDLE_MINOR = 6;
/** -a and --xattrs need a peer of at least this minor. */
export const ARCHIVE_MINOR = 5;
/** A non-fatal Error with this code is a notice from a sending server (a dangling link it
 * skipped), not a failure: sent to initiators of minor NOTICE_MINOR or later. */
export const NOTICE_CODE = "E_NOTICE";
export const NOTICE_MINOR = 4;
/** SessionInit/SessionReply travel as one base64 line of at most 4 MiB (handshake.ts). */
export const MAX_HANDSHAKE_BYTES = 3 * 1024 * 1024;

export interface SessionInit {
  versionMajor: number;
  versionMinor: number;
  sessionId: Uint8Array /*16*/;
  key: Uint8Array /*32*/;
  role: "sender" | "receiver" /* role the SPAWNED side plays */;
  threads: number;
  blockSize: number;
  ioEngine: "posix" | "dummy";
  checksum: boolean;
  direct: boolean;
  sparse: boolean;
  preserve: boolean;
  compress: boolean;
  verbose: boolean;
  timeoutMs: number;
  portStart: number;
  portRange: number;
  ipMode: 0 | 4 | 6;
  rateLimit: number;
  logfile: string;
  destPath: string;
  recursive: boolean;
  filelist: boolean;
  sources: { name: string; isDir: boolean }[] /* top-level sources, for scp naming */;
  compressLevel: number /* zstd level of DATA payloads, 0 = off */;
  profile: boolean /* send ProfileData back */;
  sourcePaths: string[] /* role "sender" (a pull): what the spawned side sends, as the user typed it */;
  connectPort: number /* 0: the spawned side listens; else it connects to the initiator's address at this port (--local-listen) */;
  helloOnAccept: boolean /* -3 relay, host1: listen but answer challenges */;
  awaitGo: boolean /* -3 --direct, host1 */;
  report: boolean /* send a SessionSummary at the end */;
  resume: 0 | 1 | 2 /* the receiver: 0 no journal, 1 journal but replace old partials (--no-resume), 2 journal and resume */;
  wantPaths: boolean /* the sink names each verified file's destination-relative path in FileResult.path */;
  retries: number /* times a data stream may be re-established before the session fails */;
  fileReports: boolean /* with report: also send FileReports during the session (-3 --manifest/--json) */;
  archive: boolean /* -a: links as links, hard links kept, owner and group */;
  xattrs: boolean /* --xattrs */;
  bundleMax: number /* minor >= 6, 0 = off: files of at most this many bytes inside directories may travel in bundles */;
}
export interface SessionReply {
  versionMajor: number;
  versionMinor: number;
  port: number;
  address: string;
  error?: { code: string; message: string };
  /** A spawned sender: the top-level names it will send, and what its walk found. */
  sources: { name: string; isDir: boolean }[];
  totalFiles: number;
  totalBytes: number;
}
export type EntryKind = "file" | "dir" | "symlink" | "hardlink";
export interface FileEntry {
  fino: number;
  kind: EntryKind;
  name: string /* relative, '/'-separated */;
  size: number;
  mode: number;
  mtimeSec: number;
  mtimeNsec: number;
  atimeSec: number;
  atimeNsec: number;
  dst?: string /* per-file destination from --filelist pairs */;
  ino: number /* the source's inode number (0 = unknown): identifies it for resume */;
  /** -a: owner, group, link count (files: > 1 = later hardlink entries may name it). */
  uid?: number;
  gid?: number;
  nlink?: number;
  target?: string /* symlink: its contents */;
  linkTo?: number /* hardlink: the fino of the earlier file */;
  xattrs?: Uint8Array /* --xattrs: packed by libescp */;
  stream?: true /* a file of unknown length (size 0 here): its FileDone.bytes is its length */;
  /** --shard (minor >= 8): only these bytes of the file are sent; size stays the whole file's. */
  range?: { offset: number; length: number };
}
export interface FileDoneMsg {
  type: "fileDone";
  fino: number;
  blocks: number;
  bytes: number;
  code: string /* "" ok, else an ErrorCode */;
  errno: number;
  message: string;
  digest: Uint8Array /* 32 or empty */;
}
export interface FileResultMsg {
  type: "fileResult";
  fino: number;
  code: string;
  errno: number;
  message: string;
  bytes: number;
  digest: Uint8Array;
  path: string /* "" unless asked for (SessionInit.wantPaths): where it landed, relative to the destination root */;
  resumed: number /* of bytes: held from an earlier run, not sent again */;
  /** A range (minor >= 8): this session completed and named the file, with its whole BLAKE3. */
  committed?: boolean;
  fileDigest?: Uint8Array /* 32 bytes when committed */;
  subtrees?: Uint8Array /* the range's subtrees, 48 bytes each (native RangeOutcome.packed) */;
}
/** The sink, for a file of more than one block in a resume session: what it holds of it. */
export interface ResumeOfferMsg {
  type: "resumeOffer";
  fino: number;
  code: string /* non-empty: will not take it, send no data */;
  message: string;
  held: Uint8Array /* libescp's packed list of held blocks (docs/protocol.md §6), empty = none */;
  notice: string;
}
/** The source's answer to an offer that held something. */
export interface ResumeDecisionMsg {
  type: "resumeDecision";
  fino: number;
  accept: boolean;
  notice: string;
}
/** The sink's verdict on every file of one bundle, in record order (minor >= 6). */
export interface BundleFailure {
  index: number;
  code: string;
  errno: number;
  message: string;
}
export interface BundleResultMsg {
  type: "bundleResult";
  bundle: number;
  count: number;
  digests: Uint8Array /* 32 bytes per record (zero for a failed one), or empty with checksums off */;
  failures: BundleFailure[] /* by increasing index */;
}
export { MAX_BATCH, WINDOW_FILES } from "./message-checks.ts";
export type ControlMsg =
  | { type: "fileList"; files: FileEntry[]; last: boolean }
  | FileDoneMsg
  | FileResultMsg
  | { type: "fileDones"; items: FileDoneMsg[] }
  | { type: "fileResults"; items: FileResultMsg[] }
  | { type: "resumeOffers"; items: ResumeOfferMsg[] }
  | { type: "resumeDecisions"; items: ResumeDecisionMsg[] }
  | { type: "bundleResults"; items: BundleResultMsg[] }
  | { type: "error"; code: string; message: string; fatal: boolean; fino: number; path: string }
  | { type: "sessionDone"; files: number; bytes: number }
  | { type: "sessionDoneAck"; filesOk: number; filesFailed: number }
  | { type: "keepalive" }
  | {
      type: "profileData";
      host: string;
      streams: number;
      startNs: number;
      endNs: number;
      dropped: number;
      totals: Uint8Array;
      spans: Uint8Array;
      last: boolean;
    };

const ROLES = ["sender", "receiver"] as const;
const ENGINES = ["posix", "dummy"] as const;

function versionCheck(major: number, minor: number, peer: string, self: string): void {
  if (major !== PROTOCOL_MAJOR) {
    throw new EscpError("E_VERSION", `protocol version mismatch: ${peer} speaks ${major}.${minor}, ${self} speaks ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}`);
  }
}

function finish(b: flatbuffers.Builder, root: flatbuffers.Offset): Uint8Array {
  b.finish(root, "ESC1");
  return b.asUint8Array().slice();
}

export function encodeSessionInit(m: SessionInit): Uint8Array {
  validateSessionInit(m, "E_INTERNAL");
  const b = new flatbuffers.Builder(512);
  const sid = FbSessionInit.createSessionIdVector(b, m.sessionId);
  const key = FbSessionInit.createKeyVector(b, m.key);
  const logfile = b.createString(m.logfile);
  const dest = b.createString(m.destPath);
  const sources = FbSessionInit.createSourcesVector(b, sourceNames(b, m.sources));
  const sourcePaths = FbSessionInit.createSourcePathsVector(
    b,
    m.sourcePaths.map((p) => b.createString(p)),
  );
  const S = FbSessionInit;
  S.startSessionInit(b);
  S.addVersionMajor(b, m.versionMajor);
  S.addVersionMinor(b, m.versionMinor);
  S.addSessionId(b, sid);
  S.addKey(b, key);
  S.addRole(b, m.role === "sender" ? Role.Sender : Role.Receiver);
  S.addThreads(b, m.threads);
  S.addBlockSize(b, BigInt(m.blockSize));
  S.addIoEngine(b, m.ioEngine === "posix" ? IoEngine.Posix : IoEngine.Dummy);
  S.addChecksum(b, m.checksum);
  S.addDirect(b, m.direct);
  S.addSparse(b, m.sparse);
  S.addPreserve(b, m.preserve);
  S.addCompress(b, m.compress);
  S.addVerbose(b, m.verbose);
  S.addTimeoutMs(b, BigInt(m.timeoutMs));
  S.addPortStart(b, m.portStart);
  S.addPortRange(b, m.portRange);
  S.addIpMode(b, m.ipMode);
  S.addRateLimit(b, BigInt(m.rateLimit));
  S.addLogfile(b, logfile);
  S.addDestPath(b, dest);
  S.addRecursive(b, m.recursive);
  S.addFilelist(b, m.filelist);
  S.addSources(b, sources);
  S.addCompressLevel(b, m.compressLevel);
  S.addProfile(b, m.profile);
  S.addSourcePaths(b, sourcePaths);
  S.addConnectPort(b, m.connectPort);
  S.addHelloOnAccept(b, m.helloOnAccept);
  S.addAwaitGo(b, m.awaitGo);
  S.addReport(b, m.report);
  S.addResume(b, m.resume);
  S.addWantPaths(b, m.wantPaths);
  S.addRetries(b, m.retries);
  S.addFileReports(b, m.fileReports);
  S.addArchive(b, m.archive);
  S.addXattrs(b, m.xattrs);
  if (m.bundleMax > 0) S.addBundleMax(b, m.bundleMax);
  return finish(b, S.endSessionInit(b));
}

function sourceNames(b: flatbuffers.Builder, list: { name: string; isDir: boolean }[]): flatbuffers.Offset[] {
  return list.map((s) => SourceName.createSourceName(b, b.createString(s.name), s.isDir));
}

function readSources(t: { sourcesLength(): number; sources(i: number): SourceName | null }, msg: string): SessionInit["sources"] {
  const out: SessionInit["sources"] = [];
  for (let i = 0; i < t.sourcesLength(); i++) {
    const s = t.sources(i);
    if (s === null) throw new EscpError("E_PROTOCOL", `received ${msg}: sources[${i}] is missing`);
    out.push({ name: text(s.name(flatbuffers.Encoding.UTF8_BYTES), `sources[${i}].name`), isDir: s.isDir() });
  }
  return out;
}

function readSourcePaths(t: FbSessionInit): string[] {
  const out: string[] = [];
  for (let i = 0; i < t.sourcePathsLength(); i++) out.push(text(t.sourcePaths(i, flatbuffers.Encoding.UTF8_BYTES), `sourcePaths[${i}]`));
  return out;
}

function pick<T>(table: readonly T[], v: number, field: string): T {
  const out = table[v];
  if (out === undefined) throw new EscpError("E_PROTOCOL", `received SessionInit: ${field} has unknown value ${v}`);
  return out;
}

export function decodeSessionInit(buf: Uint8Array): SessionInit {
  return guarded("SessionInit", () => {
    verifyBuffer(buf, VERSION_ONLY, MAX_HANDSHAKE_BYTES);
    const t = FbSessionInit.getRootAsSessionInit(new flatbuffers.ByteBuffer(buf));
    versionCheck(t.versionMajor(), t.versionMinor(), "sender", "receiver");
    verifyBuffer(buf, SESSION_INIT, MAX_HANDSHAKE_BYTES);
    const m: SessionInit = {
      versionMajor: t.versionMajor(),
      versionMinor: t.versionMinor(),
      sessionId: (t.sessionIdArray() ?? new Uint8Array()).slice(),
      key: (t.keyArray() ?? new Uint8Array()).slice(),
      role: pick(ROLES, t.role(), "role"),
      threads: t.threads(),
      blockSize: Number(t.blockSize()),
      ioEngine: pick(ENGINES, t.ioEngine(), "ioEngine"),
      checksum: t.checksum(),
      direct: t.direct(),
      sparse: t.sparse(),
      preserve: t.preserve(),
      compress: t.compress(),
      verbose: t.verbose(),
      timeoutMs: Number(t.timeoutMs()),
      portStart: t.portStart(),
      portRange: t.portRange(),
      ipMode: t.ipMode() as SessionInit["ipMode"],
      rateLimit: Number(t.rateLimit()),
      logfile: text(t.logfile(flatbuffers.Encoding.UTF8_BYTES), "logfile"),
      destPath: text(t.destPath(flatbuffers.Encoding.UTF8_BYTES), "destPath"),
      recursive: t.recursive(),
      filelist: t.filelist(),
      sources: readSources(t, "SessionInit"),
      compressLevel: t.compressLevel(),
      profile: t.profile(),
      sourcePaths: readSourcePaths(t),
      connectPort: t.connectPort(),
      helloOnAccept: t.helloOnAccept(),
      awaitGo: t.awaitGo(),
      report: t.report(),
      resume: t.resume() as SessionInit["resume"],
      wantPaths: t.wantPaths(),
      retries: t.retries(),
      fileReports: t.fileReports(),
      archive: t.archive(),
      xattrs: t.xattrs(),
      bundleMax: t.bundleMax(),
    };
    validateSessionInit(m, "E_PROTOCOL");
    return m;
  });
}

export function encodeSessionReply(m: SessionReply): Uint8Array {
  validateSessionReply(m, "E_INTERNAL");
  const b = new flatbuffers.Builder(128);
  const address = b.createString(m.address);
  const err = m.error === undefined ? 0 : ReplyError.createReplyError(b, b.createString(m.error.code), b.createString(m.error.message));
  const sources = FbSessionReply.createSourcesVector(b, sourceNames(b, m.sources));
  FbSessionReply.startSessionReply(b);
  FbSessionReply.addVersionMajor(b, m.versionMajor);
  FbSessionReply.addVersionMinor(b, m.versionMinor);
  FbSessionReply.addPort(b, m.port);
  FbSessionReply.addAddress(b, address);
  if (err !== 0) FbSessionReply.addError(b, err);
  FbSessionReply.addSources(b, sources);
  FbSessionReply.addTotalFiles(b, BigInt(m.totalFiles));
  FbSessionReply.addTotalBytes(b, BigInt(m.totalBytes));
  return finish(b, FbSessionReply.endSessionReply(b));
}

/**
 * Decode the spawned side's reply. A reply carrying an error is returned even when its major
 * version differs (the peer is telling us why it refused); otherwise a major mismatch is E_VERSION.
 */
export function decodeSessionReply(buf: Uint8Array): SessionReply {
  return guarded("SessionReply", () => {
    verifyBuffer(buf, SESSION_REPLY, MAX_HANDSHAKE_BYTES);
    const t = FbSessionReply.getRootAsSessionReply(new flatbuffers.ByteBuffer(buf));
    const e = t.error();
    const m: SessionReply = {
      versionMajor: t.versionMajor(),
      versionMinor: t.versionMinor(),
      port: t.port(),
      address: text(t.address(flatbuffers.Encoding.UTF8_BYTES), "address"),
      sources: readSources(t, "SessionReply"),
      totalFiles: Number(t.totalFiles()),
      totalBytes: Number(t.totalBytes()),
    };
    if (e !== null) {
      m.error = {
        code: text(e.code(flatbuffers.Encoding.UTF8_BYTES), "error.code"),
        message: text(e.message(flatbuffers.Encoding.UTF8_BYTES), "error.message"),
      };
    }
    if (m.error === undefined) versionCheck(m.versionMajor, m.versionMinor, "receiver", "sender");
    validateSessionReply(m, "E_PROTOCOL");
    return m;
  });
}
