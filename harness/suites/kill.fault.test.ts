// Kill the receiver, or the sender, at every named protocol state and check what the other
// side does: a non-zero exit with a clear message, no zombie, and never a partial file under
// its final name (a final name holds either nothing or the complete, verified file).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { runWithKill, STATES } from "../faults/kill.ts";
import { b3sum, lazyFiles } from "./e2e-helpers.ts";

const tmp = makeTmpDir("fault-kill");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const src = join(tmp, "src");
const FILES = ["big.bin", "small-1", "small-2"];
const dataset = lazyFiles(src, { "big.bin": [24 << 20, 11], "small-1": [1000, 12], "small-2": [70_000, 13] });

/** Every final name is absent or byte-identical to its source. */
async function noPartialFinals(dst: string): Promise<void> {
  for (const f of FILES) {
    const p = join(dst, "src", f);
    if (existsSync(p)) expect(await b3sum(p)).toBe(await b3sum(join(src, f)));
  }
}

// -t 1 and a paced socket keep the 24 MiB file in flight long enough for "midblock".
const FLAGS = ["-q", "-r", "-t", "1", "-l", "16M", "--escp_port", "0", "--timeout", "5"];

describe("kill the receiver at each protocol state", () => {
  for (const state of STATES) {
    test(state, async () => {
      await dataset();
      const dst = join(tmp, `rx-${state}`);
      mkdirSync(dst);
      const r = await runWithKill("receiver", state, join(tmp, `rx-${state}.sock`), dst, [...FLAGS, src, `localhost:${dst}`]);
      expect(r.receiverCode).toBe(137); // it really died at that state
      // before its reply: the handshake fails (5); afterwards: the peer vanished (9)
      expect(r.senderCode).toBe(state === "init" ? 5 : 9);
      // mid-transfer either the control or a data stream notices first; both name the cause
      expect(r.senderStderr).toMatch(state === "init" ? /session init failed/ : /peer closed the (control|data) stream( \d+)? unexpectedly/);
      expect(r.senderStderr.trim().split("\n")).toHaveLength(1);
      await noPartialFinals(dst);
    });
  }
});

describe("kill the sender at each protocol state", () => {
  for (const state of STATES) {
    test(state, async () => {
      await dataset();
      const dst = join(tmp, `tx-${state}`);
      mkdirSync(dst);
      const r = await runWithKill("sender", state, join(tmp, `tx-${state}.sock`), dst, [...FLAGS, src, `localhost:${dst}`]);
      expect(r.senderCode).toBe(137);
      if (state === "close") {
        // every file was verified and committed before the sender said goodbye
        await noPartialFinals(dst);
        return;
      }
      // No zombie: it exits on its own. Killed right after init, the sender may be gone
      // before the receiver's reply is written (5) or only afterwards (9). Which the receiver
      // notices first — a data or control stream closing, or the session channel — is a race;
      // either way it names the vanished peer.
      expect(state === "init" ? [5, 9] : [9]).toContain(r.receiverCode);
      expect(r.receiverStderr).toMatch(state === "init" ? /control channel|peer closed the/ : /peer closed the|sender vanished \(control channel closed\)/);
      await noPartialFinals(dst);
      const leftovers = existsSync(join(dst, "src")) ? readdirSync(join(dst, "src")).filter((n) => n.startsWith(".escp-")) : [];
      expect(leftovers).toEqual([]);
    });
  }
});
