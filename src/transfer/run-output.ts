// What the initiator shows of one run, whichever the direction: the failures on stderr and the
// tally (TallyReporter), the progress bar and the text summary, and the outputs the user asked
// for — `--json` events on stdout and the `--manifest` file. main.ts creates it, the transfer
// feeds it, and `end()` (after success or any failure) prints the JSON summary and commits the
// manifest.
import type { Options } from "../config/options.ts";
import { JsonEvents, type Direction } from "../cli/json-output.ts";
import { Progress, setJsonStdout, term, type ProgressSummary } from "../cli/progress.ts";
import { EscpError } from "../errors/escp-error.ts";
import { log } from "../log/logger.ts";
import { ManifestWriter } from "./manifest.ts";
import { hex, isZero } from "./pump.ts";
import { TallyReporter, type FileOutcome, type Reporter } from "./reporter.ts";

/** The session's totals when another side counted them (-3: host1's summary). */
export interface RunCounts {
  filesOk: number;
  filesFailed: number;
  bytes: number;
  resumed: number;
}

export interface RunStart {
  direction: Direction;
  sources: string[];
  destination: string;
  /** What the source side found; null when unknown. */
  files: number | null;
  bytes: number | null;
  /** Standard input or output is one end: the summary shows the stream's digest. */
  stream?: boolean;
}

/** `host:path` (or a local path) as the user would write it. */
export function showEndpoint(e: { host?: string; user?: string }, path: string): string {
  if (e.host === undefined) return path;
  const host = e.host.includes(":") ? `[${e.host}]` : e.host;
  return `${e.user ? `${e.user}@` : ""}${host}:${path}`;
}

/** A name the manifest may list: relative, '/'-separated, no empty, "." or ".." component (it
 * comes from the peer: a lying one must not make `b3sum -c` read outside the destination). */
export function listableRel(rel: string): boolean {
  if (rel === "" || rel.startsWith("/") || rel.includes("\0")) return false;
  return rel.split("/").every((c) => c !== "" && c !== "." && c !== "..");
}

/** The error a run that failed without a fatal error ends with (--json): the most severe
 * failure's code (the one the exit status comes from), how many there were and the first. */
export function failuresError(failures: readonly EscpError[]): EscpError | undefined {
  if (failures.length === 0) return undefined;
  const worst = failures.reduce((a, b) => (b.exitCode > a.exitCode ? b : a));
  if (failures.length === 1) return worst;
  return new EscpError(worst.code, `${failures.length} failures; the first: ${failures[0]?.message ?? worst.message}`);
}

/** Who else follows the run (the library's Transfer: progress events). */
export interface RunHooks {
  start?(s: RunStart): void;
  /** Every pass of the transfer loop: bytes and files so far. */
  tick?(bytes: number, files: number): void;
}

export class RunOutput {
  readonly reporter: TallyReporter;
  private readonly json: JsonEvents | undefined;
  private manifest: ManifestWriter | undefined;
  private readonly progress: Progress;
  private readonly t0: number;
  private counts: RunCounts | undefined;
  private ended = false;
  private unlisted = 0; // verified files without a listable name (not in the manifest)
  private readonly ranges = { count: 0, completed: 0 }; // --shard: ranges verified, files they completed
  private stream = false; // standard input or output is one end
  private streamDigest: string | undefined; // its BLAKE3, once verified

  constructor(
    private readonly o: Options,
    private readonly nowMs: () => number = () => performance.now(),
    private readonly hooks: RunHooks = {},
  ) {
    this.t0 = nowMs();
    if (o.json) {
      setJsonStdout(true);
      this.json = new JsonEvents();
    }
    this.progress = new Progress({ quiet: o.quiet || o.json, bits: o.bits });
    const also: Reporter = {
      ok: (x) => this.ok(x),
      failed: (e) => this.json?.fileFailed({ code: e.code, message: e.message, path: e.path ?? null }),
      notice: (t) => this.json?.notice(t),
    };
    this.reporter = new TallyReporter(also);
  }

  /** --manifest: open its temporary now, before any data moves (E_USAGE when it cannot be). */
  openManifest(): void {
    if (this.o.manifest === undefined || this.manifest) return;
    this.manifest = ManifestWriter.open(this.o.manifest, this.nowMs);
  }

  private ok(x: FileOutcome): void {
    if (x.range !== undefined) {
      this.ranges.count++;
      if (x.range.committed) this.ranges.completed++;
    }
    const digest = this.o.nochecksum || x.digest.length !== 32 || isZero(x.digest) ? null : hex(x.digest);
    const rel = listableRel(x.rel) ? x.rel : "";
    if (this.manifest && digest !== null) {
      if (rel !== "") this.manifest.add(x.digest, rel);
      else if (this.unlisted++ === 0) {
        const why = x.rel === "" ? "did not say where it landed" : `named it ${JSON.stringify(x.rel)}, not a relative path below the destination`;
        log.warn(`--manifest ${this.o.manifest}: ${x.name} is not listed (the receiver ${why})`);
      }
    }
    const r = x.range;
    const ranged =
      r === undefined ? {} : { range: { offset: r.offset, length: r.length, block_size: r.blockSize, subtrees: r.subtrees }, committed: r.committed };
    this.json?.fileOk({ path: x.name, rel, bytes: x.bytes, resumed_bytes: x.resumed, digest, ...ranged });
    if (this.stream && digest !== null) this.streamDigest = digest;
  }

  /** --ioengine dummy::posix: a dummy sender feeds a receiver that writes (zeros, at the sources' sizes). */
  private get synthetic(): boolean {
    return this.o.ioengine === "dummy" && this.o.ioengineRx === "posix";
  }

  /** Data is about to move: the JSON start event and the progress bar. */
  start(s: RunStart): void {
    this.stream = s.stream === true;
    if (this.synthetic) {
      log.warn("--ioengine dummy::posix: the sender reads no file; each destination file is written with zeros of its source's size");
    }
    this.hooks.start?.(s);
    this.json?.start({
      direction: s.direction,
      sources: s.sources,
      destination: s.destination,
      total_files: s.files,
      total_bytes: s.bytes,
      threads: this.o.threads,
      block_size: this.o.blocksize,
      checksum: !this.o.nochecksum,
    });
    this.progress.start(s.bytes ?? -1, s.files ?? 0); // null: unknown (stdin, -3): no bar, no ETA
  }

  /** Every pass of the transfer loop: the bar (≤ 5/s), JSON progress (≤ 1/s), manifest lines (≥ 1/s). */
  tick(bytes: number, files: number): void {
    this.hooks.tick?.(bytes, files);
    this.progress.update(bytes, files);
    this.json?.progress(bytes, files);
    this.manifest?.poll();
  }

  /** The text summary line (nothing with -q or --json). */
  summaryLine(s: ProgressSummary): void {
    const t0 = this.synthetic ? { ...s, synthetic: true } : s;
    const t = this.ranges.count > 0 ? { ...t0, ranges: { ...this.ranges } } : t0;
    this.progress.finish(this.streamDigest === undefined ? t : { ...t, digest: this.streamDigest });
  }

  /** A stream's BLAKE3 (standard input or output at one end), once verified. */
  get digest(): string | undefined {
    return this.streamDigest;
  }

  /** -3: host1 counted the session; its numbers go in the JSON summary. */
  setCounts(c: RunCounts): void {
    this.counts = c;
  }

  /**
   * The end of the run, success or failure: commit the manifest, print the JSON error (when
   * `err`, the run's fatal error) and summary. Returns the exit status (a manifest that could
   * not be written turns a 0 into 1). Synchronous: it also runs on SIGINT/SIGTERM.
   */
  end(status: number, err?: EscpError): number {
    if (this.ended) return status;
    this.ended = true;
    let exit = status;
    let fatal = err;
    const why = this.manifest?.commit();
    if (why !== undefined) {
      const merr = new EscpError("E_WRITE", `--manifest ${this.o.manifest}: ${why}`);
      term.error(`escp: ${merr.message}`);
      if (exit === 0) exit = merr.exitCode;
      fatal ??= merr;
    }
    if (this.json) {
      if (!fatal && exit !== 0) fatal = failuresError(this.reporter.tally.failures);
      if (fatal) this.json.error(fatal.code, fatal.message, exit);
      const t = this.reporter.tally;
      const c = this.counts ?? { filesOk: t.files, filesFailed: t.failedCount, bytes: t.bytes, resumed: t.resumed };
      this.json.summary({
        files_ok: c.filesOk,
        files_failed: c.filesFailed,
        bytes: c.bytes,
        resumed_bytes: c.resumed,
        seconds: (this.nowMs() - this.t0) / 1000,
        exit_status: exit,
        error: fatal ? { code: fatal.code, message: fatal.message } : null,
      });
    }
    return exit;
  }
}

/** A run that failed before its options were known (a bad command line): with --json among the
 * arguments, still an error line and a summary. Never for --server (its stdout is a channel). */
export function jsonUsageFailure(argv: readonly string[], err: EscpError): void {
  const end = argv.indexOf("--");
  const opts = end < 0 ? argv : argv.slice(0, end);
  if (!opts.includes("--json") || opts.includes("--server")) return;
  setJsonStdout(true);
  const json = new JsonEvents();
  json.error(err.code, err.message, err.exitCode);
  json.summary({
    files_ok: 0,
    files_failed: 0,
    bytes: 0,
    resumed_bytes: 0,
    seconds: 0,
    exit_status: err.exitCode,
    error: { code: err.code, message: err.message },
  });
}
