// Decodes escp_event records (128-byte, layout pinned in C and generated into symbols.ts)
// that the native threads leave in the event ring, into a typed union: the transfer code
// matches on `kind` and on status *names* and never touches the raw ESCP_* numbers.
import type { ErrorCode } from "../errors/codes.ts";
import * as C from "./symbols.ts";

/** ESCP_E_<NAME> of escp.h, without the prefix ("DIGEST", "ABORTED", ...), or "OK". */
type StatusSymbol = Extract<keyof typeof C, `ESCP_E_${string}`>;
export type NativeStatus = "OK" | (StatusSymbol extends `ESCP_E_${infer N}` ? N : never) | "UNKNOWN";

const STATUS_NAMES = new Map<number, NativeStatus>([[C.ESCP_OK, "OK"]]);
for (const [k, v] of Object.entries(C)) {
  if (k.startsWith("ESCP_E_") && typeof v === "number") STATUS_NAMES.set(v, k.slice("ESCP_E_".length) as NativeStatus);
}

/** The name of a native status code (generated from escp.h's ESCP_E_* table). */
export function statusName(status: number): NativeStatus {
  return STATUS_NAMES.get(status) ?? "UNKNOWN";
}

interface Base {
  status: NativeStatus;
  sysErrno: number;
  stream: number;
  fino: number;
  bytes: number;
  blocks: number;
  digest: Uint8Array;
  text: string;
}

/** One event from the C side. fileDone: the file is finished (sender: read and sent;
 * receiver: verified and named). fileError: it failed (status, sysErrno, text say why).
 * streamDown: a stream ended without BYE. fatal: the session must stop. log: debug text.
 * streamsUp: all streams authenticated (listener). drained: every data stream said BYE.
 * offer (receiver, resume): fino's earlier partial was read: blocks/bytes held (then
 * rxOffer gives the offer), or none and text says why (empty text: nothing worth keeping).
 * reconnect: data stream `stream` broke (text: how) and was re-established after `blocks`
 * attempts. streamDown/fatal with blocks > 0: that many reconnect attempts failed first. */
export type NativeEvent = Base & {
  kind: "fileDone" | "fileError" | "streamDown" | "fatal" | "log" | "streamsUp" | "drained" | "offer" | "reconnect" | "unknown";
};

const KINDS: Record<number, NativeEvent["kind"]> = {
  [C.ESCP_EV_FILE_DONE]: "fileDone",
  [C.ESCP_EV_FILE_ERROR]: "fileError",
  [C.ESCP_EV_STREAM_DOWN]: "streamDown",
  [C.ESCP_EV_FATAL]: "fatal",
  [C.ESCP_EV_LOG]: "log",
  [C.ESCP_EV_STREAMS_UP]: "streamsUp",
  [C.ESCP_EV_DRAINED]: "drained",
  [C.ESCP_EV_OFFER]: "offer",
  [C.ESCP_EV_RECONNECT]: "reconnect",
};

const td = new TextDecoder();

export function decodeEvents(buf: Uint8Array, count: number): NativeEvent[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NativeEvent[] = [];
  for (let i = 0; i < count; i++) {
    const b = i * C.EVENT_SIZE;
    const textBytes = buf.subarray(b + C.EVENT_OFF_TEXT, b + C.EVENT_SIZE);
    const nul = textBytes.indexOf(0);
    out.push({
      kind: KINDS[dv.getUint32(b + C.EVENT_OFF_TYPE, true)] ?? "unknown",
      status: statusName(dv.getInt32(b + C.EVENT_OFF_STATUS, true)),
      sysErrno: dv.getInt32(b + C.EVENT_OFF_SYS_ERRNO, true),
      stream: dv.getUint32(b + C.EVENT_OFF_STREAM, true),
      fino: Number(dv.getBigUint64(b + C.EVENT_OFF_FINO, true)),
      bytes: Number(dv.getBigUint64(b + C.EVENT_OFF_BYTES, true)),
      blocks: Number(dv.getBigUint64(b + C.EVENT_OFF_BLOCKS, true)),
      digest: buf.slice(b + C.EVENT_OFF_DIGEST, b + C.EVENT_OFF_DIGEST + 32),
      text: td.decode(nul < 0 ? textBytes : textBytes.subarray(0, nul)),
    });
  }
  return out;
}

/** The escp error code a native status means to users (see README's exit table). */
export function codeForStatus(status: NativeStatus): ErrorCode {
  switch (status) {
    case "RANGE":
    case "INVAL":
      return "E_USAGE";
    case "AUTH":
    case "PROTO":
    case "REPLAY":
    case "UNKNOWN_FILE":
      return "E_PROTOCOL";
    case "TIMEOUT":
    case "CLOSED": // mid-session: the peer vanished (connect() reports E_CONNECT itself)
      return "E_TIMEOUT";
    case "CONNECT":
    case "BIND":
      return "E_CONNECT";
    case "OPEN":
    case "READ":
      return "E_SOURCE_UNREADABLE";
    case "SHORT":
    case "CHANGED":
      return "E_SOURCE_CHANGED";
    case "WRITE":
      return "E_WRITE";
    case "DIGEST":
      return "E_DIGEST_MISMATCH";
    case "VERSION":
      return "E_VERSION";
    case "PATH":
      return "E_REJECTED_PATH";
    case "BUSY":
      return "E_BUSY";
    default:
      return "E_INTERNAL";
  }
}

/** strerror-style text for an errno number from C (Linux values). */
export function errnoText(n: number): string {
  const names: Record<number, string> = {
    1: "Operation not permitted",
    2: "No such file or directory",
    5: "Input/output error",
    9: "Bad file descriptor",
    12: "Cannot allocate memory",
    13: "Permission denied",
    17: "File exists",
    20: "Not a directory",
    21: "Is a directory",
    22: "Invalid argument",
    24: "Too many open files",
    27: "File too large",
    28: "No space left on device",
    30: "Read-only file system",
    32: "Broken pipe",
    36: "File name too long",
    40: "Too many levels of symbolic links",
    104: "Connection reset by peer",
    110: "Connection timed out",
    111: "Connection refused",
    116: "Stale file handle",
    122: "Disk quota exceeded",
  };
  return names[n] ?? `errno ${n}`;
}
