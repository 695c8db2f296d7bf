// The macro benchmark's results file: its TypeScript shape (the one place it is defined),
// a reader that checks a file really is one, and small helpers shared by bench/macro/run.ts
// (with bench/macro/writer.ts), bench/report.ts and bench/compare.ts.
//
// The JSON shape, field by field, with units: the header of bench/macro/writer.ts (and
// bench/README.md); these types are that shape.
import { readFileSync } from "node:fs";

export const SCHEMA = "escp-bench-macro/1";

export type Tool = "escp" | "escp-orig" | "scp" | "sftp" | "rsync" | "tar-ssh" | "dd" | "cp" | "iperf3";

/** CPU seconds of each process group of a run (null: the group had no process seen):
 *  sender = the command's side except ssh, ssh = the ssh client, sshd = the sshd sessions,
 *  receiver = the rest of the receiving side. */
export interface CpuSplit {
  sender: number | null;
  receiver: number | null;
  ssh: number | null;
  sshd: number | null;
}

export interface Repeat {
  wallS: number;
  gbps: number | null;
  filesPerS: number | null;
  cpuS: number | null;
  cpuSPerGiB: number | null;
  rssSenderMiB: number | null;
  rssReceiverMiB: number | null;
  /** CPU seconds per process group, sampled from /proc (absent in files written before it). */
  cpuSplitS?: CpuSplit;
  /** cpuSplitS / (bytes / 2^30); null when bytes is 0 or the run failed. */
  cpuSplitSPerGiB?: CpuSplit | null;
  verified: boolean;
  error?: string;
  exitCode: number;
  /** The tool's own rate (GB/s), when it prints one. */
  toolGbps?: number;
  /** Seconds of the final `sync -f` (already inside wallS). */
  syncS?: number;
  /** Bytes moved when they differ from the case's (iperf3 reports its own). */
  bytes?: number;
  /** escp with --logfile: bytes the receiver held from an earlier run (not sent), from the
   *  initiator's "session done" record. */
  resumedBytes?: number;
  /** escp with --logfile: dataset bytes − resumedBytes (what this run read and sent). */
  movedBytes?: number;
  /** A rerun case (resume scenario): its untimed first run, interrupted on purpose. */
  interrupted?: Interrupted;
}

/** The untimed first run of a rerun case: its receiver signalled at `killAtBytes`. */
export interface Interrupted {
  signal: "KILL" | "TERM";
  killAtBytes: number;
  wallS: number;
  exitCode: number;
  /** Size of the hidden partial `.<name>.escp-part` it left (null: none). */
  partialBytes: number | null;
  /** Size of the journal `.<name>.escp-journal` it left (null: none). */
  journalBytes: number | null;
  /** Why this first run does not make the rerun a resume (then the repeat fails). */
  error?: string;
}

/** Per-field medians of the verified repeats. */
export interface Median extends Pick<Repeat, "wallS" | "gbps" | "filesPerS" | "cpuS" | "cpuSPerGiB" | "rssSenderMiB" | "rssReceiverMiB"> {
  toolGbps: number | null;
  /** Per-group medians of the repeats' cpuSplitS / cpuSplitSPerGiB (absent in older files;
   *  cpuSplitSPerGiB null when no verified repeat has it). */
  cpuSplitS?: CpuSplit;
  cpuSplitSPerGiB?: CpuSplit | null;
  /** Verified repeats the median is taken over. */
  n: number;
}

export interface DatasetInfo {
  name: string;
  params: Record<string, number>;
  bytes: number;
  files: number;
}

export interface CaseResult {
  id: string;
  scenario: string;
  tool: Tool;
  label: string;
  config: string[];
  dataset: DatasetInfo | null;
  bytes: number;
  files: number;
  reference: boolean;
  repeats: Repeat[];
  median: Median | null;
  error?: string;
}

export interface ScenarioInfo {
  name: string;
  title: string;
  /** Case ids of the reference candidates: ratios are taken to the fastest of them with a
   *  verified run; empty (or none verified): to the fastest peer (not escp, not EScp). */
  reference: string[];
  note?: string;
  meta?: Record<string, unknown>;
}

export interface HostFacts {
  cpuModel: string;
  nproc: number;
  cpuFlags: Record<string, boolean>;
  memGiB: number;
  kernel: string;
  os: string;
  bun: string;
  fsType: string;
  fsSource: string;
  loadavgBefore: number[];
  loadavgAfter: number[];
  congestionControl: string;
  gitSha: string;
  gitShort: string;
  gitDirty: boolean;
  date: string;
  tools: Record<string, string>;
}

export interface Skipped {
  scenario: string;
  tool: string;
  label?: string;
  reason: string;
}

export interface MacroResults {
  schema: typeof SCHEMA;
  mode: "full" | "smoke";
  startedAt: string;
  finishedAt: string;
  durationS: number;
  options: Record<string, unknown>;
  host: HostFacts;
  cpuAccounting: { mode: "cgroup-v1-cpuacct" | "rusage"; partial: boolean; note: string };
  pageCache: { drop: boolean; note: string };
  scenarios: ScenarioInfo[];
  cases: CaseResult[];
  skipped: Skipped[];
  notes: string[];
}

/** A results file that cannot be read or is not a macro results file. */
export class ResultsError extends Error {}

/** Reads and shape-checks a results file; throws ResultsError with the path and the cause. */
export function readResults(path: string): MacroResults {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ResultsError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ResultsError(`${path} is not JSON: ${(e as Error).message}`);
  }
  const r = data as Partial<MacroResults> | null;
  if (r === null || typeof r !== "object" || r.schema !== SCHEMA) {
    throw new ResultsError(
      `${path} is not a macro benchmark results file (schema ${JSON.stringify((r as { schema?: unknown } | null)?.schema)} ≠ "${SCHEMA}")`,
    );
  }
  if (!Array.isArray(r.cases) || !Array.isArray(r.scenarios) || typeof r.host !== "object" || r.host === null) {
    throw new ResultsError(`${path}: missing cases, scenarios or host`);
  }
  for (const c of r.cases) {
    if (typeof c?.id !== "string" || !Array.isArray(c.repeats)) throw new ResultsError(`${path}: a case without id or repeats`);
  }
  for (const s of r.scenarios) {
    // Early files held one id or "best-peer" here.
    const ref = (s as { reference: unknown }).reference;
    if (typeof ref === "string") s.reference = ref === "best-peer" ? [] : [ref];
    else if (!Array.isArray(ref)) s.reference = [];
  }
  return r as MacroResults;
}

export const caseId = (scenario: string, tool: string, label: string): string => `${scenario}/${tool}/${label}`;

/** How a tool is shown in tables ("tar | ssh" is piped). */
export function toolName(tool: string): string {
  return tool === "tar-ssh" ? "tar | ssh" : tool === "escp-orig" ? "EScp (orig)" : tool;
}

/** Scenarios judged by files/s: the many-small-file ones and the system tree. */
export const FILES_PER_S_SCENARIOS: readonly string[] = ["losf", "system-tree", "files-100k", "files-1m"];

/** The throughput figure a case is judged by: files/s for file-count scenarios (losf, the
 *  system tree, files-100k, files-1m), else GB/s. */
export function primaryMetric(scenario: string): "gbps" | "filesPerS" {
  return FILES_PER_S_SCENARIOS.includes(scenario) ? "filesPerS" : "gbps";
}
