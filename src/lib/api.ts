// copy, send and receive: the library's three calls (docs/api.md). Each builds the run
// configuration the CLI would build for the same command line (libConfig → configFrom) and
// returns a Transfer running it through runTransfer, the CLI's own path.
import { EscpError } from "../errors/escp-error.ts";
import { asChunks, BlockFeed } from "../transfer/stream-feed.ts";
import { libConfig, type TransferOptions } from "./options.ts";
import { openStreamPipe } from "./pipe.ts";
import { Transfer, type TransferResult } from "./transfer.ts";

function noDash(what: string, path: string, instead: string): void {
  if (path === "-")
    throw new EscpError("E_USAGE", `${what}: "-" (standard ${what === "copy" ? "input or output" : "input"}) is the command line's; use ${instead}`);
}

function strings(what: string, v: unknown): string[] {
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === "string" && x !== "")) {
    throw new EscpError("E_USAGE", `${what}: sources must be a non-empty path or array of paths`);
  }
  return list as string[];
}

/** Copy files or trees (recursive: true) to dest, as `escp [options] SOURCE… DEST` does:
 * local paths or `[user@]host:path` / `scp://` endpoints on either side. */
export function copy(sources: string | string[], dest: string, options: TransferOptions = {}): Transfer {
  return new Transfer(() => {
    const list = strings("copy", sources);
    for (const s of [...list, dest]) noDash("copy", s, "send() or receive()");
    return libConfig(options, [...list, dest], options.signal ? { signal: options.signal } : {});
  }, options);
}

/** Send bytes produced in this process (an async generator, any AsyncIterable<Uint8Array>, or
 * a web ReadableStream) to dest, which names the file to create (`host:path` or a local path).
 * Its length need not be known; the result's digest is b3sum of the bytes. */
export function send(data: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>, dest: string, options: TransferOptions = {}): Transfer {
  let feed: BlockFeed | undefined;
  return new Transfer(
    () => {
      noDash("send", dest, "a path");
      feed = new BlockFeed(asChunks(data));
      return libConfig(options, ["-", dest], { feed, ...(options.signal ? { signal: options.signal } : {}) });
    },
    options,
    () => feed?.stop(),
  );
}

/** What receive() returns: the file's bytes, in order, and how the transfer came out. */
export interface Received {
  /** The file's bytes. It errors with the EscpError when the transfer fails; cancelling it
   * stops the transfer (E_BROKEN_PIPE among the result's failures). */
  stream: ReadableStream<Uint8Array>;
  /** The transfer: awaitable, with progress. */
  transfer: Transfer;
  /** The same as `transfer`, as a plain promise. */
  result: Promise<TransferResult>;
}

/** Receive one file (`host:path`, or a local path) as a ReadableStream. */
export function receive(source: string, options: TransferOptions = {}): Received {
  const pipe = openStreamPipe();
  const transfer = new Transfer(
    () => {
      noDash("receive", source, "a path");
      return libConfig(options, [source, "-"], { stdoutFd: pipe.writeFd, ...(options.signal ? { signal: options.signal } : {}) });
    },
    options,
    (r) => {
      const err =
        r instanceof EscpError ? r : r.ok ? undefined : (r.failures[0] ?? new EscpError("E_INTERNAL", `receive: exit status ${r.exitCode} without a failure`));
      pipe.writerDone(err);
    },
  );
  const result = Promise.resolve(transfer);
  result.catch(() => undefined);
  return { stream: pipe.stream, transfer, result };
}
