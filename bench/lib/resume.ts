// The resume scenario's verdicts (issue 12), from its cases measured in the same run:
//   1. the rerun after a kill at 50 % takes ≤ 0.55× a full run's wall time,
//   2. … and moves ≤ 55 % of the bytes (size − resumed, from escp's session-done record),
//   3. the journal costs ≤ 3 % on an uninterrupted run (default vs ESCP_JOURNAL=0).
// Shared by bench/macro/run.ts (console, the scenario's meta) and bench/report.ts (markdown).
import { median } from "./stats.ts";
import type { CaseResult, Repeat } from "./results.ts";

export const RESUME_TARGETS = { rerunTimeRatio: 0.55, bytesMovedFraction: 0.55, journalOverhead: 0.03 } as const;

export const RESUME_LABELS = {
  full: "default",
  off: "ESCP_JOURNAL=0",
  kill: "rerun after SIGKILL at 50%",
  term: "rerun after SIGTERM at 50% (sealed)",
} as const;

/** met / missed by the median, or inconclusive when the target lies inside the range of the
 *  per-round values (this machine's noise can put it on either side); null: not measured. */
export type Verdict = "met" | "missed" | "inconclusive" | null;

function judge(value: number | null, rounds: readonly number[], target: number): Verdict {
  if (value === null) return null;
  if (rounds.length >= 2 && Math.min(...rounds) <= target && Math.max(...rounds) > target) return "inconclusive";
  return value <= target ? "met" : "missed";
}

export interface RerunFigures {
  /** Median rerun wall / median full-run wall. */
  timeRatio: number | null;
  /** The same ratio round by round (repeat i of both, both verified): min and max. */
  timeRatioRounds: number[];
  /** Median of (bytes moved / dataset bytes) over the verified reruns. */
  bytesFraction: number | null;
  /** That fraction per verified rerun. */
  bytesFractionRounds: number[];
  /** Median bytes held from the interrupted run (not sent). */
  resumedBytes: number | null;
  timeVerdict: Verdict;
  bytesVerdict: Verdict;
}

export interface ResumeFigures {
  bytes: number;
  targets: typeof RESUME_TARGETS;
  /** Median wall seconds of each case (null: no verified run). */
  wallS: { full: number | null; off: number | null; kill: number | null; term: number | null };
  kill: RerunFigures | null;
  term: RerunFigures | null;
  /** Journal overhead: median wall of the default / ESCP_JOURNAL=0 − 1 (and round by round). */
  overhead: number | null;
  overheadRounds: number[];
  /** The same on CPU seconds (every process of the run). */
  cpuOverhead: number | null;
  overheadVerdict: Verdict;
}

const verifiedAt = (c: CaseResult | undefined, i: number): Repeat | undefined => {
  const r = c?.repeats[i];
  return r?.verified ? r : undefined;
};

function rounds(a: CaseResult | undefined, b: CaseResult | undefined, f: (x: Repeat, y: Repeat) => number | null): number[] {
  const out: number[] = [];
  const n = Math.min(a?.repeats.length ?? 0, b?.repeats.length ?? 0);
  for (let i = 0; i < n; i++) {
    const x = verifiedAt(a, i);
    const y = verifiedAt(b, i);
    const v = x && y ? f(x, y) : null;
    if (v !== null && Number.isFinite(v)) out.push(v);
  }
  return out;
}

function rerun(c: CaseResult | undefined, full: CaseResult | undefined, bytes: number): RerunFigures | null {
  if (!c) return null;
  const ok = c.repeats.filter((r) => r.verified);
  const fw = full?.median?.wallS ?? null;
  const timeRatio = c.median && fw ? c.median.wallS / fw : null;
  const moved = ok.map((r) => r.movedBytes).filter((x): x is number => x !== undefined);
  const resumed = ok.map((r) => r.resumedBytes).filter((x): x is number => x !== undefined);
  const fractions = bytes > 0 ? moved.map((m) => m / bytes) : [];
  const bytesFraction = median(fractions);
  const timeRatioRounds = rounds(c, full, (x, y) => x.wallS / y.wallS);
  return {
    timeRatio,
    timeRatioRounds,
    bytesFraction,
    bytesFractionRounds: fractions,
    resumedBytes: resumed.length > 0 ? median(resumed) : null,
    timeVerdict: judge(timeRatio, timeRatioRounds, RESUME_TARGETS.rerunTimeRatio),
    bytesVerdict: judge(bytesFraction, fractions, RESUME_TARGETS.bytesMovedFraction),
  };
}

/** The figures of the resume scenario's cases, or null when it has no case. */
export function resumeFigures(cases: readonly CaseResult[]): ResumeFigures | null {
  const cs = cases.filter((c) => c.scenario === "resume");
  if (cs.length === 0) return null;
  const by = (label: string): CaseResult | undefined => cs.find((c) => c.tool === "escp" && c.label === label);
  const full = by(RESUME_LABELS.full);
  const off = by(RESUME_LABELS.off);
  const kill = by(RESUME_LABELS.kill);
  const term = by(RESUME_LABELS.term);
  const bytes = cs.find((c) => c.bytes > 0)?.bytes ?? 0;
  const fw = full?.median?.wallS ?? null;
  const ow = off?.median?.wallS ?? null;
  const overhead = fw !== null && ow ? fw / ow - 1 : null;
  const fc = full?.median?.cpuS ?? null;
  const oc = off?.median?.cpuS ?? null;
  const overheadRounds = rounds(full, off, (x, y) => x.wallS / y.wallS - 1);
  return {
    bytes,
    targets: RESUME_TARGETS,
    wallS: { full: fw, off: ow, kill: kill?.median?.wallS ?? null, term: term?.median?.wallS ?? null },
    kill: rerun(kill, full, bytes),
    term: rerun(term, full, bytes),
    overhead,
    overheadRounds,
    cpuOverhead: fc !== null && oc ? fc / oc - 1 : null,
    overheadVerdict: judge(overhead, overheadRounds, RESUME_TARGETS.journalOverhead),
  };
}

const pct = (x: number | null, digits = 1): string => (x === null ? "-" : `${(x * 100).toFixed(digits)} %`);
const spread = (xs: readonly number[], f: (x: number) => string): string => (xs.length === 0 ? "" : ` (rounds ${xs.map(f).join(" / ")})`);
const verdict = (v: Verdict): string => (v === null ? "not measured" : v === "inconclusive" ? "**inconclusive** (the rounds straddle the target)" : `**${v}**`);

/** Markdown rows: target | measured | verdict. */
export function resumeRows(f: ResumeFigures): string[][] {
  const t = f.targets;
  const rows: string[][] = [];
  const s = (x: number | null): string => (x === null ? "-" : `${x.toFixed(2)} s`);
  const gib = (b: number | null): string => (b === null ? "-" : `${(b / 2 ** 30).toFixed(2)} GiB`);
  if (f.kill) {
    rows.push([
      `rerun after SIGKILL at 50 %: wall ≤ ${t.rerunTimeRatio}× a full run`,
      `${f.kill.timeRatio === null ? "-" : `${f.kill.timeRatio.toFixed(3)}×`} (${s(f.wallS.kill)} / ${s(f.wallS.full)})${spread(f.kill.timeRatioRounds, (x) => x.toFixed(2))}`,
      verdict(f.kill.timeVerdict),
    ]);
    rows.push([
      `rerun after SIGKILL at 50 %: moves ≤ ${pct(t.bytesMovedFraction, 0)} of the bytes`,
      `${pct(f.kill.bytesFraction)} (resumed ${gib(f.kill.resumedBytes)} of ${gib(f.bytes)})${spread(f.kill.bytesFractionRounds, (x) => pct(x))}`,
      verdict(f.kill.bytesVerdict),
    ]);
  }
  rows.push([
    `journal overhead, uninterrupted run (default / ESCP_JOURNAL=0 − 1) ≤ ${pct(t.journalOverhead, 0)}`,
    `${pct(f.overhead)} wall (${s(f.wallS.full)} / ${s(f.wallS.off)})${spread(f.overheadRounds, (x) => pct(x))}; CPU ${pct(f.cpuOverhead)}`,
    verdict(f.overheadVerdict),
  ]);
  if (f.term) {
    rows.push([
      `(variant) rerun after SIGTERM at 50 % (partial sealed, no re-hash): wall ≤ ${t.rerunTimeRatio}×`,
      `${f.term.timeRatio === null ? "-" : `${f.term.timeRatio.toFixed(3)}×`} (${s(f.wallS.term)} / ${s(f.wallS.full)})${spread(f.term.timeRatioRounds, (x) => x.toFixed(2))}`,
      verdict(f.term.timeVerdict),
    ]);
    rows.push([
      `(variant) rerun after SIGTERM at 50 %: moves ≤ ${pct(t.bytesMovedFraction, 0)}`,
      `${pct(f.term.bytesFraction)} (resumed ${gib(f.term.resumedBytes)})`,
      verdict(f.term.bytesVerdict),
    ]);
  }
  return rows;
}
