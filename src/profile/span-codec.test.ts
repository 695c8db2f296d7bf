// Tests for the 24-byte span record codec: a hand-built buffer, offsets into a larger buffer,
// big u64 values, round trips, and malformed input.
import { describe, expect, test } from "bun:test";
import { EscpError } from "../errors/escp-error.ts";
import { decodeSpans, encodeSpans, SPAN_RECORD_BYTES } from "./types.ts";

function record(t0: bigint, dur: bigint, bytes: number, stream: number, stage: number, flags = 0): number[] {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, t0, true);
  v.setBigUint64(8, dur, true);
  v.setUint32(16, bytes, true);
  v.setUint16(20, stream, true);
  v.setUint8(22, stage);
  v.setUint8(23, flags);
  return [...b];
}

describe("decodeSpans", () => {
  test("a hand-built little-endian buffer", () => {
    // t0 = 0x0102030405060708 written byte by byte, least significant first.
    const first = [8, 7, 6, 5, 4, 3, 2, 1, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 3, 0, 4, 0];
    const spans = decodeSpans(new Uint8Array([...first, ...record(123_456_789_012n, 5n, 0xffffffff, 65535, 10, 7)]));
    expect(SPAN_RECORD_BYTES).toBe(24);
    expect(spans).toEqual([
      { t0Ns: Number(0x0102030405060708n), durNs: 1000, bytes: 1 << 20, stream: 3, stage: 4 },
      { t0Ns: 123_456_789_012, durNs: 5, bytes: 0xffffffff, stream: 65535, stage: 10 },
    ]);
  });

  test("a view into a larger buffer at an odd offset", () => {
    const whole = new Uint8Array([9, 9, 9, ...record(10n, 20n, 30, 1, 0), 9]);
    expect(decodeSpans(whole.subarray(3, 27))).toEqual([{ t0Ns: 10, durNs: 20, bytes: 30, stream: 1, stage: 0 }]);
  });

  test("empty input is no spans", () => {
    expect(decodeSpans(new Uint8Array(0))).toEqual([]);
  });

  test("a length that is not a multiple of 24 is a protocol error", () => {
    for (const n of [1, 23, 25, 47]) {
      let err: unknown;
      try {
        decodeSpans(new Uint8Array(n));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EscpError);
      expect((err as EscpError).code).toBe("E_PROTOCOL");
      expect((err as EscpError).message).toContain(`${n} bytes`);
    }
  });

  test("an unknown stage id is a protocol error", () => {
    expect(() => decodeSpans(new Uint8Array(record(1n, 1n, 1, 1, 11)))).toThrow("unknown stage 11");
  });

  test("encodeSpans round-trips", () => {
    const spans = [
      { t0Ns: 9_007_199_254_740_000, durNs: 0, bytes: 0, stream: 0, stage: 9 as const },
      { t0Ns: 1, durNs: 2, bytes: 3, stream: 4, stage: 5 as const },
    ];
    expect(decodeSpans(encodeSpans(spans))).toEqual(spans);
  });
});
