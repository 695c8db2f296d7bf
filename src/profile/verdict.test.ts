// Tests for the verdict rules: each bottleneck diagnosed from synthetic profiles, one-sided and
// empty profiles, and noisy mixes on both sides of the thresholds.
import { describe, expect, test } from "bun:test";
import { mkProfile, mkSide } from "./test-profiles.fixture.ts";
import { STAGE } from "./stages.ts";
import { stageShares, verdict } from "./verdict.ts";

const networkWaitingReceiver = { recv: 0.9, open: 0.03, hash: 0.03, write: 0.02 };

describe("verdict", () => {
  test("an idle sender (data queued in big socket buffers) and a receiver waiting in recv: the network", () => {
    const v = verdict(mkProfile([mkSide("sender", { read: 0.01, hash: 0.01, seal: 0.01, send: 0.02 }), mkSide("receiver", { recv: 0.85, write: 0.05 })]));
    expect(v).toMatchObject({ bound: "network", side: null, stage: STAGE.recv });
    expect(v.text).toContain("receivers waiting in recv 85 %");
    const quiet = verdict(mkProfile([mkSide("sender", { read: 0.01, send: 0.02 }), mkSide("receiver", { recv: 0.3, write: 0.05 })]));
    expect(quiet.bound).toBe("unknown"); // a receiver that is not waiting either: no claim
  });

  test("disk read on the sender", () => {
    const v = verdict(mkProfile([mkSide("sender", { read: 0.9, hash: 0.03, seal: 0.02, send: 0.03 }), mkSide("receiver", networkWaitingReceiver)]));
    expect(v).toMatchObject({ bound: "disk-read", side: "sender", stage: STAGE.read });
    expect(v.share).toBeCloseTo(0.9, 2);
    expect(v.text).toBe("bound by disk read on the sender: 90 % of stream time waiting on pread");
  });

  test("network: sender blocked in send, receiver waiting in recv", () => {
    const v = verdict(mkProfile([mkSide("sender", { read: 0.05, hash: 0.04, seal: 0.04, send: 0.85 }), mkSide("receiver", networkWaitingReceiver)]));
    expect(v).toMatchObject({ bound: "network", side: null, stage: STAGE.send });
    expect(v.text).toBe("bound by the network: senders blocked in send 85 % of stream time, receivers waiting in recv 90 %");
  });

  test("CPU on the sender lists the CPU stages largest first", () => {
    const v = verdict(mkProfile([mkSide("sender", { read: 0.05, hash: 0.45, seal: 0.35, send: 0.1 }), mkSide("receiver", networkWaitingReceiver)]));
    expect(v).toMatchObject({ bound: "cpu", side: "sender", stage: STAGE.hash });
    expect(v.share).toBeCloseTo(0.8, 2);
    expect(v.text).toBe("bound by CPU on the sender: hash 45 % + seal 35 % + compress 0 % of stream time");
  });

  test("CPU on the receiver: sender blocked in send, receiver busy in open + hash", () => {
    const v = verdict(
      mkProfile([mkSide("sender", { read: 0.05, hash: 0.04, seal: 0.04, send: 0.85 }), mkSide("receiver", { recv: 0.1, open: 0.5, hash: 0.3, write: 0.05 })]),
    );
    expect(v).toMatchObject({ bound: "cpu", side: "receiver", stage: STAGE.open });
    expect(v.text).toBe("bound by CPU on the receiver: open 50 % + hash 30 % + decompress 0 % of stream time");
  });

  test("disk write on the receiver", () => {
    const v = verdict(
      mkProfile([mkSide("sender", { read: 0.03, hash: 0.03, seal: 0.03, send: 0.88 }), mkSide("receiver", { recv: 0.04, open: 0.02, hash: 0.02, write: 0.9 })]),
    );
    expect(v).toMatchObject({ bound: "disk-write", side: "receiver", stage: STAGE.write });
    expect(v.text).toBe("bound by disk write on the receiver: 90 % of stream time in pwrite");
  });

  test("metadata on the receiver and the file list on the sender", () => {
    const meta = verdict(mkProfile([mkSide("sender", { send: 0.7, read: 0.1 }), mkSide("receiver", { recv: 0.1, meta: 0.6, write: 0.2 })]));
    expect(meta).toMatchObject({ bound: "disk-write", side: "receiver", stage: STAGE.meta });
    expect(meta.text).toStartWith("bound by file metadata on the receiver: 60 %");
    const idle = verdict(mkProfile([mkSide("sender", { idle: 0.7, read: 0.1, send: 0.1 }), mkSide("receiver", { recv: 0.2, idle: 0.7 })]));
    expect(idle).toMatchObject({ bound: "unknown", side: "sender", stage: STAGE.idle });
    expect(idle.text).toStartWith("bound by the file list: sender streams idle 70 %");
  });

  test("sender only: decided from the sender alone", () => {
    expect(verdict(mkProfile([mkSide("sender", { read: 0.85, send: 0.1 })]))).toMatchObject({ bound: "disk-read", side: "sender" });
    const net = verdict(mkProfile([mkSide("sender", { read: 0.05, send: 0.85 })]));
    expect(net).toMatchObject({ bound: "network", side: null });
    expect(net.text).toBe("bound by the network or the receiver: senders blocked in send 85 % of stream time (no receiver profile)");
  });

  test("receiver only", () => {
    expect(verdict(mkProfile([mkSide("receiver", { recv: 0.05, write: 0.9 })]))).toMatchObject({ bound: "disk-write", side: "receiver" });
    expect(verdict(mkProfile([mkSide("receiver", { recv: 0.9, write: 0.05 })]))).toMatchObject({ bound: "network", side: null, stage: STAGE.recv });
  });

  test("no spans, no totals, or no sides → unknown", () => {
    const empty = mkSide("sender", {});
    expect(verdict(mkProfile([empty, mkSide("receiver", {})]))).toMatchObject({ bound: "unknown", side: null, stage: null, share: 0 });
    expect(verdict(mkProfile([]))).toMatchObject({ bound: "unknown" });
    const zeroTime = { ...mkSide("sender", { read: 0.9 }), startNs: 5, endNs: 5, spans: [] };
    expect(verdict(mkProfile([zeroTime])).bound).toBe("unknown");
  });

  test("a profile where nothing reaches 20 % is unknown, naming the largest group", () => {
    const v = verdict(mkProfile([mkSide("sender", { read: 0.1, send: 0.15 })]));
    expect(v.bound).toBe("unknown");
    expect(v.text).toContain("largest on the sender: send 15 %");
  });
});

describe("verdict under noise and near thresholds", () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  test("±40 % per-span jitter never changes a clear diagnosis", () => {
    for (const seed of seeds) {
      const o = { jitter: 0.4, seed };
      const rx = mkSide("receiver", networkWaitingReceiver, { ...o, seed: seed + 100 });
      expect(verdict(mkProfile([mkSide("sender", { read: 0.7, hash: 0.1, seal: 0.05, send: 0.1 }, o), rx])).bound).toBe("disk-read");
      expect(verdict(mkProfile([mkSide("sender", { read: 0.1, hash: 0.1, seal: 0.1, send: 0.6 }, o), rx])).bound).toBe("network");
      const busyRx = mkSide("receiver", { recv: 0.2, open: 0.35, hash: 0.3 }, { ...o, seed: seed + 200 });
      expect(verdict(mkProfile([mkSide("sender", { read: 0.1, send: 0.8 }, o), busyRx]))).toMatchObject({ bound: "cpu", side: "receiver" });
    }
  });

  test("receiver recv just under / over RX_RECV_LOW (0.30) flips receiver-bound ↔ network", () => {
    const tx = mkSide("sender", { read: 0.05, hash: 0.05, seal: 0.05, send: 0.8 });
    expect(verdict(mkProfile([tx, mkSide("receiver", { recv: 0.27, write: 0.65 })])).bound).toBe("disk-write");
    expect(verdict(mkProfile([tx, mkSide("receiver", { recv: 0.33, write: 0.6 })])).bound).toBe("network");
  });

  test("a busy receiver is not blamed when the sender waits in send less than the receiver waits in recv", () => {
    // Sender disk at 100 MB/s, receiver able to do 150: receiver busy 2/3, sender rarely blocked.
    const v = verdict(mkProfile([mkSide("sender", { read: 0.85, send: 0.1 }), mkSide("receiver", { recv: 0.28, write: 0.66 })]));
    expect(v).toMatchObject({ bound: "disk-read", side: "sender" });
  });

  test("a receiver mostly idle (waiting for work) is not the bottleneck", () => {
    const v = verdict(mkProfile([mkSide("sender", { read: 0.6, send: 0.3 }), mkSide("receiver", { recv: 0.1, idle: 0.6, write: 0.25 })]));
    expect(v.bound).toBe("disk-read");
  });

  test("near ties are won by the larger group and name the runner-up", () => {
    const rx = mkSide("receiver", networkWaitingReceiver);
    const a = verdict(mkProfile([mkSide("sender", { read: 0.46, send: 0.42 }), rx]));
    expect(a.bound).toBe("disk-read");
    expect(a.text).toEndWith("; next: send 42 %");
    const b = verdict(mkProfile([mkSide("sender", { read: 0.42, send: 0.46 }), rx]));
    expect(b.bound).toBe("network");
    expect(b.text).toEndWith("; next: disk read 42 %");
    const clear = verdict(mkProfile([mkSide("sender", { read: 0.6, send: 0.3 }), rx]));
    expect(clear.text).not.toContain("next:");
  });

  test("CPU stages add up against a single larger stage", () => {
    const rx = mkSide("receiver", networkWaitingReceiver);
    const v = verdict(mkProfile([mkSide("sender", { read: 0.35, hash: 0.2, compress: 0.15, seal: 0.2, send: 0.05 }), rx]));
    expect(v).toMatchObject({ bound: "cpu", side: "sender" });
    expect(v.text).toStartWith("bound by CPU on the sender: hash 20 % + seal 20 % + compress 15 %");
  });

  test("shares average over all T streams: half the streams stalled on read, half less so", () => {
    const slow = mkSide("sender", { read: 0.9, send: 0.05 }, { streams: 4 });
    const fast = mkSide("sender", { read: 0.5, send: 0.3 }, { streams: 4 });
    const tx = { ...slow, streams: 8, spans: [...slow.spans, ...fast.spans.map((s) => ({ ...s, stream: s.stream + 4 }))], totals: [] };
    const v = verdict(mkProfile([tx, mkSide("receiver", networkWaitingReceiver, { streams: 8 })]));
    expect(v.bound).toBe("disk-read");
    expect(v.share).toBeCloseTo(0.7, 6);
  });
});

describe("stageShares", () => {
  test("one entry per stage; control-stream time and dropped spans do not skew it", () => {
    const side = mkSide("sender", { read: 0.5, send: 0.25 }, { streams: 2 });
    side.totals.push({ stream: 0, stage: STAGE.meta, ns: 5e9, bytes: 0, count: 3 });
    side.spans = side.spans.slice(0, 10);
    side.dropped = 990;
    const s = stageShares(side);
    expect(s).toHaveLength(11);
    expect(s[STAGE.read]?.share).toBeCloseTo(0.5, 6);
    expect(s[STAGE.send]?.share).toBeCloseTo(0.25, 6);
    expect(s[STAGE.meta]?.share).toBe(0);
    expect(s[STAGE.read]?.bytes).toBe(2 * 50 * (1 << 20));
    expect(s[STAGE.read]?.bytesPerSec).toBeCloseTo((100 * (1 << 20)) / 2, 0);
  });

  test("totals are derived from spans when C sent none; streams from the ids when T is 0", () => {
    const side = mkSide("receiver", { write: 0.8 }, { streams: 3 });
    side.totals = [];
    side.streams = 0;
    expect(stageShares(side)[STAGE.write]?.share).toBeCloseTo(0.8, 6);
  });
});
