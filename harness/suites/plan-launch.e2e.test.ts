// The launch scripts `escp plan` writes (issue #17), run for real: parallel.sh through GNU
// parallel across the multi-host fixture's namespaced hosts, and slurm.sbatch on the one-node
// Slurm (harness/slurm/local.ts). The plan's run command is a stand-in (`--run-cmd`) that
// prints one JSON line — the ssh connection it ran under and its argv — so this checks the
// plumbing, not the copy: every shard ran once per launch with `--shard <its list> --json …
// DEST`, its line appended to out/shard-NNN.jsonl; under Slurm task i ran on hosts line
// i mod 2 (through `ssh -F <config>`); parallel.sh's joblog, `--retries` and
// `--resume-failed` re-run exactly the shard that failed. (The copies themselves: the plan
// and --shard suites.) Skipped, with the reason, where namespaces, GNU parallel or Slurm are
// missing, or where this checkout has no `escp plan`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN } from "../escp-run.ts";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { type Slurm, startSlurm } from "../slurm/local.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";

const T = 120_000;
const SHARDS = 4;

function canRun(): { ok: boolean; why: string } {
  if (!existsSync(join(ESCP_MAIN, "..", "..", "plan", "command.ts"))) return { ok: false, why: "this checkout has no `escp plan` (src/plan/command.ts)" };
  const mh = canMultiHost();
  if (!mh.ok) return mh;
  if (!Bun.which("parallel"))
    return { ok: false, why: "GNU parallel is not installed: apt-get install --no-install-recommends parallel (npm run setup installs it)" };
  return { ok: true, why: "" };
}

const can = canRun();
const started = can.ok ? await startSlurm() : { skip: can.why };
const slurm: Slurm | undefined = "skip" in started ? undefined : started;
const why = "skip" in started ? started.skip : "";
if (!slurm) console.warn(`[plan-launch] skipping the plan launch-script tests: ${why}`);

let fx: MultiHost | undefined;
let tmp = "";

beforeAll(async () => {
  if (!slurm) return;
  tmp = makeTmpDir("plan-launch");
  fx = await startHosts({ count: 2 });
}, T);

afterAll(async () => {
  await slurm?.stop();
  await fx?.stop();
  if (tmp) removeTmpDir(tmp);
});

interface Line {
  ssh: string;
  argv: string[];
}

/** The stand-in's lines of a shard output (the task wrapper may add its own, e.g. a summary
 *  for a run that printed none). */
function lines(path: string): Line[] {
  return readFileSync(path, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Partial<Line>)
    .filter((l): l is Line => Array.isArray(l.argv));
}

async function run(argv: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 90_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe.skipIf(!slurm)(slurm ? "escp plan launch scripts" : `escp plan launch scripts (skipped: ${why.split("\n")[0]})`, () => {
  test(
    "parallel.sh across namespaced hosts, then slurm.sbatch as a job array: every shard once per launch, pinned by its hosts line under Slurm",
    async () => {
      const f = fx as MultiHost;
      const s = slurm as Slurm;
      const base = join(tmp, "base with space");
      const src = join(base, "src");
      mkdirSync(src, { recursive: true });
      for (let i = 0; i < 8; i++) writeFileSync(join(src, `file ${i}.bin`), Buffer.alloc(1000 * (i + 1), i));
      writeFileSync(join(base, "hosts"), "h1 -\nh2 -\n");
      // The stand-in for escp: one JSON line; fails while <base>/fail-<shard list name> exists.
      const fake = join(base, "fake escp.ts");
      writeFileSync(
        fake,
        [
          'import { existsSync } from "node:fs";',
          "const argv = process.argv.slice(2);",
          'const list = argv[argv.indexOf("--shard") + 1] ?? "";',
          'console.log(JSON.stringify({ ssh: process.env.SSH_CONNECTION ?? "", argv }));',
          `if (existsSync(${JSON.stringify(join(base, "fail-"))} + list.split("/").at(-1))) process.exit(9);`,
          "",
        ].join("\n"),
      );
      const plan = join(base, "plan");
      const dst = join(base, "dst");
      const made = await run([
        process.execPath,
        ESCP_MAIN,
        "plan",
        "-r",
        "--shards",
        String(SHARDS),
        "--max-parallel",
        "2",
        "--hosts",
        join(base, "hosts"),
        "--plan-dir",
        plan,
        "--run-cmd",
        `'${process.execPath}' '${fake}'`,
        "-F",
        f.sshConfig,
        src,
        dst,
      ]);
      expect(made.code, made.stderr).toBe(0);
      const listOf = (i: number): string => join(plan, "shards", `shard-00${i}.list`);
      const out = (i: number): string => join(plan, "out", `shard-00${i}.jsonl`);
      const hostOf = (l: Line): string => f.hosts.find((h) => h.addr === l.ssh.split(" ")[2])?.id ?? `not a host: ${l.ssh}`;

      // GNU parallel: every shard once, each on one of the hosts; shard 2 fails its first run
      // and the R = 2 more tries parallel.sh --retries 2 gives it (docs/scale-out.md, Plans).
      writeFileSync(join(base, "fail-shard-002.list"), "");
      const env = { PARALLEL_HOME: join(base, "parallel-home") };
      mkdirSync(env.PARALLEL_HOME);
      const par = await run(["bash", join(plan, "parallel.sh"), "--retries", "2"], env);
      expect(par.code, par.stderr).toBe(1); // one shard failed
      for (let i = 0; i < SHARDS; i++) {
        const got = lines(out(i));
        expect(got.length).toBe(i === 2 ? 3 : 1);
        got.forEach((l, j) => {
          expect(["h1", "h2"]).toContain(hostOf(l));
          // a later attempt skips what the earlier ones verified: --shard-done <its own output>
          expect(l.argv.slice(0, j === 0 ? 3 : 5)).toEqual(["--shard", listOf(i), ...(j === 0 ? [] : ["--shard-done", out(i)]), "--json"]);
          expect(l.argv.at(-1)).toBe(dst);
        });
      }
      rmSync(join(base, "fail-shard-002.list"));
      const resumed = await run(["bash", join(plan, "parallel.sh"), "--resume-failed"], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      for (let i = 0; i < SHARDS; i++) expect(lines(out(i)).length).toBe(i === 2 ? 4 : 1);

      // Slurm: the array; task i runs on hosts line i mod 2, appending to the same outputs.
      const id = await s.sbatch([join(plan, "slurm.sbatch")]);
      const done = await s.waitJob(id, ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"], 90_000);
      expect(done.map((j) => `${j.id} ${j.state}`).sort()).toEqual([...Array(SHARDS).keys()].map((i) => `${id}_${i} COMPLETED`));
      const info = await s.run(["scontrol", "show", "job", "-o", id]);
      expect(info.stdout).toContain("ArrayTaskThrottle=2");
      for (let i = 0; i < SHARDS; i++) {
        const last = lines(out(i)).at(-1) as Line;
        expect(lines(out(i)).length).toBe(i === 2 ? 5 : 2);
        expect(hostOf(last)).toBe(i % 2 === 0 ? "h1" : "h2");
        expect(last.argv.slice(0, 5)).toEqual(["--shard", listOf(i), "--shard-done", out(i), "--json"]);
        expect(last.argv.at(-1)).toBe(dst);
      }
    },
    T,
  );
});
