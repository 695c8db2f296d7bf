// The timeline's geometry: spans binned into pixel columns per lane (side × stream), each
// column drawn as its dominant stage (or left empty when mostly uncovered) and equal neighbours
// merged into one rect; the bins widen until the whole chart fits in `maxRects` rects.
import { STAGE_COUNT, type StageId } from "./stages.ts";
import { activeNs } from "./shares.ts";
import type { Profile, SideName, Span } from "./types.ts";

export interface Run {
  /** Pixels from the plot's left edge. */
  x: number;
  w: number;
  stage: StageId;
}

export interface Lane {
  side: SideName;
  host: string;
  /** 0 = control/other. */
  stream: number;
  runs: Run[];
  /** Spans that fell in this lane. */
  spans: number;
}

export interface Timeline {
  lanes: Lane[];
  /** Time shown across the plot (the longest side), ns. */
  axisNs: number;
  widthPx: number;
  /** Width of one bin; > 1 when the chart had to be coarsened to stay small. */
  binPx: number;
  rects: number;
}

export interface TimelineOptions {
  widthPx?: number;
  maxRects?: number;
}

interface LaneInput {
  side: SideName;
  host: string;
  stream: number;
  startNs: number;
  spans: Span[];
}

function laneInputs(p: Profile): LaneInput[] {
  const out: LaneInput[] = [];
  for (const side of p.sides) {
    const byStream = new Map<number, Span[]>();
    for (let s = 1; s <= side.streams; s++) byStream.set(s, []);
    for (const sp of side.spans) {
      const list = byStream.get(sp.stream);
      if (list) list.push(sp);
      else byStream.set(sp.stream, [sp]);
    }
    for (const stream of [...byStream.keys()].sort((a, b) => a - b)) {
      out.push({ side: side.side, host: side.host, stream, startNs: side.startNs, spans: byStream.get(stream) ?? [] });
    }
  }
  return out;
}

/** Dominant stage per bin (-1 = mostly uncovered). */
function binLane(lane: LaneInput, bins: number, binNs: number): Int8Array {
  const acc = new Float64Array(bins * STAGE_COUNT);
  const limit = bins * binNs;
  for (const s of lane.spans) {
    const a = Math.max(0, s.t0Ns - lane.startNs);
    const b = Math.min(limit, s.t0Ns - lane.startNs + s.durNs);
    if (b <= a) continue;
    const last = Math.min(bins - 1, Math.floor(b / binNs));
    for (let i = Math.floor(a / binNs); i <= last; i++) {
      const overlap = Math.min(b, (i + 1) * binNs) - Math.max(a, i * binNs);
      if (overlap > 0) acc[i * STAGE_COUNT + s.stage]! += overlap;
    }
  }
  const dominant = new Int8Array(bins).fill(-1);
  for (let i = 0; i < bins; i++) {
    let best = -1;
    let bestNs = 0;
    let covered = 0;
    for (let st = 0; st < STAGE_COUNT; st++) {
      const ns = acc[i * STAGE_COUNT + st]!;
      covered += ns;
      if (ns > bestNs) [best, bestNs] = [st, ns];
    }
    if (best >= 0 && bestNs >= binNs - covered) dominant[i] = best;
  }
  return dominant;
}

function runsOf(dominant: Int8Array, binPx: number): Run[] {
  const runs: Run[] = [];
  let i = 0;
  while (i < dominant.length) {
    const st = dominant[i]!;
    let j = i + 1;
    while (j < dominant.length && dominant[j] === st) j++;
    if (st >= 0) runs.push({ x: i * binPx, w: (j - i) * binPx, stage: st as StageId });
    i = j;
  }
  return runs;
}

export function timeline(p: Profile, o: TimelineOptions = {}): Timeline {
  const widthPx = o.widthPx ?? 1100;
  const maxRects = o.maxRects ?? 20_000;
  const axisNs = Math.max(1, ...p.sides.map(activeNs));
  const inputs = laneInputs(p);
  for (let binPx = 1; ; binPx *= 2) {
    const bins = Math.max(1, Math.floor(widthPx / binPx));
    const binNs = axisNs / bins;
    const lanes = inputs.map((l) => ({ side: l.side, host: l.host, stream: l.stream, spans: l.spans.length, runs: runsOf(binLane(l, bins, binNs), binPx) }));
    const rects = lanes.reduce((n, l) => n + l.runs.length, 0);
    if (rects <= maxRects || bins === 1) return { lanes, axisNs, widthPx, binPx, rects };
  }
}
