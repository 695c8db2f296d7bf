// The ControlChannel contract (message-oriented, ESCP1-line framed) and the one stream-backed
// implementation every transport (ssh, ssh2, local pipe, mgmt socket, server stdio) wraps.
import { EscpError } from "../errors/escp-error.ts";
import { frameLine, LineReader } from "./handshake.ts";

export interface ControlChannel {
  /** Send one message (already encoded bytes); resolves once handed to the transport. */
  send(bytes: Uint8Array): Promise<void>;
  /** Next message; E_TIMEOUT after timeoutMs, E_HANDSHAKE (or a classified ssh error) on EOF. */
  recv(timeoutMs: number): Promise<Uint8Array>;
  /** What the peer wrote to stderr so far (tail, for diagnostics); "" where there is none. */
  stderrText(): string;
  /** Exit status of the spawned process; null for a signal or for non-process transports. */
  readonly exited: Promise<number | null>;
  /** Close our side and release the transport (waits for a spawned process, then kills it). */
  close(): Promise<void>;
}

/** The pieces a transport supplies to streamChannel. */
export interface StreamParts {
  readable: ReadableStream<Uint8Array>;
  /** Write one framed line completely. */
  write(line: string): Promise<void>;
  stderrText?(): string;
  exited: Promise<number | null>;
  /** Release the transport; called once by close(). */
  shutdown(): Promise<void>;
  /** Turn an EOF/write failure into a better error (e.g. classify ssh's exit and stderr). */
  refine?(e: EscpError): Promise<EscpError>;
}

export function streamChannel(p: StreamParts): ControlChannel {
  const stderrText = p.stderrText ?? (() => "");
  const reader = new LineReader(p.readable, stderrText);
  const refine = p.refine ?? ((e: EscpError) => Promise.resolve(e));
  let closed: Promise<void> | null = null;
  const ensureOpen = (): void => {
    if (closed !== null) throw new EscpError("E_INTERNAL", "control channel used after close()");
  };
  return {
    async send(bytes) {
      ensureOpen();
      try {
        await p.write(frameLine(bytes));
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw await refine(new EscpError("E_HANDSHAKE", `control channel write failed: ${why}`, { cause: e }));
      }
    },
    async recv(timeoutMs) {
      ensureOpen();
      try {
        return await reader.next(timeoutMs);
      } catch (e) {
        if (e instanceof EscpError && e.code === "E_HANDSHAKE") throw await refine(e);
        throw e;
      }
    },
    stderrText,
    exited: p.exited,
    close() {
      closed ??= (async () => {
        await p.shutdown().catch(() => undefined);
        await reader.cancel();
      })();
      return closed;
    },
  };
}

/** Accumulates a byte stream as text, keeping the last `capChars` characters. */
export class TextTail {
  private text = "";
  readonly done: Promise<void>;

  /** `echo` also receives every chunk read from `stream` (not text added with append). */
  constructor(
    stream: ReadableStream<Uint8Array> | null | undefined,
    private readonly capChars = 64 * 1024,
    private readonly echo?: (text: string) => void,
  ) {
    this.done = stream ? this.pump(stream) : Promise.resolve();
  }

  get value(): string {
    return this.text;
  }

  append(s: string): void {
    this.text += s;
    if (this.text.length > this.capChars) this.text = this.text.slice(-this.capChars);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        const text = decoder.decode(chunk, { stream: true });
        this.append(text);
        this.echo?.(text);
      }
      this.append(decoder.decode());
    } catch {
      // the stream was cancelled or the process died: keep what we have
    }
  }
}

/** Resolve after ms, or with the promise's value if it settles first. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
