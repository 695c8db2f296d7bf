// Bin packing for `escp plan`: the walked files into N shards balanced by bytes and by entry
// count. A file larger than a shard's share (total/N) is cut into block-aligned byte ranges
// (each at least the share, rounded up to whole blocks, at most ESCP_RANGE_BLOCKS_MAX blocks),
// which go to different shards while there are shards without one. Pure.
import { ESCP_RANGE_BLOCKS_MAX } from "../native/symbols.ts";

export interface PlanFile {
  /** Absolute source path. */
  src: string;
  /** Destination name relative to DEST. */
  dst: string;
  size: number;
}

export interface PlannedRange {
  offset: number;
  length: number;
  shard: number;
}

export interface PackedFile extends PlanFile {
  /** Set for a whole file. */
  shard?: number;
  /** Set for a split file: its ranges in offset order, covering it exactly. */
  ranges?: PlannedRange[];
}

/** One line of a shard list: a whole file, or a range of one. */
export interface ShardEntry {
  src: string;
  dst: string;
  /** Present for a range. */
  offset?: number;
  length?: number;
  /** Bytes this entry moves. */
  bytes: number;
}

export interface Shard {
  index: number;
  entries: ShardEntry[];
  bytes: number;
  files: number;
  ranges: number;
}

export interface Packing {
  files: PackedFile[];
  shards: Shard[];
  totalBytes: number;
}

interface Item {
  file: number;
  offset?: number;
  length: number;
}

/** Where a file is cut: lengths of `pieceLen` (a block multiple), the last one the remainder. */
function cut(size: number, pieceLen: number): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  for (let off = 0; off < size; off += pieceLen) out.push({ offset: off, length: Math.min(pieceLen, size - off) });
  return out;
}

/**
 * Packs `files` into `n` shards. Items are placed largest first; each goes to the shard with the
 * fewest entries among those within max(item, blockSize) bytes of the least loaded one (ties:
 * fewer bytes, lower index), so bytes stay within twice the largest item of the mean and small
 * files spread to balance the counts. Ranges of one file share a shard only when the file has
 * more ranges than there are shards.
 */
export function packShards(files: readonly PlanFile[], n: number, blockSize: number): Packing {
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  const share = totalBytes / n;
  // a range holds at most ESCP_RANGE_BLOCKS_MAX blocks (the receiver's limit): a file that
  // would need longer pieces is cut into more ranges than shards, some sharing a shard
  const pieceLen = Math.min(ESCP_RANGE_BLOCKS_MAX * blockSize, Math.max(blockSize, Math.ceil(share / blockSize) * blockSize));
  const items: Item[] = [];
  files.forEach((f, i) => {
    if (n > 1 && f.size > share && f.size > pieceLen) for (const r of cut(f.size, pieceLen)) items.push({ file: i, ...r });
    else items.push({ file: i, length: f.size });
  });
  items.sort((a, b) => b.length - a.length || a.file - b.file || (a.offset ?? 0) - (b.offset ?? 0));
  const shards: Shard[] = Array.from({ length: n }, (_, index) => ({ index, entries: [], bytes: 0, files: 0, ranges: 0 }));
  const holding = new Map<number, Set<number>>(); // split file → shards holding one of its ranges
  const packed: PackedFile[] = files.map((f) => ({ ...f }));
  for (const it of items) {
    const used = it.offset !== undefined ? (holding.get(it.file) ?? new Set<number>()) : undefined;
    const skip = used !== undefined && used.size < n ? used : undefined; // shards holding a range of it
    let least = Number.POSITIVE_INFINITY;
    for (const s of shards) if (s.bytes < least && skip?.has(s.index) !== true) least = s.bytes;
    const limit = least + Math.max(it.length, blockSize);
    let best: Shard | undefined;
    for (const s of shards) {
      if (s.bytes > limit || skip?.has(s.index) === true) continue;
      const count = s.entries.length;
      if (best === undefined || count < best.entries.length || (count === best.entries.length && s.bytes < best.bytes)) best = s;
    }
    const shard = best as Shard;
    const f = files[it.file] as PlanFile;
    const pf = packed[it.file] as PackedFile;
    shard.bytes += it.length;
    if (it.offset === undefined) {
      shard.entries.push({ src: f.src, dst: f.dst, bytes: f.size });
      shard.files++;
      pf.shard = shard.index;
    } else {
      shard.entries.push({ src: f.src, dst: f.dst, offset: it.offset, length: it.length, bytes: it.length });
      shard.ranges++;
      (pf.ranges ??= []).push({ offset: it.offset, length: it.length, shard: shard.index });
      holding.set(it.file, (used ?? new Set<number>()).add(shard.index));
    }
  }
  for (const pf of packed) pf.ranges?.sort((a, b) => a.offset - b.offset);
  for (const s of shards) s.entries.sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : (a.offset ?? 0) - (b.offset ?? 0)));
  return { files: packed, shards, totalBytes };
}
