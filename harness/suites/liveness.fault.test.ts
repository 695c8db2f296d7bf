// Liveness and changing sources: a peer frozen mid-transfer (SIGSTOP) is detected by the
// other side within --timeout and both stop cleanly; a source that grows, shrinks or is
// rewritten while it is being sent is reported for that file, never silently truncated.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:net";
import { makeTmpDir } from "../tmp-dir.ts";
import { runPair } from "../faults/pair.ts";
import { b3sum, lazyFiles, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("fault-liveness");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const src = join(tmp, "src");
const dataset = lazyFiles(src, { "big.bin": [24 << 20, 21], small: [3000, 22] });
// One paced stream keeps the big file in flight; --timeout 2 bounds every wait.
const FLAGS = ["-q", "-r", "-t", "1", "-l", "16M", "--escp_port", "0", "--timeout", "2"];
const FREEZE = { ESCP_FAULT_EXEC: "kill -STOP $PPID" };

function noPartials(dst: string): void {
  const d = join(dst, "src");
  if (!existsSync(d)) return;
  expect(readdirSync(d).filter((n) => n.startsWith(".escp-"))).toEqual([]);
  expect(existsSync(join(d, "big.bin"))).toBe(false);
}

describe("a frozen peer is detected within --timeout", () => {
  test("receiver frozen mid-transfer: the sender stops with a stall error", async () => {
    await dataset();
    const dst = join(tmp, "rx-frozen");
    mkdirSync(dst);
    const r = await runPair({
      sock: join(tmp, "rx-frozen.sock"),
      cwd: dst,
      args: [...FLAGS, src, `localhost:${dst}`],
      receiverEnv: { ...FREEZE, ESCP_FAULT_EXEC_AT: "receiver:midblock" },
      frozen: "receiver",
    });
    expect(r.senderCode).toBe(9);
    expect(r.senderStderr).toMatch(/stall|no data from peer|closed/);
    expect(r.senderStderr.trim().split("\n")).toHaveLength(1);
  });

  test("sender frozen mid-transfer: the receiver gives up, removes its temporaries, exits", async () => {
    await dataset();
    const dst = join(tmp, "tx-frozen");
    mkdirSync(dst);
    const r = await runPair({
      sock: join(tmp, "tx-frozen.sock"),
      cwd: dst,
      args: [...FLAGS, src, `localhost:${dst}`],
      senderEnv: { ...FREEZE, ESCP_FAULT_EXEC_AT: "sender:midblock" },
      frozen: "sender",
    });
    expect(r.receiverCode).toBe(9);
    expect(r.receiverStderr).toMatch(/no data from peer|stall/);
    noPartials(dst);
  });
});

describe("a source that changes while it is sent", () => {
  for (const [how, cmd] of [
    ["grows", "head -c 4096 /dev/urandom >> BIG"],
    ["shrinks", "truncate -s 1000000 BIG"],
    ["is rewritten in place", "dd if=/dev/urandom of=BIG bs=4096 count=1 conv=notrunc status=none"],
  ] as const) {
    test(how, async () => {
      const dir = join(tmp, `change-${how.replace(/ /g, "-")}`);
      const s = join(dir, "src");
      mkdirSync(s, { recursive: true });
      await writeRandomFile(join(s, "big.bin"), 24 << 20, 31);
      await writeRandomFile(join(s, "other"), 5000, 32);
      const dst = join(dir, "dst");
      mkdirSync(dst);
      const r = await runPair({
        sock: join(dir, "s.sock"),
        cwd: dst,
        args: [...FLAGS, "--timeout", "20", s, `localhost:${dst}`],
        senderEnv: { ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: cmd.replace("BIG", `'${join(s, "big.bin")}'`) },
      });
      expect(r.senderCode).toBe(1);
      expect(r.senderStderr).toContain("big.bin");
      expect(r.senderStderr).toContain("changed while sent");
      expect(r.receiverCode).toBe(0);
      expect(existsSync(join(dst, "src", "big.bin"))).toBe(false);
      expect(await b3sum(join(dst, "src", "other"))).toBe(await b3sum(join(s, "other")));
      expect(readdirSync(join(dst, "src")).filter((n) => n.startsWith(".escp-"))).toEqual([]);
    });
  }
});

describe("a stranger on the data port during a live transfer", () => {
  test("garbage and a silent connection mid-transfer do not harm it", async () => {
    await dataset();
    const port = await freePort();
    const dst = join(tmp, "stranger");
    mkdirSync(dst);
    // Once every stream is up the listener is closed, so strangers are refused outright;
    // either way they must not disturb the streams in flight.
    const poke = `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && head -c 300 /dev/urandom >&3; exec 4<>/dev/tcp/127.0.0.1/${port}; true' 2>/dev/null`;
    const r = await runPair({
      sock: join(tmp, "stranger.sock"),
      cwd: dst,
      args: ["-q", "-r", "-t", "1", "-l", "16M", "--escp_port", String(port), "--escp_portrange", "1", "--timeout", "10", src, `localhost:${dst}`],
      senderEnv: { ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: poke },
    });
    expect(r.senderStderr).toBe("");
    expect(r.senderCode).toBe(0);
    expect(r.receiverCode).toBe(0);
    expect(await b3sum(join(dst, "src", "big.bin"))).toBe(await b3sum(join(src, "big.bin")));
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}
