// The launch scripts of a plan: bash -n, then real runs with a stub run_cmd that records its
// arguments as JSON lines — slurm.sbatch's task body (locally and through a fake `ssh` hop, with
// a plan directory whose name holds a space and a quote) and parallel.sh under GNU parallel
// (a failing shard, then --resume-failed), followed by `escp plan status`.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../../harness/tmp-dir.ts";
import { createPlan } from "./create.ts";
import { planStatus } from "./status.ts";

const ENV = { ESCP_CONFIG: "/dev/null" };
const tmp = makeTmpDir("plan-scripts");
const SRC = join(tmp, "src tree");
const PLAN = join(tmp, "the plan's dir");
const STUB = join(tmp, "bin", "escp-stub");
const FAKE_SSH_DIR = join(tmp, "fakessh");
const HAS_PARALLEL = Bun.which("parallel") !== null;

mkdirSync(join(SRC, "d"), { recursive: true });
for (let i = 0; i < 9; i++) writeFileSync(join(SRC, "d", `f ${i}`), "z".repeat(100 * (i + 1)));
mkdirSync(join(tmp, "bin"));
// The stub run_cmd (a Bun script): a JSON line with its arguments, then a summary line; it
// fails (exit 6, E_CONNECT) once for a shard whose `<list>.fail-once` marker exists.
writeFileSync(
  STUB,
  `#!${process.execPath}
import { existsSync, rmSync } from "node:fs";
const argv = process.argv.slice(2);
console.log(JSON.stringify({ type: "start", argv }));
const marker = \`\${argv[1]}.fail-once\`;
if (existsSync(marker)) {
  rmSync(marker);
  console.log(JSON.stringify({ type: "summary", exit_status: 6, error: { code: "E_CONNECT", message: "x" } }));
  process.exit(6);
}
console.log(JSON.stringify({ type: "summary", exit_status: 0, error: null }));
`,
);
chmodSync(STUB, 0o755);
mkdirSync(FAKE_SSH_DIR);
writeFileSync(
  join(FAKE_SSH_DIR, "ssh"),
  `#!/bin/bash\nprintf '%s\\n' "$*" >> ${JSON.stringify(join(tmp, "ssh.log"))}\nhost=\${@: -2:1}; cmd=\${@: -1}\nexec bash -c "$cmd"\n`,
);
chmodSync(join(FAKE_SSH_DIR, "ssh"), 0o755);
const HOSTS = join(tmp, "hosts");
writeFileSync(HOSTS, "- -\nnodeB dtn-b\n");

function run(cmd: string[], env: Record<string, string> = {}): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: `${p.stdout.toString()}${p.stderr.toString()}` };
}

function argvOf(shard: string): string[][] {
  return readFileSync(join(PLAN, "out", `${shard}.jsonl`), "utf8")
    .split("\n")
    .filter((l) => l.includes('"start"'))
    .map((l) => (JSON.parse(l) as { argv: string[] }).argv);
}

describe("launch scripts", () => {
  test("bash -n accepts both", () => {
    createPlan(
      ["-r", SRC, "/dest/with space", "--shards", "3", "--plan-dir", PLAN, "--run-cmd", STUB, "--hosts", HOSTS, "-F", join(tmp, "ssh cfg"), "-t", "3"],
      ENV,
    );
    for (const s of ["slurm.sbatch", "parallel.sh"]) expect(run(["bash", "-n", join(PLAN, s)]).code).toBe(0);
    const sb = readFileSync(join(PLAN, "slurm.sbatch"), "utf8");
    expect(sb).toContain("#SBATCH --array=0-2\n");
    expect(sb).toContain(`#SBATCH --output="${PLAN}/out/slurm-%A_%a.out"`);
  });

  test("slurm.sbatch's task body: a local task and one through ssh to its source host", () => {
    const env = { PATH: `${FAKE_SSH_DIR}:${process.env.PATH}` };
    expect(run(["bash", join(PLAN, "slurm.sbatch")], env).out).toContain("not a Slurm array task");
    expect(run(["bash", join(PLAN, "slurm.sbatch")], { ...env, SLURM_ARRAY_TASK_ID: "0" }).code).toBe(0);
    expect(argvOf("shard-000")).toEqual([
      [
        "--shard",
        join(PLAN, "shards", "shard-000.list"),
        "--json",
        "--parallel=3",
        `--ssh_config=${join(tmp, "ssh cfg")}`,
        "--blocksize=1048576",
        "/dest/with space",
      ],
    ]);
    expect(run(["bash", join(PLAN, "slurm.sbatch")], { ...env, SLURM_ARRAY_TASK_ID: "1" }).code).toBe(0);
    expect(argvOf("shard-001")).toEqual([
      [
        "--shard",
        join(PLAN, "shards", "shard-001.list"),
        "--json",
        "--parallel=3",
        `--ssh_config=${join(tmp, "ssh cfg")}`,
        "--blocksize=1048576",
        "dtn-b:/dest/with space",
      ],
    ]);
    const ssh = readFileSync(join(tmp, "ssh.log"), "utf8");
    expect(ssh).toStartWith(`-F ${join(tmp, "ssh cfg")} nodeB `);
  });

  test.skipIf(!HAS_PARALLEL)("parallel.sh runs every shard; --resume-failed reruns the failed one", () => {
    const plan2 = join(tmp, "p2 'x'");
    createPlan(["-r", SRC, join(tmp, "dst"), "--shards", "3", "--plan-dir", plan2, "--run-cmd", STUB, "--max-parallel", "2"], ENV);
    writeFileSync(join(plan2, "shards", "shard-001.list.fail-once"), "");
    const first = run(["bash", join(plan2, "parallel.sh"), "--retries", "0"]);
    expect(first.code).toBe(1); // parallel: the number of failed jobs
    let st = planStatus(plan2);
    expect(st.shards.map((s) => s.state)).toEqual(["ok", "failed", "ok"]);
    expect(st.shards[1]?.code).toBe("E_CONNECT");
    const joblog = readFileSync(join(plan2, "out", "parallel.joblog"), "utf8");
    expect(joblog.trim().split("\n").length).toBe(4);
    const again = run(["bash", join(plan2, "parallel.sh"), "--resume-failed", "--retries", "0"]);
    expect(again.code).toBe(0);
    st = planStatus(plan2);
    expect(st.shards.map((s) => [s.state, s.attempts])).toEqual([
      ["ok", 1],
      ["ok", 2],
      ["ok", 1],
    ]);
    expect(run(["bash", join(plan2, "parallel.sh"), "--bogus"]).code).toBe(2);
  });

  test.skipIf(!HAS_PARALLEL)("a task that fails before printing anything is failed by the joblog", () => {
    const plan3 = join(tmp, "p3");
    createPlan(["-r", SRC, join(tmp, "dst"), "--shards", "2", "--plan-dir", plan3, "--run-cmd", join(tmp, "no such escp")], ENV);
    expect(run(["bash", join(plan3, "parallel.sh"), "--retries", "0"]).code).toBe(2);
    expect(planStatus(plan3).shards.map((s) => [s.state, s.exit_status])).toEqual([
      ["failed", 127],
      ["failed", 127],
    ]);
    writeFileSync(join(plan3, "out", "parallel.joblog"), ""); // now only the task's own summary line tells
    expect(run(["bash", join(plan3, "slurm.sbatch")], { SLURM_ARRAY_TASK_ID: "1" }).code).toBe(127);
    expect(planStatus(plan3).shards.map((s) => [s.state, s.exit_status, s.attempts])).toEqual([
      ["failed", 127, 1],
      ["failed", 127, 2],
    ]);
  });
});
