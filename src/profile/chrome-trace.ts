// The profile as Chrome trace-event JSON (opens in Perfetto / chrome://tracing): one process per
// side, one thread per stream, a complete event per span, a throughput counter per side and the
// verdict and totals in the metadata. Each side's times are relative to its own startNs (the two
// hosts' monotonic clocks are unrelated).
import { STAGE, stageInfo, type StageId } from "./stages.ts";
import { activeNs, dataStreamCount, stageShares } from "./shares.ts";
import type { Profile, SideProfile, Verdict } from "./types.ts";
import { verdict as computeVerdict } from "./verdict.ts";

export interface TraceEvent {
  name: string;
  ph: "M" | "X" | "C";
  pid: number;
  tid: number;
  /** µs since the side's start. */
  ts?: number;
  dur?: number;
  cat?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: "ms";
  metadata: Record<string, unknown>;
}

export const SIDE_PID = { sender: 1, receiver: 2 } as const;
export const COUNTER_BUCKET_NS = 100e6;
/** Wider buckets beyond this many, so an hours-long profile keeps a small counter track. */
const MAX_BUCKETS = 20_000;

const us = (ns: number): number => Math.round(ns) / 1000;

function metadataEvents(side: SideProfile, pid: number): TraceEvent[] {
  const ev: TraceEvent[] = [
    { name: "process_name", ph: "M", pid, tid: 0, args: { name: `escp ${side.side} (${side.host})` } },
    { name: "process_sort_index", ph: "M", pid, tid: 0, args: { sort_index: pid } },
  ];
  const tids = new Set<number>();
  for (let s = 1; s <= dataStreamCount(side); s++) tids.add(s);
  for (const sp of side.spans) tids.add(sp.stream);
  for (const tid of [...tids].sort((a, b) => a - b)) {
    ev.push({ name: "thread_name", ph: "M", pid, tid, args: { name: tid === 0 ? "control" : `stream ${tid}` } });
    ev.push({ name: "thread_sort_index", ph: "M", pid, tid, args: { sort_index: tid } });
  }
  return ev;
}

/** The stage whose bytes measure the side's throughput: the wire, else the disk. */
function throughputStage(side: SideProfile): StageId {
  const [net, disk] = side.side === "sender" ? [STAGE.send, STAGE.read] : [STAGE.recv, STAGE.write];
  return side.spans.some((s) => s.stage === net && s.bytes > 0) ? net : disk;
}

/** Bytes per bucket, each span's bytes spread over the buckets it overlaps. */
function counterEvents(side: SideProfile, pid: number): TraceEvent[] {
  const span = activeNs(side);
  if (span <= 0 || side.spans.length === 0) return [];
  const bucketNs = Math.max(COUNTER_BUCKET_NS, Math.ceil(span / MAX_BUCKETS));
  const n = Math.ceil(span / bucketNs);
  const bytes = new Float64Array(n);
  const stage = throughputStage(side);
  for (const s of side.spans) {
    if (s.stage !== stage || s.bytes === 0) continue;
    const a = s.t0Ns - side.startNs;
    const b = a + Math.max(1, s.durNs);
    const first = Math.max(0, Math.floor(a / bucketNs));
    const last = Math.min(n - 1, Math.floor((b - 1) / bucketNs));
    for (let i = first; i <= last; i++) {
      const overlap = Math.min(b, (i + 1) * bucketNs) - Math.max(a, i * bucketNs);
      bytes[i] = (bytes[i] ?? 0) + (s.bytes * Math.max(0, overlap)) / (b - a);
    }
  }
  const name = `throughput (${stageInfo(stage).label})`;
  const out: TraceEvent[] = [];
  bytes.forEach((b, i) =>
    out.push({ name, ph: "C", pid, tid: 0, ts: us(i * bucketNs), args: { "MB/s": Math.round((b / 1e6 / (bucketNs / 1e9)) * 1000) / 1000 } }),
  );
  out.push({ name, ph: "C", pid, tid: 0, ts: us(n * bucketNs), args: { "MB/s": 0 } });
  return out;
}

function spanEvents(side: SideProfile, pid: number): TraceEvent[] {
  return side.spans.map((s) => {
    const info = stageInfo(s.stage);
    return { name: info.label, cat: info.kind, ph: "X", pid, tid: s.stream, ts: us(s.t0Ns - side.startNs), dur: us(s.durNs), args: { bytes: s.bytes } };
  });
}

function sideSummary(side: SideProfile): Record<string, unknown> {
  return {
    side: side.side,
    host: side.host,
    streams: side.streams,
    activeS: activeNs(side) / 1e9,
    spans: side.spans.length,
    droppedSpans: side.dropped,
    stages: stageShares(side)
      .filter((s) => s.ns > 0 || s.count > 0)
      .map((s) => ({ stage: stageInfo(s.stage).name, label: stageInfo(s.stage).label, ns: s.ns, bytes: s.bytes, count: s.count, share: s.share })),
  };
}

export function chromeTrace(p: Profile, v: Verdict = computeVerdict(p)): ChromeTrace {
  const meta: TraceEvent[] = [];
  const timed: TraceEvent[] = [];
  const sides = [...p.sides].sort((a, b) => SIDE_PID[a.side] - SIDE_PID[b.side]);
  for (const side of sides) {
    const pid = SIDE_PID[side.side];
    meta.push(...metadataEvents(side, pid));
    const events = spanEvents(side, pid).concat(counterEvents(side, pid));
    events.sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0) || a.tid - b.tid);
    for (const e of events) timed.push(e); // not push(...events): 10⁵+ arguments overflow the stack
  }
  return {
    traceEvents: [...meta, ...timed],
    displayTimeUnit: "ms",
    metadata: {
      tool: p.tool,
      version: p.version,
      command: p.command,
      startedAt: p.startedAt,
      bytes: p.bytes,
      files: p.files,
      wallS: p.wallS,
      verdict: v,
      clocks: "each side's timestamps are µs since that side's start; the two hosts' clocks are not aligned",
      sides: sides.map(sideSummary),
    },
  };
}
