// Decodes escp_event records (128-byte, layout pinned in C and generated into symbols.ts)
// that the native threads leave in the event ring.
import * as C from "./symbols.ts";

export interface NativeEvent {
  type: number;
  status: number;
  sysErrno: number;
  stream: number;
  fino: number;
  bytes: number;
  blocks: number;
  digest: Uint8Array;
  text: string;
}

const td = new TextDecoder();

export function decodeEvents(buf: Uint8Array, count: number): NativeEvent[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NativeEvent[] = [];
  for (let i = 0; i < count; i++) {
    const b = i * C.EVENT_SIZE;
    const textBytes = buf.subarray(b + C.EVENT_OFF_TEXT, b + C.EVENT_SIZE);
    const nul = textBytes.indexOf(0);
    out.push({
      type: dv.getUint32(b + C.EVENT_OFF_TYPE, true),
      status: dv.getInt32(b + C.EVENT_OFF_STATUS, true),
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

/** strerror-style text for an errno number from C (Linux values). */
export function errnoText(n: number): string {
  const names: Record<number, string> = {
    1: "Operation not permitted", 2: "No such file or directory", 5: "Input/output error",
    9: "Bad file descriptor", 12: "Cannot allocate memory", 13: "Permission denied",
    17: "File exists", 20: "Not a directory", 21: "Is a directory", 22: "Invalid argument",
    24: "Too many open files", 27: "File too large", 28: "No space left on device",
    30: "Read-only file system", 32: "Broken pipe", 36: "File name too long",
    40: "Too many levels of symbolic links", 104: "Connection reset by peer",
    110: "Connection timed out", 111: "Connection refused", 122: "Disk quota exceeded",
  };
  return names[n] ?? `errno ${n}`;
}
