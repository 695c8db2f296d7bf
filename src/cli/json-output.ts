// --json: the events escp prints on stdout, one JSON object per line, instead of the progress
// bar and the text summary. The schema is stable API (docs/json-output.md, and the machine-
// readable docs/escp-json.schema.json, which the tests validate every printed line against):
// fields are only added, and an incompatible change bumps `schema_version`. The lines are
// written by progress.ts (`term.json`), the only module that writes to the terminal.
import type { ErrorCode } from "../errors/codes.ts";
import { term } from "./progress.ts";

export const JSON_SCHEMA_VERSION = 1;
/** Progress events come at most this often. */
export const PROGRESS_INTERVAL_MS = 1000;

export type Direction = "push" | "pull" | "local" | "third-party";

export interface StartEvent {
  type: "start";
  schema_version: number;
  direction: Direction;
  /** As the user named them (`host:path` for remote ones). */
  sources: string[];
  destination: string;
  /** What the source side found before sending; null when unknown. */
  total_files: number | null;
  total_bytes: number | null;
  threads: number;
  block_size: number;
  checksum: boolean;
  /** ISO 8601, UTC. */
  time: string;
}
export interface FileOkEvent {
  type: "file";
  schema_version: number;
  status: "ok";
  path: string;
  rel: string;
  bytes: number;
  resumed_bytes: number;
  /** The whole file's BLAKE3; for a --shard range: only when this session committed the file, else null. */
  digest: string | null;
  /** --shard: the byte range this entry moved (bytes = its length). */
  range?: { offset: number; length: number; block_size: number; subtrees: { block: number; log2: number; cv: string }[] };
  /** --shard, a range: this session named the file (every range was in). */
  committed?: boolean;
}
export interface FileFailedEvent {
  type: "file";
  schema_version: number;
  status: "failed";
  code: ErrorCode;
  message: string;
  path: string | null;
}
export interface NoticeEvent {
  type: "notice";
  schema_version: number;
  message: string;
}
export interface ProgressEvent {
  type: "progress";
  schema_version: number;
  bytes: number;
  total_bytes: number | null;
  files: number;
  total_files: number | null;
  rate: number;
  eta: number | null;
  elapsed: number;
}
export interface ErrorEvent {
  type: "error";
  schema_version: number;
  code: ErrorCode;
  message: string;
  exit_status: number;
}
export interface SummaryEvent {
  type: "summary";
  schema_version: number;
  files_ok: number;
  files_failed: number;
  bytes: number;
  resumed_bytes: number;
  seconds: number;
  exit_status: number;
  error: { code: ErrorCode; message: string } | null;
}
export type JsonEvent = StartEvent | FileOkEvent | FileFailedEvent | NoticeEvent | ProgressEvent | ErrorEvent | SummaryEvent;

/** What the start event says (the rest is filled in). */
export type StartInfo = Omit<StartEvent, "type" | "schema_version" | "time">;
export type SummaryInfo = Omit<SummaryEvent, "type" | "schema_version">;

/** Seconds with millisecond resolution. */
function seconds(ms: number): number {
  return Math.round(Math.max(0, ms)) / 1000;
}

export interface JsonClock {
  /** Monotonic milliseconds (performance.now()). */
  nowMs(): number;
  /** Wall clock for the start event. */
  date(): Date;
}

const realClock: JsonClock = { nowMs: () => performance.now(), date: () => new Date() };

/** Shapes and prints the events of one run. */
export class JsonEvents {
  private startMs: number;
  private lastProgressMs: number;
  private totals: { bytes: number | null; files: number | null } = { bytes: null, files: null };

  constructor(
    private readonly write: (line: string) => void = (l) => term.json(l),
    private readonly clock: JsonClock = realClock,
  ) {
    this.startMs = this.lastProgressMs = clock.nowMs();
  }

  private emit(e: JsonEvent): void {
    this.write(JSON.stringify(e));
  }

  start(i: StartInfo): void {
    this.startMs = this.lastProgressMs = this.clock.nowMs();
    this.totals = { bytes: i.total_bytes, files: i.total_files };
    this.emit({ type: "start", schema_version: JSON_SCHEMA_VERSION, ...i, sources: [...i.sources], time: this.clock.date().toISOString() });
  }

  fileOk(f: Omit<FileOkEvent, "type" | "schema_version" | "status">): void {
    this.emit({ type: "file", schema_version: JSON_SCHEMA_VERSION, status: "ok", ...f });
  }

  fileFailed(f: Omit<FileFailedEvent, "type" | "schema_version" | "status">): void {
    this.emit({ type: "file", schema_version: JSON_SCHEMA_VERSION, status: "failed", ...f });
  }

  notice(message: string): void {
    this.emit({ type: "notice", schema_version: JSON_SCHEMA_VERSION, message });
  }

  /** Called as often as the transfer loop likes; prints at most once per PROGRESS_INTERVAL_MS. */
  progress(bytes: number, files: number): boolean {
    const now = this.clock.nowMs();
    if (now - this.lastProgressMs < PROGRESS_INTERVAL_MS) return false;
    this.lastProgressMs = now;
    const elapsedMs = now - this.startMs;
    const rate = elapsedMs > 0 ? bytes / (elapsedMs / 1000) : 0;
    const total = this.totals.bytes;
    const eta = total === null || rate <= 0 ? null : seconds((Math.max(0, total - bytes) / rate) * 1000);
    this.emit({
      type: "progress",
      schema_version: JSON_SCHEMA_VERSION,
      bytes,
      total_bytes: total,
      files,
      total_files: this.totals.files,
      rate: Math.round(rate),
      eta,
      elapsed: seconds(elapsedMs),
    });
    return true;
  }

  error(code: ErrorCode, message: string, exitStatus: number): void {
    this.emit({ type: "error", schema_version: JSON_SCHEMA_VERSION, code, message, exit_status: exitStatus });
  }

  summary(s: Omit<SummaryInfo, "seconds"> & { seconds: number }): void {
    this.emit({ type: "summary", schema_version: JSON_SCHEMA_VERSION, ...s, seconds: Math.round(s.seconds * 1000) / 1000 });
  }
}
