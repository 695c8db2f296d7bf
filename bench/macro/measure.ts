// One measured repeat: (drop the page cache,) spawn the command inside the CPU group, poll
// both sides' peak RSS and per-process CPU (sender, receiver, ssh, sshd), time it to its exit plus a `sync -f` of the destination, wait for
// the receiver side to finish exiting, take the CPU delta, then verify the result.
import { writeFileSync } from "node:fs";
import type { CpuSplit, Repeat } from "../lib/results.ts";
import { round } from "../lib/stats.ts";
import type { CpuMeter } from "./cpuacct.ts";
import { allPids, childrenOf, runProc, type ProcResult } from "./proc.ts";
import { CPU_GROUPS, SidePoll } from "./rss.ts";
import type { Verdict } from "./verify.ts";

export interface Judged {
  verdict: Verdict;
  toolSeconds?: number | null;
  /** Throughput the tool measured itself (iperf3), GB/s; replaces the wall-time figure. */
  toolGbps?: number;
  bytes?: number;
  /** Fields the judge adds to the repeat (resumed bytes, the interrupted first run). */
  extra?: Pick<Repeat, "resumedBytes" | "movedBytes" | "interrupted">;
}

export interface RepeatPlan {
  argv: string[];
  timeoutMs: number;
  drop: boolean;
  /** Directory whose filesystem is synced after the command (inside the wall time). */
  syncDir: string | null;
  receiverRoot: number | null;
  bytes: number;
  files: number;
  cwd?: string;
  judge(res: ProcResult): Promise<Judged>;
}

const SETTLE_MS = 10_000;

export class PageCache {
  private failed: string | null = null;
  constructor(readonly enabled: boolean) {}

  /** sync; echo 3 > /proc/sys/vm/drop_caches. Returns false (and remembers why) if refused. */
  async drop(): Promise<boolean> {
    if (!this.enabled || this.failed !== null) return false;
    await runProc(["sync"], { timeoutMs: 300_000 });
    try {
      writeFileSync("/proc/sys/vm/drop_caches", "3\n");
      return true;
    } catch (e) {
      this.failed = (e as Error).message;
      return false;
    }
  }

  note(): string {
    if (!this.enabled) return "not dropped (--smoke or --no-drop-caches): sources may be warm in the page cache";
    if (this.failed !== null) return `dropping failed (${this.failed}): sources may be warm in the page cache`;
    return "sync + drop_caches (3) before every disk run: every tool reads a cold source";
  }
}

function stderrTail(s: string): string {
  const lines = s
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return lines.slice(-3).join(" | ").slice(0, 400);
}

/** Waits until the group holds no process that was not there before (sessions closed).
 *  Returns false if some were still there after `ms`. */
export async function settle(cpu: CpuMeter, baseline: Set<number>, receiverRoot: number | null, rss?: SidePoll, ms = SETTLE_MS): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const pids = cpu.pids();
    const busy = pids !== null ? pids.some((p) => !baseline.has(p)) : receiverRoot !== null && childrenOf(receiverRoot).some((p) => !baseline.has(p));
    if (!busy) return true;
    rss?.tick();
    await Bun.sleep(20);
  }
  return false;
}

/** The processes a settle() waits for to be gone: the group's (or the receivers') now. */
export function baselineOf(cpu: CpuMeter, receiverRoot: number | null): Set<number> {
  return new Set(cpu.pids() ?? (receiverRoot !== null ? childrenOf(receiverRoot) : []));
}

export async function measureRepeat(cpu: CpuMeter, cache: PageCache, plan: RepeatPlan): Promise<Repeat> {
  if (plan.drop) await cache.drop();
  const baseline = baselineOf(cpu, plan.receiverRoot);
  const rss = new SidePoll(() => cpu.pids() ?? allPids(), plan.receiverRoot);
  const u0 = cpu.usageNs();
  const res = await runProc(cpu.wrap(plan.argv), { timeoutMs: plan.timeoutMs, cwd: plan.cwd, onSpawn: (pid) => rss.start(pid) });
  let syncS: number | undefined;
  if (plan.syncDir !== null) {
    const s = await runProc(["sync", "-f", plan.syncDir], { timeoutMs: 300_000 });
    syncS = s.wallS;
  }
  await settle(cpu, baseline, plan.receiverRoot, rss);
  const u1 = cpu.usageNs();
  rss.stop();
  const peaks = rss.result();
  const split = rss.cpuSplit();
  const cpuS = u0 !== null && u1 !== null ? Number(u1 - u0) / 1e9 : res.cpuS;
  const judged = await plan.judge(res);
  const wallS = res.wallS + (syncS ?? 0);
  const bytes = judged.bytes ?? plan.bytes;
  const gbps = judged.toolGbps ?? (wallS > 0 ? bytes / wallS / 1e9 : null);
  const divided = (x: CpuSplit, div: number, digits = 3): CpuSplit => {
    const out: CpuSplit = { sender: null, receiver: null, ssh: null, sshd: null };
    for (const g of CPU_GROUPS) {
      const v = x[g];
      out[g] = v === null ? null : round(v / div, digits);
    }
    return out;
  };
  const mib = (b: number | null): number | null => (b !== null && b > 0 ? round(b / 2 ** 20, 1) : null);
  const ok = res.code === 0 && judged.verdict.ok;
  const error = res.code !== 0 ? `exit ${res.code}${res.timedOut ? " (timed out)" : ""}: ${stderrTail(res.stderr)}` : judged.verdict.error;
  const r: Repeat = {
    wallS: round(wallS, 3) as number,
    // A failed run moved an unknown amount: no rates for it (its wall and CPU stay).
    gbps: ok ? round(gbps) : null,
    filesPerS: ok && plan.files > 0 && judged.toolGbps === undefined ? round(plan.files / wallS, 1) : null,
    cpuS: round(cpuS, 3),
    cpuSPerGiB: ok && cpuS !== null && bytes > 0 ? round(cpuS / (bytes / 2 ** 30), 3) : null,
    rssSenderMiB: mib(peaks.sender),
    rssReceiverMiB: mib(peaks.receiver),
    cpuSplitS: divided(split, 1),
    cpuSplitSPerGiB: ok && bytes > 0 ? divided(split, bytes / 2 ** 30) : null,
    verified: ok,
    exitCode: res.code,
  };
  if (!ok && error !== undefined) r.error = error;
  if (judged.toolSeconds != null && judged.toolSeconds > 0) r.toolGbps = round(bytes / judged.toolSeconds / 1e9) as number;
  else if (judged.toolGbps !== undefined) r.toolGbps = round(judged.toolGbps) as number;
  if (syncS !== undefined) r.syncS = round(syncS, 3) as number;
  if (judged.bytes !== undefined) r.bytes = judged.bytes;
  if (judged.extra) Object.assign(r, judged.extra);
  return r;
}
