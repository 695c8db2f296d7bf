// Upper bounds on the encoded size of batched control messages, so batches are cut by the bytes
// they really take (UTF-8, FlatBuffers padding and vtables) and stay within ESCP_CTL_MAX.
import { ESCP_CTL_MAX } from "../native/symbols.ts";
import type { BundleResultMsg, FileDoneMsg, FileEntry, FileResultMsg, ResumeDecisionMsg, ResumeOfferMsg } from "./messages.ts";

/** Envelope, union and batch-table headers, the vector length and the builder's final alignment. */
const MESSAGE_FIXED = 128;
/** A FileEntry besides its strings: 81 field bytes + ≤ 55 alignment + soffset + 36-byte vtable + vector slot ≈ 180. */
const ENTRY_FIXED = 200;
/** A FileDone/FileResult besides its strings: ≈ 103 for the table and its vector slot + ≤ 39 for the digest. */
const VERDICT_FIXED = 160;

/** Payload bytes one control message may hold for its items (the rest is MESSAGE_FIXED). */
export const CONTROL_ITEMS_BUDGET = ESCP_CTL_MAX - MESSAGE_FIXED;

/** At most what a FlatBuffers string takes: u32 length, UTF-8 bytes, NUL, ≤ 3 padding. */
export function stringBytes(s: string | undefined): number {
  return s === undefined ? 0 : Buffer.byteLength(s, "utf8") + 8;
}

export function fileEntryBytes(f: FileEntry): number {
  return ENTRY_FIXED + stringBytes(f.name) + stringBytes(f.dst) + stringBytes(f.target) + (f.xattrs === undefined ? 0 : f.xattrs.length + 8);
}

export function verdictBytes(m: FileDoneMsg | FileResultMsg): number {
  return VERDICT_FIXED + stringBytes(m.code) + stringBytes(m.message) + (m.type === "fileResult" ? stringBytes(m.path) : 0);
}

/** A ResumeOffer or ResumeDecision: its table, the held bytes (a ubyte vector) and strings. */
export function resumeBytes(m: ResumeOfferMsg | ResumeDecisionMsg): number {
  if (m.type === "resumeDecision") return VERDICT_FIXED + stringBytes(m.notice);
  return VERDICT_FIXED + m.held.length + 8 + stringBytes(m.code) + stringBytes(m.message) + stringBytes(m.notice);
}

/** A BundleResult: its table, the digests (a ubyte vector) and each failure's table and strings. */
export function bundleResultBytes(m: BundleResultMsg): number {
  return VERDICT_FIXED + m.digests.length + 8 + m.failures.reduce((sum, f) => sum + VERDICT_FIXED + stringBytes(f.code) + stringBytes(f.message), 0);
}

/** Encoded size bound of a whole batch message holding `items`. */
export function batchBytes<T>(items: readonly T[], sizeOf: (t: T) => number): number {
  return items.reduce((sum, t) => sum + sizeOf(t), MESSAGE_FIXED);
}

/**
 * Cuts `items` into runs of at most `maxItems` whose sizes sum to at most `budget` (an item
 * larger than the budget alone still travels alone: the native send then names the problem).
 */
export function* cutBatches<T>(items: readonly T[], maxItems: number, sizeOf: (t: T) => number, budget = CONTROL_ITEMS_BUDGET): Generator<T[]> {
  let run: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (run.length > 0 && (run.length >= maxItems || bytes + size > budget)) {
      yield run;
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += size;
  }
  if (run.length > 0) yield run;
}
