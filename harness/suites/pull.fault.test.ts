// Faults in a pull: the remote data sender (the --mgmt server) and the local data sink (the
// escp the user runs) killed at every named protocol state, each frozen mid-transfer
// (SIGSTOP), and strangers flooding the data port the server listens on. The same promises as
// for push (kill.fault, liveness.fault, hostile strangers): a clear one-line message, the
// right exit status, no zombie, and never a partial file under a final name.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { byRole, runWithKillIn, STATES } from "../faults/kill.ts";
import { runPair } from "../faults/pair.ts";
import { startProxy } from "../faults/net-proxy.ts";
import { b3sum, freePort, lazyFiles } from "./e2e-helpers.ts";

const tmp = makeTmpDir("fault-pull");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const src = join(tmp, "src");
const FILES = ["big.bin", "small-1", "small-2"];
const dataset = lazyFiles(src, { "big.bin": [24 << 20, 11], "small-1": [1000, 12], "small-2": [70_000, 13] });

/** Every final name is absent or byte-identical to its source; no temporary is left. */
async function noPartialFinals(dst: string): Promise<void> {
  for (const f of FILES) {
    const p = join(dst, "src", f);
    if (existsSync(p)) expect(await b3sum(p)).toBe(await b3sum(join(src, f)));
  }
  const d = join(dst, "src");
  if (existsSync(d)) expect(readdirSync(d).filter((n) => n.startsWith(".escp-"))).toEqual([]);
}

async function allArrived(dst: string): Promise<void> {
  for (const f of FILES) expect(await b3sum(join(dst, "src", f))).toBe(await b3sum(join(src, f)));
}

// -t 1 and a paced remote sender keep the 24 MiB file in flight long enough for "midblock".
const FLAGS = ["-q", "-r", "-t", "1", "-l", "16M", "--escp_port", "0", "--timeout", "5"];

/** A case's destination (the initiator's) and the server's working directory. */
function dirs(tag: string): { dst: string; cwd: string; sock: string } {
  const dst = join(tmp, `${tag}-dst`);
  const cwd = join(tmp, `${tag}-cwd`);
  mkdirSync(dst);
  mkdirSync(cwd);
  return { dst, cwd, sock: join(tmp, `${tag}.sock`) };
}

const lines = (s: string): string[] => s.trim().split("\n");

describe("pull: kill the remote sender at each protocol state", () => {
  for (const state of STATES) {
    test(state, async () => {
      await dataset();
      const { dst, cwd, sock } = dirs(`tx-${state}`);
      const r = await runWithKillIn("pull", "sender", state, sock, cwd, [...FLAGS, `localhost:${src}`, dst]);
      expect(r.sender.code).toBe(137); // it really died at that state
      const where = `mgmt socket ${sock}`;
      if (state === "init") {
        // before its reply: the handshake fails
        expect(r.receiver.code).toBe(5);
        expect(lines(r.receiver.stderr)).toEqual([`escp: ${where}: session init failed: control channel closed before a message arrived`]);
      } else if (state === "close") {
        // it said SessionDone after every verdict: all is in place; whether the sink acks before
        // it sees the streams drop is a race (0), or it reports the drop (9)
        expect([0, 9]).toContain(r.receiver.code);
        if (r.receiver.code === 9)
          expect(lines(r.receiver.stderr)).toEqual([`escp: ${where}: peer closed the control stream unexpectedly (it exited or was killed)`]);
        await allArrived(dst);
      } else {
        expect(r.receiver.code).toBe(9);
        expect(lines(r.receiver.stderr)).toHaveLength(1);
        expect(r.receiver.stderr).toMatch(
          new RegExp(
            `^escp: ${where.replace(/[.]/g, "\\.")}: peer closed the (control|data) stream( \\d+)? unexpectedly \\(it exited or was killed(; \\d+ reconnect attempts? failed)?\\)\n$`,
          ),
        );
      }
      await noPartialFinals(dst);
    });
  }
});

describe("pull: kill the local receiver at each protocol state", () => {
  for (const state of STATES) {
    test(state, async () => {
      await dataset();
      const { dst, cwd, sock } = dirs(`rx-${state}`);
      const r = await runWithKillIn("pull", "receiver", state, sock, cwd, [...FLAGS, `localhost:${src}`, dst]);
      expect(r.receiver.code).toBe(137);
      // No zombie: the server exits by itself. Killed right after sending init, the initiator may
      // be gone before the server's reply is written (5) or only afterwards (9). Later, the
      // server's data streams wait to be re-established (--retries), so the control channel
      // closing may be what it notices first.
      expect(state === "init" ? [5, 9] : [9]).toContain(r.sender.code);
      expect(lines(r.sender.stderr)).toHaveLength(1);
      expect(r.sender.stderr).toMatch(
        state === "init"
          ? /^escp server: error: (control channel write failed: mgmt socket closed|receiver vanished \(control channel closed\)|receiver: peer closed the)/
          : /^escp server: error: (receiver: peer closed the (control|data) stream( \d+)? unexpectedly \(it exited or was killed\)|receiver vanished \(control channel closed\))\n$/,
      );
      await noPartialFinals(dst);
    });
  }
});

const FREEZE = { ESCP_FAULT_EXEC: "kill -STOP $PPID" };
const LIVE = ["-q", "-r", "-t", "1", "-l", "16M", "--escp_port", "0", "--timeout", "2"];

describe("pull: a frozen peer is detected within --timeout", () => {
  test("the remote sender frozen mid-transfer (SIGSTOP): the local receiver stops with a stall error, no partial file", async () => {
    await dataset();
    const { dst, cwd, sock } = dirs("frozen-tx");
    // pair.ts's "receiver" is the --mgmt server process: here the data sender
    const r = byRole(
      await runPair({
        sock,
        cwd,
        args: [...LIVE, `localhost:${src}`, dst],
        receiverEnv: { ...FREEZE, ESCP_FAULT_EXEC_AT: "sender:midblock" },
        frozen: "receiver",
      }),
      "pull",
    );
    expect(r.receiver.code).toBe(9);
    expect(lines(r.receiver.stderr)).toHaveLength(1);
    expect(r.receiver.stderr).toMatch(
      new RegExp(
        `^escp: mgmt socket ${sock.replace(/[.]/g, "\\.")}: peer stalled on the (control|data) stream( \\d+)?: no data from peer for 2 s on stream \\d+\n$`,
      ),
    );
    await noPartialFinals(dst);
    expect(existsSync(join(dst, "src", "big.bin"))).toBe(false);
  });

  test("the local receiver frozen mid-transfer: the remote sender gives up and exits by itself", async () => {
    await dataset();
    const { dst, cwd, sock } = dirs("frozen-rx");
    const r = byRole(
      await runPair({
        sock,
        cwd,
        args: [...LIVE, `localhost:${src}`, dst],
        senderEnv: { ...FREEZE, ESCP_FAULT_EXEC_AT: "receiver:midblock" },
        frozen: "sender",
      }),
      "pull",
    );
    expect(r.sender.code).toBe(9);
    expect(lines(r.sender.stderr)).toHaveLength(1);
    expect(r.sender.stderr).toMatch(
      /^escp server: error: receiver: peer stalled on the (control|data) stream( \d+)?: no data from peer for 2 s on stream \d+\n$/,
    );
    await noPartialFinals(dst);
    expect(existsSync(join(dst, "src", "big.bin"))).toBe(false);
  });
});

/** A connection to the data port that has read the listener's 16-byte challenge (so the
 *  listener has taken it in); `closed` settles when the listener hangs up. */
function tcp(port: number, localAddress?: string): Promise<{ sock: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const sock = connect({ host: "127.0.0.1", port, ...(localAddress ? { localAddress } : {}) });
    sock.on("error", () => undefined); // a reset is as good as a close here
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    sock.on("data", (b: Buffer) => {
      got += b.length;
      if (got >= 16) resolve({ sock, closed });
    });
    void closed.then(() => {
      if (got < 16) reject(new Error(`127.0.0.1:${port} closed before sending its challenge`));
    });
  });
}

describe("pull: strangers on the data port the server listens on", () => {
  test("a flood before the real streams (held at a proxy) and another mid-transfer: the pull completes byte for byte", async () => {
    await dataset();
    const { dst, cwd, sock } = dirs("flood");
    const port = await freePort(); // the server binds exactly this port: the strangers know it
    const strangers: { sock: Socket; closed: Promise<void> }[] = [];
    let garbage = 0;
    // The initiator's streams pass a proxy that holds its first HELLO until the flood is over.
    const proxy = await startProxy({
      target: { host: "127.0.0.1", port },
      faults: [
        {
          stream: 0,
          afterBytes: 80,
          kind: "hold",
          until: async () => {
            for (let i = 0; i < 20; i++) {
              // garbage HELLOs, one after another: each judged and hung up on
              const t = await tcp(port);
              t.sock.write(randomBytes(256));
              await t.closed;
              garbage++;
            }
            // silent ones: a few from the initiator's own address (within its pending cap), more
            // from another address than it may hold (2 × (T + 1) + 8 = 14: its oldest are closed)
            for (let i = 0; i < 4; i++) strangers.push(await tcp(port));
            const far: typeof strangers = [];
            for (let i = 0; i < 16; i++) far.push(await tcp(port, "127.0.0.2"));
            strangers.push(...far);
            await Promise.all(far.slice(0, 2).map((f) => f.closed));
          },
        },
      ],
    });
    // Mid-transfer, from the server's side: 30 more connections with garbage (all streams are up,
    // so the listener is closed: refused outright, or judged and dropped).
    const poked = join(tmp, "flood-poked");
    const poke = `bash -c 'for i in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/${port} && head -c 300 /dev/urandom >&3) 2>/dev/null; done; touch ${poked}'`;
    try {
      const r = byRole(
        await runPair({
          sock,
          cwd,
          args: ["-q", "-r", "-t", "2", "-l", "16M", "--escp_port", String(port), "--escp_portrange", "1", "--timeout", "10", `localhost:${src}`, dst],
          senderEnv: { ESCP_FAULT_DATA_PORT: String(proxy.port) },
          receiverEnv: { ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: poke },
        }),
        "pull",
      );
      expect(r.receiver.stderr).toBe("");
      expect(r.sender.stderr).toBe("");
      expect(r.receiver.code).toBe(0);
      expect(r.sender.code).toBe(0);
      expect(proxy.stats.conns[0]?.fired).toEqual(["hold"]);
      expect(garbage).toBe(20);
      expect(existsSync(poked)).toBe(true); // the mid-transfer flood ran
      await allArrived(dst);
      await noPartialFinals(dst);
      await Promise.all(strangers.map((s) => s.closed)); // the silent ones were closed too
    } finally {
      for (const s of strangers) s.sock.destroy();
      await proxy.stop();
    }
  });
});
