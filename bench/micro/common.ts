// Shared shapes and helpers of the micro benchmarks (bench/micro/run.ts runs the topics).
// A topic module exports `setup(ctx)`: it prepares its data, checks its outputs once (the
// numbers mean nothing if the code under test returns the wrong bytes) and hands back
// cases for mitata plus any externally timed results (spawned tools, child processes).
import { cpuFacts, type CpuFacts } from "../lib/cpu-facts.ts";

export const KiB = 1024;
export const MiB = 1024 * 1024;

export interface Ctx {
  /** --smoke: tiny sizes and a few iterations (CI). */
  smoke: boolean;
  /** Scratch directory owned by run.ts (removed at exit). */
  tmp: string;
  log: (line: string) => void;
}

/** One mitata case. The function is timed as is: keep setup out of it. */
export interface Case {
  name: string;
  fn: () => unknown;
  /** Payload bytes one call processes (0: a pure call-overhead case). */
  bytesPerOp: number;
  /** Items per call (events, entries) → nsPerItem in the JSON. */
  items?: number;
  unit?: "GB/s" | "MB/s";
  /** Compressed / input over the data the case walks (zstd). */
  ratio?: number;
  /** Name of a case whose avg is fixed overhead included here: the JSON adds the net rate. */
  overheadOf?: string;
  note?: string;
}

/** Timing summary of one case, ns (mitata's stats, or computed from raw samples). */
export interface Timing {
  avg: number;
  min: number;
  max: number;
  p75: number;
  p99: number;
  samples: number;
}

/** A result timed outside mitata's run() (spawned binaries, child processes). */
export interface ExternalResult {
  name: string;
  method: "spawn" | "child";
  bytesPerOp: number;
  timing: Timing;
  unit?: "GB/s" | "MB/s";
  overheadOf?: string;
  note?: string;
}

export function timingOf(samplesNs: readonly number[]): Timing {
  const s = [...samplesNs].sort((a, b) => a - b);
  return {
    avg: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
    p75: percentile(s, 75),
    p99: percentile(s, 99),
    samples: s.length,
  };
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Skip {
  name: string;
  reason: string;
}

export interface Topic {
  cases: Case[];
  /** Cases measured before/after the mitata run (they spawn processes). */
  external?: (ctx: Ctx) => Promise<ExternalResult[]>;
  checks: Check[];
  skipped: Skip[];
  notes: string[];
  cleanup?: () => void;
}

export function emptyTopic(): Topic {
  return { cases: [], checks: [], skipped: [], notes: [] };
}

/** Records a check and returns its verdict. */
export function check(t: Topic, name: string, ok: boolean, detail: string): boolean {
  t.checks.push({ name, ok, detail });
  return ok;
}

export function sizeLabel(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} B`;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** Sorted-sample percentile (nearest rank), ns. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export interface HostFacts extends CpuFacts {
  bun: string;
  bunRevision: string;
}

export function hostFacts(): HostFacts {
  return { ...cpuFacts(), bun: Bun.version, bunRevision: Bun.revision };
}

/** Runs argv to completion; throws with its stderr on a non-zero exit. */
export async function spawnText(argv: string[], env?: Record<string, string | undefined>): Promise<string> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: env ?? process.env });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err.trim()}`);
  return out;
}

/** mitata measure() options for --smoke: a 15 ms budget per case instead of run()'s 642 ms. */
export const SMOKE_MEASURE = { min_cpu_time: 15e6, min_samples: 3, warmup_samples: 1, batch_samples: 512 } as const;

/** Timing of mitata stats (ns). */
export function timingOfStats(s: { avg: number; min: number; max: number; p75: number; p99: number; samples: number[] }): Timing {
  return { avg: s.avg, min: s.min, max: s.max, p75: s.p75, p99: s.p99, samples: s.samples.length };
}
