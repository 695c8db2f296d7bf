// Bin packing of `escp plan`: balance by bytes and by entry count, ranges block-aligned and in
// different shards, and (fast-check) every byte of every file planned exactly once.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ESCP_RANGE_BLOCKS_MAX } from "../native/symbols.ts";
import { packShards, type Packing, type PlanFile } from "./pack.ts";

const B = 64 * 1024;

function files(sizes: number[]): PlanFile[] {
  return sizes.map((size, i) => ({ src: `/s/f${i}`, dst: `d/f${i}`, size }));
}

/** Every byte of every file exactly once; ranges aligned; shard totals agree with their entries. */
function checkCoverage(p: Packing, input: PlanFile[], blockSize: number, n: number): void {
  expect(p.files.length).toBe(input.length);
  const perShard = Array.from({ length: n }, () => 0);
  p.files.forEach((f, i) => {
    expect(f.size).toBe(input[i]?.size as number);
    if (f.ranges === undefined) {
      expect(f.shard).toBeGreaterThanOrEqual(0);
      perShard[f.shard as number] = (perShard[f.shard as number] ?? 0) + f.size;
      return;
    }
    expect(f.ranges.length).toBeGreaterThan(1);
    let at = 0;
    for (const r of f.ranges) {
      expect(r.offset).toBe(at); // no gap, no overlap
      expect(r.offset % blockSize).toBe(0);
      expect(r.length).toBeGreaterThan(0);
      if (r.offset + r.length !== f.size) expect(r.length % blockSize).toBe(0);
      at += r.length;
      perShard[r.shard] = (perShard[r.shard] ?? 0) + r.length;
    }
    expect(at).toBe(f.size);
    expect(new Set(f.ranges.map((r) => r.shard)).size).toBe(f.ranges.length); // different shards
  });
  p.shards.forEach((s, i) => {
    expect(s.bytes).toBe(perShard[i] as number);
    expect(s.entries.reduce((t, e) => t + e.bytes, 0)).toBe(s.bytes);
    expect(s.files + s.ranges).toBe(s.entries.length);
  });
  expect(p.shards.reduce((t, s) => t + s.bytes, 0)).toBe(input.reduce((t, f) => t + f.size, 0));
}

describe("packShards", () => {
  test("equal files: counts differ by at most one, bytes by at most one file", () => {
    const p = packShards(files(Array.from({ length: 1003 }, () => 1000)), 10, B);
    const counts = p.shards.map((s) => s.entries.length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    const bytes = p.shards.map((s) => s.bytes);
    expect(Math.max(...bytes) - Math.min(...bytes)).toBeLessThanOrEqual(1000);
  });

  test("empty files spread across the shards", () => {
    const p = packShards(files([...Array.from({ length: 40 }, () => 0), 5 * B, 5 * B, 5 * B, 5 * B]), 4, B);
    expect(p.shards.map((s) => s.entries.length)).toEqual([11, 11, 11, 11]);
  });

  test("a file over a shard's share is cut into block-aligned ranges on different shards", () => {
    const big = 10 * B + 123;
    const p = packShards(files([big, 1000, 2000]), 4, B);
    const f = p.files[0];
    expect(f?.ranges?.map((r) => [r.offset, r.length])).toEqual([
      [0, 3 * B],
      [3 * B, 3 * B],
      [6 * B, 3 * B],
      [9 * B, B + 123],
    ]);
    checkCoverage(p, files([big, 1000, 2000]), B, 4);
  });

  test("one shard: nothing is split", () => {
    const p = packShards(files([100 * B, 3]), 1, B);
    expect(p.files.every((f) => f.ranges === undefined)).toBe(true);
    expect(p.shards[0]?.entries.length).toBe(2);
  });

  test("mixed sizes: bytes within twice the largest piece (or a block) of the mean", () => {
    const sizes = [50 * B, 7 * B, 3 * B, ...Array.from({ length: 300 }, (_, i) => (i * 7919) % (2 * B))];
    const p = packShards(files(sizes), 8, B);
    const total = sizes.reduce((a, b) => a + b, 0);
    const largest = Math.max(...p.shards.flatMap((s) => s.entries.map((e) => e.bytes)));
    for (const s of p.shards) expect(s.bytes).toBeLessThanOrEqual(total / 8 + 2 * Math.max(largest, B));
    checkCoverage(p, files(sizes), B, 8);
  });

  test("property: every byte planned exactly once, ranges aligned, balance bound", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat({ max: 3000 }), fc.nat({ max: 40 * B }), fc.constant(0)), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(B, 2 * B, 4 * B),
        (sizes, n, bs) => {
          const input = files(sizes);
          const p = packShards(input, n, bs);
          checkCoverage(p, input, bs, n);
          const total = sizes.reduce((a, b) => a + b, 0);
          const largest = Math.max(0, ...p.shards.flatMap((s) => s.entries.map((e) => e.bytes)));
          for (const s of p.shards) expect(s.bytes).toBeLessThanOrEqual(total / n + 2 * Math.max(largest, bs));
        },
      ),
      { numRuns: 300 },
    );
  });
});

test("a range never holds more than ESCP_RANGE_BLOCKS_MAX blocks: a huge file gets more ranges than shards", () => {
  const bs = 65536;
  const size = 3 * ESCP_RANGE_BLOCKS_MAX * bs + 5 * bs + 17;
  const p = packShards([{ src: "/s/huge", dst: "huge", size }], 2, bs);
  const ranges = p.files[0]?.ranges ?? [];
  expect(ranges.length).toBe(4);
  expect(ranges.every((r) => Math.ceil(r.length / bs) <= ESCP_RANGE_BLOCKS_MAX && r.offset % bs === 0)).toBe(true);
  expect(ranges.reduce((n, r) => n + r.length, 0)).toBe(size);
  expect(ranges.map((r) => r.offset)).toEqual([0, 1, 2, 3].map((i) => i * ESCP_RANGE_BLOCKS_MAX * bs));
  expect(new Set(ranges.map((r) => r.shard))).toEqual(new Set([0, 1]));
});
