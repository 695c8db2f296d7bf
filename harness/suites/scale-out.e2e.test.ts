// Issue #17's acceptance test: a plan of 3 shards over three namespaced DTN hosts
// (harness/multihost.ts: own sshd each, one shared file system), run for real with escp —
// (a) as a Slurm job array (harness/slurm/local.ts) and (b) through GNU parallel — each with
// one shard that fails part way on its first run and is run again. The source tree is mixed:
// nested directories, a name with a space, small files, an empty file, and one file larger
// than a shard's share, cut into block-aligned ranges over all three shards (64 KiB blocks).
// The hosts lines pair h1→h2, h2→h3, h3→h1 (every host sends one shard and receives one).
// The plan's --run-cmd is a small wrapper around this checkout's escp: it makes the remote
// receiver journal every block (ESCP_JOURNAL_BYTES) and, while a marker file
// fault-once-shard-NNN.list exists, takes it and gives that shard's receiver a fault: SIGKILL
// after FAULT_AT file bytes (ESCP_FAULT_KILL_BYTES) — a real failure part way through.
// (a) The task fails, `scontrol requeue` runs it again; the second run resumes the journaled
// blocks (`resumed_bytes` > 0, whole blocks). (b) `parallel.sh --retries 0` leaves that shard
// failed, `parallel.sh --resume-failed` runs it alone. The rerun gets `--shard-done` (its own
// earlier output): what the first run verified is not sent again. Both: `escp plan status` says every
// shard is ok, `escp plan merge` exits 0, its manifest.b3 equals `b3sum` of the source files
// line for line, and `b3sum -c` of it passes in DEST. Skipped, with the reason, where
// namespaces, b3sum, Slurm (a) or GNU parallel (b) are missing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN, ESCP_REMOTE_CMD } from "../escp-run.ts";
import { parseJsonLines } from "../json-schema.ts";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { type Slurm, startSlurm } from "../slurm/local.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { writeRandomFile } from "./e2e-helpers.ts";

const T = 120_000;
const B = 64 * 1024;
const MIB = 1024 * 1024;
const BIG = 5 * MIB + 777; // 81 blocks: more than a shard's share, so 3 ranges in 3 shards
const FAULT_AT = MIB; // the faulty receiver dies once it has moved this many file bytes
const SHARDS = 3;
/** The shard that fails its first run: the one holding the small files and the last range. */
const FAULTY = 2;
const FINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"];

/** What the whole file needs: network namespaces (+ sshd) and b3sum. */
function canRun(): { ok: boolean; why: string } {
  if (!existsSync(join(ESCP_MAIN, "..", "..", "plan", "command.ts"))) return { ok: false, why: "this checkout has no `escp plan` (src/plan/command.ts)" };
  const mh = canMultiHost();
  if (!mh.ok) return mh;
  if (!Bun.which("b3sum")) return { ok: false, why: "b3sum is not installed (npm run setup installs it)" };
  return { ok: true, why: "" };
}

const can = canRun();
if (!can.ok) console.log(`[scale-out] skipping the scale-out acceptance tests: ${can.why}`);
const started = can.ok ? await startSlurm() : { skip: can.why };
const slurm: Slurm | undefined = "skip" in started ? undefined : started;
const slurmWhy = "skip" in started ? started.skip.split("\n")[0] : "";
if (can.ok && !slurm) console.log(`[scale-out] skipping the Slurm acceptance test: ${slurmWhy}`);
const parallelWhy = !can.ok
  ? can.why
  : Bun.which("parallel")
    ? ""
    : "GNU parallel is not installed: apt-get install --no-install-recommends parallel (npm run setup installs it)";
if (can.ok && parallelWhy) console.log(`[scale-out] skipping the GNU parallel acceptance test: ${parallelWhy}`);

let fx: MultiHost | undefined;
let tmp = "";
let src = "";
/** `b3sum` of every source file, named as the plan names it in DEST ("src/…"), sorted. */
let expected: string[] = [];

const TREE: [string, number][] = [
  ["big.bin", BIG],
  ["empty", 0],
  ["top.txt", 1234],
  ["with space/a file.txt", 4321],
  ["with space/b.bin", 70_000],
  ["a/b/c/deep.dat", 99],
  ["a/b/mid.dat", 65_536],
  ["a/one.dat", 1],
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: readonly string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Result> {
  const proc = Bun.spawn([...argv], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 100_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  if (!can.ok) return;
  tmp = makeTmpDir("e2e-scale-out");
  src = join(tmp, "src");
  let seed = 1700;
  for (const [name, size] of TREE) {
    mkdirSync(join(src, name, ".."), { recursive: true });
    await writeRandomFile(join(src, name), size, seed++);
  }
  const names = TREE.map(([n]) => `src/${n}`);
  const sums = await run(["b3sum", "--", ...names], { cwd: tmp });
  if (sums.code !== 0) throw new Error(`b3sum of the source: ${sums.stderr}`);
  expected = sums.stdout.trimEnd().split("\n").sort();
  // The plan's run command: escp with a receiver that journals every block; the first run of a
  // shard whose marker exists gets a receiver killed after FAULT_AT bytes.
  const wrapper = join(tmp, "escp-run");
  writeFileSync(
    wrapper,
    [
      "#!/bin/bash",
      `remote=${JSON.stringify(`env ESCP_JOURNAL_BYTES=${B} ${ESCP_REMOTE_CMD}`)}`,
      'for a in "$@"; do',
      `  m=${JSON.stringify(tmp)}/fault-once-\${a##*/}`,
      `  if [ -e "$m" ] && rm "$m" 2>/dev/null; then remote=${JSON.stringify(`env ESCP_FAULT_KILL_BYTES=receiver:${FAULT_AT} ESCP_JOURNAL_BYTES=${B} ${ESCP_REMOTE_CMD}`)}; fi`,
      "done",
      `exec ${ESCP_REMOTE_CMD} -D "$remote" "$@"`,
      "",
    ].join("\n"),
  );
  chmodSync(wrapper, 0o755);
  writeFileSync(join(tmp, "hosts"), "h1 h2\nh2 h3\nh3 h1\n");
  fx = await startHosts({ count: 3 });
}, T);

afterAll(async () => {
  const errors: unknown[] = [];
  for (const stop of [() => slurm?.stop(), () => fx?.stop()]) {
    try {
      await stop();
    } catch (e) {
      errors.push(e);
    }
  }
  if (tmp) removeTmpDir(tmp);
  if (errors.length > 0) throw errors[0];
});

/** A fresh plan of the source tree to a fresh DEST (on the hosts lines' destination hosts). */
async function makePlan(name: string): Promise<{ plan: string; dst: string }> {
  const f = fx as MultiHost;
  const plan = join(tmp, `plan-${name}`);
  const dst = join(tmp, `dst-${name}`);
  mkdirSync(dst);
  const r = await run([
    process.execPath,
    ESCP_MAIN,
    "plan",
    "-r",
    src,
    dst,
    "--shards",
    String(SHARDS),
    "--hosts",
    join(tmp, "hosts"),
    "--plan-dir",
    plan,
    "--run-cmd",
    join(tmp, "escp-run"),
    "-F",
    f.sshConfig,
    "--blocksize",
    String(B),
    "-t",
    "2",
    "--escp_port",
    "0",
    "--timeout",
    "20",
  ]);
  expect(r.code, r.stderr).toBe(0);
  const pj = JSON.parse(readFileSync(join(plan, "plan.json"), "utf8")) as {
    files: { dst: string; ranges?: { offset: number; length: number; shard: number }[] }[];
  };
  // The big file is cut into block-aligned ranges, one per shard.
  const big = pj.files.find((x) => x.dst === "src/big.bin");
  expect(big?.ranges?.map((x) => x.shard).sort()).toEqual([0, 1, 2]);
  for (const x of big?.ranges ?? []) expect(x.offset % B).toBe(0);
  return { plan, dst };
}

const out = (plan: string, i: number): string => join(plan, "out", `shard-00${i}.jsonl`);

interface Ev {
  type: string;
  status?: string;
  rel?: string;
  path?: string;
  exit_status?: number;
  resumed_bytes?: number;
  task?: string;
  message?: string;
  range?: { offset: number };
}

/** A shard output's runs: the events of each attempt, up to and including its summary. */
function attempts(path: string): Ev[][] {
  const runs: Ev[][] = [[]];
  for (const e of parseJsonLines(readFileSync(path, "utf8")) as unknown as Ev[]) {
    (runs.at(-1) as Ev[]).push(e);
    if (e.type === "summary") runs.push([]);
  }
  if ((runs.at(-1) as Ev[]).length === 0) runs.pop();
  return runs;
}

const summary = (run: Ev[]): Ev | undefined => run.find((e) => e.type === "summary");
const okEntries = (run: Ev[]): string[] =>
  run.filter((e) => e.type === "file" && e.status === "ok").map((e) => `${e.rel ?? e.path}${e.range ? `@${e.range.offset}` : ""}`);

function outputs(plan: string): string {
  return [0, 1, 2].map((i) => (existsSync(out(plan, i)) ? `--- shard ${i}\n${readFileSync(out(plan, i), "utf8").slice(-3000)}` : "")).join("\n");
}

/** The faulty shard's second run: it succeeded; it resumed whole journaled blocks of the
 *  partial the first run left (resumed_bytes > 0); it did not send again what the first run
 *  verified (--shard-done, with its notice), and the two runs together verified every entry. */
function expectRerun(plan: string, runs: Ev[][], timing: string): void {
  const [first, second] = runs as [Ev[], Ev[]];
  const sum = summary(second);
  expect(sum?.exit_status, outputs(plan)).toBe(0);
  const resumed = Number(sum?.resumed_bytes);
  const before = okEntries(first);
  const after = okEntries(second);
  console.log(
    `[scale-out] ${timing}; the rerun resumed ${resumed} bytes; verified by the first run: ${before.join(", ") || "none"}; by the rerun: ${after.join(", ")}`,
  );
  expect(resumed).toBeGreaterThan(0);
  expect(resumed % B).toBe(0); // whole blocks the receiver's journal held: not sent again
  expect(after.filter((e) => before.includes(e))).toEqual([]);
  const entries = readFileSync(join(plan, "shards", `shard-00${FAULTY}.list`), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("- ")).length;
  expect(new Set([...before, ...after]).size).toBe(entries);
  // The small files go first (bundled) and are verified before the receiver dies in the range.
  expect(before.length, outputs(plan)).toBeGreaterThan(0);
  const notice = second.find((e) => e.type === "notice" && e.message?.startsWith("--shard-done:"));
  expect(notice?.message).toBe(`--shard-done: ${before.length} of ${entries} entries verified by an earlier attempt, not sent again`);
}

/** status: all ok; merge: exit 0, manifest = b3sum of the source; b3sum -c in DEST. */
async function expectMerged(plan: string, dst: string): Promise<void> {
  const st = await run([process.execPath, ESCP_MAIN, "plan", "status", "--json", plan]);
  expect(st.code, st.stderr).toBe(0);
  const status = JSON.parse(st.stdout) as { shards: { index: number; state: string; entries_done: number; entries: number }[] };
  expect(
    status.shards.map((s) => `${s.index} ${s.state} ${s.entries_done === s.entries}`),
    outputs(plan),
  ).toEqual(["0 ok true", "1 ok true", "2 ok true"]);
  const m = await run([process.execPath, ESCP_MAIN, "plan", "merge", plan]);
  expect(m.code, `${m.stdout}${m.stderr}`).toBe(0);
  const manifest = readFileSync(join(plan, "manifest.b3"), "utf8").trimEnd().split("\n");
  expect([...manifest].sort()).toEqual(expected);
  const check = await run(["b3sum", "-c", join(plan, "manifest.b3")], { cwd: dst });
  expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
  expect(check.stdout.trimEnd().split("\n").length).toBe(TREE.length);
}

describe.skipIf(!slurm)(slurm ? "scale-out under Slurm" : `scale-out under Slurm (skipped: ${slurmWhy})`, () => {
  test(
    "3 shards over 3 host pairs as a job array; a task killed part way, requeued, resumes; merge = b3sum of the source",
    async () => {
      const s = slurm as Slurm;
      const { plan, dst } = await makePlan("slurm");
      writeFileSync(join(tmp, `fault-once-shard-00${FAULTY}.list`), "");
      const t0 = performance.now();
      const id = await s.sbatch([join(plan, "slurm.sbatch")]);
      const first = await s.waitJob(id, FINAL, 90_000);
      expect(first.map((j) => `${j.id} ${j.state}`).sort(), outputs(plan)).toEqual([`${id}_0 COMPLETED`, `${id}_1 COMPLETED`, `${id}_2 FAILED`]);
      expect(existsSync(join(tmp, `fault-once-shard-00${FAULTY}.list`))).toBe(false);
      const failed = attempts(out(plan, FAULTY));
      expect(failed.length).toBe(1);
      expect(summary(failed[0] as Ev[])?.exit_status).not.toBe(0);
      // The big file is not named: shard 1's range is missing.
      expect(existsSync(join(dst, "src", "big.bin"))).toBe(false);
      const st = await run([process.execPath, ESCP_MAIN, "plan", "status", plan]);
      expect(st.stdout).toMatch(/shard-002\s+failed/);
      const t1 = performance.now();

      await s.requeue(`${id}_${FAULTY}`);
      const done = await s.waitJob(id, FINAL, 90_000);
      expect(done.map((j) => `${j.id} ${j.state} restarts=${j.restarts}`).sort(), outputs(plan)).toEqual([
        `${id}_0 COMPLETED restarts=0`,
        `${id}_1 COMPLETED restarts=0`,
        `${id}_2 COMPLETED restarts=1`,
      ]);
      for (const i of [0, 1]) expect(attempts(out(plan, i)).length).toBe(1);
      const runs = attempts(out(plan, FAULTY));
      expect(runs.length).toBe(2);
      expectRerun(plan, runs, `slurm: first pass ${((t1 - t0) / 1000).toFixed(1)} s, requeue → done ${((performance.now() - t1) / 1000).toFixed(1)} s`);
      await expectMerged(plan, dst);
    },
    T,
  );
});

describe.skipIf(!!parallelWhy)(parallelWhy ? `scale-out through GNU parallel (skipped: ${parallelWhy})` : "scale-out through GNU parallel", () => {
  test(
    "parallel.sh over 3 host pairs; a shard killed part way, --resume-failed runs it alone; merge = b3sum of the source",
    async () => {
      const { plan, dst } = await makePlan("parallel");
      const env = { PARALLEL_HOME: join(tmp, "parallel-home") };
      mkdirSync(env.PARALLEL_HOME, { recursive: true });
      writeFileSync(join(tmp, `fault-once-shard-00${FAULTY}.list`), "");
      const t0 = performance.now();
      const par = await run(["bash", join(plan, "parallel.sh"), "--retries", "0"], { env });
      expect(par.code, `${par.stderr}\n${outputs(plan)}`).toBe(1); // one shard failed
      expect(existsSync(join(tmp, `fault-once-shard-00${FAULTY}.list`))).toBe(false);
      for (const i of [0, 1]) expect(attempts(out(plan, i)).map((r) => summary(r)?.exit_status)).toEqual([0]);
      const failed = attempts(out(plan, FAULTY));
      expect(failed.length).toBe(1);
      expect(summary(failed[0] as Ev[])?.exit_status).not.toBe(0);
      const t1 = performance.now();

      const again = await run(["bash", join(plan, "parallel.sh"), "--resume-failed"], { env });
      expect(again.code, `${again.stderr}\n${outputs(plan)}`).toBe(0);
      for (const i of [0, 1]) expect(attempts(out(plan, i)).length).toBe(1); // not run again
      const runs = attempts(out(plan, FAULTY));
      expect(runs.map((r) => summary(r)?.exit_status)).toEqual([summary(failed[0] as Ev[])?.exit_status, 0]);
      expectRerun(plan, runs, `parallel: first pass ${((t1 - t0) / 1000).toFixed(1)} s, --resume-failed ${((performance.now() - t1) / 1000).toFixed(1)} s`);
      await expectMerged(plan, dst);
    },
    T,
  );
});
