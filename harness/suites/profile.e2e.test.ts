// --profile end to end: the trace and report are written and describe both sides, -v prints
// the verdict, and three real bottlenecks are diagnosed: a disk throttled with the blkio
// cgroup (reads of the sender), a network throttled with tbf (between two namespaces), and
// a CPU-heavy configuration (-C at zstd level 19 on compressible text).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ESCP_REMOTE_CMD, REPO_ROOT } from "../escp-run.ts";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { canWan, startWan } from "../wan/netns.ts";
import { escpAcrossWan } from "../wan/escp-wan.ts";
import { BASE, expectOk, expectSameFile, runEscp, writeRandomFile } from "./e2e-helpers.ts";

let fx: SshdFixture;
let tmp = "";
const remote = (): string[] => [...BASE, ...fx.sshArgs, "-D", ESCP_REMOTE_CMD];

beforeAll(async () => {
  tmp = makeTmpDir("profile");
  fx = await startSshd();
});

afterAll(async () => {
  await fx?.stop();
  if (tmp) removeTmpDir(tmp);
});

interface TraceJson {
  traceEvents: { ph: string; pid: number; tid: number; name: string; args?: Record<string, unknown> }[];
  metadata: { verdict: { bound: string; side: string | null; stage: number | null; text: string } };
}

function readTrace(path: string): TraceJson {
  return JSON.parse(readFileSync(path, "utf8")) as TraceJson;
}

/** "escp: <verdict> (profile: …)" printed by -v. */
function verdictLine(stdout: string): string {
  return stdout.split("\n").find((l) => l.startsWith("escp: bound by") || l.startsWith("escp: no clear")) ?? "";
}

describe("--profile", () => {
  test("writes a Perfetto trace and an HTML report covering both sides; -v prints the verdict", async () => {
    const src = join(tmp, "p1.bin");
    await writeRandomFile(src, 24 << 20, 11);
    const prof = join(tmp, "p1.json");
    const r = await expectOk([...remote(), "-v", "--profile", prof, src, `${fx.user}@127.0.0.1:${join(tmp, "p1.out")}`]);
    await expectSameFile(src, join(tmp, "p1.out"));
    const t = readTrace(prof);
    const pids = new Set(t.traceEvents.filter((e) => e.ph === "X").map((e) => e.pid));
    expect([...pids].sort()).toEqual([1, 2]); // sender and receiver spans
    const names = new Set(t.traceEvents.filter((e) => e.ph === "X").map((e) => e.name));
    for (const stage of ["disk read", "hash", "seal", "send", "recv", "open", "disk write"]) expect(names.has(stage)).toBe(true);
    const html = readFileSync(join(tmp, "p1.html"), "utf8");
    expect(html).toContain(t.metadata.verdict.text.replace(/&/g, "&amp;").replace(/</g, "&lt;"));
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    expect(verdictLine(r.stdout)).toContain(t.metadata.verdict.text);
  }, 120_000);

  test("without -v nothing is printed, and a bad profile path fails naming it before any data moves", async () => {
    const src = join(tmp, "p2.bin");
    await writeRandomFile(src, 1 << 20, 12);
    const ok = await expectOk([...remote(), "--profile", join(tmp, "p2.json"), src, `${fx.user}@127.0.0.1:${join(tmp, "p2.out")}`]);
    expect(verdictLine(ok.stdout)).toBe("");
    expect(existsSync(join(tmp, "p2.html"))).toBe(true);
    const bad = join(tmp, "no-such-dir", "p.json");
    const r = await runEscp([...remote(), "--profile", bad, src, `${fx.user}@127.0.0.1:${join(tmp, "p2b.out")}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(bad);
    expect(existsSync(join(tmp, "p2b.out"))).toBe(false);
  }, 60_000);
});

/** The whole disk (not a partition) holding path, as "MAJ:MIN" for blkio.throttle. */
function diskOf(path: string): string | null {
  const dev = statSync(path).dev;
  const maj = Math.floor(dev / 256) & 0xfff;
  const min = (dev & 0xff) | ((Math.floor(dev / 4096) & ~0xff) >>> 0);
  const sys = `/sys/dev/block/${maj}:${min}`;
  if (!existsSync(sys)) return null;
  if (!existsSync(join(sys, "partition"))) return `${maj}:${min}`;
  const parent = join(dirname(join("/sys/dev/block", readlinkSync(sys))), "dev");
  return existsSync(parent) ? readFileSync(parent, "utf8").trim() : null;
}

const BLKIO = "/sys/fs/cgroup/blkio";
const blkioOk = existsSync(join(BLKIO, "cgroup.procs"));
if (!blkioOk) console.warn("[profile] skipping the throttled-disk verdict: no blkio cgroup (v1) at /sys/fs/cgroup/blkio");

describe("verdicts on real bottlenecks", () => {
  test.skipIf(!blkioOk)(
    "a disk throttled to 16 MB/s for the sender's reads: bound by disk read on the sender",
    async () => {
      const src = join(tmp, "disk.bin");
      await writeRandomFile(src, 48 << 20, 13);
      const disk = diskOf(src);
      expect(disk).not.toBeNull();
      const cg = join(BLKIO, `escp-test-${process.pid}-${Date.now()}`);
      mkdirSync(cg);
      try {
        writeFileSync(join(cg, "blkio.throttle.read_bps_device"), `${disk} ${16 * 1000 * 1000}\n`);
        const wrap = ["sh", "-c", `echo $$ > ${join(cg, "cgroup.procs")} && exec "$@"`, "sh"];
        const prof = join(tmp, "disk.json");
        const r = await runEscp([...remote(), "-v", "--profile", prof, src, `${fx.user}@127.0.0.1:${join(tmp, "disk.out")}`], { wrap, timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`escp exited ${r.code}: ${r.stderr}`);
        await expectSameFile(src, join(tmp, "disk.out"));
        const v = readTrace(prof).metadata.verdict;
        expect({ bound: v.bound, side: v.side }).toEqual({ bound: "disk-read", side: "sender" });
        expect(verdictLine(r.stdout)).toContain("disk read on the sender");
      } finally {
        rmdirSync(cg);
      }
    },
    180_000,
  );

  test("-C at zstd level 19 on compressible text: bound by CPU on the sender (compress)", async () => {
    const dir = join(tmp, "text");
    const mk = Bun.spawnSync([process.execPath, "datasets/cli.ts", "make", "big-text", dir, "--size", "24M", "-q"], { cwd: REPO_ROOT, stderr: "pipe" });
    expect(mk.exitCode).toBe(0);
    const src = join(dir, readdirSync(dir).find((n) => !n.startsWith(".")) ?? "");
    const prof = join(tmp, "cpu.json");
    const r = await expectOk([...remote(), "-v", "-C", "--compress-level", "19", "--profile", prof, src, `${fx.user}@127.0.0.1:${join(tmp, "cpu.out")}`], {
      timeoutMs: 240_000,
    });
    await expectSameFile(src, join(tmp, "cpu.out"));
    const v = readTrace(prof).metadata.verdict;
    expect({ bound: v.bound, side: v.side, stage: v.stage }).toEqual({ bound: "cpu", side: "sender", stage: 2 });
    expect(verdictLine(r.stdout)).toContain("CPU on the sender");
  }, 300_000);
});

const wanOk = canWan();
if (!wanOk.ok) console.warn(`[profile] skipping the throttled-network verdict: ${wanOk.why}`);

describe("verdicts across namespaces", () => {
  test.skipIf(!wanOk.ok)(
    "a link shaped to 40 Mbit/s with tbf: bound by the network",
    async () => {
      const wan = await startWan({ delayMs: 1, rateMbit: 0, lossPct: 0, seed: 1 });
      try {
        const tbf = await wan.exec("a", ["tc", "qdisc", "add", "dev", wan.tun.a, "root", "tbf", "rate", "40mbit", "burst", "32kb", "latency", "100ms"]);
        expect(tbf.code).toBe(0);
        const src = join(tmp, "net.bin");
        await writeRandomFile(src, 16 << 20, 14);
        const prof = join(tmp, "net.json");
        const r = await escpAcrossWan(wan, ["-q", "-v", "--escp_port", "0", "--timeout", "30", "--profile", prof, src, join(tmp, "net.out")], {
          sockDir: tmp,
          name: "net.sock",
          cwd: REPO_ROOT,
          timeoutMs: 120_000,
        });
        if (r.sender.code !== 0) throw new Error(`escp exited ${r.sender.code}: ${r.sender.stderr}\nreceiver: ${r.receiverStderr}`);
        await expectSameFile(src, join(tmp, "net.out"));
        const v = readTrace(prof).metadata.verdict;
        expect({ bound: v.bound, text: v.text }).toEqual({ bound: "network", text: expect.stringContaining("network") });
        expect(verdictLine(r.sender.stdout)).toContain("network");
      } finally {
        await wan.stop();
      }
    },
    180_000,
  );
});
