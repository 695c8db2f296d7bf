// A stream produced in this process (the library's send(): an AsyncIterable<Uint8Array> or a
// web ReadableStream) fed to libescp through the block API (escp.h "streams"): claim a pool
// buffer, copy the producer's bytes in, submit it per full block, the last one short, then
// end the stream with its length. The pool (ESCP_POOL_BLOCKS x T buffers) is the back-pressure:
// while none is free the producer is not asked for more, so memory stays bounded whatever its
// pace. JS polls the pool (C threads never call into JS).
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { EscpError } from "../errors/escp-error.ts";
import type { NativeSession } from "../native/session.ts";

/** What the data source needs of an in-process stream. */
export interface StreamFeed {
  /** Open stream fino on native and start feeding it (returns at once; the feeding runs on). */
  start(native: NativeSession, fino: number): void;
  /** Why the producer failed (E_SOURCE_UNREADABLE), once it did: the session then ends. */
  readonly failure: EscpError | undefined;
  /** Stop asking the producer for data (the session ended); idempotent. */
  stop(): void;
}

/** Polls of an empty pool that only yield to the event loop, before sleeping 1 ms per poll. */
const SPIN_POLLS = 16;

const yieldOnce = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The session stopped while the feed waited: nothing more may touch its buffers. */
class Stopped extends Error {}

export class BlockFeed implements StreamFeed {
  failure: EscpError | undefined;
  private stopped = false;
  /** Bytes submitted so far (the stream's length once it ended). */
  submitted = 0;

  constructor(
    private readonly source: AsyncIterable<Uint8Array>,
    private readonly what = "send",
  ) {}

  start(native: NativeSession, fino: number): void {
    native.txStreamOpen(fino);
    void this.pump(native, fino).catch((e: unknown) => {
      if (e instanceof Stopped || this.stopped || !native.open) return;
      this.failure ??=
        e instanceof EscpError
          ? e
          : new EscpError("E_SOURCE_UNREADABLE", `${this.what}: the data source failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private live(native: NativeSession): boolean {
    return !this.stopped && native.open;
  }

  /** A free pool buffer, waiting (polling) until one is. */
  private async claim(native: NativeSession): Promise<Pointer> {
    for (let polls = 0; ; polls++) {
      if (!this.live(native)) throw new Stopped();
      const p = native.txBlockClaim();
      if (p !== null) return p;
      if (polls < SPIN_POLLS) await yieldOnce();
      else await Bun.sleep(1);
    }
  }

  private async pump(native: NativeSession, fino: number): Promise<void> {
    const B = native.blockSize;
    let ptr: Pointer | null = null; // the buffer being filled (C memory: only touched while live)
    let buf: Uint8Array | null = null;
    let fill = 0;
    let offset = 0;
    try {
      for await (const chunk of this.source) {
        if (!this.live(native)) return; // for-await's return() tells the producer to stop
        if (!(chunk instanceof Uint8Array)) {
          throw new EscpError("E_SOURCE_UNREADABLE", `${this.what}: the data source yielded ${chunk === null ? "null" : typeof chunk}, not a Uint8Array`);
        }
        for (let pos = 0; pos < chunk.length; ) {
          if (ptr === null || buf === null) {
            ptr = await this.claim(native);
            buf = new Uint8Array(toArrayBuffer(ptr, 0, B));
            fill = 0;
          }
          const n = Math.min(B - fill, chunk.length - pos);
          buf.set(chunk.subarray(pos, pos + n), fill);
          fill += n;
          pos += n;
          if (fill === B) {
            native.txBlockSubmit(fino, ptr, offset, B);
            offset += B;
            ptr = buf = null;
          }
        }
      }
    } catch (e) {
      if (e instanceof Stopped) return;
      throw e instanceof EscpError
        ? e
        : new EscpError("E_SOURCE_UNREADABLE", `${this.what}: the data source failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (!this.live(native)) return;
    if (ptr === null && offset === 0) {
      // an empty stream is one empty block
      ptr = await this.claim(native);
      fill = 0;
    }
    if (ptr !== null) {
      native.txBlockSubmit(fino, ptr, offset, fill);
      offset += fill;
    }
    this.submitted = offset;
    native.txStreamEnd(fino, offset);
  }
}

/** A web ReadableStream or any AsyncIterable of bytes, as an AsyncIterable. */
export function asChunks(data: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  if (data instanceof ReadableStream) {
    return {
      async *[Symbol.asyncIterator]() {
        const reader = data.getReader();
        let done = false;
        try {
          for (;;) {
            const r = await reader.read();
            if (r.done) {
              done = true;
              return;
            }
            yield r.value;
          }
        } finally {
          if (!done) await reader.cancel().catch(() => undefined); // we stopped early: the producer may stop too
          reader.releaseLock();
        }
      },
    };
  }
  if (data !== null && typeof data === "object" && Symbol.asyncIterator in data) return data;
  throw new EscpError("E_USAGE", "send: data must be an AsyncIterable<Uint8Array> or a ReadableStream<Uint8Array>");
}
