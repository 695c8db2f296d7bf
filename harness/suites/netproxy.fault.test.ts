// Network faults on one stream: the sender's T+1 streams go through a per-stream TCP proxy
// (harness/faults/net-proxy.ts, ESCP_FAULT_DATA_PORT) that delays, throttles, resets,
// half-closes, truncates, flips a bit or replays bytes on one named stream. Benign faults
// must not change the bytes; destructive ones must end both sides with a clear error and
// leave neither a final-named partial file nor a temporary.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:net";
import { makeTmpDir } from "../tmp-dir.ts";
import { runPair, type PairRun } from "../faults/pair.ts";
import { startProxy, type StreamFault } from "../faults/net-proxy.ts";
import { b3sum, lazyFiles } from "./e2e-helpers.ts";

const tmp = makeTmpDir("fault-netproxy");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const src = join(tmp, "src");
const dataset = lazyFiles(src, { "big.bin": [24 << 20, 41], small: [3000, 42] });

const MIB = 1 << 20;
const AFTER = 2 * MIB; // well past the HELLO, inside the big file's data
// The proxy numbers connections in accept order; two data streams may be accepted in either
// order, so messages are matched as "data stream N", not a fixed N.

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

interface Outcome extends PairRun {
  dst: string;
  fired: string[];
}

/** One real transfer with the proxy in front of the receiver's data port. */
async function throughProxy(name: string, fault: StreamFault): Promise<Outcome> {
  await dataset();
  const port = await freePort();
  const dst = join(tmp, name);
  mkdirSync(dst);
  const proxy = await startProxy({ target: { host: "127.0.0.1", port }, faults: [fault] });
  try {
    const r = await runPair({
      sock: join(tmp, `${name}.sock`), cwd: dst,
      args: ["-q", "-r", "-t", "2", "--escp_port", String(port), "--escp_portrange", "1", "--timeout", "3", src, `localhost:${dst}`],
      senderEnv: { ESCP_FAULT_DATA_PORT: String(proxy.port) },
    });
    const fired = proxy.stats.conns.find((c) => c.index === fault.stream)?.fired ?? [];
    expect(proxy.stats.accepted).toBe(3); // control + 2 data streams all went through it
    return { ...r, dst, fired };
  } finally {
    await proxy.stop();
  }
}

function noPartials(dst: string): void {
  const d = join(dst, "src");
  if (!existsSync(d)) return;
  expect(readdirSync(d).filter((n) => n.startsWith(".escp-"))).toEqual([]);
  expect(existsSync(join(d, "big.bin"))).toBe(false);
}

function oneLine(s: string): void {
  expect(s.trim().split("\n")).toHaveLength(1);
}

describe("benign network faults: the transfer completes, bytes equal", () => {
  for (const fault of [
    { kind: "delay", ms: 2, stream: 1, afterBytes: 0 },
    { kind: "throttle", bytesPerSec: 8 * MIB, stream: 1, afterBytes: 0 },
  ] satisfies StreamFault[]) {
    test(fault.kind, async () => {
      const r = await throughProxy(fault.kind, fault);
      expect(r.fired).toEqual([fault.kind]);
      expect(r.senderStderr).toBe("");
      expect(r.senderCode).toBe(0);
      expect(r.receiverCode).toBe(0);
      for (const f of ["big.bin", "small"]) expect(await b3sum(join(r.dst, "src", f))).toBe(await b3sum(join(src, f)));
    });
  }
});

describe("a data stream cut: both sides stop, nothing partial left", () => {
  for (const [kind, msg] of [
    ["rst", /(closed|reset).*data stream \d/],
    ["halfclose", /closed the data stream \d/],
    // A frame cut in half, then silence: the receiver's recv waits up to 2 x --timeout for the
    // rest, the sender's watchdog gives up after 2 x --timeout without progress; either wins.
    ["truncate", /no progress from|no data from peer/],
  ] as const) {
    test(kind, async () => {
      const r = await throughProxy(kind, { kind, stream: 1, afterBytes: AFTER } as StreamFault);
      expect(r.fired).toEqual([kind]);
      expect(r.senderCode).toBe(9);
      expect(r.senderStderr).toMatch(msg);
      oneLine(r.senderStderr);
      expect(r.receiverCode).toBe(9); // exited on its own (runPair kills nobody here)
      oneLine(r.receiverStderr);
      noPartials(r.dst);
    }, 60_000); // truncate waits out 2 x --timeout (3 s) by design
  }
});

describe("tampered data frames are rejected", () => {
  for (const fault of [
    { kind: "bitflip", stream: 1, afterBytes: AFTER },
    { kind: "replay", stream: 1, afterBytes: AFTER },
  ] satisfies StreamFault[]) {
    test(fault.kind, async () => {
      const r = await throughProxy(fault.kind, fault);
      expect(r.fired).toEqual([fault.kind]);
      expect(r.receiverCode).toBe(7);
      expect(r.receiverStderr).toMatch(/auth|replay|proto/i);
      // The sender reports the receiver's verdict (7) unless it first sees the receiver drop
      // its data stream (9, "peer closed the data stream"): a race, seen with replay.
      expect([7, 9]).toContain(r.senderCode);
      expect(r.senderStderr).toMatch(/auth|replay|proto|closed the data stream/i);
      oneLine(r.senderStderr);
      noPartials(r.dst);
    });
  }
});
