// The packed layouts of small-file bundles between TypeScript and libescp (escp.h "bundles"):
// the records escp_tx_small_add takes, and the groups escp_tx_bundle_take and
// escp_rx_bundle_take return. Offsets and sizes come from escp.h (symbols.ts is generated).
import * as C from "./symbols.ts";

const enc = new TextEncoder();
const TWO32 = 2 ** 32;

/** A u64 below 2^53 as two little-endian u32 (no BigInt per field). */
function put64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n % TWO32, true);
  v.setUint32(at + 4, Math.floor(n / TWO32), true);
}

/** A u64 libescp wrote (sizes, counters, file numbers: below 2^53). */
function get64(v: DataView, at: number): number {
  return v.getUint32(at, true) + v.getUint32(at + 4, true) * TWO32;
}
const lenient = new TextDecoder(); // replacement characters for bytes that are not UTF-8

/** Records for escp_tx_small_add, packed into one growing buffer until taken. */
export class SmallFileBatch {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);
  private len = 0;
  count = 0;

  /** seq: the caller's number for the file (consecutive over the session); dir: its directory's fino. */
  add(seq: number, dir: number, size: number, ino: number, path: string, leaf: string): void {
    const need = C.ESCP_SA_HDR + 3 * (path.length + leaf.length) + 8;
    if (this.len + need > this.buf.length) this.grow(this.len + need);
    const at = this.len;
    const p = enc.encodeInto(path, this.buf.subarray(at + C.ESCP_SA_HDR)).written;
    const l = enc.encodeInto(leaf, this.buf.subarray(at + C.ESCP_SA_HDR + p)).written;
    const v = this.view;
    put64(v, at + C.ESCP_SA_SEQ, seq);
    put64(v, at + C.ESCP_SA_DIR, dir);
    put64(v, at + C.ESCP_SA_SIZE, size);
    put64(v, at + C.ESCP_SA_INO, ino);
    v.setUint16(at + C.ESCP_SA_PATH_LEN, p, true);
    v.setUint16(at + C.ESCP_SA_LEAF_LEN, l, true);
    v.setUint32(at + C.ESCP_SA_LEAF_LEN + 2, 0, true);
    let end = at + C.ESCP_SA_HDR + p + l;
    while (end % 8 !== 0) this.buf[end++] = 0;
    this.len = end;
    this.count++;
  }

  /** The packed records so far, and start over: valid until the next add (escp_tx_small_add
   *  copies what it queues, so the buffer is reused). */
  take(): { buf: Uint8Array; len: number } | null {
    if (this.count === 0) return null;
    const out = { buf: this.buf, len: this.len };
    this.len = 0;
    this.count = 0;
    return out;
  }

  private grow(min: number): void {
    const next = new Uint8Array(Math.max(min, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/** One file of a bundle as the sender read it (status 0: it went on the wire, else why not). */
export interface SentFile {
  seq: number;
  size: number;
  status: number;
  errno: number;
  digest: Uint8Array;
  what: string;
}
/** One file of a bundle as the receiver wrote it (status 0: verified and named). */
export interface WrittenFile {
  dir: number;
  size: number;
  status: number;
  errno: number;
  digest: Uint8Array;
  what: string;
  leaf: string;
}
export interface Group<T> {
  bundle: number;
  files: T[];
}

function cText(b: Uint8Array): string {
  const end = b.indexOf(0);
  return lenient.decode(end < 0 ? b : b.subarray(0, end));
}

/** A copy of the 32-byte digest at `at` (the take buffer is reused by the next call). */
function digestAt(buf: Uint8Array, at: number): Uint8Array {
  return buf.slice(at, at + C.ESCP_DIGEST_LEN);
}

function groups<T>(buf: Uint8Array, entry: (v: DataView, at: number) => [T, number]): Group<T>[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Group<T>[] = [];
  let at = 0;
  while (at < buf.length) {
    const bundle = get64(v, at + C.ESCP_BG_BUNDLE);
    const n = v.getUint32(at + C.ESCP_BG_COUNT, true);
    at += C.ESCP_BG_HDR;
    const files: T[] = [];
    for (let i = 0; i < n; i++) {
      const [f, next] = entry(v, at);
      files.push(f);
      at = next;
    }
    out.push({ bundle, files });
  }
  return out;
}

/** escp_tx_bundle_take's groups. */
export function decodeSent(buf: Uint8Array): Group<SentFile>[] {
  return groups(buf, (v, at) => [
    {
      seq: get64(v, at + C.ESCP_BT_SEQ),
      size: get64(v, at + C.ESCP_BT_SIZE),
      status: v.getInt32(at + C.ESCP_BT_STATUS, true),
      errno: v.getInt32(at + C.ESCP_BT_ERRNO, true),
      digest: digestAt(buf, at + C.ESCP_BT_DIGEST),
      what: cText(buf.subarray(at + C.ESCP_BT_WHAT, at + C.ESCP_BT_ENT)),
    },
    at + C.ESCP_BT_ENT,
  ]);
}

/** escp_rx_bundle_take's groups. Leaves were checked by libescp only as far as it reports
 * (a refused one may hold anything); bytes that are not UTF-8 are shown as replacement characters. */
export function decodeWritten(buf: Uint8Array): Group<WrittenFile>[] {
  return groups(buf, (v, at) => {
    const leafLen = v.getUint16(at + C.ESCP_BR_LEAF_LEN, true);
    const leaf = lenient.decode(buf.subarray(at + C.ESCP_BR_ENT, at + C.ESCP_BR_ENT + leafLen));
    const f: WrittenFile = {
      dir: get64(v, at + C.ESCP_BR_DIR),
      size: get64(v, at + C.ESCP_BR_SIZE),
      status: v.getInt32(at + C.ESCP_BR_STATUS, true),
      errno: v.getInt32(at + C.ESCP_BR_ERRNO, true),
      digest: digestAt(buf, at + C.ESCP_BR_DIGEST),
      what: cText(buf.subarray(at + C.ESCP_BR_WHAT, at + C.ESCP_BR_LEAF_LEN)),
      leaf,
    };
    return [f, at + C.ESCP_BR_ENT + Math.ceil(leafLen / 8) * 8];
  });
}
