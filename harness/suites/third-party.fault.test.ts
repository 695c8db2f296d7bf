// Faults in a third-party copy (`escp -3 h1:src h2:dst`) on the multi-host fixture: a server
// killed at a named protocol state (ESCP_FAULT_KILL_AT passed through -D to both servers; only
// the one playing that data role acts on it), the network cut mid-transfer between this host
// (the relay) and one server, and the initiator — the relay itself — killed. Each row checks:
// the initiator's exit status and its one stderr line, nothing under a final name on h2 that
// is not the complete file (named temporaries, ESCP_TMPFILE=0, so a leftover would show), and
// no escp server left running on any host. A mid-transfer moment is reached deterministically:
// the sender (h1) stops at "sender:midblock" in a script that rendezvouses with the test over
// two FIFOs (ESCP_FAULT_EXEC); nothing here sleeps to synchronise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { expectSameFile, writeRandomFile } from "./e2e-helpers.ts";
import { errLines, expectExit, expectServersGone, freshDir, remoteWith, Rendezvous, temporariesUnder, x3 } from "./third-party-helpers.ts";

const can = canMultiHost();
if (!can.ok) console.warn(`[third-party] skipping the third-party fault suite: ${can.why}`);

const T = 120_000;
let fx: MultiHost | undefined;
let tmp = "";
let big = "";

function need(): MultiHost {
  if (!fx) throw new Error("fixture not started");
  return fx;
}

// One stream and a rate limit keep the 24 MiB file in flight for a few seconds ("midblock").
const PACED = ["-t", "1", "-l", "16M"];
const BIG = 24 << 20;

/** Nothing of the copy on h2 under a name: no final name, no session temporary. What may stay
 * is a resumable partial (issue 12: `.<name>.escp-part` with its journal), for a rerun. */
function nothingLanded(dir: string): void {
  const left = readdirSync(dir);
  const partials = left.filter((n) => /^\..+\.escp-(part|journal)$/.test(n));
  expect(left.filter((n) => !partials.includes(n))).toEqual([]);
  expect(partials.length % 2).toBe(0); // a partial never without its journal
}

describe.skipIf(!can.ok)(can.ok ? "third-party copies (-3): faults" : `third-party copies (-3): faults (skipped: ${can.why})`, () => {
  beforeAll(async () => {
    tmp = makeTmpDir("third-party-fault");
    big = join(tmp, "big.bin");
    await writeRandomFile(big, BIG, 5);
    fx = await startHosts({ count: 2 });
  }, 60_000);

  afterAll(async () => {
    try {
      await fx?.stop();
    } finally {
      fx = undefined;
      if (tmp) removeTmpDir(tmp);
    }
  }, 60_000);

  test(
    "h1's escp killed mid-transfer, relayed and --direct: exit 9, h1 named once, nothing on h2",
    async () => {
      const f = need();
      const d = freshDir(tmp, "kill-h1");
      const remote = remoteWith({ ESCP_FAULT_KILL_AT: "sender:midblock", ESCP_TMPFILE: "0" });
      const [relay, direct] = await Promise.all([
        x3(f, [...PACED, `h1:${big}`, `h2:${freshDir(d, "relay")}/`], { remote, timeout: 10 }),
        x3(f, ["-3", "--direct", ...PACED, `h1:${big}`, `h2:${freshDir(d, "direct")}/`], { remote, timeout: 10 }),
      ]);
      for (const r of [relay, direct]) {
        expectExit(r, 9);
        expect(errLines(r)).toEqual(["escp: h1: the escp server ended without reporting the transfer (ssh to h1 failed with exit status 255)"]);
        expect(r.stdout).toBe("");
      }
      await expectServersGone(f);
      nothingLanded(join(d, "relay"));
      nothingLanded(join(d, "direct"));
    },
    T,
  );

  test(
    "h2's escp killed mid-transfer, relayed and --direct: exit 9, h1 reports its receiver gone, no final name on h2",
    async () => {
      const f = need();
      const d = freshDir(tmp, "kill-h2");
      // A SIGKILLed receiver cannot clean up: its resumable partial (the default for a file of
      // more than one block) stays for a rerun, a named temporary (ESCP_JOURNAL=0 ESCP_TMPFILE=0)
      // stays under its .escp-* name; neither ever under big.bin.
      const [relay, direct] = await Promise.all([
        x3(f, [...PACED, `h1:${big}`, `h2:${freshDir(d, "relay")}/`], { remote: remoteWith({ ESCP_FAULT_KILL_AT: "receiver:midblock" }), timeout: 10 }),
        x3(f, ["-3", "--direct", ...PACED, `h1:${big}`, `h2:${freshDir(d, "direct")}/`], {
          remote: remoteWith({ ESCP_FAULT_KILL_AT: "receiver:midblock", ESCP_JOURNAL: "0", ESCP_TMPFILE: "0" }),
          timeout: 10,
        }),
      ]);
      for (const r of [relay, direct]) {
        expectExit(r, 9);
        const lines = errLines(r);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^escp: h1: receiver: peer closed the (control|data) stream( \d+)? unexpectedly \(it exited or was killed\)$/);
      }
      await expectServersGone(f);
      nothingLanded(join(d, "relay"));
      const left = readdirSync(join(d, "direct"));
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(/^\.escp-[0-9a-f]+-1\.part$/);
    },
    T,
  );

  test(
    "the relay's path to h2 cut mid-transfer (block local↔h2): exit 9, h1 names the stalled receiver, nothing on h2",
    async () => {
      const f = need();
      const d = freshDir(tmp, "cut-h2");
      const meet = new Rendezvous(tmp, "cut-h2");
      let blocked = false;
      try {
        const remote = remoteWith({ ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: meet.script, ESCP_TMPFILE: "0" });
        const run = x3(f, [...PACED, `h1:${big}`, `h2:${d}/`], { remote, timeout: 5 });
        await meet.reached(run);
        await f.block("local", "h2");
        blocked = true;
        await meet.go();
        const r = await run;
        expectExit(r, 9);
        const lines = errLines(r);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^escp: h1: receiver: peer (stalled on the (control|data) stream|closed the (control|data) stream)/);
      } finally {
        meet.dispose();
        if (blocked) await f.unblock("local", "h2");
      }
      await expectServersGone(f);
      nothingLanded(d);
    },
    T,
  );

  test(
    "h1 cut off from this host mid-transfer (block local↔h1), relayed: h2 stalls and ends, and the initiator gives up on h1's report (exit 9)",
    async () => {
      const f = need();
      const d = freshDir(tmp, "cut-h1-relay");
      const meet = new Rendezvous(tmp, "cut-h1-relay");
      let blocked = false;
      try {
        const remote = remoteWith({ ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: meet.script, ESCP_TMPFILE: "0" });
        const run = x3(f, [...PACED, `h1:${big}`, `h2:${d}/`], { remote, timeout: 5 });
        await meet.reached(run);
        await f.block("local", "h1");
        blocked = true;
        await meet.go();
        const r = await run;
        expectExit(r, 9);
        expect(errLines(r)).toEqual(["escp: h1: no report 15 s after h2 ended (h1 unreachable from this host?)"]);
        nothingLanded(d);
      } finally {
        meet.dispose();
        if (blocked) await f.unblock("local", "h1");
      }
      await expectServersGone(f);
    },
    T,
  );

  test(
    "h1 cut off from this host mid-transfer, --direct: the copy completes h1→h2 (verified), the initiator cannot hear the report (exit 9)",
    async () => {
      const f = need();
      const d = freshDir(tmp, "cut-h1-direct");
      const meet = new Rendezvous(tmp, "cut-h1-direct");
      let blocked = false;
      try {
        const remote = remoteWith({ ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: meet.script, ESCP_TMPFILE: "0" });
        const run = x3(f, ["-3", "--direct", ...PACED, `h1:${big}`, `h2:${d}/`], { remote, timeout: 3 });
        await meet.reached(run);
        await f.block("local", "h1");
        blocked = true;
        await meet.go();
        const r = await run;
        expectExit(r, 9);
        expect(errLines(r)).toEqual(["escp: h1: no report 11 s after h2 ended (h1 unreachable from this host?)"]);
      } finally {
        meet.dispose();
        if (blocked) await f.unblock("local", "h1");
      }
      await expectServersGone(f);
      expect(readdirSync(d)).toEqual(["big.bin"]);
      await expectSameFile(big, join(d, "big.bin"));
    },
    T,
  );

  test(
    "the initiator (the relay) killed mid-transfer: both servers end on their own, nothing on h2",
    async () => {
      const f = need();
      const d = freshDir(tmp, "kill-relay");
      const meet = new Rendezvous(tmp, "kill-relay");
      let pid = 0;
      try {
        const remote = remoteWith({ ESCP_FAULT_EXEC_AT: "sender:midblock", ESCP_FAULT_EXEC: meet.script, ESCP_TMPFILE: "0" });
        const run = x3(f, [...PACED, `h1:${big}`, `h2:${d}/`], {
          remote,
          timeout: 10,
          onSpawn: (p) => {
            pid = p;
          },
        });
        await meet.reached(run);
        process.kill(-pid, "SIGKILL"); // escp, its relay threads and its two ssh clients
        await meet.go();
        const r = await run;
        expect(r.code).toBe(137);
      } finally {
        meet.dispose();
      }
      await expectServersGone(f);
      nothingLanded(d);
      expect(existsSync(join(d, "big.bin"))).toBe(false);
      expect(temporariesUnder(d)).toEqual([]);
    },
    T,
  );
});
