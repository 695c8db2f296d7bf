// Tests for the Chrome trace: JSON round trip, processes/threads, complete events relative to
// each side's start, ordering, the throughput counter and the metadata.
import { describe, expect, test } from "bun:test";
import { chromeTrace, type TraceEvent } from "./chrome-trace.ts";
import { mkProfile, mkSide } from "./test-profiles.fixture.ts";
import { STAGE } from "./stages.ts";

function roundTrip(trace: object): { traceEvents: TraceEvent[]; displayTimeUnit: string; metadata: Record<string, unknown> } {
  return JSON.parse(JSON.stringify(trace));
}

describe("chromeTrace", () => {
  const tx = mkSide("sender", { read: 0.6, hash: 0.1, seal: 0.1, send: 0.1 }, { streams: 2, blocks: 20, activeNs: 1e9, host: "alpha" });
  const rx = mkSide("receiver", { recv: 0.8, open: 0.05, write: 0.1 }, { streams: 2, blocks: 20, activeNs: 1e9, host: "beta", startNs: 42 });
  rx.spans.push({ t0Ns: 42 + 5e6, durNs: 1e6, bytes: 0, stream: 0, stage: STAGE.meta });
  const t = roundTrip(chromeTrace(mkProfile([rx, tx])));

  test("top-level shape", () => {
    expect(t.displayTimeUnit).toBe("ms");
    expect(Array.isArray(t.traceEvents)).toBe(true);
    for (const e of t.traceEvents) {
      expect(typeof e.name).toBe("string");
      expect(["M", "X", "C"]).toContain(e.ph);
      expect(Number.isInteger(e.pid)).toBe(true);
      expect(Number.isInteger(e.tid)).toBe(true);
    }
  });

  test("one named process per side, one named thread per stream (and control)", () => {
    const names = t.traceEvents.filter((e) => e.ph === "M" && e.name === "process_name");
    expect(names.map((e) => [e.pid, e.args?.name])).toEqual([
      [1, "escp sender (alpha)"],
      [2, "escp receiver (beta)"],
    ]);
    const threads = t.traceEvents.filter((e) => e.name === "thread_name").map((e) => `${e.pid}/${e.tid}:${e.args?.name}`);
    expect(threads).toEqual(["1/1:stream 1", "1/2:stream 2", "2/0:control", "2/1:stream 1", "2/2:stream 2"]);
  });

  test("metadata events come first, then per side in time order", () => {
    const firstTimed = t.traceEvents.findIndex((e) => e.ph !== "M");
    expect(t.traceEvents.slice(firstTimed).every((e) => e.ph !== "M")).toBe(true);
    for (const pid of [1, 2]) {
      const ts = t.traceEvents.filter((e) => e.ph !== "M" && e.pid === pid).map((e) => e.ts ?? -1);
      expect(ts.length).toBeGreaterThan(0);
      for (let i = 1; i < ts.length; i++) expect(ts[i]!).toBeGreaterThanOrEqual(ts[i - 1]!);
    }
  });

  test("complete events: µs relative to the side's start, label, kind and bytes", () => {
    const x = t.traceEvents.filter((e) => e.ph === "X");
    expect(x).toHaveLength(tx.spans.length + rx.spans.length);
    const first = x.find((e) => e.pid === 1 && e.tid === 1);
    expect(first).toMatchObject({ name: "disk read", cat: "disk", ts: 0, dur: 30000, args: { bytes: 1 << 20 } });
    expect(x.find((e) => e.pid === 2 && e.tid === 0)).toMatchObject({ name: "meta", cat: "disk", ts: 5000, dur: 1000 });
    expect(x.find((e) => e.name === "seal")?.cat).toBe("cpu");
    expect(x.find((e) => e.name === "recv")?.cat).toBe("net");
    for (const e of x) expect(e.dur).toBeGreaterThanOrEqual(0);
  });

  test("a throughput counter per side in 100 ms buckets that adds up to the bytes moved", () => {
    for (const [pid, side, label] of [
      [1, tx, "send"],
      [2, rx, "recv"],
    ] as const) {
      const c = t.traceEvents.filter((e) => e.ph === "C" && e.pid === pid);
      expect(c.length).toBe(11); // 10 buckets of 1 s + a closing zero
      expect(c[0]?.name).toBe(`throughput (${label})`);
      expect(c[1]!.ts! - c[0]!.ts!).toBe(100_000);
      const mb = c.reduce((s, e) => s + Number(e.args?.["MB/s"]) * 0.1, 0);
      const moved = side.spans.filter((s) => s.stage === (pid === 1 ? STAGE.send : STAGE.recv)).reduce((s, x) => s + x.bytes, 0);
      expect(mb).toBeCloseTo(moved / 1e6, 1);
    }
  });

  test("metadata carries the verdict, totals and run facts", () => {
    const m = t.metadata;
    expect(m).toMatchObject({ tool: "escp", version: 1, command: "escp -v big.bin host:/tmp/", files: 1 });
    expect((m.verdict as { bound: string }).bound).toBe("disk-read");
    const sides = m.sides as Array<{ side: string; stages: Array<{ stage: string; share: number }> }>;
    expect(sides.map((s) => s.side)).toEqual(["sender", "receiver"]);
    expect(sides[0]?.stages.find((s) => s.stage === "read")?.share).toBeCloseTo(0.6, 6);
  });

  test("a sender-only or empty profile still makes a valid trace", () => {
    const only = roundTrip(chromeTrace(mkProfile([mkSide("sender", {})])));
    expect(only.traceEvents.filter((e) => e.ph === "X")).toHaveLength(0);
    expect(only.traceEvents.some((e) => e.name === "process_name" && e.pid === 1)).toBe(true);
    expect(roundTrip(chromeTrace(mkProfile([]))).traceEvents).toEqual([]);
  });

  test("200,000 spans convert without overflowing the stack", () => {
    const big = mkSide("sender", { read: 0.5, send: 0.4 }, { streams: 8, blocks: 12_500, activeNs: 60e9 });
    expect(big.spans.length).toBe(200_000);
    const trace = chromeTrace(mkProfile([big]));
    expect(trace.traceEvents.filter((e) => e.ph === "X")).toHaveLength(200_000);
  });
});
