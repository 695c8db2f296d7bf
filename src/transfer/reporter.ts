// How a data role tells the outcome of each file. On the initiator the outcome is printed
// and tallied (the exit status comes from the tally); on a server it is only logged, since
// the initiator hears of every file through the protocol and reports it itself.
import { term } from "../cli/progress.ts";
import type { EscpError } from "../errors/escp-error.ts";
import { log } from "../log/logger.ts";
import { Tally } from "./summary.ts";
import type { RangeReport } from "./ranges.ts";

/** A file that arrived and verified. */
export interface FileOutcome {
  /** As users see it (the source path on a sending side, the destination on a receiving one). */
  name: string;
  /** The file's size. */
  bytes: number;
  /** Of bytes: held by the receiver from an earlier run, not sent again. */
  resumed: number;
  /** Its BLAKE3 (32 bytes; empty without checksums). */
  digest: Uint8Array;
  /** Where it landed relative to the destination root; "" when the sink did not say. */
  rel: string;
  /** --shard: a byte range of the file (bytes = its length; digest = the whole file's when committed, else empty). */
  range?: RangeReport;
}

/** "range 0+64 MiB of big.bin verified (file completed by this session)". */
export function rangeLine(o: FileOutcome): string | undefined {
  const r = o.range;
  if (r === undefined) return undefined;
  return `range ${r.offset}+${r.length} of ${o.name} verified${r.committed ? " (file completed by this session)" : " (file not complete yet)"}`;
}

export interface Reporter {
  /** A file arrived and verified. */
  ok(o: FileOutcome): void;
  /** A file, directory or source failed; the message names it and the cause. */
  failed(err: EscpError): void;
  /** Something the user should know that is not a failure (an old partial that could not be
   * resumed), one line. */
  notice(text: string): void;
}

function sizeFields(o: FileOutcome): { bytes: number; resumed?: number } {
  return o.resumed > 0 ? { bytes: o.bytes, resumed: o.resumed } : { bytes: o.bytes };
}

/** The initiator's: one line per failure on the terminal, counts for the summary; each outcome
 * also goes to `also` (--manifest, --json). */
export class TallyReporter implements Reporter {
  readonly tally = new Tally();

  constructor(private readonly also?: Reporter) {}

  ok(o: FileOutcome): void {
    this.tally.ok(o.bytes, o.resumed);
    log.debug(rangeLine(o) ?? `verified ${o.name}`, sizeFields(o));
    this.also?.ok(o);
  }

  failed(err: EscpError): void {
    this.tally.failed(err);
    term.error(`escp: ${err.message}`);
    this.also?.failed(err);
  }

  notice(text: string): void {
    log.record(text);
    term.warn(`escp: ${text}`);
    this.also?.notice(text);
  }
}

/** A server's: the log only (JSON lines with --logfile; stderr with -v), and the counts and
 * first failures for a SessionSummary (-3, where the initiator has no data role). */
export class LogReporter implements Reporter {
  okCount = 0;
  failedCount = 0;
  bytes = 0;
  resumed = 0;
  readonly failures: { code: string; message: string }[] = [];

  /** keep: failures kept for a SessionSummary; verb: what "ok" means here ("committed" for a
   * receiving server, "verified" for a sending one). */
  constructor(
    private readonly keep = 0,
    private readonly verb = "committed",
  ) {}

  ok(o: FileOutcome): void {
    this.okCount++;
    this.bytes += o.bytes;
    this.resumed += o.resumed;
    log.debug(rangeLine(o) ?? `${this.verb} ${o.name}`, sizeFields(o));
  }

  failed(err: EscpError): void {
    this.failedCount++;
    if (this.failures.length < this.keep) this.failures.push({ code: err.code, message: err.message });
    log.warn(err.message);
  }

  notice(text: string): void {
    log.record(text);
  }
}
