// The ONLY module that writes to the terminal: `term` (error/warn/info/debug lines, which
// first clear any live progress line), the sender's progress bar and final summary, and with
// --json the JSON lines (events shaped by json-output.ts, written by `term.json`).
// EScp differs: -q silences the bar and the summary, and no "Complete" line is printed.
import { AsyncLocalStorage } from "node:async_hooks";
import { writeSync } from "node:fs";

export interface TermWriter {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The progress bar is drawn only when its stream (stdout, or stderr with data on stdout) is a terminal. */
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** Terminal widths in columns (undefined: not a terminal or unknown); the bar fits the one it draws on. */
  readonly stdoutColumns?: number | undefined;
  readonly stderrColumns?: number | undefined;
}

function writeFd(fd: 1 | 2, text: string): void {
  try {
    writeSync(fd, text); // synchronous so a message printed right before exit is never lost
  } catch {
    (fd === 1 ? process.stdout : process.stderr).write(text);
  }
}

const processWriter: TermWriter = {
  stdout: (t) => writeFd(1, t),
  stderr: (t) => writeFd(2, t),
  get stdoutIsTTY(): boolean {
    return process.stdout.isTTY === true;
  },
  get stderrIsTTY(): boolean {
    return process.stderr.isTTY === true;
  },
  get stdoutColumns(): number | undefined {
    return process.stdout.columns;
  },
  get stderrColumns(): number | undefined {
    return process.stderr.columns;
  },
};

let writer: TermWriter = processWriter;

/** A line escp would have printed, and how: the library's runs take them instead (TermRoute). */
export interface TermLine {
  level: "error" | "warn" | "info" | "debug";
  text: string;
}
export type TermRoute = (line: TermLine) => void;
const routes = new AsyncLocalStorage<TermRoute>();

/** Run fn (and everything it awaits) with its terminal lines handed to route instead of
 * printed, and no progress bar or summary drawn: how a library call never prints, even when
 * several run at once in one process. */
export function withTermRoute<T>(route: TermRoute, fn: () => T): T {
  return routes.run(route, fn);
}

/** The route of the run this code belongs to, if it is a library call's. */
function routed(level: TermLine["level"], line: string): boolean {
  const r = routes.getStore();
  if (r === undefined) return false;
  r({ level, text: line.replace(/\n$/, "") });
  return true;
}
/** Width of the progress line currently on screen (0 = none). */
let liveWidth = 0;
/** --json: stdout carries JSON lines only; other stdout text goes to stderr. */
let jsonStdout = false;

/** --json: from now on stdout holds nothing but `term.json` lines (info text moves to stderr). */
export function setJsonStdout(on: boolean): void {
  jsonStdout = on;
}

/** `escp host:file -`: stdout carries the file's bytes; the bar, the summary and info lines go
 * to stderr (drawn when stderr is a terminal). */
let dataStdout = false;

export function setDataStdout(on: boolean): void {
  dataStdout = on;
}

/** Where the live bar and the summary go. */
function barOut(text: string): void {
  if (routes.getStore() !== undefined) return; // a library call draws nothing
  if (dataStdout) writer.stderr(text);
  else writer.stdout(text);
}

/** Columns of the terminal the bar draws on (80 when unknown). */
function barColumns(): number {
  const c = dataStdout ? writer.stderrColumns : writer.stdoutColumns;
  return c !== undefined && Number.isFinite(c) && c > 0 ? Math.floor(c) : 80;
}

/** Swap the terminal writer (tests); returns the previous one. */
export function setTermWriter(w: TermWriter): TermWriter {
  const prev = writer;
  writer = w;
  liveWidth = 0;
  return prev;
}

function clearLive(): void {
  if (liveWidth === 0) return;
  barOut(`\r${" ".repeat(liveWidth)}\r`);
  liveWidth = 0;
}

export const term = {
  /** A line on stderr (errors are never silenced, not even by -q). */
  error(line: string): void {
    if (routed("error", line)) return;
    clearLive();
    writer.stderr(`${line}\n`);
  },
  warn(line: string): void {
    if (routed("warn", line)) return;
    clearLive();
    writer.stderr(`${line}\n`);
  },
  /** A line on stdout (stderr with --json). Never call this in the receiver: its stdout is the
   * control channel. */
  info(line: string): void {
    if (routed("info", line)) return;
    clearLive();
    if (jsonStdout || dataStdout) writer.stderr(`${line}\n`);
    else writer.stdout(`${line}\n`);
  },
  /** One JSON line on stdout (--json; the text is one JSON value without a newline). */
  json(text: string): void {
    if (routed("info", text)) return;
    clearLive();
    writer.stdout(`${text}\n`);
  },
  debug(line: string): void {
    if (routed("debug", line)) return;
    clearLive();
    writer.stderr(`${line}\n`);
  },
  /** Text from a peer's stderr, passed through as is (-v echoes the receiver's log). */
  passthrough(text: string): void {
    if (routed("debug", text)) return;
    clearLive();
    writer.stderr(text);
  },
};

const SUFFIXES = " KMGTPE";

function human(value: number, step: number): string {
  let v = value;
  let i = 0;
  while (v >= step && i < SUFFIXES.length - 1) {
    v /= step;
    i++;
  }
  return `${v.toFixed(1).padStart(5)} ${SUFFIXES.charAt(i)}`;
}

/** `%5.1f %c` + "B" with 1024 steps: formatBytes(1536) === "  1.5 KB". */
export function formatBytes(bytes: number): string {
  return `${human(bytes, 1024)}B`;
}

/** Bytes/s as "  1.5 MB/s", or with bits as 1000-based bit/s: " 12.0 Mbit/s". */
export function formatRate(bytesPerSec: number, bits: boolean): string {
  return bits ? `${human(bytesPerSec * 8, 1000)}bit/s` : `${human(bytesPerSec, 1024)}B/s`;
}

/** MM:SS, or HH:MM:SS from one hour; `subSecond` appends ".cc" (the final summary). */
export function formatClock(seconds: number, subSecond = false): string {
  const s = Math.max(0, seconds);
  const whole = Math.floor(s);
  const two = (n: number): string => String(n).padStart(2, "0");
  const hh = Math.floor(whole / 3600);
  const mmss = `${two(Math.floor(whole / 60) % 60)}:${two(whole % 60)}`;
  const base = hh > 0 ? `${two(hh)}:${mmss}` : mmss;
  if (!subSecond) return base;
  const frac = Math.min(99, Math.floor((s - whole) * 100));
  return `${base}.${two(frac)}`;
}

const BAR_CHARS = 30;
/** Below this many cells inside the brackets the bar is dropped rather than drawn. */
const MIN_BAR_CHARS = 10;
const REDRAW_MS = 200;

/** `[=====>     ]`: `chars` (30) cells inside the brackets, an arrow head while incomplete. */
export function formatBar(fraction: number, chars = BAR_CHARS): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * chars);
  if (filled === 0) return `[${" ".repeat(chars)}]`;
  if (filled === chars) return `[${"=".repeat(chars)}]`;
  return `[${"=".repeat(filled - 1)}>${" ".repeat(chars - filled)}]`;
}

/** The widest of `tails` (most fields first) that fits in `max` columns, led by a bar of up to 30
 * cells when at least 10 fit; else the tail alone; else the narrowest tail cut to `max`. A terminal
 * wraps a line that reaches its last column, so callers pass width - 1. */
function fitLine(max: number, tails: string[], bar: ((chars: number) => string) | undefined): string {
  if (bar !== undefined) {
    for (const tail of tails) {
      const room = max - tail.length - 3; // " [" and "]"
      if (room >= MIN_BAR_CHARS) return ` ${bar(Math.min(BAR_CHARS, room))}${tail}`;
    }
  }
  for (const tail of tails) if (tail.length <= max) return tail;
  return (tails.at(-1) ?? "").slice(0, Math.max(0, max));
}

export interface ProgressOptions {
  quiet: boolean;
  bits: boolean;
  /** Injected clock for tests; defaults to performance.now(). */
  nowMs?: () => number;
}

export interface ProgressSummary {
  bytes: number;
  files: number;
  failed: number;
  seconds: number;
  /** "Received" for a pull; "Sent" otherwise. */
  verb?: "Sent" | "Received";
  /** Of bytes: held by the receiver from an earlier run, not moved again (not in the rate). */
  resumed?: number;
  /** A stream (stdin or stdout): its BLAKE3, shown on a second line (`b3sum` of the bytes). */
  digest?: string;
  /** --ioengine dummy::posix: the sender read nothing, the files written hold zeros. */
  synthetic?: boolean;
  /** --shard: byte ranges among the files, and how many files this run completed (named). */
  ranges?: { count: number; completed: number };
}

/** The sender's live bar and final summary line. */
export class Progress {
  private readonly quiet: boolean;
  private readonly bits: boolean;
  private readonly nowMs: () => number;
  private startMs = 0;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private totalBytes = 0;
  /** Terminal columns, read when the bar first draws and again on every SIGWINCH. */
  private columns: number | undefined;
  private lastBytes = 0;
  private onResize: (() => void) | undefined;

  constructor(opts: ProgressOptions) {
    this.quiet = opts.quiet;
    this.bits = opts.bits;
    this.nowMs = opts.nowMs ?? ((): number => performance.now());
  }

  start(totalBytes: number, totalFiles: number): void {
    void totalFiles; // kept for the original's API; the bar shows bytes only
    this.totalBytes = totalBytes;
    this.startMs = this.nowMs();
    this.lastDrawMs = Number.NEGATIVE_INFINITY;
  }

  /** Redraws at most every 200 ms, and only on a TTY. */
  update(bytesDone: number, filesDone: number): void {
    void filesDone;
    if (this.quiet || jsonStdout || !(dataStdout ? writer.stderrIsTTY : writer.stdoutIsTTY)) return;
    const now = this.nowMs();
    if (now - this.lastDrawMs < REDRAW_MS) return;
    this.lastDrawMs = now;
    this.lastBytes = bytesDone;
    this.watchResize();
    this.columns ??= barColumns();
    this.draw(bytesDone, now);
  }

  private draw(bytesDone: number, now: number): void {
    const line = this.barLine(bytesDone, (now - this.startMs) / 1000, this.columns);
    barOut(`\r${line}`);
    liveWidth = Math.max(liveWidth, line.length);
  }

  /** SIGWINCH: re-read the width, clear the old line and draw again at once (removed by finish). */
  private watchResize(): void {
    if (this.onResize !== undefined) return;
    this.onResize = (): void => {
      this.columns = barColumns();
      // The old line may now be wider than the terminal: clear no more than one row of it.
      liveWidth = Math.min(liveWidth, this.columns - 1);
      clearLive();
      const now = this.nowMs();
      this.lastDrawMs = now;
      this.draw(this.lastBytes, now);
    };
    process.on("SIGWINCH", this.onResize);
  }

  /** The bar text without the leading "\r" (exposed for tests): it fits `columns` - 1 characters
   * (a full-width line would wrap): the bar shrinks to 10 cells, then the byte count and the rate
   * give way to keep it; narrower still, the bar goes and the fields are dropped the same way. */
  barLine(bytesDone: number, elapsedSec: number, columns = Number.POSITIVE_INFINITY): string {
    const max = columns - 1;
    const rate = elapsedSec > 0 ? bytesDone / elapsedSec : 0;
    const bytes = formatBytes(bytesDone);
    const speed = formatRate(rate, this.bits);
    const clock = formatClock(elapsedSec);
    // A stream (stdin) has no known length: bytes, rate and time so far, no bar and no ETA.
    if (this.totalBytes < 0) {
      return fitLine(max, [` ${bytes} ${speed}  ${clock}`, ` ${bytes} ${speed}`, ` ${bytes}`], undefined);
    }
    const fraction = this.totalBytes > 0 ? bytesDone / this.totalBytes : 0;
    // Like the original, the second time is the estimated TOTAL time, not the time left.
    const eta = fraction > 0 ? formatClock(elapsedSec / fraction) : "--:--";
    const tails = [` ${bytes} ${speed}  ${clock}/${eta}`, ` ${speed}  ${clock}/${eta}`, ` ${clock}/${eta}`];
    return fitLine(max, tails, (chars) => formatBar(fraction, chars));
  }

  /** Clears the bar and prints the summary line (nothing at all with -q). */
  finish(s: ProgressSummary): void {
    if (this.onResize !== undefined) process.off("SIGWINCH", this.onResize);
    this.onResize = undefined;
    clearLive();
    if (this.quiet || jsonStdout) return;
    barOut(`${summaryLine(s, this.bits)}\n`);
    if (s.digest !== undefined) barOut(`${"BLAKE3".padEnd(8)}: ${s.digest}\n`);
  }
}

/** `Sent    : <tot>B in <N> files at <rate>B/s in <t>[, <r>B resumed][, <k> failed][, <n> ranges (<m> files completed)][, synthetic data (zeros)]`
 * (`Received:` for a pull); the rate counts only the bytes that moved. */
export function summaryLine(s: ProgressSummary, bits: boolean): string {
  const resumed = s.resumed ?? 0;
  const rate = s.seconds > 0 ? (s.bytes - resumed) / s.seconds : 0;
  const failed = s.failed > 0 ? `, ${s.failed} failed` : "";
  const held = resumed > 0 ? `, ${formatBytes(resumed)} resumed` : "";
  const files = s.files === 1 ? "file" : "files";
  const zeros = s.synthetic === true ? ", synthetic data (zeros)" : "";
  const r = s.ranges;
  const ranges =
    r && r.count > 0 ? `, ${r.count} ${r.count === 1 ? "range" : "ranges"} (${r.completed} ${r.completed === 1 ? "file" : "files"} completed)` : "";
  return `${(s.verb ?? "Sent").padEnd(8)}: ${formatBytes(s.bytes)} in ${s.files} ${files} at ${formatRate(rate, bits)} in ${formatClock(s.seconds, true)}${held}${failed}${ranges}${zeros}`;
}
