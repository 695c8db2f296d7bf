// BLAKE3 tree arithmetic for `escp plan merge`: a split file's whole-file digest from its
// ranges' subtree chaining values. The parent compression is libescp.so's escp_b3_parent when the
// library exports it (the byte-range engine), else the same compression in TypeScript here;
// chunk hashing is here for the tests, which check it against b3sum. Blocks are 2^k chunks of
// 1 KiB; the tree is BLAKE3's left-heavy tree.
import { loadNative } from "../native/lib.ts";

const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
export const CHUNK_LEN = 1024;

function g(s: Uint32Array, a: number, b: number, c: number, d: number, x: number, y: number): void {
  s[a] = (s[a] as number) + (s[b] as number) + x;
  let t = (s[d] as number) ^ (s[a] as number);
  s[d] = (t >>> 16) | (t << 16);
  s[c] = (s[c] as number) + (s[d] as number);
  t = (s[b] as number) ^ (s[c] as number);
  s[b] = (t >>> 12) | (t << 20);
  s[a] = (s[a] as number) + (s[b] as number) + y;
  t = (s[d] as number) ^ (s[a] as number);
  s[d] = (t >>> 8) | (t << 24);
  s[c] = (s[c] as number) + (s[d] as number);
  t = (s[b] as number) ^ (s[c] as number);
  s[b] = (t >>> 7) | (t << 25);
}

/** The compression function: the 8-word chaining value it outputs. */
function compress(cv: Uint32Array, block: Uint32Array, counter: number, len: number, flags: number): Uint32Array {
  const s = new Uint32Array(16);
  s.set(cv, 0);
  s.set(IV.slice(0, 4), 8);
  s[12] = counter >>> 0;
  s[13] = Math.floor(counter / 2 ** 32);
  s[14] = len;
  s[15] = flags;
  let m = Uint32Array.from(block);
  for (let r = 0; r < 7; r++) {
    const w = (i: number): number => m[i] as number;
    g(s, 0, 4, 8, 12, w(0), w(1));
    g(s, 1, 5, 9, 13, w(2), w(3));
    g(s, 2, 6, 10, 14, w(4), w(5));
    g(s, 3, 7, 11, 15, w(6), w(7));
    g(s, 0, 5, 10, 15, w(8), w(9));
    g(s, 1, 6, 11, 12, w(10), w(11));
    g(s, 2, 7, 8, 13, w(12), w(13));
    g(s, 3, 4, 9, 14, w(14), w(15));
    const prev = m;
    m = Uint32Array.from(PERM, (p) => prev[p] as number);
  }
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) out[i] = (s[i] as number) ^ (s[i + 8] as number);
  return out;
}

function words(bytes: Uint8Array): Uint32Array {
  const padded = new Uint8Array(64);
  padded.set(bytes.subarray(0, 64));
  const v = new DataView(padded.buffer);
  return Uint32Array.from({ length: 16 }, (_, i) => v.getUint32(i * 4, true));
}

export function cvToBytes(cv: Uint32Array): Uint8Array {
  const out = new Uint8Array(32);
  const v = new DataView(out.buffer);
  cv.forEach((w, i) => v.setUint32(i * 4, w, true));
  return out;
}

export function bytesToCv(b: Uint8Array): Uint32Array {
  const v = new DataView(b.buffer, b.byteOffset, 32);
  return Uint32Array.from({ length: 8 }, (_, i) => v.getUint32(i * 4, true));
}

type NativeParent = (left: Uint8Array, right: Uint8Array, isRoot: number, out: Uint8Array) => void;
let nativeParent: NativeParent | null | undefined;

/** libescp.so's escp_b3_parent, or null when the library is missing or does not export it. */
export function nativeB3Parent(): NativeParent | null {
  if (nativeParent !== undefined) return nativeParent;
  try {
    const f = (loadNative() as unknown as Record<string, unknown>).escp_b3_parent;
    nativeParent = typeof f === "function" ? (f as NativeParent) : null;
  } catch {
    nativeParent = null;
  }
  return nativeParent;
}

/** BLAKE3 parent node: 32-byte left and right chaining values → the parent's (the root
 *  output, i.e. the digest, when isRoot). */
export function b3Parent(left: Uint8Array, right: Uint8Array, isRoot: boolean): Uint8Array {
  const native = nativeB3Parent();
  if (native === null) return b3ParentTs(left, right, isRoot);
  const out = new Uint8Array(32);
  native(Uint8Array.from(left.subarray(0, 32)), Uint8Array.from(right.subarray(0, 32)), isRoot ? 1 : 0, out);
  return out;
}

/** The parent compression in TypeScript. */
export function b3ParentTs(left: Uint8Array, right: Uint8Array, isRoot: boolean): Uint8Array {
  const block = new Uint8Array(64);
  block.set(left.subarray(0, 32), 0);
  block.set(right.subarray(0, 32), 32);
  return cvToBytes(compress(Uint32Array.from(IV), words(block), 0, 64, PARENT | (isRoot ? ROOT : 0)));
}

/** Chaining value of chunk `index` (at most 1 KiB of data). */
export function chunkCv(data: Uint8Array, index: number, isRoot: boolean): Uint8Array {
  let cv: Uint32Array = Uint32Array.from(IV);
  const blocks = Math.max(1, Math.ceil(data.length / 64));
  for (let b = 0; b < blocks; b++) {
    const part = data.subarray(b * 64, b * 64 + 64);
    const last = b === blocks - 1;
    const flags = (b === 0 ? CHUNK_START : 0) | (last ? CHUNK_END : 0) | (last && isRoot ? ROOT : 0);
    cv = compress(cv, words(part), index, part.length, flags);
  }
  return cvToBytes(cv);
}

/** Largest power of two strictly below n (n >= 2). */
export function leftSplit(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** Chaining value of the subtree over `data`, whose first chunk is chunk `firstChunk` of the
 *  file (non-root unless isRoot). With isRoot it is the file's digest when data is the file. */
export function subtreeCv(data: Uint8Array, firstChunk: number, isRoot = false): Uint8Array {
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK_LEN));
  if (chunks === 1) return chunkCv(data, firstChunk, isRoot);
  const left = leftSplit(chunks);
  const l = subtreeCv(data.subarray(0, left * CHUNK_LEN), firstChunk);
  const r = subtreeCv(data.subarray(left * CHUNK_LEN), firstChunk + left);
  return b3Parent(l, r, isRoot);
}

/** BLAKE3 of a whole buffer (hex). */
export function b3Hex(data: Uint8Array): string {
  return Buffer.from(subtreeCv(data, 0, true)).toString("hex");
}

/** One aligned run of blocks of a range: blocks [block, block + 2^log2), cut at the file's end. */
export interface Subtree {
  block: number;
  log2: number;
  cv: string;
}

/** The range's block interval cut into maximal aligned power-of-two runs, in order. */
export function alignedRuns(firstBlock: number, endBlock: number): { block: number; log2: number }[] {
  const out: { block: number; log2: number }[] = [];
  let b = firstBlock;
  while (b < endBlock) {
    let k = 0;
    while (b % 2 ** (k + 1) === 0 && b + 2 ** (k + 1) <= endBlock) k++;
    out.push({ block: b, log2: k });
    b += 2 ** k;
  }
  return out;
}

/** The subtrees a range of `data` reports (for tests and tools): blocks of blockSize bytes. */
export function rangeSubtrees(file: Uint8Array, offset: number, length: number, blockSize: number): Subtree[] {
  const chunksPerBlock = blockSize / CHUNK_LEN;
  const first = offset / blockSize;
  const end = Math.ceil((offset + length) / blockSize);
  return alignedRuns(first, end).map(({ block, log2 }) => {
    const start = block * blockSize;
    const stop = Math.min(file.length, (block + 2 ** log2) * blockSize);
    return { block, log2, cv: Buffer.from(subtreeCv(file.subarray(start, stop), block * chunksPerBlock)).toString("hex") };
  });
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
