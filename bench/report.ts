// `bun run bench:report [--out-dir DIR] [FILE.json ...]`: turns macro benchmark results into a
// markdown report (a table per scenario: median throughput, ratio to the scenario's
// reference, the tool's own rate, CPU s/GiB and its split per process group, peak RSS, verified runs; the headline ratios;
// host facts; skipped peers) and a self-contained SVG bar chart of median throughput.
// Default input: the newest bench/results/macro-*.json. Writes DIR/<name>.md and
// DIR/<name>.svg (DIR defaults to bench/results) and copies the last one to latest.md/.svg.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { formatSize } from "../datasets/params.ts";
import { parseCli } from "../harness/cli-args.ts";
import { casesOf, fmtMetric, fmtRatio, keyFigures, metricOf, ratio, referenceOf } from "./lib/figures.ts";
import { resumeFigures, resumeRows } from "./lib/resume.ts";
import { type CaseResult, type MacroResults, type Median, primaryMetric, readResults, ResultsError, toolName } from "./lib/results.ts";
import type { SourceCounts } from "./macro/systree.ts";

const RESULTS_DIR = join(import.meta.dir, "results");
const USAGE = "usage: bun run bench:report [--out-dir DIR] [FILE.json ...]   (default: newest bench/results/macro-*.json)";

const num = (x: number | null | undefined, digits = 2): string => (x == null ? "-" : x.toFixed(digits));
const mdEscape = (s: string): string => s.replace(/\|/g, "\\|");

function newestResults(): string | null {
  if (!existsSync(RESULTS_DIR)) return null;
  const files = readdirSync(RESULTS_DIR)
    .filter((f) => /^macro-.*\.json$/.test(f))
    .map((f) => join(RESULTS_DIR, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0] ?? null;
}

function hostLine(r: MacroResults): string {
  const h = r.host;
  const flags = Object.entries(h.cpuFlags)
    .filter(([, v]) => v)
    .map(([k]) => k)
    .join(" ");
  return [
    `- **Host:** ${h.cpuModel}, ${h.nproc} CPUs (${flags}), ${h.memGiB} GiB; ${h.os}; kernel ${h.kernel}; Bun ${h.bun}`,
    `- **Work dir filesystem:** ${h.fsType} (${h.fsSource}); TCP congestion control ${h.congestionControl}`,
    `- **Load average** (1/5/15 min): before ${h.loadavgBefore.join(" / ")}, after ${h.loadavgAfter.join(" / ")}`,
    `- **Git:** ${h.gitShort}${h.gitDirty ? " (working tree had uncommitted changes)" : ""}; run ${r.startedAt} – ${r.finishedAt} (${r.durationS} s, ${r.mode})`,
    `- **CPU accounting:** ${r.cpuAccounting.mode}${r.cpuAccounting.partial ? " (PARTIAL: receivers not counted)" : ""}; **page cache:** ${r.pageCache.note}`,
    `- **Tools:** ${Object.entries(h.tools)
      .map(([k, v]) => `${k}: ${v}`)
      .join("; ")}`,
  ].join("\n");
}

function verifiedText(c: CaseResult): string {
  const ok = c.repeats.filter((x) => x.verified).length;
  const total = c.repeats.length;
  if (total === 0) return c.error ? `not run: ${mdEscape(c.error)}` : "not run";
  const bad = c.repeats.find((x) => !x.verified);
  return bad ? `${ok}/${total} — ${mdEscape((bad.error ?? "failed").slice(0, 160))}` : `${ok}/${total}`;
}

/** The median CPU split per GiB as "sender / receiver / ssh+sshd" (ssh+sshd: the sum of the
 *  two medians); in seconds ("… s") when there is no per-GiB figure (no bytes); "–" for a
 *  file written before the split existed. */
export function splitCell(md: Median | null): string {
  const x = md?.cpuSplitSPerGiB ?? md?.cpuSplitS;
  if (x == null) return "–";
  const v = (y: number | null): string => (y === null ? "–" : y.toFixed(2));
  const transport = x.ssh === null && x.sshd === null ? null : (x.ssh ?? 0) + (x.sshd ?? 0);
  return `${v(x.sender)} / ${v(x.receiver)} / ${v(transport)}${md?.cpuSplitSPerGiB ? "" : " s"}`;
}

function scenarioTable(r: MacroResults, name: string): string {
  const info = r.scenarios.find((s) => s.name === name);
  const cs = casesOf(r, name);
  const m = primaryMetric(name);
  const refd = referenceOf(r, name);
  const refV = refd ? metricOf(refd.ref) : null;
  const lines: string[] = [`## ${name}: ${info?.title ?? ""}`, ""];
  const ds = cs.find((c) => c.dataset)?.dataset;
  if (ds) lines.push(`Dataset \`${ds.name}\` ${JSON.stringify(ds.params)}: ${ds.files.toLocaleString("en-US")} files, ${(ds.bytes / 2 ** 20).toFixed(1)} MiB.`);
  if (info?.note) lines.push(`${info.note}.`);
  const madeS = (info?.meta as { datasetMadeS?: number } | undefined)?.datasetMadeS;
  if (typeof madeS === "number")
    lines.push(`The dataset was made by this run in ${madeS.toFixed(1)} s (files written, then every one hashed with b3sum for the manifest).`);
  const meta = info?.meta as { rttProbe?: { minMs?: number; medianMs?: number } | null } | undefined;
  const sources = (info?.meta as { sources?: SourceCounts[] } | undefined)?.sources;
  for (const s of sources ?? []) {
    lines.push(
      `Source \`${s.path}\` (lstat): ${s.files.toLocaleString("en-US")} files, ${s.symlinks.toLocaleString("en-US")} symbolic links, ${s.hardlinks} hard-linked paths (${s.hardlinkGroups} inode${s.hardlinkGroups === 1 ? "" : "s"}), ${s.dirs.toLocaleString("en-US")} directories, ${s.other} devices/FIFOs/sockets, ${(s.bytes / 1e6).toFixed(1)} MB (${(s.bytesAllPaths / 1e6).toFixed(1)} MB counting every hard link).`,
    );
  }
  if (meta?.rttProbe?.minMs != null) lines.push(`Measured RTT: min ${meta.rttProbe.minMs.toFixed(1)} ms, median ${num(meta.rttProbe.medianMs, 1)} ms.`);
  lines.push(refd ? `Ratios are to **${toolName(refd.ref.tool)} ${mdEscape(refd.ref.label)}** (${refd.how}).` : "No reference case has a verified run.");
  lines.push("");
  const unit = m === "filesPerS" ? "files/s" : "GB/s";
  lines.push(
    `| tool | config | median ${unit} | ${m === "filesPerS" ? "GB/s" : "files/s"} | × ref | own GB/s | wall s | CPU s | CPU s/GiB | CPU-s/GiB sender / receiver / ssh+sshd | RSS sender MiB | RSS receiver MiB | verified |`,
  );
  lines.push("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
  for (const c of cs) {
    const md = c.median;
    const v = metricOf(c);
    const other = m === "filesPerS" ? num(md?.gbps, 3) : md?.filesPerS != null && c.files > 1 ? Math.round(md.filesPerS).toLocaleString("en-US") : "-";
    const primary = m === "filesPerS" ? (v == null ? "-" : Math.round(v).toLocaleString("en-US")) : num(v, 3);
    const isRef = refd?.ref === c;
    const tool = c.tool === "escp" ? `**${toolName(c.tool)}**` : toolName(c.tool);
    lines.push(
      `| ${mdEscape(tool)}${isRef ? " (ref)" : ""} | ${mdEscape(c.label)} | ${primary} | ${other} | ${fmtRatio(ratio(v, refV))} | ${num(md?.toolGbps, 3)} | ${num(md?.wallS)} | ${num(md?.cpuS, 1)} | ${num(md?.cpuSPerGiB)} | ${splitCell(md)} | ${num(md?.rssSenderMiB, 0)} | ${num(md?.rssReceiverMiB, 0)} | ${verifiedText(c)} |`,
    );
  }
  if (name === "resume") lines.push(...resumeSection(r));
  return lines.join("\n");
}

/** The resume scenario's verdicts against issue 12's targets, and its reruns one by one. */
function resumeSection(r: MacroResults): string[] {
  const f = resumeFigures(r.cases);
  if (!f) return [];
  const out = [
    "",
    "Targets (issue 12), from the medians above (same run); `rounds` pairs repeat i of both cases:",
    "",
    "| target | measured | verdict |",
    "|---|---|---|",
  ];
  for (const [t, m, v] of resumeRows(f)) out.push(`| ${mdEscape(t ?? "")} | ${mdEscape(m ?? "")} | ${v ?? ""} |`);
  const reruns = casesOf(r, "resume").filter((c) => c.repeats.some((x) => x.interrupted));
  if (reruns.length > 0) {
    out.push(
      "",
      "| rerun case | # | first run (untimed): signal at, wall s, exit, size of the partial left | rerun wall s | resumed MiB | moved MiB (of size) | verified |",
      "|---|--:|---|--:|--:|--:|---|",
    );
    const mib = (b: number | null | undefined): string => (b == null ? "-" : (b / 2 ** 20).toFixed(0));
    for (const c of reruns) {
      c.repeats.forEach((x, i) => {
        const it = x.interrupted;
        const first = it ? `SIG${it.signal} at ${mib(it.killAtBytes)} MiB, ${it.wallS.toFixed(2)} s, exit ${it.exitCode}, ${mib(it.partialBytes)} MiB` : "-";
        const moved = x.movedBytes !== undefined ? `${mib(x.movedBytes)} (${((x.movedBytes / c.bytes) * 100).toFixed(1)} %)` : "-";
        out.push(
          `| ${mdEscape(c.label)} | ${i + 1} | ${first} | ${x.wallS.toFixed(2)} | ${mib(x.resumedBytes)} | ${moved} | ${x.verified ? "yes" : mdEscape(`no — ${(x.error ?? "failed").slice(0, 120)}`)} |`,
        );
      });
    }
  }
  return out;
}

export function markdown(r: MacroResults, svgName: string): string {
  const out: string[] = [
    `# escp macro benchmark — ${r.startedAt.slice(0, 16).replace("T", " ")} (${r.mode})`,
    "",
    hostLine(r),
    "",
    `![median throughput per scenario](${svgName})`,
    "",
  ];
  out.push(
    "Throughput is payload over the wall time of the whole command (ssh start-up and a final `sync -f` of the destination included), median of the verified repeats; GB = 10^9 bytes. " +
      "`× ref` is that median over the scenario's reference, measured in the same run. `own GB/s` is the tool's own figure (escp's summary line; iperf3's receiver total). " +
      "CPU is every process of the run (sender, ssh, sshd session, receiver), from the cgroup; its split per process group (sender side without ssh / receiver side without sshd / ssh client + sshd sessions) is sampled from /proc every 50 ms and misses each process's last interval and processes shorter than one (such as a login shell's start-up commands), so it sums to less. RSS is the peak of the largest process on each side. " +
      "Every run is verified: exit status 0 and BLAKE3 (b3sum) of every destination file equal to the dataset's manifest.",
    "",
  );
  const figs = keyFigures(r);
  if (figs.length > 0) {
    out.push("## Key figures", "", "| | figure | value |", "|---|---|--:|");
    for (const f of figs) out.push(`| ${mdEscape(f.group)} | ${mdEscape(f.what)} | ${mdEscape(f.value)} |`);
    out.push("");
  }
  for (const s of r.scenarios) {
    if (casesOf(r, s.name).length === 0 && !r.skipped.some((k) => k.scenario === s.name)) continue;
    out.push(scenarioTable(r, s.name), "");
  }
  const skipped = r.skipped.filter((k) => !k.reason.startsWith("not selected"));
  if (skipped.length > 0) {
    out.push("## Skipped", "");
    for (const k of skipped) out.push(`- ${k.scenario}: ${toolName(k.tool)}${k.label && k.label !== "default" ? ` ${k.label}` : ""} — ${k.reason}`);
    out.push("");
  }
  if (r.notes.length > 0) {
    out.push("## Notes", "");
    for (const n of r.notes) out.push(`- ${n}`);
    out.push("");
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------
// SVG: one horizontal bar per case, grouped by scenario, each scenario on its own scale
// (GB/s, or files/s for losf and the system tree), a thin line spanning the verified repeats' min..max.

const xml = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const COLORS: Record<string, string> = { escp: "#1f6fb4", "escp-orig": "#8a5cc2", ref: "#6b6b6b", peer: "#e8892b" };

export function svg(r: MacroResults): string {
  const W = 960;
  const labelW = 330;
  const barX = labelW + 10;
  const barMax = W - barX - 150;
  const rowH = 18;
  const parts: string[] = [];
  let y = 20;
  const title = `escp macro benchmark — ${r.startedAt.slice(0, 10)} — git ${r.host.gitShort} — ${r.host.cpuModel}, ${r.host.nproc} CPUs, ${r.host.kernel}`;
  parts.push(`<text x="10" y="${y}" font-size="14" font-weight="bold">${xml(title)}</text>`);
  y += 20;
  const legend: [string, string][] = [
    ["escp", COLORS.escp as string],
    ["original EScp", COLORS["escp-orig"] as string],
    ["reference", COLORS.ref as string],
    ["other peers", COLORS.peer as string],
  ];
  let lx = 10;
  for (const [name, color] of legend) {
    parts.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${color}"/><text x="${lx + 16}" y="${y}" font-size="12">${xml(name)}</text>`);
    lx += 30 + name.length * 7;
  }
  parts.push(
    `<text x="${lx + 10}" y="${y}" font-size="11" fill="#555">median of verified repeats; thin line = min..max; each scenario has its own scale</text>`,
  );
  y += 16;
  for (const s of r.scenarios) {
    const cs = casesOf(r, s.name);
    if (cs.length === 0) continue;
    const m = primaryMetric(s.name);
    const refd = referenceOf(r, s.name);
    const vals = cs.flatMap((c) => c.repeats.filter((x) => x.verified).map((x) => x[m] ?? 0));
    const max = Math.max(...vals, 1e-9);
    y += 14;
    const ds = cs.find((c) => c.dataset)?.dataset;
    const size = ds ? ` — ${ds.files > 1 ? `${ds.files.toLocaleString("en-US")} files, ` : ""}${formatSize(ds.bytes)}` : "";
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${xml(`${s.name} — ${m === "filesPerS" ? "files/s" : "GB/s"}`)}</text>`);
    parts.push(`<text x="${barX}" y="${y}" font-size="11" fill="#555">${xml(`${s.title}${size}`)}</text>`);
    y += 6;
    for (const c of cs) {
      y += rowH;
      const v = metricOf(c);
      const label = `${toolName(c.tool)} ${c.label === "default" ? "" : c.label}`.trim();
      parts.push(`<text x="${labelW}" y="${y - 4}" font-size="12" text-anchor="end">${xml(label.length > 48 ? `${label.slice(0, 47)}…` : label)}</text>`);
      if (v === null) {
        parts.push(`<text x="${barX}" y="${y - 4}" font-size="12" fill="#b00">${xml(c.repeats.length ? "no verified run" : "not run")}</text>`);
        continue;
      }
      const color = refd?.ref === c ? COLORS.ref : (COLORS[c.tool] ?? COLORS.peer);
      const w = Math.max(1, (v / max) * barMax);
      parts.push(`<rect x="${barX}" y="${y - rowH + 4}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`);
      const rs = c.repeats.filter((x) => x.verified).map((x) => x[m] ?? 0);
      let textX = barX + w + 6;
      if (rs.length > 1) {
        const x0 = barX + (Math.min(...rs) / max) * barMax;
        const x1 = barX + (Math.max(...rs) / max) * barMax;
        const ym = y - rowH / 2 + 1;
        parts.push(`<line x1="${x0.toFixed(1)}" y1="${ym}" x2="${x1.toFixed(1)}" y2="${ym}" stroke="#000" stroke-width="1"/>`);
        textX = Math.max(textX, x1 + 6);
      }
      const refV = refd ? metricOf(refd.ref) : null;
      const rt = refd && refd.ref !== c ? ` · ${fmtRatio(ratio(v, refV))}` : refd ? " (ref)" : "";
      parts.push(`<text x="${textX.toFixed(1)}" y="${y - 4}" font-size="12">${xml(`${fmtMetric(v, m)}${rt}`)}</text>`);
    }
    y += 6;
  }
  y += 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------

function main(argv: string[]): number {
  const { values, positionals } = parseCli("bench:report", argv, { usage: USAGE, positionals: true, options: { "out-dir": { type: "string" } } });
  const outDir = values["out-dir"] === undefined ? RESULTS_DIR : resolve(values["out-dir"] as string);
  const files = positionals.map((f) => resolve(f));
  if (files.length === 0) {
    const newest = newestResults();
    if (newest === null) {
      console.error(`bench:report: no macro-*.json in ${RESULTS_DIR}; run \`bun run bench:macro\` first\n${USAGE}`);
      return 2;
    }
    files.push(newest);
  }
  mkdirSync(outDir, { recursive: true });
  let last: { md: string; svg: string } | null = null;
  for (const f of files) {
    let r: MacroResults;
    try {
      r = readResults(f);
    } catch (e) {
      console.error(`bench:report: ${e instanceof ResultsError ? e.message : String(e)}`);
      return 2;
    }
    const name = basename(f).replace(/\.json$/, "");
    const mdPath = join(outDir, `${name}.md`);
    const svgPath = join(outDir, `${name}.svg`);
    writeFileSync(svgPath, svg(r));
    writeFileSync(mdPath, markdown(r, `${name}.svg`));
    console.log(`bench:report: ${f} → ${mdPath}, ${svgPath}`);
    last = { md: mdPath, svg: svgPath };
  }
  if (last) {
    const latestSvg = join(outDir, "latest.svg");
    copyFileSync(last.svg, latestSvg);
    const text = readResults(files.at(-1) as string);
    writeFileSync(join(outDir, "latest.md"), markdown(text, "latest.svg"));
    console.log(`bench:report: latest → ${join(outDir, "latest.md")}, ${latestSvg}`);
  }
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
