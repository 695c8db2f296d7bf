// BLAKE3 tree arithmetic for `escp plan merge`: a split file's whole-file digest from its
// ranges' subtree chaining values (docs/json-output.md), joined with libescp.so's parent
// compression (escp_b3_parent). Blocks are 2^k chunks of 1 KiB; the tree is BLAKE3's
// left-heavy tree. The tests check it against b3sum with an independent TypeScript BLAKE3
// (b3-reference.fixture.ts).
import { loadNative } from "../native/lib.ts";
import type { Subtree } from "../transfer/ranges.ts";

export type { Subtree } from "../transfer/ranges.ts";

/** BLAKE3 parent node: 32-byte left and right chaining values → the parent's (the root
 *  output, i.e. the digest, when isRoot). */
export function b3Parent(left: Uint8Array, right: Uint8Array, isRoot: boolean): Uint8Array {
  const out = new Uint8Array(32);
  loadNative().escp_b3_parent(Uint8Array.from(left.subarray(0, 32)), Uint8Array.from(right.subarray(0, 32)), isRoot ? 1 : 0, out);
  return out;
}

/** Largest power of two strictly below n (n >= 2). */
export function leftSplit(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/**
 * The whole-file digest (hex) of a file of `blocks` blocks from subtrees covering every block:
 * the left-heavy tree over the blocks, each node taken from a subtree that spans it exactly (a
 * run is cut at the file's end). Throws an Error naming the first block no subtree covers.
 */
export function rootFromSubtrees(blocks: number, subtrees: readonly Subtree[]): string {
  const span = new Map<string, Uint8Array>();
  for (const s of subtrees) {
    const end = Math.min(blocks, s.block + 2 ** s.log2);
    span.set(`${s.block}:${end}`, Buffer.from(s.cv, "hex"));
  }
  const node = (lo: number, hi: number, isRoot: boolean): Uint8Array => {
    const given = span.get(`${lo}:${hi}`);
    if (given !== undefined && !isRoot) return given;
    if (given !== undefined && hi - lo < 2) throw new Error("one subtree spans the whole file (its chaining value is not the root)");
    if (hi - lo < 2) throw new Error(`block ${lo} has no subtree`);
    const mid = lo + leftSplit(hi - lo);
    return b3Parent(node(lo, mid, false), node(mid, hi, false), isRoot);
  };
  return Buffer.from(node(0, blocks, true)).toString("hex");
}
