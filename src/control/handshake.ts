// Line framing for session init on a byte stream (ssh stdio, local pipe, mgmt socket): each
// message is `ESCP1 <base64>\n`; every other line (rc-file noise, motd) is skipped and kept for
// diagnostics. EScp differs: its binary length+type header broke on any stdout noise.
import { EscpError } from "../errors/escp-error.ts";

export const LINE_PREFIX = "ESCP1 ";
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
const MAX_NOISE_LINES = 50;
const MAX_NOISE_CHARS = 300;
const NL = 0x0a;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export function frameLine(bytes: Uint8Array): string {
  return `${LINE_PREFIX}${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}\n`;
}

/** Decode the payload of one ESCP1 line (without prefix and newline); bad base64 is E_PROTOCOL. */
function decodePayload(b64: string): Uint8Array {
  if (b64.length % 4 !== 0 || !BASE64_RE.test(b64)) {
    throw new EscpError("E_PROTOCOL", `malformed ${LINE_PREFIX.trim()} line: payload is not base64 (${b64.length} chars)`);
  }
  return new Uint8Array(Buffer.from(b64, "base64"));
}

type ReadResult = { done: true; value?: Uint8Array } | { done: false; value: Uint8Array };
interface Reader {
  read(): Promise<ReadResult>;
  cancel(reason?: unknown): Promise<void>;
}

export class LineReader {
  private readonly reader: Reader;
  private readonly decoder = new TextDecoder();
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private pending: Promise<ReadResult> | null = null;
  private eof = false;
  private readonly skipped: string[] = [];

  /** `stderrText` (optional) is quoted in the E_HANDSHAKE error when the stream ends early. */
  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly stderrText: () => string = () => "",
  ) {
    this.reader = stream.getReader();
  }

  /** Lines skipped so far (each trimmed to 300 chars; the last 50 kept). */
  noise(): string[] {
    return [...this.skipped];
  }

  /** True once the stream has ended (the last next() failed because of EOF). */
  ended(): boolean {
    return this.eof && this.buffered === 0;
  }

  /** Resolve with the next ESCP1 payload; E_TIMEOUT after timeoutMs, E_HANDSHAKE on EOF. */
  async next(timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.takeLine();
      if (line !== null) {
        if (line.length > MAX_LINE_BYTES) this.tooLong();
        const text = this.decoder.decode(line).replace(/\r$/, "");
        if (text.startsWith(LINE_PREFIX)) return decodePayload(text.slice(LINE_PREFIX.length));
        this.keepNoise(text);
        continue;
      }
      if (this.eof) throw this.eofError();
      if (this.buffered > MAX_LINE_BYTES) this.tooLong();
      await this.fill(deadline, timeoutMs);
    }
  }

  /** Release the underlying stream (pending reads are cancelled). */
  async cancel(): Promise<void> {
    this.eof = true;
    await this.reader.cancel().catch(() => undefined);
  }

  private async fill(deadline: number, timeoutMs: number): Promise<void> {
    this.pending ??= this.reader.read();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
    });
    let r: ReadResult | "timeout";
    try {
      r = await Promise.race([this.pending, timeout]);
    } catch (e) {
      this.pending = null;
      this.eof = true;
      throw new EscpError("E_HANDSHAKE", `control channel read failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    if (r === "timeout") {
      throw new EscpError("E_TIMEOUT", `no control message within ${timeoutMs} ms${this.context()}`);
    }
    this.pending = null; // keep an unfinished read across a timeout, so no bytes are lost
    if (r.done) this.eof = true;
    else if (r.value.length > 0) {
      this.chunks.push(r.value);
      this.buffered += r.value.length;
    }
  }

  /** Remove and return the first complete line (without '\n'), or the tail at EOF. */
  private takeLine(): Uint8Array | null {
    if (this.buffered === 0) return null;
    let seen = 0;
    for (let ci = 0; ci < this.chunks.length; ci++) {
      const chunk = this.chunks[ci]!;
      const nl = chunk.indexOf(NL);
      if (nl >= 0) return this.splitAt(seen + nl, 1);
      seen += chunk.length;
    }
    return this.eof ? this.splitAt(this.buffered, 0) : null;
  }

  private splitAt(len: number, skip: number): Uint8Array {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const line = all.slice(0, len);
    const rest = all.subarray(len + skip);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return line;
  }

  private keepNoise(text: string): void {
    if (this.skipped.length >= MAX_NOISE_LINES) this.skipped.shift();
    this.skipped.push(text.length > MAX_NOISE_CHARS ? `${text.slice(0, MAX_NOISE_CHARS)}…` : text);
  }

  private context(): string {
    const noise = this.skipped.filter((l) => l.trim() !== "");
    const stderr = this.stderrText()
      .trim()
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-5);
    let out = "";
    if (noise.length > 0) out += `; remote stdout: ${noise.slice(-5).join(" | ")}`;
    if (stderr.length > 0) out += `; stderr: ${stderr.join(" | ")}`;
    return out;
  }

  private tooLong(): never {
    throw new EscpError("E_HANDSHAKE", `control channel sent a line longer than ${MAX_LINE_BYTES} bytes`);
  }

  private eofError(): EscpError {
    return new EscpError("E_HANDSHAKE", `control channel closed before a message arrived${this.context()}`);
  }
}
