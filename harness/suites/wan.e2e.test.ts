// "Remote" transfers across an emulated WAN: sender in network namespace a, a --mgmt
// receiver in namespace b, joined by harness/wan/delayline (25 ms each way = 50 ms RTT,
// 1 Gbit/s, 0.1 % loss a->b). Checks the bytes, and that the path really is the emulator
// (RTT, counters). No timing thresholds on escp itself; its printed rate is logged only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { REPO_ROOT } from "../escp-run.ts";
import { canWan, formatStats, startWan, type Wan } from "../wan/netns.ts";
import type { WanStats } from "../wan/delayline.ts";
import type { RttResult } from "../wan/rtt-probe.ts";
import { escpAcrossWan } from "../wan/escp-wan.ts";
import { expectSameFile, expectSameTree, makeAwkwardTree, writeRandomFile } from "./e2e-helpers.ts";

const DELAY_MS = 25;
const BIG = 64 * 1024 * 1024;
const can = canWan();
if (!can.ok) console.warn(`[wan] skipping the WAN emulation suite: ${can.why}`);

let wan: Wan | undefined;
let tmp = "";
let final: WanStats | undefined;

function need(): Wan {
  if (!wan) throw new Error("WAN not started");
  return wan;
}

/** One transfer: a --mgmt receiver in b bound to b's address, the sender in a. */
async function transfer(name: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const w = need();
  const r = await escpAcrossWan(w, ["--escp_port", "0", "--timeout", "30", ...args], {
    sockDir: tmp,
    name: `${name}.sock`,
    cwd: REPO_ROOT,
    timeoutMs: 240_000,
  });
  if (r.sender.code !== 0 || r.receiverCode !== 0) {
    throw new Error(
      `escp over the WAN failed: sender ${r.sender.code}, receiver ${r.receiverCode}\nsender: ${r.sender.stdout}${r.sender.stderr}\nreceiver: ${r.receiverStderr}`,
    );
  }
  return r.sender;
}

describe.skipIf(!can.ok)(can.ok ? "WAN emulation (50 ms RTT, 1 Gbit/s, 0.1 % loss)" : `WAN emulation (skipped: ${can.why})`, () => {
  beforeAll(async () => {
    tmp = makeTmpDir("e2e-wan");
    wan = await startWan({ delayMs: DELAY_MS, rateMbit: 1000, lossPct: 0.1, seed: 20240611 });
    console.log(`[wan] ${wan.ns.a} (${wan.addr.a}) <-> ${wan.ns.b} (${wan.addr.b}); ${wan.readyLine}`);
  }, 60_000);

  afterAll(async () => {
    try {
      if (wan) {
        const exit = await wan.stop();
        if (exit.stats) console.log(`[wan] delay line stopped (${exit.reason}):\n${formatStats(exit.stats)}`);
      }
    } finally {
      wan = undefined;
      if (tmp) removeTmpDir(tmp);
    }
  }, 60_000);

  test("the path between the namespaces goes through the delay line (RTT ≈ 2 × delay)", async () => {
    const w = need();
    const before = await w.stats();
    const r = await w.exec("a", [process.execPath, join(REPO_ROOT, "harness/wan/rtt-probe.ts"), w.addr.b, "5"], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    const rtt = JSON.parse(r.stdout) as RttResult;
    console.log(`[wan] RTT a->b samples ${rtt.samplesMs.map((s) => s.toFixed(1)).join(" ")} ms (min ${rtt.minMs.toFixed(1)})`);
    expect(rtt.minMs).toBeGreaterThan(40); // a property of the emulator, not of escp
    const after = await w.stats();
    expect(after.ab.sent).toBeGreaterThanOrEqual(before.ab.sent + 5); // the SYNs
    expect(after.ba.sent).toBeGreaterThanOrEqual(before.ba.sent + 5); // the RSTs
  }, 60_000);

  test("64 MiB random file, b3sum equal", async () => {
    const src = join(tmp, "big.bin");
    const dst = join(tmp, "big-copy.bin");
    await writeRandomFile(src, BIG, 77);
    const before = await need().stats();
    const out = await transfer("big", [src, `localhost:${dst}`]);
    const summary = (out.stdout + out.stderr)
      .trim()
      .split("\n")
      .filter((l) => /\bSent\b/.test(l))
      .pop();
    console.log(`[wan] escp summary (informational): ${summary ?? "(none)"}`);
    await expectSameFile(src, dst);
    const after = await need().stats();
    // The data crossed the emulated link a->b, and some of it was dropped on the way.
    expect(after.ab.sent_bytes - before.ab.sent_bytes).toBeGreaterThan(BIG);
    expect(after.ba.sent - before.ba.sent).toBeGreaterThan(0);
    expect(after.ab.drop_loss - before.ab.drop_loss).toBeGreaterThan(0);
  }, 240_000);

  test("small tree (nesting, empty file and dir, unicode names)", async () => {
    const src = join(tmp, "tree");
    await makeAwkwardTree(src, 60, 11);
    const dst = join(tmp, "tree-copy");
    await transfer("tree", ["-q", "-r", src, `localhost:${dst}`]);
    await expectSameTree(src, dst);
  }, 240_000);

  test("delay line counters show traffic both ways", async () => {
    final = await need().stats();
    console.log(`[wan] counters:\n${formatStats(final)}`);
    for (const lane of [final.ab, final.ba]) {
      expect(lane.sent).toBeGreaterThan(0);
      expect(lane.write_err).toBe(0);
      expect(lane.drop_big).toBe(0);
    }
    expect(final.ab.drop_loss).toBeGreaterThan(0);
    expect(final.ba.drop_loss).toBe(0); // loss is configured a->b only
  });
});
