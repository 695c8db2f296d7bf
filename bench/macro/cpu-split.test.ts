// CPU per process group: the /proc poller of a repeat (bench/macro/rss.ts) — which group a
// process's CPU goes to, and a live run where sh scripts, renamed through symbolic links
// (comm is the name exec'd), stand in for the sender, its ssh client, an sshd session and
// the receiver — then the medians (writer.ts) and the report's column (report.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import type { Median, Repeat } from "../lib/results.ts";
import { splitCell } from "../report.ts";
import { allPids } from "./proc.ts";
import { clockTicks, cpuGroupOf, readStat, SidePoll } from "./rss.ts";
import { summarize } from "./writer.ts";

const dir = makeTmpDir("bench-rss");
afterAll(() => removeTmpDir(dir));

describe("CPU groups", () => {
  test("ssh on the sender side, sshd* on the receiver side, the rest by side", () => {
    expect(cpuGroupOf("sender", "ssh")).toBe("ssh");
    expect(cpuGroupOf("sender", "bun")).toBe("sender");
    expect(cpuGroupOf("sender", "rsync")).toBe("sender");
    expect(cpuGroupOf("sender", "sshd")).toBe("sender");
    expect(cpuGroupOf("receiver", "sshd")).toBe("sshd");
    expect(cpuGroupOf("receiver", "sshd-session")).toBe("sshd");
    expect(cpuGroupOf("receiver", "ssh")).toBe("receiver");
    expect(cpuGroupOf("receiver", "bash")).toBe("receiver");
  });

  test("/proc/<pid>/stat of this process: its name, parent and some CPU", () => {
    const st = readStat(process.pid);
    expect(st).not.toBeNull();
    expect(st?.ppid).toBe(process.ppid);
    expect(st?.ticks).toBeGreaterThanOrEqual(0);
    expect(clockTicks()).toBeGreaterThan(0);
  });

  test("a live run: CPU split into sender, ssh, sshd and receiver", async () => {
    symlinkSync("/bin/sh", join(dir, "ssh"));
    symlinkSync("/bin/sh", join(dir, "sshd-session"));
    // About 0.1 s of CPU each, then a pause the poller sees them in (a trailing `true`
    // keeps sh from exec'ing sleep, which would rename the process).
    const busy = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done";
    const hold = "sleep 0.5; true";
    const receiver = Bun.spawn(["sh", "-c", `sleep 0.1; ./sshd-session -c '${busy}; ${hold}' & (${busy}; ${hold}) & wait`], { cwd: dir });
    const sender = Bun.spawn(["sh", "-c", `${busy}; ./ssh -c '${busy}; ${hold}'; ${hold}`], { cwd: dir });
    const poll = new SidePoll(allPids, receiver.pid);
    poll.start(sender.pid);
    await Promise.all([sender.exited, receiver.exited]);
    poll.stop();
    const split = poll.cpuSplit();
    for (const g of ["sender", "ssh", "sshd", "receiver"] as const) expect(split[g] ?? 0).toBeGreaterThan(0.03);
    expect(poll.result().sender).toBeGreaterThan(0);
    expect(poll.result().receiver).toBeGreaterThan(0);
  }, 20_000);

  test("nothing seen: every group null", () => {
    const poll = new SidePoll(() => [], null);
    poll.start(process.pid);
    poll.stop();
    expect(poll.cpuSplit()).toEqual({ sender: null, receiver: null, ssh: null, sshd: null });
  });
});

describe("CPU split in the results and the report", () => {
  const rep = (split: Repeat["cpuSplitS"], perGiB: Repeat["cpuSplitSPerGiB"], verified = true): Repeat => ({
    wallS: 1,
    gbps: 1,
    filesPerS: null,
    cpuS: 1,
    cpuSPerGiB: 1,
    rssSenderMiB: 1,
    rssReceiverMiB: 1,
    cpuSplitS: split,
    cpuSplitSPerGiB: perGiB,
    verified,
    exitCode: verified ? 0 : 1,
  });

  test("medians per group over the verified repeats; null groups stay null", () => {
    const m = summarize([
      rep({ sender: 1, receiver: 2, ssh: 0.1, sshd: null }, { sender: 0.5, receiver: 1, ssh: 0.05, sshd: null }),
      rep({ sender: 3, receiver: 4, ssh: 0.3, sshd: null }, { sender: 1.5, receiver: 2, ssh: 0.15, sshd: null }),
      rep({ sender: 9, receiver: 9, ssh: 9, sshd: 9 }, null, false),
    ]);
    expect(m?.cpuSplitS).toEqual({ sender: 2, receiver: 3, ssh: 0.2, sshd: null });
    expect(m?.cpuSplitSPerGiB).toEqual({ sender: 1, receiver: 1.5, ssh: 0.1, sshd: null });
  });

  test("repeats without a split (older files): median split all null, per GiB null", () => {
    const old = rep(undefined, undefined);
    delete old.cpuSplitS;
    delete old.cpuSplitSPerGiB;
    const m = summarize([old]);
    expect(m?.cpuSplitS).toEqual({ sender: null, receiver: null, ssh: null, sshd: null });
    expect(m?.cpuSplitSPerGiB).toBeNull();
  });

  test("the report cell: per GiB, in seconds without bytes, – without a split", () => {
    const base = summarize([rep({ sender: 1, receiver: 2, ssh: 0.25, sshd: 0.5 }, { sender: 0.5, receiver: 1, ssh: 0.125, sshd: 0.25 })]) as Median;
    expect(splitCell(base)).toBe("0.50 / 1.00 / 0.38");
    expect(splitCell({ ...base, cpuSplitSPerGiB: null })).toBe("1.00 / 2.00 / 0.75 s");
    expect(splitCell({ ...base, cpuSplitSPerGiB: { sender: 0.5, receiver: null, ssh: null, sshd: null } })).toBe("0.50 / – / –");
    const { cpuSplitS: _a, cpuSplitSPerGiB: _b, ...old } = base;
    expect(splitCell(old)).toBe("–");
    expect(splitCell(null)).toBe("–");
  });
});
