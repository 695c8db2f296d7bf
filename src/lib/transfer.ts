// The handle every library call returns: awaitable (the result), with progress as an async
// iterator, as events and as the onProgress option. It runs the transfer through runTransfer
// (the CLI's path) with a quiet RunOutput and the run's terminal lines routed into the result.
import type { RunConfig } from "../config/load.ts";
import type { TermLine } from "../cli/progress.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { RunOutput } from "../transfer/run-output.ts";
import type { TransferOptions, TransferProgress } from "./options.ts";
import { runTransfer } from "./run.ts";

/** How a transfer that ran to its end came out (a session failure rejects instead). */
export interface TransferResult {
  /** exitCode === 0: every file arrived and verified. */
  ok: boolean;
  /** The exit status the CLI would have had: 0, 1 (a file failed), 11 (E_BROKEN_PIPE), … */
  exitCode: number;
  /** Files verified. */
  files: number;
  /** Their bytes. */
  bytes: number;
  seconds: number;
  /** Per-file failures (a source unreadable, a file not writable, …), each with its code. */
  failures: EscpError[];
  /** Notices and warnings the CLI would have printed (a skipped dangling link, …). */
  warnings: string[];
  /** send() and receive(): the stream's BLAKE3 in hex (b3sum of its bytes), when verified. */
  digest?: string;
}

const PROGRESS_EVERY_MS = 100;
const WARNINGS_KEPT = 1000;

type Listener = (p: TransferProgress) => void;

export class Transfer implements PromiseLike<TransferResult> {
  private readonly done: Promise<TransferResult>;
  private readonly listeners: Listener[] = [];
  private latest: TransferProgress | undefined;
  private seq = 0; // progress events so far (the iterator hands out each latest one once)
  private waiters: (() => void)[] = [];
  private settled = false;
  private totalBytes: number | null = null;
  private lastEmit = Number.NEGATIVE_INFINITY;
  private readonly t0 = performance.now();

  /** `prepare` builds the configuration (it may throw E_USAGE: the Transfer then rejects);
   * `finish` runs once the transfer settled, whatever the outcome (close descriptors). */
  constructor(
    prepare: () => RunConfig,
    private readonly options: TransferOptions,
    finish?: (r: TransferResult | EscpError) => void,
  ) {
    this.done = this.run(prepare)
      .then(
        (r) => {
          finish?.(r);
          return r;
        },
        (e: unknown) => {
          const err = toEscpError(e);
          finish?.(err);
          throw err;
        },
      )
      .finally(() => this.settle());
    this.done.catch(() => undefined); // an unobserved failure is the caller's to see, not a crash
  }

  private async run(prepare: () => RunConfig): Promise<TransferResult> {
    await Promise.resolve(); // listeners and the iterator can be attached before anything moves
    const cfg = prepare();
    const warnings: string[] = [];
    const route = (l: TermLine): void => {
      if ((l.level === "warn" || l.level === "info") && warnings.length < WARNINGS_KEPT) warnings.push(l.text.replace(/^escp: (warning: )?/, ""));
    };
    const out = new RunOutput(cfg.opts, () => performance.now(), {
      start: (s) => void (this.totalBytes = s.bytes),
      tick: (bytes, files) => this.report(bytes, files, false),
    });
    const status = out.end(await runTransfer(cfg, out, route));
    const t = out.reporter.tally;
    this.report(t.bytes, t.files, true);
    const digest = out.digest;
    return {
      ok: status === 0,
      exitCode: status,
      files: t.files,
      bytes: t.bytes,
      seconds: (performance.now() - this.t0) / 1000,
      failures: [...t.failures],
      warnings,
      ...(digest !== undefined ? { digest } : {}),
    };
  }

  private report(bytes: number, files: number, last: boolean): void {
    const now = performance.now();
    if (!last && now - this.lastEmit < PROGRESS_EVERY_MS) return;
    this.lastEmit = now;
    const p: TransferProgress = { bytes, files, totalBytes: this.totalBytes, seconds: (now - this.t0) / 1000 };
    this.latest = p;
    this.seq++;
    for (const w of this.waiters.splice(0)) w();
    for (const l of [this.options.onProgress, ...this.listeners]) {
      try {
        l?.(p);
      } catch {
        // a listener's bug must not break the transfer
      }
    }
  }

  private settle(): void {
    this.settled = true;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Follow progress: `transfer.on("progress", (p) => …)`. */
  on(event: "progress", listener: Listener): this {
    if (event !== "progress") throw new EscpError("E_USAGE", `Transfer.on: unknown event ${JSON.stringify(event)} (only "progress")`);
    this.listeners.push(listener);
    return this;
  }

  /** Progress as an async iterator (`for await (const p of transfer.progress)`): the latest state each time one is asked for (older
   * states are skipped, so a slow reader holds no backlog); it ends when the transfer does. */
  get progress(): AsyncIterable<TransferProgress> {
    let seen = 0;
    const next = async (): Promise<IteratorResult<TransferProgress>> => {
      while (this.seq === seen && !this.settled) await new Promise<void>((r) => this.waiters.push(r));
      if (this.seq === seen || this.latest === undefined) return { done: true, value: undefined };
      seen = this.seq;
      return { done: false, value: this.latest };
    };
    return { [Symbol.asyncIterator]: () => ({ next }) };
  }

  then<A = TransferResult, B = never>(
    onOk?: ((r: TransferResult) => A | PromiseLike<A>) | null,
    onErr?: ((e: EscpError) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.done.then(onOk, onErr as ((e: unknown) => B | PromiseLike<B>) | null | undefined);
  }

  catch<B = never>(onErr: (e: EscpError) => B | PromiseLike<B>): Promise<TransferResult | B> {
    return this.done.catch(onErr as (e: unknown) => B | PromiseLike<B>);
  }

  finally(f: () => void): Promise<TransferResult> {
    return this.done.finally(f);
  }
}
