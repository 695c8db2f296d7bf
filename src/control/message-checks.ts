// Semantic validation of control messages as plain objects (ranges, lengths, enums, UTF-8),
// shared by encoders (a bug here is E_INTERNAL) and decoders (a bad peer is E_PROTOCOL),
// so we never send what the peer would reject. Also the small decode helpers both codecs use.
import { EscpError } from "../errors/escp-error.ts";
import {
  ESCP_BUNDLE_FILE_MAX,
  ESCP_BUNDLE_FILES_MAX,
  ESCP_DIGEST_LEN,
  ESCP_MAX_FILE_SIZE,
  ESCP_OFFER_MAX,
  ESCP_RETRIES_MAX,
  ESCP_XATTRS_MAX,
} from "../native/symbols.ts";
import type { BundleResultMsg, ControlMsg, FileEntry, ResumeDecisionMsg, ResumeOfferMsg, SessionInit, SessionReply } from "./messages.ts";

/** Most FileDone/FileResult items in one batch (each ≈ 100 bytes: far below the frame cap). */
export const MAX_BATCH = 4096;
/** Files a sender may have announced without the receiver's verdict. The sender keeps to it;
 * the receiver enforces it (a sender going past it is E_PROTOCOL), bounding its memory. */
export const WINDOW_FILES = 4096;
/** Paths (or patterns) one pull may ask for: bounds what a client makes a server expand. */
export const MAX_SOURCE_PATHS = 10_000;
/** --retries: reconnect attempts in a row per data stream, at most (libescp's bound). */
export const MAX_RETRIES = ESCP_RETRIES_MAX;
/** Bytes of a ResumeOffer's packed `held` list (what libescp packs at most). */
export const MAX_HELD_BYTES = ESCP_OFFER_MAX;

/** Kinds of FileEntry (the wire's FileKind, in its order). */
export const ENTRY_KINDS = ["file", "dir", "symlink", "hardlink"] as const;
/** Bytes of a symbolic link's target (PATH_MAX less its NUL; libescp's bound too). */
export const MAX_LINK_TARGET = 4095;

export type CheckCode = "E_PROTOCOL" | "E_INTERNAL";

const MIN_BLOCK = 64 * 1024;
const MAX_BLOCK = 64 * 1024 * 1024;
const MAX_THREADS = 64;
const ERROR_CODE_RE = /^E_[A-Z0-9_]{1,40}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Check {
  constructor(
    readonly code: CheckCode,
    readonly msg: string,
  ) {}

  bad(field: string, why: string): never {
    const verb = this.code === "E_PROTOCOL" ? "received" : "cannot encode";
    throw new EscpError(this.code, `${verb} ${this.msg}: ${field} ${why}`);
  }

  int(field: string, v: unknown, min: number, max: number): void {
    if (typeof v !== "number" || !Number.isSafeInteger(v)) this.bad(field, `is not a safe integer (${String(v)})`);
    if (v < min || v > max) this.bad(field, `is ${v}, outside ${min}..${max}`);
  }

  uint(field: string, v: unknown): void {
    this.int(field, v, 0, Number.MAX_SAFE_INTEGER);
  }

  bool(field: string, v: unknown): void {
    if (typeof v !== "boolean") this.bad(field, "is not a boolean");
  }

  str(field: string, v: unknown, opts: { nonEmpty?: boolean; noNul?: boolean } = {}): void {
    if (typeof v !== "string") return this.bad(field, "is not a string");
    if (!v.isWellFormed()) this.bad(field, "is not well-formed Unicode");
    if (opts.nonEmpty && v.length === 0) this.bad(field, "is empty");
    if (opts.noNul && v.includes("\0")) this.bad(field, "contains a NUL byte");
  }

  bytes(field: string, v: unknown, lengths: readonly number[]): void {
    if (!(v instanceof Uint8Array)) return this.bad(field, "is not a byte array");
    if (!lengths.includes(v.length)) this.bad(field, `has ${v.length} bytes, expected ${lengths.join(" or ")}`);
  }

  oneOf(field: string, v: unknown, allowed: readonly unknown[]): void {
    if (!allowed.includes(v)) this.bad(field, `has unknown value ${JSON.stringify(v)}`);
  }

  errorCode(field: string, v: unknown, allowEmpty: boolean): void {
    this.str(field, v);
    if (allowEmpty && v === "") return;
    // Format only, not membership: codes are append-only and a newer peer may send new ones.
    if (!ERROR_CODE_RE.test(v as string)) this.bad(field, `is not an error code (${JSON.stringify(v)})`);
  }
}

export function validateSessionInit(m: SessionInit, code: CheckCode): void {
  const c = new Check(code, "SessionInit");
  c.int("versionMajor", m.versionMajor, 0, 0x7fffffff);
  c.int("versionMinor", m.versionMinor, 0, 0x7fffffff);
  c.bytes("sessionId", m.sessionId, [16]);
  c.bytes("key", m.key, [32]);
  c.oneOf("role", m.role, ["sender", "receiver"]);
  c.int("threads", m.threads, 1, MAX_THREADS);
  c.int("blockSize", m.blockSize, MIN_BLOCK, MAX_BLOCK);
  if ((m.blockSize & (m.blockSize - 1)) !== 0) c.bad("blockSize", `${m.blockSize} is not a power of two`);
  c.oneOf("ioEngine", m.ioEngine, ["posix", "dummy"]);
  for (const f of ["checksum", "direct", "sparse", "preserve", "compress", "verbose", "recursive", "profile"] as const) {
    c.bool(f, m[f]);
  }
  c.int("compressLevel", m.compressLevel, 0, 19);
  c.uint("timeoutMs", m.timeoutMs);
  c.int("portStart", m.portStart, 0, 65535);
  c.int("portRange", m.portRange, 1, 65536);
  if (m.portStart > 0 && m.portStart + m.portRange - 1 > 65535) c.bad("portRange", "runs past port 65535");
  c.oneOf("ipMode", m.ipMode, [0, 4, 6]);
  c.uint("rateLimit", m.rateLimit);
  c.str("logfile", m.logfile, { noNul: true });
  c.str("destPath", m.destPath, { noNul: true });
  if (!Array.isArray(m.sources)) c.bad("sources", "is not a list");
  checkSources(c, m.sources);
  if (!Array.isArray(m.sourcePaths)) c.bad("sourcePaths", "is not a list");
  if (m.sourcePaths.length > MAX_SOURCE_PATHS) c.bad("sourcePaths", `has ${m.sourcePaths.length} entries, over ${MAX_SOURCE_PATHS}`);
  m.sourcePaths.forEach((p, i) => c.str(`sourcePaths[${i}]`, p, { nonEmpty: true, noNul: true }));
  if (m.role === "sender" && m.sourcePaths.length === 0) c.bad("sourcePaths", "is empty for a spawned sender");
  c.int("connectPort", m.connectPort, 0, 65535);
  for (const f of ["helloOnAccept", "awaitGo", "report", "wantPaths", "fileReports", "archive", "xattrs"] as const) c.bool(f, m[f]);
  c.oneOf("resume", m.resume, [0, 1, 2]);
  c.int("retries", m.retries, 0, MAX_RETRIES);
  c.int("bundleMax", m.bundleMax, 0, ESCP_BUNDLE_FILE_MAX);
}

function checkSources(c: Check, sources: { name: string; isDir: boolean }[]): void {
  if (!Array.isArray(sources)) c.bad("sources", "is not a list");
  sources.forEach((s, i) => {
    c.str(`sources[${i}].name`, s.name, { nonEmpty: true, noNul: true });
    c.bool(`sources[${i}].isDir`, s.isDir);
  });
}

export function validateSessionReply(m: SessionReply, code: CheckCode): void {
  const c = new Check(code, "SessionReply");
  c.int("versionMajor", m.versionMajor, 0, 0x7fffffff);
  c.int("versionMinor", m.versionMinor, 0, 0x7fffffff);
  c.int("port", m.port, 0, 65535); // 0: an error, or a server that connects (--local-listen)
  c.str("address", m.address, { noNul: true });
  if (m.error !== undefined) {
    c.errorCode("error.code", m.error.code, false);
    c.str("error.message", m.error.message);
  }
  checkSources(c, m.sources);
  c.uint("totalFiles", m.totalFiles);
  c.uint("totalBytes", m.totalBytes);
}

function validateEntry(c: Check, f: FileEntry, at: string): void {
  c.uint(`${at}.fino`, f.fino);
  c.oneOf(`${at}.kind`, f.kind, ENTRY_KINDS);
  c.str(`${at}.name`, f.name, { nonEmpty: true, noNul: true });
  c.int(`${at}.size`, f.size, 0, ESCP_MAX_FILE_SIZE);
  c.int(`${at}.mode`, f.mode, 0, 0o177777);
  c.int(`${at}.mtimeSec`, f.mtimeSec, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  c.int(`${at}.mtimeNsec`, f.mtimeNsec, 0, 999_999_999);
  c.int(`${at}.atimeSec`, f.atimeSec, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  c.int(`${at}.atimeNsec`, f.atimeNsec, 0, 999_999_999);
  if (f.dst !== undefined) c.str(`${at}.dst`, f.dst, { nonEmpty: true, noNul: true });
  c.uint(`${at}.ino`, f.ino);
  for (const k of ["uid", "gid", "nlink"] as const) if (f[k] !== undefined) c.int(`${at}.${k}`, f[k], 0, 0xffffffff);
  if ((f.kind === "symlink") !== (f.target !== undefined)) c.bad(`${at}.target`, f.kind === "symlink" ? "is missing for a symlink" : `is set for a ${f.kind}`);
  if (f.target !== undefined) {
    c.str(`${at}.target`, f.target, { nonEmpty: true, noNul: true });
    if (Buffer.byteLength(f.target, "utf8") > MAX_LINK_TARGET) c.bad(`${at}.target`, `is over ${MAX_LINK_TARGET} bytes`);
  }
  if ((f.kind === "hardlink") !== (f.linkTo !== undefined))
    c.bad(`${at}.linkTo`, f.kind === "hardlink" ? "is missing for a hard link" : `is set for a ${f.kind}`);
  if (f.linkTo !== undefined) c.int(`${at}.linkTo`, f.linkTo, 1, f.fino - 1); // an earlier file
  if (f.stream !== undefined && (f.stream !== true || f.kind !== "file" || f.size !== 0))
    c.bad(`${at}.stream`, `is set for a ${f.kind} of ${f.size} bytes (only a file announced with size 0 may be a stream)`);
  if ((f.kind === "symlink" || f.kind === "hardlink") && f.size !== 0) c.bad(`${at}.size`, `is ${f.size} for a ${f.kind}`);
  if (f.range !== undefined) {
    c.uint(`${at}.range.offset`, f.range.offset);
    c.int(`${at}.range.length`, f.range.length, 1, ESCP_MAX_FILE_SIZE);
    if (f.kind !== "file" || f.stream !== undefined) c.bad(`${at}.range`, `is set for a ${f.stream ? "stream" : f.kind}`);
    else if (f.range.offset + f.range.length > f.size) c.bad(`${at}.range`, `${f.range.offset}+${f.range.length} runs past the file's ${f.size} bytes`);
  }
  if (f.xattrs !== undefined) {
    if (!(f.xattrs instanceof Uint8Array)) c.bad(`${at}.xattrs`, "is not a byte array");
    if (f.xattrs.length > ESCP_XATTRS_MAX) c.bad(`${at}.xattrs`, `has ${f.xattrs.length} bytes, over ${ESCP_XATTRS_MAX}`);
  }
}

const ITEM_TYPE = {
  fileDones: "fileDone",
  fileResults: "fileResult",
  resumeOffers: "resumeOffer",
  resumeDecisions: "resumeDecision",
  bundleResults: "bundleResult",
} as const;

/** A bundle's verdict: per-record digests, failures by increasing index. */
function validateBundleResult(c: Check, m: BundleResultMsg): void {
  c.int("bundle", m.bundle, 1, Number.MAX_SAFE_INTEGER);
  c.int("count", m.count, 1, ESCP_BUNDLE_FILES_MAX);
  c.bytes("digests", m.digests, [0, m.count * ESCP_DIGEST_LEN]);
  if (!Array.isArray(m.failures) || m.failures.length > m.count) c.bad("failures", `must be a list of at most ${m.count} entries`);
  let last = -1;
  for (const f of m.failures) {
    c.int("failures.index", f.index, last + 1, m.count - 1);
    last = f.index;
    c.errorCode("failures.code", f.code, false);
    c.int("failures.errno", f.errno, 0, 0x7fffffff);
    c.str("failures.message", f.message);
  }
}

function validateResume(c: Check, m: ResumeOfferMsg | ResumeDecisionMsg): void {
  c.uint("fino", m.fino);
  c.str("notice", m.notice);
  if (m.type === "resumeDecision") return c.bool("accept", m.accept);
  c.errorCode("code", m.code, true);
  c.str("message", m.message);
  if (!(m.held instanceof Uint8Array)) c.bad("held", "is not a byte array");
  if (m.held.length > MAX_HELD_BYTES) c.bad("held", `has ${m.held.length} bytes, over ${MAX_HELD_BYTES}`);
  if (m.code !== "" && m.held.length > 0) c.bad("held", "is not empty in a refusal");
}

/** Stages per stream in ProfileData totals (native ESCP_STG_COUNT) and spans per part. */
export const PROFILE_STAGES = 11;
export const MAX_PROFILE_SPANS = 32_768;

export function validateControl(m: ControlMsg, code: CheckCode): void {
  const c = new Check(code, `control message ${m.type}`);
  switch (m.type) {
    case "fileList":
      if (!Array.isArray(m.files)) c.bad("files", "is not a list");
      m.files.forEach((f, i) => validateEntry(c, f, `files[${i}]`));
      return c.bool("last", m.last);
    case "fileDones":
    case "fileResults":
    case "resumeOffers":
    case "resumeDecisions":
    case "bundleResults": {
      if (!Array.isArray(m.items) || m.items.length === 0 || m.items.length > MAX_BATCH) c.bad("items", `must hold 1..${MAX_BATCH} entries`);
      const want = ITEM_TYPE[m.type];
      for (const item of m.items) {
        if (item.type !== want) c.bad("items", `holds a ${String(item.type)}`);
        if (item.type === "resumeOffer" || item.type === "resumeDecision") validateResume(c, item);
        else if (item.type === "bundleResult") validateBundleResult(c, item);
        else validateControl(item, code);
      }
      return;
    }
    case "fileDone":
    case "fileResult":
      c.uint("fino", m.fino);
      if (m.type === "fileDone") c.uint("blocks", m.blocks);
      c.uint("bytes", m.bytes);
      c.errorCode("code", m.code, true);
      c.int("errno", m.errno, 0, 0x7fffffff);
      c.str("message", m.message);
      if (m.type === "fileResult") {
        c.str("path", m.path, { noNul: true });
        c.uint("resumed", m.resumed);
        if (m.resumed > m.bytes) c.bad("resumed", `is ${m.resumed}, more than the file's ${m.bytes} bytes`);
        if (m.fileDigest !== undefined) c.bytes("fileDigest", m.fileDigest, [32]);
        if (m.subtrees !== undefined && (m.subtrees.length % 48 !== 0 || m.subtrees.length > 128 * 48))
          c.bad("subtrees", `has ${m.subtrees.length} bytes (a multiple of 48, at most ${128 * 48})`);
      }
      return c.bytes("digest", m.digest, [0, 32]);
    case "error":
      c.errorCode("code", m.code, false);
      c.str("message", m.message);
      c.bool("fatal", m.fatal);
      c.uint("fino", m.fino);
      return c.str("path", m.path);
    case "sessionDone":
      c.uint("files", m.files);
      return c.uint("bytes", m.bytes);
    case "sessionDoneAck":
      c.uint("filesOk", m.filesOk);
      return c.uint("filesFailed", m.filesFailed);
    case "keepalive":
      return;
    case "profileData":
      c.str("host", m.host, { noNul: true });
      c.int("streams", m.streams, 1, MAX_THREADS);
      c.uint("startNs", m.startNs);
      c.uint("endNs", m.endNs);
      c.uint("dropped", m.dropped);
      c.bytes("totals", m.totals, [(m.streams + 1) * PROFILE_STAGES * 3 * 8]);
      if (m.spans.length % 24 !== 0 || m.spans.length > MAX_PROFILE_SPANS * 24)
        c.bad("spans", `${m.spans.length} bytes is not a whole number of at most ${MAX_PROFILE_SPANS} 24-byte spans`);
      return c.bool("last", m.last);
    default:
      c.bad("type", "is unknown");
  }
}

/** Decode a FlatBuffers string read as UTF8_BYTES; absent → "". Invalid UTF-8 is E_PROTOCOL. */
export function text(raw: string | Uint8Array | null, field: string): string {
  if (raw === null) return "";
  if (typeof raw === "string") return raw;
  try {
    return utf8.decode(raw);
  } catch {
    throw new EscpError("E_PROTOCOL", `received control message: ${field} is not valid UTF-8`);
  }
}

/** Run a decoder; anything but an EscpError (a runtime quirk on hostile bytes) becomes E_PROTOCOL. */
export function guarded<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof EscpError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new EscpError("E_PROTOCOL", `malformed ${what}: ${why}`, { cause: e });
  }
}
