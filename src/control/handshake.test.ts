// LineReader: finds ESCP1 lines among rc-file noise, survives chunking and timeouts, and fails
// with the noise and stderr quoted when the stream ends first.
import { describe, expect, test } from "bun:test";
import { EscpError } from "../errors/escp-error.ts";
import { frameLine, LineReader, MAX_LINE_BYTES } from "./handshake.ts";

function streamOf(parts: (string | Uint8Array)[], keepOpen = false): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const p of parts) c.enqueue(typeof p === "string" ? enc.encode(p) : p);
      if (!keepOpen) c.close();
    },
  });
}

async function rejection(p: Promise<unknown>): Promise<EscpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("LineReader", () => {
  test("frameLine is one base64 line", () => {
    expect(frameLine(new Uint8Array([1, 2, 3, 255]))).toBe("ESCP1 AQID/w==\n");
  });

  test("skips noise lines and reassembles payloads split across chunks", async () => {
    const a = new Uint8Array([0, 1, 2, 10, 13, 250]);
    const line = frameLine(a);
    const r = new LineReader(streamOf(["Welcome to host\r\n", "motd", " text\n", line.slice(0, 7), line.slice(7), "noise\nESCP1 ", "AAA=\r\n"]));
    expect(await r.next(1000)).toEqual(a);
    expect(await r.next(1000)).toEqual(new Uint8Array([0, 0]));
    expect(r.noise()).toEqual(["Welcome to host", "motd text", "noise"]);
  });

  test("EOF before a message is E_HANDSHAKE quoting noise and stderr", async () => {
    const r = new LineReader(streamOf(["bash: warning: setlocale\n", "partial"]), () => "escp: command not found\n");
    const e = await rejection(r.next(1000));
    expect(e.code).toBe("E_HANDSHAKE");
    expect(e.message).toContain("closed before a message arrived");
    expect(e.message).toContain("bash: warning: setlocale | partial");
    expect(e.message).toContain("stderr: escp: command not found");
    expect(r.ended()).toBe(true);
  });

  test("a timeout keeps the pending read, so later bytes are not lost", async () => {
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    const r = new LineReader(
      new ReadableStream<Uint8Array>({
        start(c) {
          ctl = c;
        },
      }),
    );
    const e = await rejection(r.next(30));
    expect(e.code).toBe("E_TIMEOUT");
    ctl.enqueue(new TextEncoder().encode(frameLine(new Uint8Array([7]))));
    expect(await r.next(1000)).toEqual(new Uint8Array([7]));
  });

  test("bad base64 is E_PROTOCOL; an endless line is capped", async () => {
    expect((await rejection(new LineReader(streamOf(["ESCP1 ***\n"])).next(1000))).code).toBe("E_PROTOCOL");
    const big = new Uint8Array(MAX_LINE_BYTES + 10).fill(0x41);
    const e = await rejection(new LineReader(streamOf([big], true)).next(5000));
    expect(e.code).toBe("E_HANDSHAKE");
    expect(e.message).toContain("longer than");
  });

  test("noise is bounded", async () => {
    const lines = Array.from({ length: 80 }, (_, i) => `line ${i} ${"x".repeat(400)}\n`);
    const r = new LineReader(streamOf([...lines, frameLine(new Uint8Array([1]))]));
    await r.next(1000);
    expect(r.noise().length).toBe(50);
    expect(r.noise()[0]!.startsWith("line 30 ")).toBe(true);
    expect(r.noise()[0]!.length).toBeLessThanOrEqual(301);
  });
});
