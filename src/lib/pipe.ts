// A pipe for receive(): libescp writes the file, in order, to its write end (rx_stream_fd,
// non-blocking: its writer polls), and this process reads the read end into a web
// ReadableStream. Made with pipe2(2) from libc through bun:ffi (Node's fs has no pipe()).
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, readSync } from "node:fs";
import { EscpError } from "../errors/escp-error.ts";

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const CHUNK = 256 * 1024;
const IDLE_MAX_MS = 4;

let libc: { pipe2: (fds: Int32Array, flags: number) => number } | undefined;

function pipe2(): [number, number] {
  libc ??= dlopen("libc.so.6", { pipe2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 } }).symbols;
  const fds = new Int32Array(2);
  if (libc.pipe2(fds, O_NONBLOCK | O_CLOEXEC) !== 0) throw new EscpError("E_INTERNAL", "receive: pipe2 failed (too many open files?)");
  return [fds[0]!, fds[1]!];
}

export interface StreamPipe {
  /** The descriptor libescp writes to. */
  readonly writeFd: number;
  /** What the caller reads. */
  readonly stream: ReadableStream<Uint8Array>;
  /** The writer is done (the session ended): close the write end; the reader then sees the
   * end of the data and closes the stream, or errors it with `err`. */
  writerDone(err?: EscpError): void;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

export function openStreamPipe(): StreamPipe {
  const [readFd, writeFd] = pipe2();
  let readOpen = true;
  let writeOpen = true;
  let failure: EscpError | undefined;
  const closeRead = (): void => {
    if (readOpen) closeQuietly(readFd);
    readOpen = false;
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        const buf = new Uint8Array(CHUNK);
        for (let idle = 0; readOpen; ) {
          let n: number;
          try {
            n = readSync(readFd, buf, 0, CHUNK, null);
          } catch (e) {
            if ((e as { code?: string }).code !== "EAGAIN") {
              closeRead();
              return c.error(new EscpError("E_INTERNAL", `receive: reading the pipe: ${e instanceof Error ? e.message : String(e)}`));
            }
            await Bun.sleep(Math.min(IDLE_MAX_MS, ++idle)); // nothing yet: libescp's writer sets the pace
            continue;
          }
          if (n > 0) return c.enqueue(buf.slice(0, n));
          closeRead(); // the end: the session is over and every byte read
          return failure ? c.error(failure) : c.close();
        }
      },
      cancel() {
        closeRead(); // libescp's next write gets EPIPE: E_BROKEN_PIPE, the session ends cleanly
      },
    },
    { highWaterMark: 0 },
  );
  return {
    writeFd,
    stream,
    writerDone(err) {
      failure ??= err;
      if (writeOpen) closeQuietly(writeFd);
      writeOpen = false;
    },
  };
}
