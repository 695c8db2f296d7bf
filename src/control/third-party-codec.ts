// Codec for the session-channel messages of a third-party (-3) copy, where the initiator plays
// no data role: SessionGo / SessionGoReply (host1 of --direct: connect there, or listen for the
// relay), FileReports (each file's outcome as it is decided, with --manifest / --json) and
// SessionSummary (what became of every file, reported by the data source at the end).
import * as flatbuffers from "flatbuffers";
import { EscpError } from "../errors/escp-error.ts";
import { stringBytes } from "./batch-bytes.ts";
import { decodeResult, encodeResult } from "./envelope-codec.ts";
import { FILE_REPORTS, SESSION_GO, SESSION_GO_REPLY, SESSION_SUMMARY, verifyBuffer } from "./fb-verify.ts";
import { guarded, text, validateControl } from "./message-checks.ts";
import type { FileResultMsg } from "./messages.ts";
import { FileReports as FbReports } from "./schema/generated/escp/control/file-reports.ts";
import { ReplyError } from "./schema/generated/escp/control/reply-error.ts";
import { SessionGo as FbGo } from "./schema/generated/escp/control/session-go.ts";
import { SessionGoReply as FbGoReply } from "./schema/generated/escp/control/session-go-reply.ts";
import { SessionSummary as FbSummary } from "./schema/generated/escp/control/session-summary.ts";

const MAX_BYTES = 3 * 1024 * 1024; // one session-channel line (handshake.ts caps lines at 4 MiB)
/** Failures a summary names one by one (the rest are counted): bounds the line. */
export const MAX_SUMMARY_FAILURES = 1000;
/** Items in one FileReports line, at most. */
export const MAX_REPORT_ITEMS = 1000;
/** Encoded bytes the items of one FileReports line may take (base64 of it stays under the
 * 4 MiB line limit, and the whole buffer under MAX_BYTES). */
export const REPORT_ITEMS_BUDGET = 2 * 1024 * 1024;
const UTF8 = flatbuffers.Encoding.UTF8_BYTES;

export interface CodeMessage {
  code: string;
  message: string;
}
export interface SessionGo {
  connectAddress: string;
  connectPort: number;
}
export interface SessionGoReply {
  port: number;
  address: string;
  error?: CodeMessage;
}
export interface SessionSummary {
  filesOk: number;
  filesFailed: number;
  bytes: number;
  failures: CodeMessage[];
  moreFailures: number;
  error?: CodeMessage;
  /** Of bytes: already held by the receiver from an earlier run (resumed), not sent again. */
  bytesResumed: number;
}

function finish(b: flatbuffers.Builder, root: flatbuffers.Offset): Uint8Array {
  b.finish(root, "ESC1");
  return b.asUint8Array().slice();
}

function errorOf(b: flatbuffers.Builder, e: CodeMessage | undefined): flatbuffers.Offset {
  return e === undefined ? 0 : ReplyError.createReplyError(b, b.createString(e.code), b.createString(e.message));
}

function readError(e: ReplyError | null, field: string): CodeMessage | undefined {
  if (e === null) return undefined;
  const code = text(e.code(UTF8), `${field}.code`);
  if (!/^E_[A-Z0-9_]{1,40}$/.test(code)) throw new EscpError("E_PROTOCOL", `received ${field}: not an error code (${JSON.stringify(code)})`);
  return { code, message: text(e.message(UTF8), `${field}.message`) };
}

function port(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new EscpError("E_PROTOCOL", `received ${field}: port ${v} outside 0..65535`);
  return v;
}

export function encodeSessionGo(m: SessionGo): Uint8Array {
  const b = new flatbuffers.Builder(64);
  return finish(b, FbGo.createSessionGo(b, b.createString(m.connectAddress), m.connectPort));
}

export function decodeSessionGo(buf: Uint8Array): SessionGo {
  return guarded("SessionGo", () => {
    verifyBuffer(buf, SESSION_GO, MAX_BYTES);
    const t = FbGo.getRootAsSessionGo(new flatbuffers.ByteBuffer(buf));
    return { connectAddress: text(t.connectAddress(UTF8), "connectAddress"), connectPort: port(t.connectPort(), "SessionGo") };
  });
}

export function encodeSessionGoReply(m: SessionGoReply): Uint8Array {
  const b = new flatbuffers.Builder(64);
  const address = b.createString(m.address);
  const err = errorOf(b, m.error);
  FbGoReply.startSessionGoReply(b);
  FbGoReply.addPort(b, m.port);
  FbGoReply.addAddress(b, address);
  if (err !== 0) FbGoReply.addError(b, err);
  return finish(b, FbGoReply.endSessionGoReply(b));
}

export function decodeSessionGoReply(buf: Uint8Array): SessionGoReply {
  return guarded("SessionGoReply", () => {
    verifyBuffer(buf, SESSION_GO_REPLY, MAX_BYTES);
    const t = FbGoReply.getRootAsSessionGoReply(new flatbuffers.ByteBuffer(buf));
    const error = readError(t.error(), "SessionGoReply.error");
    return { port: port(t.port(), "SessionGoReply"), address: text(t.address(UTF8), "address"), ...(error ? { error } : {}) };
  });
}

export function encodeSessionSummary(m: SessionSummary): Uint8Array {
  const b = new flatbuffers.Builder(256);
  const failures = FbSummary.createFailuresVector(
    b,
    m.failures.slice(0, MAX_SUMMARY_FAILURES).map((f) => errorOf(b, f)),
  );
  const err = errorOf(b, m.error);
  FbSummary.startSessionSummary(b);
  FbSummary.addFilesOk(b, BigInt(m.filesOk));
  FbSummary.addFilesFailed(b, BigInt(m.filesFailed));
  FbSummary.addBytes(b, BigInt(m.bytes));
  FbSummary.addFailures(b, failures);
  FbSummary.addMoreFailures(b, BigInt(m.moreFailures + Math.max(0, m.failures.length - MAX_SUMMARY_FAILURES)));
  if (err !== 0) FbSummary.addError(b, err);
  FbSummary.addBytesResumed(b, BigInt(m.bytesResumed));
  return finish(b, FbSummary.endSessionSummary(b));
}

function count(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EscpError("E_PROTOCOL", `received SessionSummary: ${field} ${v} is too large`);
  return Number(v);
}

export function decodeSessionSummary(buf: Uint8Array): SessionSummary {
  return guarded("SessionSummary", () => {
    verifyBuffer(buf, SESSION_SUMMARY, MAX_BYTES);
    const t = FbSummary.getRootAsSessionSummary(new flatbuffers.ByteBuffer(buf));
    const n = t.failuresLength();
    if (n > MAX_SUMMARY_FAILURES) throw new EscpError("E_PROTOCOL", `received SessionSummary: ${n} failures listed, over ${MAX_SUMMARY_FAILURES}`);
    const failures: CodeMessage[] = [];
    for (let i = 0; i < n; i++) failures.push(readError(t.failures(i), `SessionSummary.failures[${i}]`) ?? { code: "E_REMOTE", message: "" });
    const error = readError(t.error(), "SessionSummary.error");
    return {
      filesOk: count(t.filesOk(), "filesOk"),
      filesFailed: count(t.filesFailed(), "filesFailed"),
      bytes: count(t.bytes(), "bytes"),
      failures,
      moreFailures: count(t.moreFailures(), "moreFailures"),
      ...(error ? { error } : {}),
      bytesResumed: count(t.bytesResumed(), "bytesResumed"),
    };
  });
}

/** Upper bound on what one FileReports item adds to the encoded buffer. */
export function reportBytes(m: FileResultMsg): number {
  return 160 + stringBytes(m.code) + stringBytes(m.message) + stringBytes(m.path);
}

/**
 * FileReports: what became of files, as host1 of a -3 copy learns it. Each item is a FileResult
 * (fino 0): a verified file has no code, its bytes, resumed bytes and BLAKE3, `path` where it
 * landed relative to host2's destination root and `message` the name host1 read it from; a
 * failed one its code, errno and message. An empty FileReports ends them (the SessionSummary
 * follows). At most MAX_REPORT_ITEMS items, REPORT_ITEMS_BUDGET bytes of them.
 */
export function encodeFileReports(items: readonly FileResultMsg[]): Uint8Array {
  if (items.length > MAX_REPORT_ITEMS) throw new EscpError("E_INTERNAL", `cannot encode FileReports: ${items.length} items, over ${MAX_REPORT_ITEMS}`);
  for (const m of items) validateControl(m, "E_INTERNAL");
  const b = new flatbuffers.Builder(256);
  const vec = FbReports.createItemsVector(
    b,
    items.map((m) => encodeResult(b, m)),
  );
  return finish(b, FbReports.createFileReports(b, vec));
}

export function decodeFileReports(buf: Uint8Array): FileResultMsg[] {
  return guarded("FileReports", () => {
    verifyBuffer(buf, FILE_REPORTS, MAX_BYTES);
    const t = FbReports.getRootAsFileReports(new flatbuffers.ByteBuffer(buf));
    const n = t.itemsLength();
    if (n > MAX_REPORT_ITEMS) throw new EscpError("E_PROTOCOL", `received FileReports: ${n} items, over ${MAX_REPORT_ITEMS}`);
    const out: FileResultMsg[] = [];
    for (let i = 0; i < n; i++) {
      const item = t.items(i);
      if (item === null) throw new EscpError("E_PROTOCOL", `received FileReports: items[${i}] is missing`);
      const m = decodeResult(item);
      validateControl(m, "E_PROTOCOL");
      out.push(m);
    }
    return out;
  });
}
