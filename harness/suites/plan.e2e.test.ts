// `escp plan` end to end with real copies (whole files; byte ranges: shard-range.e2e and
// scale-out.e2e): a plan over a mixed tree, each shard run as a plain
// `escp --filelist shards/shard-K.list --json DEST >> out/shard-K.jsonl`, then `escp plan
// status` and `escp plan merge`: the manifest equals what a plain `escp -r --manifest` gives
// and `b3sum -c` accepts it in DEST. Then the same through parallel.sh (GNU parallel) running
// real `escp --shard` tasks, and a rerun of a shard: a second attempt appended, which sends
// nothing (--shard-done: everything was verified by the first).
import { beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN } from "../escp-run.ts";
import { makeTmpDir } from "../tmp-dir.ts";
import { BASE, makeAwkwardTree, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-plan");
const SRC = join(tmp, "src tree");
const ENV = { ESCP_CONFIG: "/dev/null" };

function sortedLines(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .sort();
}

async function ok(args: string[], cwd = tmp): Promise<string> {
  const r = await runEscp(args, { cwd, env: ENV });
  if (r.code !== 0) throw new Error(`escp ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  mkdirSync(SRC);
  await makeAwkwardTree(SRC, 30, 21);
  await writeRandomFile(join(SRC, "sub", "quite big.bin"), 900 * 1024, 5); // below the 1M block: never split
  writeFileSync(join(SRC, 'it\'s "quoted".txt'), "q\n");
}, 60_000);

describe("escp plan with real shard copies", () => {
  test("plan → shards with --filelist → status → merge = a plain copy's manifest; b3sum -c passes", async () => {
    const reference = join(tmp, "reference");
    mkdirSync(reference);
    await ok(["-r", ...BASE, "--manifest", join(tmp, "reference.b3"), SRC, reference]);
    const dest = join(tmp, "dest");
    mkdirSync(dest);
    const plan = join(tmp, "the plan");
    await ok(["plan", "-r", SRC, dest, "--shards", "3", "--plan-dir", plan, "-t", "2"]);
    const json = JSON.parse(readFileSync(join(plan, "plan.json"), "utf8")) as { shards: number; files: { ranges?: unknown }[]; options: string[] };
    expect(json.files.every((f) => f.ranges === undefined)).toBe(true);
    for (let k = 0; k < json.shards; k++) {
      const r = await runEscp(["--filelist", join(plan, "shards", `shard-00${k}.list`), "--json", ...BASE.slice(1), ...json.options, dest], { env: ENV });
      appendFileSync(join(plan, "out", `shard-00${k}.jsonl`), r.stdout);
      expect(r.code).toBe(0);
    }
    const status = await ok(["plan", "status", plan]);
    expect(status).toContain("total: 3 shards (3 ok)");
    const st = JSON.parse(await ok(["plan", "status", "--json", plan])) as { totals: { entries_done: number; entries: number } };
    expect(st.totals.entries_done).toBe(st.totals.entries);
    await ok(["plan", "merge", plan]);
    const manifest = readFileSync(join(plan, "manifest.b3"), "utf8");
    expect(sortedLines(manifest)).toEqual(sortedLines(readFileSync(join(tmp, "reference.b3"), "utf8")));
    const check = Bun.spawnSync(["b3sum", "-c", join(plan, "manifest.b3")], { cwd: dest, stdout: "pipe", stderr: "pipe" });
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
  }, 120_000);

  test.skipIf(Bun.which("parallel") === null)(
    "parallel.sh runs the --shard tasks; a rerun appends an attempt that sends nothing again (--shard-done)",
    async () => {
      const dest = join(tmp, "dest2");
      mkdirSync(dest);
      const plan = join(tmp, "plan 2");
      const stub = join(tmp, "escp-any-port");
      writeFileSync(stub, `#!/bin/bash\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(ESCP_MAIN)} --escp_port 0 "$@"\n`);
      chmodSync(stub, 0o755);
      await ok(["plan", "-r", SRC, dest, "--shards", "4", "--plan-dir", plan, "--run-cmd", stub, "--max-parallel", "2"]);
      const run = Bun.spawnSync(["bash", join(plan, "parallel.sh"), "--retries", "0"], { env: { ...process.env, ...ENV }, stdout: "pipe", stderr: "pipe" });
      expect(run.stderr.toString()).toBe("");
      expect(run.exitCode).toBe(0);
      const rerun = Bun.spawnSync(["bash", join(plan, "slurm.sbatch")], {
        env: { ...process.env, ...ENV, SLURM_ARRAY_TASK_ID: "2" },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(rerun.exitCode).toBe(0);
      // the second attempt of shard 2: one notice, nothing sent, exit 0
      const second = readFileSync(join(plan, "out", "shard-002.jsonl"), "utf8")
        .trim()
        .split("\n")
        .slice(-2);
      const notice = JSON.parse(second[0] as string) as { type: string; message: string };
      expect(notice.type).toBe("notice");
      expect(notice.message).toMatch(/^--shard-done: (\d+) of \1 entries verified by an earlier attempt, not sent again$/);
      expect(JSON.parse(second[1] as string)).toMatchObject({ type: "summary", files_ok: 0, bytes: 0, exit_status: 0 });
      const st = JSON.parse(await ok(["plan", "status", "--json", plan])) as { shards: { state: string; attempts: number }[] };
      expect(st.shards.map((s) => [s.state, s.attempts])).toEqual([
        ["ok", 1],
        ["ok", 1],
        ["ok", 2],
        ["ok", 1],
      ]);
      await ok(["plan", "merge", plan, "--manifest", join(tmp, "m2.b3")]);
      const check = Bun.spawnSync(["b3sum", "-c", join(tmp, "m2.b3")], { cwd: dest, stdout: "pipe", stderr: "pipe" });
      expect(check.exitCode).toBe(0);
      expect(sortedLines(readFileSync(join(tmp, "m2.b3"), "utf8")).length).toBe(sortedLines(readFileSync(join(tmp, "reference.b3"), "utf8")).length);
    },
    120_000,
  );
});
