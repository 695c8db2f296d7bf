// Byte ranges (--shard): block numbers, the sink's own checks of an announced range (a hostile
// sender's range never reaches libescp), the subtree list and the range digest.
import { describe, expect, test } from "bun:test";
import type { FileEntry } from "../control/messages.ts";
import { ESCP_RANGE_BLOCKS_MAX } from "../native/symbols.ts";
import { blake3, decodeSubtrees, rangeBlocks, rangeProblem } from "./ranges.ts";

const B = 65536;
const entry = (size: number, range?: { offset: number; length: number }): FileEntry => ({
  fino: 1,
  kind: "file",
  name: "f",
  size,
  mode: 0o644,
  mtimeSec: 0,
  mtimeNsec: 0,
  atimeSec: 0,
  atimeNsec: 0,
  ino: 1,
  ...(range ? { range } : {}),
});

describe("ranges", () => {
  test("rangeBlocks: the first block and the count (a short last block counts)", () => {
    expect(rangeBlocks({ offset: 2 * B, length: 3 * B }, B)).toEqual({ first: 2, count: 3 });
    expect(rangeBlocks({ offset: 4 * B, length: B + 1 }, B)).toEqual({ first: 4, count: 2 });
  });

  test("rangeProblem: this side's limits, whatever the sender says", () => {
    const size = 5 * B + 7;
    expect(rangeProblem(entry(size), B)).toBeNull();
    expect(rangeProblem(entry(size, { offset: B, length: 2 * B }), B)).toBeNull();
    expect(rangeProblem(entry(size, { offset: 4 * B, length: B + 7 }), B)).toBeNull();
    expect(rangeProblem(entry(size, { offset: 100, length: B }), B)).toBe("a range at 100, not a multiple of the block size 65536");
    expect(rangeProblem(entry(size, { offset: B, length: 0 }), B)).toBe(`a range ${B}+0 outside its ${size} bytes`);
    expect(rangeProblem(entry(size, { offset: 4 * B, length: 2 * B }), B)).toBe(`a range ${4 * B}+${2 * B} outside its ${size} bytes`);
    expect(rangeProblem(entry(size, { offset: 0, length: 1000 }), B)).toBe("a range of 1000 bytes that is not whole blocks and does not end the file");
    expect(rangeProblem(entry(size, { offset: 0, length: size }), B)).toBe("a range that is the whole file");
    expect(rangeProblem(entry(size, { offset: 0, length: B }), 0)).toBe("a byte range in a session without resume");
    // our block size, not the sender's: aligned to 64 KiB is not aligned to 1 MiB
    expect(rangeProblem(entry(8 << 20, { offset: B, length: B }), 1 << 20)).toBe("a range at 65536, not a multiple of the block size 1048576");
    const huge = (ESCP_RANGE_BLOCKS_MAX + 2) * B;
    expect(rangeProblem(entry(huge, { offset: 0, length: ESCP_RANGE_BLOCKS_MAX * B }), B)).toBeNull();
    expect(rangeProblem(entry(huge, { offset: 0, length: (ESCP_RANGE_BLOCKS_MAX + 1) * B }), B)).toBe(`a range of more than ${ESCP_RANGE_BLOCKS_MAX} blocks`);
  });

  test("decodeSubtrees and blake3 (the range digest is BLAKE3 of the packed list)", () => {
    const packed = new Uint8Array(96);
    const dv = new DataView(packed.buffer);
    dv.setBigUint64(0, 2n, true);
    dv.setUint32(8, 1, true);
    packed.fill(0xab, 16, 48);
    dv.setBigUint64(48, 4n, true);
    packed.fill(0x01, 64, 96);
    expect(decodeSubtrees(packed)).toEqual([
      { block: 2, log2: 1, cv: "ab".repeat(32) },
      { block: 4, log2: 0, cv: "01".repeat(32) },
    ]);
    // BLAKE3 test vector: the empty input and "abc"
    expect(Buffer.from(blake3(new Uint8Array(0))).toString("hex")).toBe("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    expect(Buffer.from(blake3(new TextEncoder().encode("abc"))).toString("hex")).toBe("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
  });
});
