// What the report says about a results file: the reference of each scenario, ratios to it,
// and the headline figures the write-ups quote (each a value or a ratio of two cases
// measured in the same run).
import { resumeFigures } from "./resume.ts";
import { type CaseResult, type MacroResults, primaryMetric, toolName, type Tool } from "./results.ts";

export type Metric = "gbps" | "filesPerS";

export function metricOf(c: CaseResult): number | null {
  return c.median?.[primaryMetric(c.scenario)] ?? null;
}

export function casesOf(r: MacroResults, scenario: string): CaseResult[] {
  return r.cases.filter((c) => c.scenario === scenario);
}

function fastest(cs: readonly CaseResult[]): CaseResult | null {
  let best: CaseResult | null = null;
  for (const c of cs) {
    const v = metricOf(c);
    if (v !== null && (best === null || v > (metricOf(best) ?? 0))) best = c;
  }
  return best;
}

/** The case ratios are taken to: the fastest of the scenario's reference candidates with a
 *  verified run, else the fastest peer (not escp, not the original EScp). */
export function referenceOf(r: MacroResults, scenario: string): { ref: CaseResult; how: "reference" | "best peer" } | null {
  const info = r.scenarios.find((s) => s.name === scenario);
  const cs = casesOf(r, scenario);
  const wanted = new Set(info?.reference ?? []);
  const named = fastest(cs.filter((c) => wanted.has(c.id)));
  if (named) return { ref: named, how: "reference" };
  const best = fastest(cs.filter((c) => c.tool !== "escp" && c.tool !== "escp-orig"));
  return best ? { ref: best, how: "best peer" } : null;
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a != null && b != null && b > 0 ? a / b : null;
}

interface Pick {
  tool: Tool;
  label?: string;
}

function find(r: MacroResults, scenario: string, p: Pick): CaseResult | undefined {
  return r.cases.find((c) => c.scenario === scenario && c.tool === p.tool && (p.label === undefined || c.label === p.label));
}

export interface Figure {
  group: string;
  what: string;
  value: string;
}

const g3 = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(3));
export const fmtRatio = (x: number | null): string => (x === null ? "-" : `${x.toFixed(2)}×`);
export function fmtMetric(x: number | null, m: Metric): string {
  if (x === null) return "-";
  return m === "filesPerS" ? `${Math.round(x).toLocaleString("en-US")} files/s` : `${g3(x)} GB/s`;
}

/** The headline figures that exist in `r` (a figure needs both of its cases verified). */
export function keyFigures(r: MacroResults): Figure[] {
  const out: Figure[] = [];
  const value = (group: string, scenario: string, p: Pick, what: string): void => {
    const c = find(r, scenario, p);
    const v = c ? metricOf(c) : null;
    if (v !== null) out.push({ group, what, value: fmtMetric(v, primaryMetric(scenario)) });
  };
  const vs = (group: string, scenario: string, a: Pick, b: Pick, what?: string): void => {
    const ca = find(r, scenario, a);
    const cb = find(r, scenario, b);
    const x = ca && cb ? ratio(metricOf(ca), metricOf(cb)) : null;
    if (x !== null && ca && cb) out.push({ group, what: what ?? `${toolName(ca.tool)} ${ca.label} / ${toolName(cb.tool)} ${cb.label}`, value: fmtRatio(x) });
  };
  const escp: Pick = { tool: "escp", label: "default" };
  // 4 GiB random, disk to disk, defaults.
  const br = "big-random";
  value("big random file, disk to disk", br, escp, "escp default");
  vs("big random file, disk to disk", br, escp, { tool: "dd" }, "escp / dd O_DIRECT (disk limit)");
  vs("big random file, disk to disk", br, escp, { tool: "escp-orig", label: "default" }, "escp / original EScp");
  for (const t of ["scp", "sftp", "rsync", "tar-ssh"] as const)
    vs("big random file, disk to disk", br, escp, { tool: t, label: "default" }, `escp / ${toolName(t)}`);
  vs("big random file, disk to disk", br, { tool: "escp", label: "--nochecksum" }, escp, "escp --nochecksum / default (BLAKE3 off vs on)");
  vs("big random file, disk to disk", br, { tool: "escp", label: "pull" }, escp, "escp pull / push (same file, same sshd)");
  vs("big random file, disk to disk", br, { tool: "escp", label: "cat | -" }, escp, "escp stream from a pipe / file push (cat FILE | escp - host:f)");
  // No disk.
  const dm = "dummy";
  const dEscp: Pick = { tool: "escp", label: "--ioengine dummy" };
  value("no disk (--ioengine dummy)", dm, dEscp, "escp dummy, checksums on");
  vs("no disk (--ioengine dummy)", dm, dEscp, { tool: "escp-orig", label: "--ioengine dummy" }, "escp dummy (BLAKE3 on) / original dummy (checksums off)");
  vs(
    "no disk (--ioengine dummy)",
    dm,
    { tool: "escp", label: "--ioengine dummy --nochecksum" },
    { tool: "escp-orig", label: "--ioengine dummy" },
    "escp dummy --nochecksum / original dummy",
  );
  vs("no disk (--ioengine dummy)", dm, { tool: "escp", label: "cat | --ioengine dummy -" }, dEscp, "escp dummy, stream from a pipe / file push");
  vs("no disk (--ioengine dummy)", dm, dEscp, { tool: "iperf3", label: "-P 1" }, "escp dummy / iperf3 -P 1");
  vs("no disk (--ioengine dummy)", dm, dEscp, { tool: "iperf3", label: "-P 8" }, "escp dummy / iperf3 -P 8");
  // Small files.
  const lf = "losf";
  value("small files (losf)", lf, escp, "escp default");
  vs("small files (losf)", lf, escp, { tool: "escp-orig" }, "escp / original EScp");
  vs("small files (losf)", lf, escp, { tool: "rsync", label: "default" }, "escp / rsync -e ssh");
  vs("small files (losf)", lf, escp, { tool: "scp", label: "default" }, "escp / scp -r");
  vs("small files (losf)", lf, escp, { tool: "cp" }, "escp / cp -r (filesystem limit)");
  vs("small files (losf)", lf, { tool: "escp", label: "pull" }, escp, "escp pull / push (same tree, same sshd)");
  // WAN.
  const wn = "wan";
  value("WAN 50 ms RTT, 1 Gbit/s", wn, escp, "escp default");
  vs("WAN 50 ms RTT, 1 Gbit/s", wn, escp, { tool: "iperf3", label: "-P 1" }, "escp / iperf3 -P 1");
  vs("WAN 50 ms RTT, 1 Gbit/s", wn, escp, { tool: "iperf3", label: "-P 8" }, "escp / iperf3 -P 8");
  vs("WAN 50 ms RTT, 1 Gbit/s", wn, escp, { tool: "scp", label: "default" }, "escp / scp");
  // Third party h1 → h2, driven from here.
  const tp = "third-party";
  const relay: Pick = { tool: "escp", label: "-3" };
  value("third party (h1 → h2 from here)", tp, relay, "escp -3 (relayed here)");
  vs("third party (h1 → h2 from here)", tp, relay, { tool: "scp", label: "-3" }, "escp -3 / scp -3");
  vs("third party (h1 → h2 from here)", tp, { tool: "escp", label: "-3 --direct" }, { tool: "scp", label: "-3" }, "escp -3 --direct / scp -3");
  vs("third party (h1 → h2 from here)", tp, { tool: "escp", label: "-3 --direct" }, relay, "escp -3 --direct / relayed");
  // Resume (issue 12).
  const rf = resumeFigures(r.cases);
  if (rf) {
    const grp = "resume (push rerun after a kill at 50 %)";
    const pass = (v: string | null): string => (v === null ? "" : ` (target ${v})`);
    if (rf.kill?.timeRatio != null)
      out.push({
        group: grp,
        what: `rerun wall / full run (target ≤ ${rf.targets.rerunTimeRatio})`,
        value: `${rf.kill.timeRatio.toFixed(2)}×${pass(rf.kill.timeVerdict)}`,
      });
    if (rf.kill?.bytesFraction != null)
      out.push({
        group: grp,
        what: `bytes moved by the rerun (target ≤ ${Math.round(rf.targets.bytesMovedFraction * 100)} %)`,
        value: `${(rf.kill.bytesFraction * 100).toFixed(1)} %${pass(rf.kill.bytesVerdict)}`,
      });
    if (rf.overhead !== null)
      out.push({
        group: grp,
        what: `journal overhead, uninterrupted (target ≤ ${Math.round(rf.targets.journalOverhead * 100)} %)`,
        value: `${(rf.overhead * 100).toFixed(1)} %${pass(rf.overheadVerdict)}`,
      });
    if (rf.term?.timeRatio != null)
      out.push({ group: grp, what: "rerun wall / full run after SIGTERM (sealed partial)", value: `${rf.term.timeRatio.toFixed(2)}×` });
  }
  // A real system tree with -a (issue 13: escp faster than rsync -a in the same run).
  const st = "system-tree";
  const arch: Pick = { tool: "escp", label: "-a" };
  const archPull: Pick = { tool: "escp", label: "pull -a" };
  const stg = "system tree with -a (/usr/include + /usr/lib/x86_64-linux-gnu)";
  value(stg, st, arch, "escp -a (push)");
  vs(stg, st, arch, { tool: "rsync", label: "-a" }, "escp -a / rsync -a (target > 1)");
  vs(stg, st, archPull, { tool: "rsync", label: "-a" }, "escp pull -a / rsync -a");
  vs(stg, st, arch, { tool: "rsync", label: "-a -H" }, "escp -a / rsync -a -H (both keep hard links)");
  vs(stg, st, arch, { tool: "cp", label: "-a" }, "escp -a / cp -a (filesystem limit)");
  vs(stg, st, archPull, arch, "escp pull -a / push (same tree, same sshd)");
  // Many files of mixed sizes 0–64 KiB (issue 13): files/s beside rsync and cp -r, and the
  // peak RSS of both sides (sender / receiver; cp has one side).
  const pull: Pick = { tool: "escp", label: "pull" };
  const rsync: Pick = { tool: "rsync", label: "default" };
  for (const sc of ["files-100k", "files-1m"] as const) {
    const files = casesOf(r, sc).find((c) => c.files > 0)?.files;
    if (files === undefined) continue;
    const grp = `${sc}: ${files.toLocaleString("en-US")} files of 0–64 KiB`;
    value(grp, sc, escp, "escp (push)");
    value(grp, sc, pull, "escp pull");
    vs(grp, sc, escp, rsync, "escp / rsync -e ssh");
    vs(grp, sc, pull, rsync, "escp pull / rsync -e ssh");
    vs(grp, sc, escp, { tool: "cp" }, "escp / cp -r (filesystem limit)");
    vs(grp, sc, escp, { tool: "escp-orig" }, "escp / original EScp");
    vs(grp, sc, pull, escp, "escp pull / push (same tree, same sshd)");
    for (const p of [escp, pull, rsync, { tool: "cp" } as Pick]) {
      const c = find(r, sc, p);
      if (c?.median)
        out.push({
          group: grp,
          what: `peak RSS sender / receiver: ${toolName(c.tool)}${c.label === "default" ? "" : ` ${c.label}`}`,
          value: `${c.median.rssSenderMiB ?? "-"} / ${c.median.rssReceiverMiB ?? "-"} MiB`,
        });
    }
  }
  // CPU and memory on the big file.
  const e = find(r, br, escp);
  if (e?.median?.cpuSPerGiB != null) {
    const peers = casesOf(r, br)
      .filter((c) => c !== e && c.median?.cpuSPerGiB != null)
      .map((c) => `${toolName(c.tool)}${c.label === "default" ? "" : ` ${c.label}`} ${c.median?.cpuSPerGiB?.toFixed(2)}`);
    out.push({
      group: "CPU and memory",
      what: "CPU s/GiB, big random file: escp default (peers)",
      value: `${e.median.cpuSPerGiB.toFixed(2)} (${peers.join(", ")})`,
    });
  }
  for (const [sc, p] of [
    [br, escp],
    [lf, escp],
    [st, arch],
  ] as const) {
    const c = find(r, sc, p);
    if (c?.median) {
      out.push({
        group: "CPU and memory",
        what: `peak RSS of escp${p.label === "default" ? "" : ` ${p.label}`}, ${sc}: sender / receiver`,
        value: `${c.median.rssSenderMiB ?? "-"} / ${c.median.rssReceiverMiB ?? "-"} MiB`,
      });
    }
  }
  return out;
}
