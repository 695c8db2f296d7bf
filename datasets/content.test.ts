// Deterministic content: same seed gives the same bytes, seeds differ, chunking is irrelevant.
import { describe, expect, test } from "bun:test";
import { CHUNK_BYTES, contentBytes, contentChunks, createRng, fillContent, seedOf } from "./content.ts";

function concatChunks(seed: number, size: number, chunkBytes: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of contentChunks(seed, size, chunkBytes)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  expect(at).toBe(size);
  return out;
}

describe("content", () => {
  test("same seed → same bytes, across calls and across the 1 MiB chunk unit", () => {
    const size = 2 * CHUNK_BYTES + 12345;
    const a = contentBytes(42, 0, size);
    const b = contentBytes(42, 0, size);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(concatChunks(42, size, CHUNK_BYTES)).equals(Buffer.from(a))).toBe(true);
  });

  test("different seeds → different bytes", () => {
    const a = Buffer.from(contentBytes(1, 0, 4096));
    const b = Buffer.from(contentBytes(2, 0, 4096));
    const c = Buffer.from(contentBytes(2 ** 32 + 1, 0, 4096)); // high seed bits matter too
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    expect(same).toBeLessThan(64); // ≈ 16 expected for independent bytes
  });

  test("chunk boundaries do not change the stream (odd sizes, unaligned offsets)", () => {
    const size = 3 * 65536 + 7;
    const whole = Buffer.from(contentBytes(9, 0, size));
    for (const chunkBytes of [1, 3, 4095, 65536, 65537, size, size + 1]) {
      const limit = chunkBytes === 1 ? 5000 : size; // byte-at-a-time only over a prefix
      expect(Buffer.from(concatChunks(9, limit, chunkBytes)).equals(whole.subarray(0, limit))).toBe(true);
    }
    const mid = new Uint8Array(1001);
    fillContent(9, 65533, mid);
    expect(Buffer.from(mid).equals(whole.subarray(65533, 65533 + 1001))).toBe(true);
  });

  test("bytes look random: every byte value occurs, content does not compress", () => {
    const bytes = contentBytes(seedOf("quickstart"), 0, CHUNK_BYTES);
    const seen = new Set(bytes);
    expect(seen.size).toBe(256);
    expect(Bun.zstdCompressSync(bytes).length).toBeGreaterThanOrEqual(bytes.length);
  });

  test("empty sizes yield nothing", () => {
    expect([...contentChunks(1, 0)]).toEqual([]);
    expect(contentBytes(1, 10, 0).length).toBe(0);
  });

  test("createRng is deterministic and stays in range", () => {
    const a = createRng(5);
    const b = createRng(5);
    const xs = Array.from({ length: 100 }, () => a.int(3, 9));
    expect(Array.from({ length: 100 }, () => b.int(3, 9))).toEqual(xs);
    expect(Math.min(...xs)).toBe(3);
    expect(Math.max(...xs)).toBe(9);
    expect(createRng(6).next()).not.toBe(createRng(5).next());
  });
});
