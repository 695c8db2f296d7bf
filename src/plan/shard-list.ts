// A shard's file list: the --filelist YAML pair form, one `- ["SRC", "DST"]` item per line
// (JSON string escaping, which YAML double-quoted strings accept). A range is SRC@OFFSET+LENGTH;
// a whole file whose own name ends in @digits+digits is written SRC@0+SIZE so --shard cannot
// mistake it for a range.
import type { FilelistEntry } from "../fs/filelist.ts";
import type { Shard, ShardEntry } from "./pack.ts";

const RANGE_SUFFIX = /@(\d+)\+(\d+)$/;

/** The list file's name inside the plan directory: shards/shard-007.list. */
export function shardName(index: number): string {
  return `shard-${String(index).padStart(3, "0")}`;
}

export function entrySource(e: ShardEntry): string {
  if (e.offset !== undefined) return `${e.src}@${e.offset}+${e.length}`;
  return RANGE_SUFFIX.test(e.src) ? `${e.src}@0+${e.bytes}` : e.src;
}

/** Text of one shard's list file. */
export function shardListText(shard: Shard): string {
  const lines = shard.entries.map((e) => `- [${JSON.stringify(entrySource(e))}, ${JSON.stringify(e.dst)}]`);
  return `# escp plan ${shardName(shard.index)}: ${shard.files} files, ${shard.ranges} ranges, ${shard.bytes} bytes\n${lines.join("\n")}\n`;
}

/** A list entry's source split into the path and the range its suffix names (if any). */
export function splitRange(entry: FilelistEntry): { src: string; dst?: string; offset?: number; length?: number } {
  const m = RANGE_SUFFIX.exec(entry.src);
  const dst = entry.dst !== undefined ? { dst: entry.dst } : {};
  if (!m) return { src: entry.src, ...dst };
  return { src: entry.src.slice(0, m.index), ...dst, offset: Number(m[1]), length: Number(m[2]) };
}
