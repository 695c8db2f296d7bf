// `bun bench/scale-out.ts [--size MiB] [--rounds N] [--pairs 2|3] [--json FILE]`: issue #17's
// aggregate throughput of N shards over N host pairs against one session of the same data.
// Three namespaced hosts (harness/multihost.ts) with their own sshd; pairs in a ring
// (h1→h2, h2→h3, h3→h1: every host sends one shard and receives one; the file system is
// shared, so all land in one DEST). One session: `ssh h1 escp -r SRC h2:DEST`. Sharded:
// `escp plan -r SRC DEST --shards N --hosts …`, then every shard's task started at once as
// Slurm would (`SLURM_ARRAY_TASK_ID=i bash PLAN/slurm.sbatch`: ssh to its source host, escp
// --shard to its destination host), then `escp plan merge` and `b3sum -c` of the manifest in
// both destinations. CPU: the cgroup cpuacct delta of everything a run started (ssh, sshd
// sessions, both escp sides) — bench/macro/cpuacct.ts. Rounds interleave the two modes.
// On this 2-core machine the pairs share the same two cores, so the ratio measures the
// overhead of sharding (plan, more sessions, ranges), not a speed-up; docs/scale-out.md
// says how it scales with real DTNs.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN, ESCP_REMOTE_CMD } from "../harness/escp-run.ts";
import { parseCli, positiveNumber, usageExit } from "../harness/cli-args.ts";
import { canMultiHost, type HostId, startHosts } from "../harness/multihost.ts";
import { makeTmpDir, removeTmpDir } from "../harness/tmp-dir.ts";
import { openCpuMeter } from "./macro/cpuacct.ts";
import { runProc } from "./macro/proc.ts";

const PROG = "scale-out";
const cli = parseCli(PROG, process.argv.slice(2), {
  usage: "usage: bun bench/scale-out.ts [--size MiB] [--rounds N] [--pairs 2|3] [--json FILE]",
  options: {
    size: { type: "string", help: "dataset size in MiB: half one file (split into ranges), half 32 files (default 512)" },
    rounds: { type: "string", help: "rounds of both modes, interleaved (default 3)" },
    pairs: { type: "string", help: "host pairs = shards (2 or 3, default 3)" },
    json: { type: "string", help: "also write the results as JSON to FILE" },
  },
});
const sizeMiB = positiveNumber(PROG, "--size", cli.values.size, 512);
const rounds = positiveNumber(PROG, "--rounds", cli.values.rounds, 3);
const pairs = positiveNumber(PROG, "--pairs", cli.values.pairs, 3);
if (pairs !== 2 && pairs !== 3) usageExit(PROG, "--pairs takes 2 or 3");
const can = canMultiHost();
if (!can.ok) {
  console.log(`${PROG}: skipped: ${can.why}`);
  process.exit(0);
}

const RING: [HostId, HostId][] = [
  ["h1", "h2"],
  ["h2", "h3"],
  ["h3", "h1"],
];
const TIMEOUT_MS = 30 * 60_000;
const BLOCK = 1 << 20;

interface Run {
  mode: "one session" | "shards";
  wallS: number;
  cpuS: number | null;
}

function fail(what: string, r: { code: number; stdout: string; stderr: string }): never {
  throw new Error(`${what} exited ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`);
}

function makeDataset(dir: string): number {
  const src = join(dir, "src");
  mkdirSync(join(src, "many"), { recursive: true });
  const half = Math.floor((sizeMiB * 1024 * 1024) / 2);
  const chunk = Buffer.alloc(1 << 20);
  const write = (path: string, bytes: number): void => {
    const parts: Buffer[] = [];
    for (let left = bytes; left > 0; left -= chunk.length) {
      crypto.getRandomValues(chunk);
      parts.push(Buffer.from(chunk.subarray(0, Math.min(left, chunk.length))));
    }
    writeFileSync(path, Buffer.concat(parts));
  };
  write(join(src, "big.bin"), half + 12345); // not block-aligned: the last range ends mid-block
  const each = Math.floor(half / 32);
  for (let i = 0; i < 32; i++) write(join(src, "many", `f${String(i).padStart(2, "0")}`), each);
  return half + 12345 + 32 * each;
}

const cpu = openCpuMeter();
const work = makeTmpDir("bench-scale-out");
const runs: Run[] = [];
let total = 0;
const fx = await cpu.inside(() => startHosts({ count: 3 }));
try {
  total = makeDataset(work);
  const src = join(work, "src");
  const used = RING.slice(0, pairs);
  writeFileSync(join(work, "hosts"), used.map(([s, d]) => `${s} ${d}\n`).join(""));
  const measure = async (mode: Run["mode"], start: () => Promise<void>): Promise<void> => {
    const before = cpu.usageNs();
    const t0 = performance.now();
    await start();
    const wallS = (performance.now() - t0) / 1000;
    const after = cpu.usageNs();
    runs.push({ mode, wallS, cpuS: before === null || after === null ? null : Number(after - before) / 1e9 });
  };

  for (let round = 0; round < rounds; round++) {
    const destOne = join(work, `one-${round}`);
    const destShards = join(work, `shards-${round}`);
    const plan = join(work, `plan-${round}`);
    mkdirSync(destOne);
    mkdirSync(destShards);
    // The plan is made before the clock starts: it is a one-off walk, not part of the copy.
    const p = await runProc(
      [
        process.execPath,
        ESCP_MAIN,
        "plan",
        "-r",
        src,
        destShards,
        "--shards",
        String(pairs),
        "--hosts",
        join(work, "hosts"),
        "--plan-dir",
        plan,
        "--run-cmd",
        ESCP_REMOTE_CMD,
        "-F",
        fx.sshConfig,
        "-q",
        "--blocksize",
        String(BLOCK),
      ],
      { timeoutMs: 120_000 },
    );
    if (p.code !== 0) fail("escp plan", p);

    await measure("one session", async () => {
      const argv = fx.ssh("h1", [ESCP_REMOTE_CMD, "-F", fx.sshConfig, "-q", "-r", "--blocksize", String(BLOCK), src, `h2:${destOne}`]);
      const r = await runProc(cpu.wrap(argv), { timeoutMs: TIMEOUT_MS });
      if (r.code !== 0) fail("one session", r);
    });
    await measure("shards", async () => {
      const tasks = used.map((_, i) =>
        runProc(cpu.wrap(["bash", join(plan, "slurm.sbatch")]), { timeoutMs: TIMEOUT_MS, env: { SLURM_ARRAY_TASK_ID: String(i) } }),
      );
      const done = await Promise.all(tasks);
      done.forEach((r, i) => {
        if (r.code !== 0) fail(`shard ${i} (${readFileSync(join(plan, "out", `shard-${String(i).padStart(3, "0")}.jsonl`), "utf8").slice(-300)})`, r);
      });
    });
    const m = await runProc([process.execPath, ESCP_MAIN, "plan", "merge", plan], { timeoutMs: 120_000 });
    if (m.code !== 0) fail("escp plan merge", m);
    for (const dest of [destShards, destOne]) {
      const c = await runProc(["b3sum", "--check", "--quiet", join(plan, "manifest.b3")], { timeoutMs: 300_000, cwd: dest });
      if (c.code !== 0) fail(`b3sum --check in ${dest}`, c);
    }
    rmSync(destOne, { recursive: true, force: true });
    rmSync(destShards, { recursive: true, force: true });
  }
} finally {
  await fx.stop();
  cpu.close();
  removeTmpDir(work);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const summary = (["one session", "shards"] as const).map((mode) => {
  const rs = runs.filter((r) => r.mode === mode);
  const wallS = median(rs.map((r) => r.wallS));
  const cpus = rs.map((r) => r.cpuS).filter((c): c is number => c !== null);
  const cpuS = cpus.length ? median(cpus) : null;
  return { mode, wallS, gbitPerS: (total * 8) / wallS / 1e9, cpuS, cpuSPerGiB: cpuS === null ? null : cpuS / (total / 2 ** 30) };
});
const [one, shards] = summary as [(typeof summary)[0], (typeof summary)[0]];
console.log(
  `scale-out: ${(total / 2 ** 20).toFixed(0)} MiB (one file split into ranges + 32 files), ${pairs} shards over ${pairs} host pairs, ${rounds} rounds, medians`,
);
console.log(`CPU: ${cpu.note}`);
console.log("| mode | wall s | Gbit/s | CPU s | CPU s/GiB |");
console.log("|---|---|---|---|---|");
for (const s of summary)
  console.log(`| ${s.mode} | ${s.wallS.toFixed(2)} | ${s.gbitPerS.toFixed(2)} | ${s.cpuS?.toFixed(2) ?? "n/a"} | ${s.cpuSPerGiB?.toFixed(2) ?? "n/a"} |`);
console.log(
  `aggregate throughput ratio (shards / one session): ${(one.wallS / shards.wallS).toFixed(2)}×; CPU per byte ratio: ${one.cpuS && shards.cpuS ? (shards.cpuS / one.cpuS).toFixed(2) : "n/a"}×`,
);
const jsonOut = cli.values.json;
if (typeof jsonOut === "string")
  writeFileSync(jsonOut, `${JSON.stringify({ bench: PROG, sizeMiB, bytes: total, pairs, rounds, cpuMode: cpu.mode, runs, summary }, null, 2)}\n`);
