// Per-run tallies of files moved and failed, and the exit status they imply.
import type { EscpError } from "../errors/escp-error.ts";

export class Tally {
  files = 0;
  bytes = 0;
  /** Of bytes: held by the receiver from an earlier run, not sent again. */
  resumed = 0;
  readonly failures: EscpError[] = [];

  ok(bytes: number, resumed = 0): void {
    this.files++;
    this.bytes += bytes;
    this.resumed += resumed;
  }

  failed(err: EscpError): void {
    this.failures.push(err);
  }

  get failedCount(): number {
    return this.failures.length;
  }

  /** 0 only when every item succeeded; otherwise the most severe item's exit status. */
  exitCode(extra: EscpError[] = []): number {
    const all = [...this.failures, ...extra];
    return all.length === 0 ? 0 : Math.max(...all.map((e) => e.exitCode));
  }
}
