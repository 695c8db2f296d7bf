// `bun run bench:compare A.json B.json [--noise F]`: for every case in both results files (same
// id and same dataset) prints B/A of the median throughput (files/s for losf and system-tree, GB/s
// otherwise) and of CPU s/GiB, and flags a REGRESSION when B is slower beyond the noise:
//   - both sides with ≥ 3 verified repeats: the band is the larger relative spread
//     (max − min) / median of the two cases' repeats (at least 5 %);
//   - otherwise the default band, ±30 % (this machine's measured noise: 2 vCPUs shared by
//     sender and receiver; change it with --noise 0.2);
//   - a case that verified in A and has no verified run in B is a regression too.
// Exit 0: no regression; 1: at least one (each named); 2: unreadable or mismatched files.
import { basename } from "node:path";
import { parseCli, usageExit } from "../harness/cli-args.ts";
import { type CaseResult, type MacroResults, primaryMetric, readResults, ResultsError } from "./lib/results.ts";
import { median, relSpread } from "./lib/stats.ts";

export const DEFAULT_NOISE = 0.3;
const MIN_BAND = 0.05;
const USAGE = "usage: bun run bench:compare A.json B.json [--noise F]   (F: default noise band, 0.3 = ±30 %)";

interface Row {
  id: string;
  a: number | null;
  b: number | null;
  ratio: number | null;
  band: number;
  bandFrom: "repeats" | "default";
  cpuRatio: number | null;
  verdict: "ok" | "faster" | "REGRESSION" | "not comparable";
  why?: string;
}

function verifiedValues(c: CaseResult): number[] {
  const m = primaryMetric(c.scenario);
  return c.repeats
    .filter((r) => r.verified)
    .map((r) => r[m])
    .filter((v): v is number => typeof v === "number" && Number.isFinite(v));
}

function sameDataset(a: CaseResult, b: CaseResult): boolean {
  return JSON.stringify(a.dataset) === JSON.stringify(b.dataset);
}

export function compareCases(a: CaseResult, b: CaseResult, noise: number): Row {
  const va = verifiedValues(a);
  const vb = verifiedValues(b);
  const ma = median(va);
  const mb = median(vb);
  const enough = va.length >= 3 && vb.length >= 3;
  const band = enough ? Math.max(relSpread(va) ?? 0, relSpread(vb) ?? 0, MIN_BAND) : noise;
  const cpuA = a.median?.cpuSPerGiB ?? null;
  const cpuB = b.median?.cpuSPerGiB ?? null;
  const row: Row = {
    id: a.id,
    a: ma,
    b: mb,
    ratio: ma !== null && mb !== null && ma > 0 ? mb / ma : null,
    band,
    bandFrom: enough ? "repeats" : "default",
    cpuRatio: cpuA !== null && cpuB !== null && cpuA > 0 ? cpuB / cpuA : null,
    verdict: "ok",
  };
  if (!sameDataset(a, b)) return { ...row, ratio: null, verdict: "not comparable", why: "different datasets" };
  if (ma === null) return { ...row, verdict: "not comparable", why: "no verified run in A" };
  if (mb === null) return { ...row, verdict: "REGRESSION", why: "no verified run in B" };
  const r = row.ratio as number;
  if (r < 1 - band) return { ...row, verdict: "REGRESSION", why: `${((1 - r) * 100).toFixed(0)} % slower, beyond ±${(band * 100).toFixed(0)} %` };
  if (r > 1 + band) return { ...row, verdict: "faster" };
  return row;
}

export function compareResults(a: MacroResults, b: MacroResults, noise: number): { rows: Row[]; onlyA: string[]; onlyB: string[] } {
  const byId = new Map(b.cases.map((c) => [c.id, c]));
  const rows: Row[] = [];
  const onlyA: string[] = [];
  for (const ca of a.cases) {
    const cb = byId.get(ca.id);
    if (cb) rows.push(compareCases(ca, cb, noise));
    else onlyA.push(ca.id);
  }
  const idsA = new Set(a.cases.map((c) => c.id));
  const onlyB = b.cases.filter((c) => !idsA.has(c.id)).map((c) => c.id);
  return { rows, onlyA, onlyB };
}

function fmt(x: number | null, scenario: string): string {
  if (x === null) return "-";
  return primaryMetric(scenario) === "filesPerS" ? `${Math.round(x)} files/s` : `${x.toPrecision(3)} GB/s`;
}

function main(argv: string[]): number {
  const { values, positionals: files } = parseCli("bench:compare", argv, { usage: USAGE, positionals: true, options: { noise: { type: "string" } } });
  const noise = values.noise === undefined ? DEFAULT_NOISE : Number(values.noise);
  if (!Number.isFinite(noise) || noise <= 0 || noise >= 1) usageExit("bench:compare", "--noise needs a fraction between 0 and 1");
  if (files.length !== 2) usageExit("bench:compare", `needs two result files A.json B.json, got ${files.length}`);
  let A: MacroResults;
  let B: MacroResults;
  try {
    A = readResults(files[0] as string);
    B = readResults(files[1] as string);
  } catch (e) {
    console.error(`bench:compare: ${e instanceof ResultsError ? e.message : String(e)}`);
    return 2;
  }
  const { rows, onlyA, onlyB } = compareResults(A, B, noise);
  const comparable = rows.filter((r) => r.verdict !== "not comparable");
  if (comparable.length === 0) {
    console.error(
      `bench:compare: mismatched files: ${basename(files[0] as string)} and ${basename(files[1] as string)} have no case in common with the same dataset and a verified run in A (${A.mode} vs ${B.mode} run?)`,
    );
    return 2;
  }
  console.log(`A: ${files[0]} (git ${A.host.gitShort}, ${A.startedAt}, ${A.mode})`);
  console.log(`B: ${files[1]} (git ${B.host.gitShort}, ${B.startedAt}, ${B.mode})`);
  console.log(`B/A of median throughput; noise band from the repeats' spread where both have ≥ 3 verified repeats, else ±${(noise * 100).toFixed(0)} %\n`);
  const w = Math.max(...rows.map((r) => r.id.length), 4);
  console.log(`${"case".padEnd(w)}  ${"A".padStart(15)}  ${"B".padStart(15)}  ${"B/A".padStart(6)}  ${"band".padStart(9)}  ${"cpu B/A".padStart(7)}  verdict`);
  for (const r of rows) {
    const sc = r.id.split("/")[0] as string;
    const band = `±${(r.band * 100).toFixed(0)}%${r.bandFrom === "repeats" ? " r" : ""}`;
    console.log(
      `${r.id.padEnd(w)}  ${fmt(r.a, sc).padStart(15)}  ${fmt(r.b, sc).padStart(15)}  ${(r.ratio === null ? "-" : `${r.ratio.toFixed(2)}×`).padStart(6)}  ${band.padStart(9)}  ${(r.cpuRatio === null ? "-" : `${r.cpuRatio.toFixed(2)}×`).padStart(7)}  ${r.verdict}${r.why ? ` (${r.why})` : ""}`,
    );
  }
  for (const id of onlyA) console.log(`only in A: ${id}`);
  for (const id of onlyB) console.log(`only in B: ${id}`);
  const regressions = rows.filter((r) => r.verdict === "REGRESSION");
  console.log(
    `\n${comparable.length} cases compared, ${regressions.length} regression${regressions.length === 1 ? "" : "s"}${regressions.length ? `: ${regressions.map((r) => r.id).join(", ")}` : ""}`,
  );
  return regressions.length > 0 ? 1 : 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
