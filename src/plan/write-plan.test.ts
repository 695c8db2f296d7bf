// `escp plan` writing its directory: shard lists in the --filelist pair form that read back
// through src/fs/filelist.ts to exactly plan.json's entries (odd names included), the names a
// plain `escp -r` would give, the recorded shard options, and the refusals.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../../harness/tmp-dir.ts";
import { loadConfig } from "../config/load.ts";
import { EscpError } from "../errors/escp-error.ts";
import { parseFilelist } from "../fs/filelist.ts";
import { createPlan } from "./create.ts";
import { shardName, splitRange } from "./shard-list.ts";
import type { PlanJson } from "./write-plan.ts";

const ENV = { ESCP_CONFIG: "/dev/null" };
const tmp = makeTmpDir("plan-write");
const SRC = join(tmp, "tree");
const ODD = ["a b.txt", 'quote"d', "back\\slash", "hash #x", "colon: y", "ünï cödé", "tail@1+2", "new\nline", "it's"];

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof EscpError ? `${e.code}: ${e.message}` : String(e);
  }
  return "no error";
}

function readPlanJson(dir: string): PlanJson {
  return JSON.parse(readFileSync(join(dir, "plan.json"), "utf8")) as PlanJson;
}

mkdirSync(join(SRC, "sub", "deep"), { recursive: true });
ODD.forEach((n, i) => writeFileSync(join(SRC, n), "x".repeat(i * 100)));
writeFileSync(join(SRC, "sub", "deep", "big.bin"), new Uint8Array(600 * 1024).fill(7));
for (let i = 0; i < 20; i++) writeFileSync(join(SRC, "sub", `s${i}`), "y".repeat(i));

describe("escp plan writes its directory", () => {
  const dest = join(tmp, "dest");
  mkdirSync(dest);
  const dir = join(tmp, "plan one");
  test("shard lists round-trip through the --filelist parser to plan.json's entries", () => {
    createPlan(["-r", SRC, dest, "--shards", "4", "--plan-dir", dir, "--blocksize", "64K", "-t", "2", "-o", "Ciphers=aes128-gcm@openssh.com", "-C"], ENV);
    expect(readdirSync(dir).sort()).toEqual(["out", "parallel.sh", "plan.json", "shards", "slurm.sbatch"]);
    const plan = readPlanJson(dir);
    expect(plan.version).toBe(1);
    expect(plan.shards).toBe(4);
    expect(plan.block_size).toBe(64 * 1024);
    expect(plan.sources).toEqual([SRC]);
    expect(plan.destination).toBe(dest);
    expect(plan.run_cmd).toBe("escp");
    expect(plan.options).toEqual(["--compress", "-o", "Ciphers=aes128-gcm@openssh.com", "--parallel=2", "--blocksize=65536"]);
    // plain `escp -r tree dest` with dest an existing directory: tree/...
    expect(plan.files.map((f) => f.dst).sort()).toEqual(
      [...ODD.map((n) => `tree/${n}`), "tree/sub/deep/big.bin", ...Array.from({ length: 20 }, (_, i) => `tree/sub/s${i}`)].sort(),
    );
    const big = plan.files.find((f) => f.dst === "tree/sub/deep/big.bin");
    expect(big?.ranges?.length).toBeGreaterThan(1);
    const fromLists = plan.shard_lists.flatMap((s) => {
      expect(s.list).toBe(`shards/${shardName(s.index)}.list`);
      const entries = parseFilelist(s.list, readFileSync(join(dir, s.list), "utf8")).map(splitRange);
      expect(entries.length).toBe(s.files + s.ranges);
      return entries.map((e) => ({ ...e, shard: s.index }));
    });
    const fromJson = plan.files.flatMap((f) =>
      f.ranges === undefined
        ? [{ src: f.src, dst: f.dst, shard: f.shard as number, ...(f.dst.endsWith("tail@1+2") ? { offset: 0, length: f.size } : {}) }]
        : f.ranges.map((r) => ({ src: f.src, dst: f.dst, shard: r.shard, offset: r.offset, length: r.length })),
    );
    const key = (e: { dst?: string; offset?: number }): string => `${e.dst}@${e.offset ?? ""}`;
    expect(fromLists.sort((a, b) => key(a).localeCompare(key(b)))).toEqual(fromJson.sort((a, b) => key(a).localeCompare(key(b))));
  });

  test("an existing plan directory is refused; --force replaces it", () => {
    expect(code(() => createPlan(["-r", SRC, dest, "--shards", "2", "--plan-dir", dir], ENV))).toStartWith("E_USAGE: --plan-dir");
    writeFileSync(join(dir, "out", "shard-000.jsonl"), "{}\n");
    createPlan(["-r", SRC, dest, "--shards", "2", "--plan-dir", dir, "--force"], ENV);
    expect(readPlanJson(dir).shards).toBe(2);
    expect(existsSync(join(dir, "out", "shard-000.jsonl"))).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.includes(".tmp"))).toEqual([]);
  });

  test("a missing DEST with one directory: the names a plain copy gives (the top level stripped)", () => {
    const d2 = join(tmp, "plan two");
    createPlan(["-r", join(SRC, "sub"), join(tmp, "newdest"), "--shards", "2", "--plan-dir", d2], ENV);
    expect(readPlanJson(d2).files.map((f) => f.dst)).toContain("deep/big.bin");
  });

  test("a remote DEST is a directory: names keep the top level; --hosts is copied", () => {
    const d3 = join(tmp, "plan three");
    const hosts = join(tmp, "hosts");
    writeFileSync(hosts, "# src dst\nnode1 dtn1\n- dtn2\n");
    createPlan(["-r", join(SRC, "sub"), "user@far:/data/in", "--shards", "3", "--plan-dir", d3, "--hosts", hosts, "--max-parallel", "2"], ENV);
    const plan = readPlanJson(d3);
    expect(plan.destination).toBe("user@far:/data/in");
    expect(plan.files.map((f) => f.dst)).toContain("sub/deep/big.bin");
    expect(readFileSync(join(d3, "hosts"), "utf8")).toContain("node1 dtn1");
    const sbatch = readFileSync(join(d3, "slurm.sbatch"), "utf8");
    expect(sbatch).toContain("#SBATCH --array=0-2%2");
    expect(sbatch).toContain("DESTS=('user@dtn1:/data/in' 'user@dtn2:/data/in')"); // DEST's user kept
    expect(code(() => createPlan(["-r", SRC, dest, "--shards", "2", "--plan-dir", join(tmp, "p5"), "--manifest", "m"], ENV))).toContain("escp plan merge");
  });

  test("one big file into a directory: cut into ranges named by its basename", () => {
    const d6 = join(tmp, "plan six");
    createPlan([join(SRC, "sub", "deep", "big.bin"), dest, "--shards", "3", "--blocksize", "64K", "--plan-dir", d6], ENV);
    const plan = readPlanJson(d6);
    expect(plan.files.map((f) => [f.dst, f.ranges?.length])).toEqual([["big.bin", 3]]);
    expect(code(() => createPlan([join(SRC, "sub", "deep", "big.bin"), join(dest, "new.bin"), "--shards", "3", "--plan-dir", join(tmp, "p7")], ENV))).toContain(
      "must be an existing directory",
    );
  });

  test("refusals", () => {
    const d4 = join(tmp, "plan four");
    expect(code(() => createPlan([SRC, dest, "--plan-dir", d4], ENV))).toStartWith("E_USAGE: escp plan: --shards N is required");
    expect(code(() => createPlan(["-r", join(SRC, "sub", "deep"), dest, "--shards", "3", "--blocksize", "1M", "--plan-dir", d4], ENV))).toContain(
      "--shards 3: only 1 entries",
    );
    expect(code(() => createPlan([SRC, dest, "--shards", "2", "--plan-dir", d4], ENV))).toStartWith("E_SOURCE_UNREADABLE");
    expect(code(() => createPlan(["-r", "host:/x", dest, "--shards", "2", "--plan-dir", d4], ENV))).toContain("must be local");
    const hosts = join(tmp, "bad-hosts");
    writeFileSync(hosts, "only-one-word\n");
    expect(code(() => createPlan(["-r", SRC, dest, "--shards", "2", "--plan-dir", d4, "--hosts", hosts], ENV))).toContain("line 1: expected");
    expect(existsSync(d4)).toBe(false);
    expect(code(() => createPlan(["-r", SRC, dest, "--shards", "2", "--plan-dir", d4, "--no-resume"], ENV))).toContain("a shard always resumes");
    expect(code(() => loadConfig(["--shards", "3", "a", "b"], ENV))).toBe("E_USAGE: --shards: only with escp plan (escp plan SRC... DEST --shards N)");
  });
});
