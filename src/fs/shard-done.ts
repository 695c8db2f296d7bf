// --shard-done FILE (with --shard): the entries of a shard that an earlier attempt of it already
// verified are not sent again. FILE is that attempt's --json output (a plan's out/shard-NNN.jsonl,
// where every attempt appends its lines). An entry counts as done when an ok `file` event names
// the same destination (`rel`) and the same bytes: the same range (offset and length), or for a
// whole file its current size. Anything else in FILE (progress, summaries, a wrapper's noise,
// a torn last line) is ignored. The receiver is not asked: `escp plan merge` and `b3sum -c` of
// its manifest in the destination are the end-to-end check (docs/scale-out.md).
import { readFileSync, statSync } from "node:fs";
import { describeSysError, EscpError } from "../errors/escp-error.ts";
import type { FilelistEntry } from "./filelist.ts";

/** The keys of entries an output file reports verified: `rel@offset+length` or `rel#size`. */
export function doneKeys(file: string): Set<string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new EscpError("E_USAGE", `--shard-done ${file}: cannot read: ${describeSysError(e)}`, { path: file });
  }
  const keys = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      continue; // a line cut by a kill
    }
    const e = ev as { type?: unknown; status?: unknown; rel?: unknown; bytes?: unknown; range?: { offset?: unknown; length?: unknown } };
    if (e.type !== "file" || e.status !== "ok" || typeof e.rel !== "string" || e.rel === "" || typeof e.bytes !== "number") continue;
    const r = e.range;
    if (r !== undefined && r !== null) {
      if (typeof r.offset === "number" && typeof r.length === "number") keys.add(`${e.rel}@${r.offset}+${r.length}`);
    } else keys.add(`${e.rel}#${e.bytes}`);
  }
  return keys;
}

function sizeOf(path: string): number | undefined {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/** The entries still to send, and how many were skipped. Entries without a `dst` (plain
 * paths) are always sent: their destination name is not known here. */
export function skipDone(file: string, entries: FilelistEntry[]): { entries: FilelistEntry[]; skipped: number } {
  const keys = doneKeys(file);
  const left = entries.filter((e) => {
    if (e.dst === undefined) return true;
    if (e.range !== undefined) return !keys.has(`${e.dst}@${e.range.offset}+${e.range.length}`);
    const size = sizeOf(e.src);
    return size === undefined || !keys.has(`${e.dst}#${size}`);
  });
  return { entries: left, skipped: entries.length - left.length };
}
