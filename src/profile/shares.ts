// Per-side stage accounting: exact totals per stage over the data streams, and each stage's
// share of stream time = stage ns / (data streams × the side's active time).
import { STAGES, type StageId } from "./stages.ts";
import type { SideProfile, StageTotal } from "./types.ts";

export interface StageShare {
  stage: StageId;
  /** Summed over data streams (stream ≥ 1). */
  ns: number;
  bytes: number;
  count: number;
  /** 0..1 of stream time (streams × active time). */
  share: number;
  /** Bytes per second while in this stage (0 when the stage took no time). */
  bytesPerSec: number;
}

/** The side's totals, or totals summed from its spans when C sent none. */
export function sideTotals(side: SideProfile): StageTotal[] {
  if (side.totals.length > 0 || side.spans.length === 0) return side.totals;
  const byKey = new Map<string, StageTotal>();
  for (const s of side.spans) {
    const key = `${s.stream}:${s.stage}`;
    const t = byKey.get(key);
    if (t) {
      t.ns += s.durNs;
      t.bytes += s.bytes;
      t.count += 1;
    } else {
      byKey.set(key, { stream: s.stream, stage: s.stage, ns: s.durNs, bytes: s.bytes, count: 1 });
    }
  }
  return [...byKey.values()];
}

/** T: the declared stream count, or the highest data-stream id seen when it is missing. */
export function dataStreamCount(side: SideProfile): number {
  if (side.streams > 0) return side.streams;
  let max = 0;
  for (const t of sideTotals(side)) max = Math.max(max, t.stream);
  return max;
}

/** The side's active time in ns: endNs - startNs, or the extent of its spans if that is empty. */
export function activeNs(side: SideProfile): number {
  const declared = side.endNs - side.startNs;
  if (declared > 0) return declared;
  if (side.spans.length === 0) return 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of side.spans) {
    lo = Math.min(lo, s.t0Ns);
    hi = Math.max(hi, s.t0Ns + s.durNs);
  }
  return Math.max(0, hi - lo);
}

/** One entry per stage, indexed by stage id; the control stream (0) is left out. */
export function stageShares(side: SideProfile): StageShare[] {
  const out: StageShare[] = STAGES.map((s) => ({ stage: s.id, ns: 0, bytes: 0, count: 0, share: 0, bytesPerSec: 0 }));
  for (const t of sideTotals(side)) {
    const e = out[t.stage];
    if (t.stream < 1 || !e) continue;
    e.ns += t.ns;
    e.bytes += t.bytes;
    e.count += t.count;
  }
  const streamNs = dataStreamCount(side) * activeNs(side);
  for (const e of out) {
    e.share = streamNs > 0 ? Math.min(1, Math.max(0, e.ns / streamNs)) : 0;
    e.bytesPerSec = e.ns > 0 ? e.bytes / (e.ns / 1e9) : 0;
  }
  return out;
}
