// The 24-byte little-endian span record C writes, to and from Span objects:
// { u64 t0Ns, u64 durNs, u32 bytes, u16 stream, u8 stage, u8 flags (0) }.
import { EscpError } from "../errors/escp-error.ts";
import { isStageId } from "./stages.ts";
import type { Span } from "./types.ts";

export const SPAN_RECORD_BYTES = 24;

export function decodeSpans(buf: Uint8Array): Span[] {
  if (buf.byteLength % SPAN_RECORD_BYTES !== 0) {
    throw new EscpError("E_PROTOCOL", `profile spans: ${buf.byteLength} bytes is not a whole number of ${SPAN_RECORD_BYTES}-byte records`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = buf.byteLength / SPAN_RECORD_BYTES;
  const spans: Span[] = new Array<Span>(n);
  for (let i = 0; i < n; i++) {
    const off = i * SPAN_RECORD_BYTES;
    const stage = view.getUint8(off + 22);
    if (!isStageId(stage)) {
      throw new EscpError("E_PROTOCOL", `profile spans: record ${i} has unknown stage ${stage}`);
    }
    spans[i] = {
      t0Ns: Number(view.getBigUint64(off, true)),
      durNs: Number(view.getBigUint64(off + 8, true)),
      bytes: view.getUint32(off + 16, true),
      stream: view.getUint16(off + 20, true),
      stage,
    };
  }
  return spans;
}

/** The inverse of decodeSpans (tests, and forwarding spans as bytes). */
export function encodeSpans(spans: readonly Span[]): Uint8Array {
  const buf = new Uint8Array(spans.length * SPAN_RECORD_BYTES);
  const view = new DataView(buf.buffer);
  spans.forEach((s, i) => {
    const off = i * SPAN_RECORD_BYTES;
    view.setBigUint64(off, BigInt(Math.round(s.t0Ns)), true);
    view.setBigUint64(off + 8, BigInt(Math.round(s.durNs)), true);
    view.setUint32(off + 16, s.bytes, true);
    view.setUint16(off + 20, s.stream, true);
    view.setUint8(off + 22, s.stage);
    view.setUint8(off + 23, 0);
  });
  return buf;
}
