// The BLAKE3 tree arithmetic of `escp plan merge` (and its TypeScript test oracle) against the system b3sum: whole-buffer
// digests, and a split file's digest rebuilt from its ranges' subtrees (either cut of the last run).
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../../harness/tmp-dir.ts";
import { alignedRuns, b3Hex, b3ParentTs, rangeSubtrees, subtreeCv } from "./b3-reference.fixture.ts";
import { b3Parent, rootFromSubtrees } from "./b3-tree.ts";

const tmp = makeTmpDir("plan-b3");

function b3sum(data: Uint8Array): string {
  const f = join(tmp, "data.bin");
  writeFileSync(f, data);
  const p = Bun.spawnSync(["b3sum", "--no-names", f]);
  return p.stdout.toString().trim();
}

describe("BLAKE3 in TypeScript", () => {
  test.each([0, 1, 64, 1023, 1024, 1025, 2048, 3 * 1024 + 1, 70_000])("%d bytes = b3sum", (n) => {
    const d = new Uint8Array(randomBytes(n));
    expect(b3Hex(d)).toBe(b3sum(d));
  });

  test("aligned runs are maximal and in order", () => {
    expect(alignedRuns(0, 7)).toEqual([
      { block: 0, log2: 2 },
      { block: 4, log2: 1 },
      { block: 6, log2: 0 },
    ]);
    expect(alignedRuns(3, 12)).toEqual([
      { block: 3, log2: 0 },
      { block: 4, log2: 2 },
      { block: 8, log2: 2 },
    ]);
  });

  test.each([
    [64 * 1024, [0, 3, 5, 11]],
    [64 * 1024, [0, 1, 2]],
    [128 * 1024, [0, 2, 4]],
  ])("file digest from ranges (block %d, cuts at blocks %j) = b3sum", (bs, cuts) => {
    const blocks = cuts[cuts.length - 1] as number;
    const size = (blocks - 1) * bs + 777; // a short last block
    const d = new Uint8Array(randomBytes(size));
    const subtrees = cuts.slice(0, -1).flatMap((c, i) => {
      const end = Math.min(size, (cuts[i + 1] as number) * bs);
      return rangeSubtrees(d, c * bs, end - c * bs, bs);
    });
    expect(rootFromSubtrees(blocks, subtrees)).toBe(b3sum(d));
  });

  test("a last run reported uncut (past the end of the file) gives the same digest", () => {
    const bs = 64 * 1024;
    const size = 6 * bs + 5; // 7 blocks: the range of blocks 4..7 as one run of 4
    const d = new Uint8Array(randomBytes(size));
    const head = rangeSubtrees(d, 0, 4 * bs, bs);
    const tail = rangeSubtrees(d, 4 * bs, size - 4 * bs, bs);
    const whole = Buffer.from(subtreeCv(d.subarray(4 * bs), (4 * bs) / 1024)).toString("hex");
    expect(rootFromSubtrees(7, [...head, { block: 4, log2: 2, cv: whole }])).toBe(b3sum(d));
    expect(rootFromSubtrees(7, [...head, ...tail])).toBe(b3sum(d));
  });

  test("a missing block is named", () => {
    const bs = 64 * 1024;
    const d = new Uint8Array(randomBytes(4 * bs));
    expect(() => rootFromSubtrees(4, rangeSubtrees(d, 0, 2 * bs, bs))).toThrow("block 2 has no subtree");
  });

  test("libescp.so's escp_b3_parent equals the TypeScript parent", () => {
    for (const isRoot of [false, true]) {
      const l = new Uint8Array(randomBytes(32));
      const r = new Uint8Array(randomBytes(32));
      expect(Buffer.from(b3Parent(l, r, isRoot)).toString("hex")).toBe(Buffer.from(b3ParentTs(l, r, isRoot)).toString("hex"));
    }
  });
});
