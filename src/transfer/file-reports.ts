// -3 with --manifest or --json (SessionInit.file_reports): host1, the data source, tells the
// initiator what became of each file as it is decided, in FileReports lines on its session
// channel, ended by an empty FileReports just before the SessionSummary. This file holds both
// ends: ReportForwarder (host1's server) and fileReportItem → Reporter (the initiator).
import { cutBatches } from "../control/batch-bytes.ts";
import { encodeFileReports, MAX_REPORT_ITEMS, REPORT_ITEMS_BUDGET, reportBytes, type FileResultMsg } from "../control/messages.ts";
import { EscpError } from "../errors/escp-error.ts";
import { isErrorCode } from "../errors/codes.ts";
import { log } from "../log/logger.ts";
import type { FileOutcome, Reporter } from "./reporter.ts";

/** Reports wait at most this long on host1 before they are sent (they also go when a line fills). */
const REPORT_INTERVAL_MS = 250;
const NO_DIGEST = new Uint8Array(0);

function errnoOf(err: EscpError): number {
  return typeof err.errno === "number" && Number.isInteger(err.errno) && err.errno > 0 && err.errno <= 0x7fffffff ? err.errno : 0;
}

/**
 * host1's reporter with file_reports: passes every outcome on to `inner` (the server's log and
 * summary counts) and queues it as a FileResult (fino 0): a verified file with its bytes,
 * resumed bytes, digest, `path` as host2 placed it and `message` the name host1 read it from; a
 * failed one with its code, errno and message. `tick()` (every pass of the transfer loop) sends
 * what waited REPORT_INTERVAL_MS; `end()` sends the rest and the empty FileReports.
 */
export class ReportForwarder implements Reporter {
  private pending: FileResultMsg[] = [];
  private pendingBytes = 0;
  private lastSend: number;
  private chain: Promise<void> = Promise.resolve();
  private broken = false;
  private ended = false;

  constructor(
    private readonly inner: Reporter,
    private readonly send: (line: Uint8Array) => Promise<void>,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.lastSend = nowMs();
  }

  ok(o: FileOutcome): void {
    this.inner.ok(o);
    this.queue({ type: "fileResult", fino: 0, code: "", errno: 0, message: o.name, bytes: o.bytes, digest: o.digest, path: o.rel, resumed: o.resumed });
  }

  failed(err: EscpError): void {
    this.inner.failed(err);
    this.queue({ type: "fileResult", fino: 0, code: err.code, errno: errnoOf(err), message: err.message, bytes: 0, digest: NO_DIGEST, path: "", resumed: 0 });
  }

  notice(text: string): void {
    this.inner.notice(text);
  }

  private queue(m: FileResultMsg): void {
    if (this.ended) return;
    this.pending.push(m);
    this.pendingBytes += reportBytes(m);
    if (this.pending.length >= MAX_REPORT_ITEMS || this.pendingBytes >= REPORT_ITEMS_BUDGET) this.flush();
  }

  /** Called often: sends what has waited REPORT_INTERVAL_MS or more. */
  tick(): void {
    if (this.pending.length > 0 && this.nowMs() - this.lastSend >= REPORT_INTERVAL_MS) this.flush();
  }

  private flush(): void {
    this.lastSend = this.nowMs();
    const items = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const run of cutBatches(items, MAX_REPORT_ITEMS, reportBytes, REPORT_ITEMS_BUDGET)) this.enqueue(encodeFileReports(run));
  }

  /** Lines go out one after another, in order; once one fails (the channel is gone) the rest are
   * dropped: the initiator then learns the session's fate from the servers' ends. */
  private enqueue(line: Uint8Array): void {
    this.chain = this.chain.then(async () => {
      if (this.broken) return;
      try {
        await this.send(line);
      } catch (e) {
        this.broken = true;
        log.debug(`file reports not sent: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  /** The end of the session: the rest of the reports and the empty FileReports that ends them,
   * all handed to the channel when this resolves (the SessionSummary may follow). */
  async end(): Promise<void> {
    if (!this.ended) {
      this.flush();
      this.ended = true;
      this.enqueue(encodeFileReports([]));
    }
    await this.chain;
  }
}

/** What the initiator shows of one FileReports item: host1's names and host2's, for messages. */
export interface ReportNames {
  /** How the source file is shown (e.g. `h1:` + host1's path). */
  source(name: string): string;
  /** Prefix of a failure message by its code (a source problem happened on host1, the rest on host2). */
  failurePrefix(code: string): string;
}

/** The initiator's side: one received item becomes an outcome of `to`. */
export function applyReport(m: FileResultMsg, to: Reporter, names: ReportNames): void {
  if (m.code === "") {
    to.ok({ name: names.source(m.message), bytes: m.bytes, resumed: m.resumed, digest: m.digest, rel: m.path });
    return;
  }
  const code = isErrorCode(m.code) ? m.code : "E_REMOTE";
  to.failed(new EscpError(code, `${names.failurePrefix(m.code)}${m.message}`, m.errno > 0 ? { errno: m.errno } : {}));
}
