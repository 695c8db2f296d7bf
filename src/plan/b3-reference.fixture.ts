// An independent BLAKE3 in TypeScript, for tests only: the oracle `escp plan merge`'s tree
// arithmetic (b3-tree.ts, which joins with libescp.so's escp_b3_parent) and the shard tests are
// checked against, itself checked against b3sum (b3-tree.test.ts). Not used by escp.
import type { Subtree } from "../transfer/ranges.ts";
import { leftSplit } from "./b3-tree.ts";

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

function cvToBytes(cv: Uint32Array): Uint8Array {
  const out = new Uint8Array(32);
  const v = new DataView(out.buffer);
  cv.forEach((w, i) => v.setUint32(i * 4, w, true));
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

/** Chaining value of the subtree over `data`, whose first chunk is chunk `firstChunk` of the
 *  file (non-root unless isRoot). With isRoot it is the file's digest when data is the file. */
export function subtreeCv(data: Uint8Array, firstChunk: number, isRoot = false): Uint8Array {
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK_LEN));
  if (chunks === 1) return chunkCv(data, firstChunk, isRoot);
  const left = leftSplit(chunks);
  const l = subtreeCv(data.subarray(0, left * CHUNK_LEN), firstChunk);
  const r = subtreeCv(data.subarray(left * CHUNK_LEN), firstChunk + left);
  return b3ParentTs(l, r, isRoot);
}

/** BLAKE3 of a whole buffer (hex). */
export function b3Hex(data: Uint8Array): string {
  return Buffer.from(subtreeCv(data, 0, true)).toString("hex");
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
