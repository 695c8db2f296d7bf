// How a data role tells the outcome of each file. On the initiator the outcome is printed
// and tallied (the exit status comes from the tally); on a server it is only logged, since
// the initiator hears of every file through the protocol and reports it itself.
import { term } from "../cli/progress.ts";
import type { EscpError } from "../errors/escp-error.ts";
import { log } from "../log/logger.ts";
import { Tally } from "./summary.ts";

export interface Reporter {
  /** A file arrived and verified (name as users see it). */
  ok(name: string, bytes: number): void;
  /** A file, directory or source failed; the message names it and the cause. */
  failed(err: EscpError): void;
}

/** The initiator's: one line per failure on the terminal, counts for the summary. */
export class TallyReporter implements Reporter {
  readonly tally = new Tally();

  ok(name: string, bytes: number): void {
    this.tally.ok(bytes);
    log.debug(`verified ${name}`, { bytes });
  }

  failed(err: EscpError): void {
    this.tally.failed(err);
    term.error(`escp: ${err.message}`);
  }
}

/** A server's: the log only (JSON lines with --logfile; stderr with -v), and the counts and
 * first failures for a SessionSummary (-3, where the initiator has no data role). */
export class LogReporter implements Reporter {
  okCount = 0;
  failedCount = 0;
  bytes = 0;
  readonly failures: { code: string; message: string }[] = [];

  /** keep: failures kept for a SessionSummary; verb: what "ok" means here ("committed" for a
   * receiving server, "verified" for a sending one). */
  constructor(private readonly keep = 0, private readonly verb = "committed") {}

  ok(name: string, bytes: number): void {
    this.okCount++;
    this.bytes += bytes;
    log.debug(`${this.verb} ${name}`, { bytes });
  }

  failed(err: EscpError): void {
    this.failedCount++;
    if (this.failures.length < this.keep) this.failures.push({ code: err.code, message: err.message });
    log.warn(err.message);
  }
}
