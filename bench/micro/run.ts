// `bun run bench:micro` — mitata micro benchmarks of escp's hot pieces, one topic per file
// (ffi, crypto, blake3, zstd, frame; see bench/micro/README.md). Prints mitata's report and
// writes a JSON of every case (bench/results/micro-<date>.json unless --out).
// Usage: bun bench/micro/run.ts [--only NAME[,NAME]] [--smoke] [--out FILE]
//   --smoke  tiny sizes and a 15 ms budget per case (mitata's measure()), < 15 s in all; CI.
// Every topic checks its outputs once before timing (seal→open, zstd round trips, BLAKE3 vs
// b3sum); a failed check makes the exit status 1.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { bench, group, measure, run } from "mitata";
import { libraryPath } from "../../src/native/lib.ts";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { parseCli, usageExit } from "../../harness/cli-args.ts";
import { type Case, type Check, type Ctx, type ExternalResult, hostFacts, type Skip, SMOKE_MEASURE, type Timing, timingOfStats, type Topic } from "./common.ts";

export const SCHEMA = "escp-bench-micro/1";
export const TOPICS = ["ffi", "crypto", "blake3", "zstd", "frame"] as const;
type TopicName = (typeof TOPICS)[number];

const REPO = resolve(import.meta.dir, "..", "..");

export interface CaseResult {
  topic: TopicName;
  name: string;
  method: "mitata" | "spawn" | "child";
  bytesPerOp: number;
  avgNs: number;
  minNs: number;
  maxNs: number;
  p75Ns: number;
  p99Ns: number;
  samples: number;
  opsPerSec: number;
  bytesPerSec: number | null;
  throughput: number | null;
  unit: "GB/s" | "MB/s" | null;
  /** Rate with a fixed per-call overhead (overheadOf) taken out. */
  netThroughput?: number;
  overheadOf?: string;
  items?: number;
  nsPerItem?: number;
  ratio?: number;
  note?: string;
}

const USAGE = `usage: bun bench/micro/run.ts [--only NAME[,NAME]] [--smoke] [--out FILE]
topics: ${TOPICS.join(", ")}`;

function parseOptions(argv: string[]): { only: TopicName[]; smoke: boolean; out: string } {
  const { values } = parseCli("bench:micro", argv, {
    usage: USAGE,
    options: { smoke: { type: "boolean" }, only: { type: "string" }, out: { type: "string" } },
  });
  let only: TopicName[] = [...TOPICS];
  if (values.only !== undefined) {
    const names = (values.only as string).split(",").map((s) => (s === "b3" ? "blake3" : s));
    const bad = names.filter((n) => !(TOPICS as readonly string[]).includes(n));
    if (bad.length) usageExit("bench:micro", `unknown topic ${bad.join(", ")} (topics: ${TOPICS.join(", ")})`);
    only = names as TopicName[];
  }
  const smoke = values.smoke === true;
  const date = new Date().toISOString().slice(0, 10);
  const out = values.out === undefined ? join(REPO, "bench", "results", `micro-${date}${smoke ? "-smoke" : ""}.json`) : resolve(values.out as string);
  return { only, smoke, out };
}

async function loadTopic(name: TopicName, ctx: Ctx): Promise<Topic> {
  switch (name) {
    case "ffi":
      return (await import("./ffi.ts")).setup(ctx);
    case "crypto":
      return (await import("./crypto.ts")).setup(ctx);
    case "blake3":
      return (await import("./blake3.ts")).setup(ctx);
    case "zstd":
      return (await import("./zstd.ts")).setup(ctx);
    case "frame":
      return (await import("./frame.ts")).setup(ctx);
  }
}

function result(topic: TopicName, c: Case | ExternalResult, method: CaseResult["method"], tm: Timing): CaseResult {
  const unit = c.unit ?? null;
  const bytesPerSec = c.bytesPerOp > 0 ? c.bytesPerOp / (tm.avg / 1e9) : null;
  const scale = unit === "GB/s" ? 1e9 : 1e6;
  const r: CaseResult = {
    topic,
    name: c.name,
    method,
    bytesPerOp: c.bytesPerOp,
    avgNs: tm.avg,
    minNs: tm.min,
    maxNs: tm.max,
    p75Ns: tm.p75,
    p99Ns: tm.p99,
    samples: tm.samples,
    opsPerSec: 1e9 / tm.avg,
    bytesPerSec,
    throughput: bytesPerSec === null || unit === null ? null : bytesPerSec / scale,
    unit,
  };
  if (c.overheadOf) r.overheadOf = c.overheadOf;
  if ("items" in c && c.items) {
    r.items = c.items;
    r.nsPerItem = tm.avg / c.items;
  }
  if ("ratio" in c && c.ratio !== undefined) r.ratio = c.ratio;
  if (c.note) r.note = c.note;
  return r;
}

function fmtNs(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(2)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(2)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

function rateText(r: CaseResult): string {
  const parts: string[] = [];
  if (r.throughput !== null) parts.push(`${r.throughput.toFixed(r.unit === "GB/s" ? 2 : 0)} ${r.unit}`);
  if (r.netThroughput !== undefined) parts.push(`net ${r.netThroughput.toFixed(r.unit === "GB/s" ? 2 : 0)} ${r.unit}`);
  if (r.nsPerItem !== undefined) parts.push(`${r.nsPerItem.toFixed(1)} ns/item`);
  if (r.ratio !== undefined) parts.push(`ratio ${r.ratio.toFixed(2)}`);
  return parts.join(", ");
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const started = new Date();
  const tmp = makeTmpDir("bench-micro");
  const ctx: Ctx = { smoke: opts.smoke, tmp, log: (l) => console.log(l) };
  const topics: [TopicName, Topic][] = [];
  const checks: (Check & { topic: TopicName })[] = [];
  const skipped: (Skip & { topic: TopicName })[] = [];
  const notes: string[] = [];
  const results: CaseResult[] = [];
  try {
    for (const name of opts.only) {
      try {
        topics.push([name, await loadTopic(name, ctx)]);
      } catch (e) {
        checks.push({ topic: name, name: `${name}: setup`, ok: false, detail: (e as Error).stack ?? String(e) });
      }
    }
    for (const [topic, t] of topics) {
      checks.push(...t.checks.map((c) => ({ topic, ...c })));
      skipped.push(...t.skipped.map((s) => ({ topic, ...s })));
      notes.push(...t.notes);
    }
    for (const c of checks) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
    for (const s of skipped) console.log(`skip ${s.name}: ${s.reason}`);

    if (opts.smoke) {
      // run() spends 642 ms per case plus ≈ 4 s calibrating: too slow for CI. Same kernel,
      // smaller budget, through mitata's measure().
      for (const [topic, t] of topics) {
        for (const c of t.cases) {
          const stats = await measure(c.fn, { ...SMOKE_MEASURE });
          const r = result(topic, c, "mitata", timingOfStats(stats));
          results.push(r);
          console.log(`${c.name.padEnd(80)} ${fmtNs(r.avgNs).padStart(10)}/iter  ${rateText(r)}`);
        }
      }
    } else {
      const byName = new Map<string, [TopicName, Case]>();
      for (const [topic, t] of topics) {
        group(topic, () => {
          for (const c of t.cases) {
            byName.set(c.name, [topic, c]);
            bench(c.name, c.fn);
          }
        });
      }
      const out = await run({ colors: process.stdout.isTTY === true });
      for (const trial of out.benchmarks) {
        for (const r of trial.runs) {
          const hit = byName.get(r.name);
          if (!hit) continue;
          if (!r.stats) {
            checks.push({ topic: hit[0], name: `${r.name}: ran`, ok: false, detail: String((r.error as Error)?.message ?? r.error) });
            continue;
          }
          results.push(result(hit[0], hit[1], "mitata", timingOfStats(r.stats)));
        }
      }
    }

    for (const [topic, t] of topics) {
      if (!t.external) continue;
      try {
        for (const x of await t.external(ctx)) {
          const r = result(topic, x, x.method, x.timing);
          results.push(r);
          console.log(`${x.name.padEnd(80)} ${fmtNs(r.avgNs).padStart(10)}/run   ${rateText(r)}`);
        }
      } catch (e) {
        checks.push({ topic, name: `${topic}: external cases`, ok: false, detail: (e as Error).message });
      }
      // Checks made while running externals (SIMD children).
      for (const c of t.checks) if (!checks.some((k) => k.name === c.name)) checks.push({ topic, ...c });
      for (const s of t.skipped) if (!skipped.some((k) => k.name === s.name)) skipped.push({ topic, ...s });
    }
  } finally {
    for (const [, t] of topics) {
      try {
        t.cleanup?.();
      } catch {
        // best effort
      }
    }
    removeTmpDir(tmp);
  }

  // Net rates: the case's avg minus its fixed per-call overhead (when that case ran).
  for (const r of results) {
    const o = r.overheadOf ? results.find((x) => x.name === r.overheadOf) : undefined;
    if (o && r.bytesPerSec !== null && r.avgNs > o.avgNs) {
      r.netThroughput = r.bytesPerOp / ((r.avgNs - o.avgNs) / 1e9) / (r.unit === "GB/s" ? 1e9 : 1e6);
    }
  }

  console.log("\nsummary");
  for (const r of results) console.log(`  ${r.name.padEnd(80)} ${fmtNs(r.avgNs).padStart(10)}  ${rateText(r)}`);
  const failed = checks.filter((c) => !c.ok);
  for (const c of failed) console.log(`FAILED check ${c.name}: ${c.detail}`);
  for (const s of skipped) console.log(`skipped ${s.name}: ${s.reason}`);

  const finished = new Date();
  const doc = {
    schema: SCHEMA,
    mode: opts.smoke ? "smoke" : "full",
    command: ["bun", "bench/micro/run.ts", ...process.argv.slice(2)].join(" "),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: (finished.getTime() - started.getTime()) / 1000,
    topics: topics.map(([n]) => n),
    host: { ...hostFacts(), libescp: libraryPath(), b3simdEnv: process.env.ESCP_B3_SIMD ?? null },
    cases: results,
    checks,
    skipped,
    notes,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(doc, null, 1)}\n`);
  console.log(`\nwrote ${opts.out} (${results.length} cases, ${checks.length - failed.length}/${checks.length} checks ok, ${doc.durationS.toFixed(1)} s)`);
  return failed.length ? 1 : 0;
}

if (import.meta.main) process.exit(await main());
