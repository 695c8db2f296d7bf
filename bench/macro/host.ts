// Host facts recorded with every run: CPU and its crypto/SIMD flags, kernel, OS, Bun, the
// filesystem under the work dir, load, TCP congestion control, git revision, tool versions.
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { loadavg } from "node:os";
import { REPO_ROOT } from "../../harness/escp-run.ts";
import { cpuFacts } from "../lib/cpu-facts.ts";
import type { HostFacts } from "../lib/results.ts";

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function sh(argv: string[]): string {
  try {
    const p = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    return `${p.stdout.toString()}${p.stderr.toString()}`.trim();
  } catch {
    return "";
  }
}

/** The mount holding `dir` (longest mount point prefix in /proc/self/mountinfo). */
function fsOf(dir: string): { type: string; source: string } {
  let path = dir;
  try {
    path = realpathSync(dir);
  } catch {
    // not made yet: its parent decides
  }
  let best = { point: "", type: "unknown", source: "" };
  for (const line of read("/proc/self/mountinfo").split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const point = (pre.split(" ")[4] ?? "").replace(/\\040/g, " ");
    const [type, source] = post.split(" ");
    const inside = path === point || path.startsWith(point.endsWith("/") ? point : `${point}/`);
    if (inside && point.length >= best.point.length) best = { point, type: type ?? "unknown", source: source ?? "" };
  }
  return { type: best.type, source: best.source };
}

function firstLine(text: string): string {
  return text.split("\n")[0]?.trim() ?? "";
}

export function loadNow(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

export function hostFacts(workDir: string, peerEscp: string | undefined): HostFacts {
  const osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(read("/etc/os-release"))?.[1] ?? "unknown";
  const sha = sh(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"]);
  const dirty = sh(["git", "-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no"]) !== "";
  const fs = fsOf(workDir);
  const tools: Record<string, string> = {
    ssh: firstLine(sh(["ssh", "-V"])),
    rsync: firstLine(sh(["rsync", "--version"])),
    iperf3: firstLine(sh(["iperf3", "--version"])),
    b3sum: firstLine(sh(["b3sum", "--version"])),
    tar: firstLine(sh(["tar", "--version"])),
    dd: firstLine(sh(["dd", "--version"])),
  };
  if (peerEscp !== undefined && existsSync(peerEscp)) tools["escp-orig"] = firstLine(sh([peerEscp, "-V"]));
  for (const [k, v] of Object.entries(tools)) if (v === "") delete tools[k];
  return {
    ...cpuFacts(),
    os: osName,
    bun: `${Bun.version}${Bun.revision ? ` (${Bun.revision.slice(0, 9)})` : ""}`,
    fsType: fs.type,
    fsSource: fs.source,
    loadavgBefore: loadNow(),
    loadavgAfter: [],
    congestionControl: read("/proc/sys/net/ipv4/tcp_congestion_control").trim() || "unknown",
    gitSha: sha,
    gitShort: sha.slice(0, 9),
    gitDirty: dirty,
    date: new Date().toISOString(),
    tools,
  };
}
