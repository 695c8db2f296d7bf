// Writes the results JSON of one `bench:macro` run (one file per run; default
// bench/results/macro-<YYYY-MM-DD-HHMM>-<short git sha>.json, smoke runs macro-smoke-…).
// Types: bench/lib/results.ts. The shape:
//
// {
//   schema: "escp-bench-macro/1", mode: "full" | "smoke",
//   startedAt, finishedAt: ISO dates, durationS,
//   options: { scenarios, repeat, size, files (--files, or null), peers, peerEscp, work, dropCaches,
//              only (--only, or null) },
//   host: { cpuModel, nproc, cpuFlags: { aes, pclmulqdq, avx2, avx512f, vaes, vpclmulqdq, sha_ni },
//           memGiB, kernel, os, bun, fsType, fsSource (of the work dir), loadavgBefore: [1, 5, 15 min],
//           loadavgAfter, congestionControl, gitSha, gitShort, gitDirty, date,
//           tools: { ssh, rsync, iperf3, b3sum, tar, dd, escp-orig?: version lines } },
//   cpuAccounting: { mode: "cgroup-v1-cpuacct" | "rusage", partial: boolean, note },
//   pageCache: { drop: boolean, note },
//   scenarios: [{ name, title, reference: ["<case id>", ...] (the fastest verified one is the
//                 reference; [] = the fastest peer), note?, meta? (wan: rtt probe, link;
//                 third-party: the hosts' addresses; system-tree: sources[] and total, each
//                 { path, dirs, files, symlinks, hardlinks, hardlinkGroups, other, bytes,
//                 bytesAllPaths } counted with lstat, bench/macro/systree.ts; a tree dataset
//                 this run made: datasetMadeS, its generation time with the manifest's b3sum) }],
//   cases: [{
//     id: "<scenario>/<tool>/<label>", scenario, tool, label ("default" or the flags; an escp
//     pull is "pull" + its flags),
//     config: [flags as passed], dataset: { name, params, bytes, files } | null (system-tree:
//     name "system-tree", params { dirs, symlinks, hardlinks, other, bytesAllPaths }),
//     bytes, files, reference: boolean (a reference candidate),
//     repeats: [{ wallS, gbps, filesPerS, cpuS, cpuSPerGiB, rssSenderMiB, rssReceiverMiB,
//                 cpuSplitS: { sender, receiver, ssh, sshd }, cpuSplitSPerGiB: { … } | null,
//                 verified, exitCode, error?, toolGbps?, syncS?, bytes? }],
//     median: { wallS, gbps, filesPerS, cpuS, cpuSPerGiB, rssSenderMiB, rssReceiverMiB,
//               toolGbps, cpuSplitS: { sender, receiver, ssh, sshd },
//               cpuSplitSPerGiB: { … } | null, n } | null,
//     error?: "why no repeat ran"
//   }],
//   skipped: [{ scenario, tool, label?, reason }],   peers missing, not selected, not applicable
//   notes: [string]
// }
//
// Units and meaning:
// - wallS: seconds from spawning the command to its exit, plus a `sync -f` of the destination
//   filesystem (so buffered writers pay for their dirty pages like O_DIRECT writers do);
//   ssh connection setup and remote start-up are included.
// - gbps: gigaBYTES per second (1e9 B/s) = bytes / wallS; for iperf3 its own receiver total.
// - filesPerS: files / wallS (null for iperf3).
// - toolGbps: the tool's own rate: escp's / EScp's summary line (bytes over the time it
//   prints), iperf3's receiver figure.
// - cpuS: CPU seconds of every process of the run: sender, ssh client, the sshd session,
//   the receiver, pipes (cgroup v1 cpuacct.usage delta; `cpuAccounting.partial` when only
//   the command's own rusage was available). cpuSPerGiB = cpuS / (bytes / 2^30).
// - cpuSplitS: CPU seconds per process group, 3 decimals, null for a group with no process
//   seen: ssh = sender-side processes named `ssh` (the ssh client), sender = the rest of the
//   command's side (escp/bun, rsync, scp, EScp, tar, cp, …; for a pull the local, receiving
//   command), sshd = receiver-side processes whose name starts with `sshd` (the sshd
//   sessions), receiver = the rest of the receiver side (escp --server, rsync --server, the
//   shell, …). Sampled: utime + stime (all threads) of /proc/<pid>/stat every 50 ms plus
//   one look after the run, the last value per process kept, so the CPU a process spends in
//   the last interval before it exits is lost, and a process living less than one interval
//   is not seen. cpuS (cgroup) stays the exact total: cpuS − the sum of the split is what
//   was lost that way or belonged to no group (e.g. the `-3` source host's side).
//   cpuSplitSPerGiB = each / (bytes / 2^30); null when bytes is 0 or the run failed.
// - rssSenderMiB / rssReceiverMiB: peak RSS (VmHWM, rusage maxrss) of the largest process
//   on each side, MiB; receiver null for local tools (dd, cp) and iperf3.
// - verified: exit status 0 AND the destination equals the dataset (sizes + BLAKE3 via
//   b3sum of every file, entry lists equal); dummy engine: exit 0 and no file written;
//   system-tree: `rsync -a [-H] --delete --dry-run --itemize-changes` of every source against
//   its copy prints nothing (the error holds its first 20 lines).
// - median: over verified repeats only (n of them); null when none verified.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../../harness/escp-run.ts";
import type { CpuSplit, MacroResults, Median, Repeat } from "../lib/results.ts";
import { median, round } from "../lib/stats.ts";
import { CPU_GROUPS } from "./rss.ts";

/** Per-group medians of the splits given (null when none is given). */
function splitMedian(xs: readonly (CpuSplit | null | undefined)[]): CpuSplit | null {
  const have = xs.filter((x): x is CpuSplit => x != null);
  if (have.length === 0) return null;
  const out: CpuSplit = { sender: null, receiver: null, ssh: null, sshd: null };
  for (const g of CPU_GROUPS) out[g] = round(median(have.map((x) => x[g])), 3);
  return out;
}

export function summarize(repeats: readonly Repeat[]): Median | null {
  const ok = repeats.filter((r) => r.verified);
  if (ok.length === 0) return null;
  const m = (f: (r: Repeat) => number | null | undefined, digits = 4): number | null => round(median(ok.map(f)), digits);
  return {
    wallS: m((r) => r.wallS, 3) as number,
    gbps: m((r) => r.gbps),
    filesPerS: m((r) => r.filesPerS, 1),
    cpuS: m((r) => r.cpuS, 3),
    cpuSPerGiB: m((r) => r.cpuSPerGiB, 3),
    rssSenderMiB: m((r) => r.rssSenderMiB, 1),
    rssReceiverMiB: m((r) => r.rssReceiverMiB, 1),
    toolGbps: m((r) => r.toolGbps),
    cpuSplitS: splitMedian(ok.map((r) => r.cpuSplitS)) ?? { sender: null, receiver: null, ssh: null, sshd: null },
    cpuSplitSPerGiB: splitMedian(ok.map((r) => r.cpuSplitSPerGiB)),
    n: ok.length,
  };
}

export function defaultOutPath(smoke: boolean, gitShort: string): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, "0");
  const stamp = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
  return join(REPO_ROOT, "bench", "results", `macro-${smoke ? "smoke-" : ""}${stamp}-${gitShort || "nogit"}.json`);
}

export function writeResults(path: string, results: MacroResults): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 1)}\n`);
}
