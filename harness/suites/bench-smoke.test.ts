// CI smoke of the macro benchmarks, so they cannot rot: `bun run bench:macro --smoke` (tiny
// datasets, one repeat, every peer that exists) must write a results file with host facts
// and verified escp cases; `bench:report` must turn it into markdown + SVG; `bench:compare`
// must pass a file against itself and flag a doctored copy where escp is 3× slower.
// No timing is asserted. Everything lives in one temp dir; the run must leave no cgroup,
// network namespace (WAN or multi-host) or process behind.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../escp-run.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { readResults, type MacroResults } from "../../bench/lib/results.ts";

const dir = makeTmpDir("bench-smoke");
const out = join(dir, "smoke.json");
let benchPid = -1;

afterAll(() => removeTmpDir(dir));

async function bunRun(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string; pid: number }> {
  const proc = Bun.spawn([process.execPath, "run", ...args], { cwd: REPO_ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr, pid: proc.pid };
  } finally {
    clearTimeout(timer);
  }
}

function load(): MacroResults {
  return readResults(out);
}

describe("macro benchmark smoke", () => {
  test("bench:macro --smoke writes host facts and verified escp cases", async () => {
    const r = await bunRun(["bench:macro", "--smoke", "--work", join(dir, "work"), "--out", out], 170_000);
    benchPid = r.pid;
    if (r.code !== 0) console.error(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    const res = load();
    expect(res.mode).toBe("smoke");
    expect(res.host.cpuModel.length).toBeGreaterThan(0);
    expect(res.host.nproc).toBeGreaterThan(0);
    expect(res.host.kernel.length).toBeGreaterThan(0);
    expect(res.host.bun).toContain(Bun.version);
    expect(res.host.loadavgBefore).toHaveLength(3);
    expect(res.host.loadavgAfter).toHaveLength(3);
    const escp = res.cases.filter((c) => c.tool === "escp");
    expect(escp.length).toBeGreaterThanOrEqual(5);
    for (const c of escp) {
      expect(c.repeats.length).toBeGreaterThan(0);
      for (const rep of c.repeats) {
        if (!rep.verified) console.error(`${c.id}: ${rep.error}`);
        expect(rep.verified).toBe(true);
      }
      expect(c.median).not.toBeNull();
    }
    for (const name of ["big-random", "dummy", "losf", "mixed", "big-text", "axes"]) {
      expect(escp.some((c) => c.scenario === name)).toBe(true);
    }
    // Pull beside push, on the same dataset.
    for (const name of ["big-random", "losf"]) expect(escp.some((c) => c.scenario === name && c.label === "pull")).toBe(true);
    // the same file as a stream from a pipe (cat FILE | escp - host:f), verified like the others
    expect(escp.some((c) => c.scenario === "big-random" && c.label === "cat | -")).toBe(true);
    // Third party: run on the multi-host fixture, or skipped with the reason.
    const tp = res.cases.filter((c) => c.scenario === "third-party").map((c) => c.label);
    if (tp.length === 0) expect(res.skipped.some((k) => k.scenario === "third-party")).toBe(true);
    else expect(tp).toEqual(expect.arrayContaining(["-3", "-3 --direct"]));
    // Peers either ran (and verified) or were skipped with a reason.
    for (const c of res.cases.filter((x) => x.tool !== "escp")) {
      for (const rep of c.repeats) {
        if (!rep.verified) console.error(`${c.id}: ${rep.error}`);
        expect(rep.verified).toBe(true);
      }
    }
    for (const s of res.skipped) expect(s.reason.length).toBeGreaterThan(0);
  }, 180_000);

  test("the run left no cgroup, namespace or process behind", () => {
    expect(benchPid).toBeGreaterThan(0);
    const groups = existsSync("/sys/fs/cgroup/cpuacct") ? readdirSync("/sys/fs/cgroup/cpuacct").filter((n) => n.startsWith(`escp-bench-${benchPid}-`)) : [];
    expect(groups).toEqual([]);
    const ns = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe", stderr: "ignore" }).stdout.toString();
    expect(ns.split("\n").filter((l) => l.startsWith(`escp-wan-${benchPid}-`) || l.startsWith(`escp-mh-${benchPid}-`))).toEqual([]);
    expect(existsSync(join(dir, "work", `run-${benchPid}`))).toBe(false);
  });

  test("bench:report writes markdown and SVG with the escp rows", async () => {
    const reportDir = join(dir, "report");
    const r = await bunRun(["bench:report", "--out-dir", reportDir, out], 60_000);
    if (r.code !== 0) console.error(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    for (const f of ["smoke.md", "smoke.svg", "latest.md", "latest.svg"]) expect(existsSync(join(reportDir, f))).toBe(true);
    const md = readFileSync(join(reportDir, "smoke.md"), "utf8");
    expect(md).toContain("## big-random");
    expect(md).toMatch(/\| \*\*escp\*\* \| default \|/);
    expect(md).toContain("## Key figures");
    const svg = readFileSync(join(reportDir, "smoke.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain(">escp<");
    expect(svg).not.toMatch(/<script|href="http/);
  }, 60_000);

  test("bench:compare: a file against itself passes, a 3× slower escp is flagged", async () => {
    const same = await bunRun(["bench:compare", out, out], 60_000);
    if (same.code !== 0) console.error(same.stdout, same.stderr);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain("0 regressions");

    const res = load();
    const target = res.cases.find((c) => c.id === "big-random/escp/default");
    expect(target).toBeDefined();
    for (const c of res.cases.filter((x) => x.tool === "escp" && x.scenario === "big-random")) {
      for (const rep of c.repeats) {
        rep.wallS *= 3;
        if (rep.gbps !== null) rep.gbps /= 3;
        if (rep.filesPerS !== null) rep.filesPerS /= 3;
      }
      if (c.median) {
        c.median.wallS *= 3;
        if (c.median.gbps !== null) c.median.gbps /= 3;
        if (c.median.filesPerS !== null) c.median.filesPerS /= 3;
      }
    }
    const slow = join(dir, "slow.json");
    writeFileSync(slow, JSON.stringify(res));
    const cmp = await bunRun(["bench:compare", out, slow], 60_000);
    expect(cmp.code).toBe(1);
    expect(cmp.stdout).toContain("big-random/escp/default");
    expect(cmp.stdout).toMatch(/REGRESSION/);

    const bad = join(dir, "not-results.json");
    writeFileSync(bad, "{}");
    const err = await bunRun(["bench:compare", out, bad], 60_000);
    expect(err.code).toBe(2);
  }, 90_000);
});
