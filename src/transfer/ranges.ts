// Byte ranges of files (--shard, issue #17): the block numbers of a range, the sink's own
// check of an announced range, the range's subtrees (docs/json-output.md) and its digest.
import type { FileEntry } from "../control/messages.ts";
import { loadNative } from "../native/lib.ts";
import { ESCP_RANGE_BLOCKS_MAX } from "../native/symbols.ts";

export interface ByteRange {
  offset: number;
  length: number;
}

/** One maximal aligned power-of-two run of a range's blocks and its BLAKE3 chaining value. */
export interface Subtree {
  block: number;
  log2: number;
  cv: string;
}

/** What a verified range reports (FileOutcome.range). */
export interface RangeReport extends ByteRange {
  blockSize: number;
  subtrees: Subtree[];
  /** This session completed the file (every range in) and named it. */
  committed: boolean;
  /** The whole file's BLAKE3 when committed, else null. */
  fileDigest: Uint8Array | null;
}

/** Blocks [first, first+count) of a range in blocks of blockSize bytes. */
export function rangeBlocks(r: ByteRange, blockSize: number): { first: number; count: number } {
  return { first: r.offset / blockSize, count: Math.ceil(r.length / blockSize) };
}

/** Why an announced range breaks this side's limits (null: fine). The message checks already
 * hold it inside the file; here: aligned to our block size, a proper part of the file, and
 * whole blocks unless it ends the file. */
export function rangeProblem(e: FileEntry, blockSize: number): string | null {
  const r = e.range;
  if (r === undefined) return null;
  if (blockSize <= 0) return "a byte range in a session without resume";
  if (r.offset % blockSize !== 0) return `a range at ${r.offset}, not a multiple of the block size ${blockSize}`;
  if (r.length <= 0 || r.offset + r.length > e.size) return `a range ${r.offset}+${r.length} outside its ${e.size} bytes`;
  if (r.offset + r.length !== e.size && r.length % blockSize !== 0) return `a range of ${r.length} bytes that is not whole blocks and does not end the file`;
  if (r.offset === 0 && r.length === e.size) return "a range that is the whole file";
  if (Math.ceil(r.length / blockSize) > ESCP_RANGE_BLOCKS_MAX) return `a range of more than ${ESCP_RANGE_BLOCKS_MAX} blocks`;
  return null;
}

/** Packed subtrees (48 bytes each: u64 first block, u32 log2, u32 0, 32-byte CV) as JSON. */
export function decodeSubtrees(packed: Uint8Array): Subtree[] {
  const dv = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out: Subtree[] = [];
  for (let p = 0; p + 48 <= packed.length; p += 48) {
    out.push({ block: Number(dv.getBigUint64(p, true)), log2: dv.getUint32(p + 8, true), cv: Buffer.from(packed.subarray(p + 16, p + 48)).toString("hex") });
  }
  return out;
}

/** BLAKE3 of a small buffer (the range digest is BLAKE3 of the packed subtrees). */
export function blake3(buf: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  loadNative().escp_digest_buffer(buf.length > 0 ? buf : new Uint8Array(1), buf.length, 1 << 26, 0, out);
  return out;
}
