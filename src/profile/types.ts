// The profile's data shapes: spans and exact per-stage totals gathered in C on each side,
// joined by the sender into one Profile; and the Verdict the analysis derives from it.
// decodeSpans is re-exported here so callers get the wire format and the shapes from one import.
import type { StageId } from "./stages.ts";

export type { StageId } from "./stages.ts";

export type SideName = "sender" | "receiver";

/** One timed stage of one block on one stream (decoded from a 24-byte C record). */
export interface Span {
  /** CLOCK_MONOTONIC of the side that recorded it, ns. */
  t0Ns: number;
  durNs: number;
  bytes: number;
  /** 1..T data streams; 0 = control/other. */
  stream: number;
  stage: StageId;
}

/** Exact per-stream, per-stage sums (kept even when spans were dropped). */
export interface StageTotal {
  stream: number;
  stage: StageId;
  ns: number;
  bytes: number;
  count: number;
}

export interface SideProfile {
  side: SideName;
  host: string;
  /** Number of data streams (T). */
  streams: number;
  startNs: number;
  endNs: number;
  spans: Span[];
  /** Spans lost to a full ring. */
  dropped: number;
  totals: StageTotal[];
}

export interface Profile {
  version: 1;
  tool: "escp";
  /** ISO 8601. */
  startedAt: string;
  command: string;
  bytes: number;
  files: number;
  wallS: number;
  /** The sender and, unless it failed, the receiver. */
  sides: SideProfile[];
}

export type Bound = "disk-read" | "disk-write" | "network" | "cpu" | "unknown";

export interface Verdict {
  bound: Bound;
  side: SideName | null;
  stage: StageId | null;
  /** 0..1: share of stream time behind the verdict. */
  share: number;
  text: string;
}

export { decodeSpans, encodeSpans, SPAN_RECORD_BYTES } from "./span-codec.ts";
