// The self-contained HTML report: run facts, the verdict, a stage-share table per side, the
// timeline (inline SVG) and a legend. Inline CSS; a few lines of optional script for tooltips.
// Every piece of profile text (command line, hosts) is escaped.
import { STAGES, STAGE, stageInfo, type StageId } from "./stages.ts";
import { activeNs, dataStreamCount, stageShares } from "./shares.ts";
import { bytesText, escapeHtml, pctText, rateText, scriptJson, secondsText, STAGE_COLOURS } from "./report-format.ts";
import { timeline, type TimelineOptions } from "./timeline.ts";
import { timelineSvg, tooltipStageNames } from "./timeline-svg.ts";
import type { Profile, SideProfile, Verdict } from "./types.ts";

/** Table rows in pipeline order, then whatever else the side recorded. */
const PIPELINE: Record<SideProfile["side"], StageId[]> = {
  sender: [STAGE.read, STAGE.hash, STAGE.compress, STAGE.seal, STAGE.send, STAGE.meta, STAGE.idle],
  receiver: [STAGE.recv, STAGE.open, STAGE.decompress, STAGE.hash, STAGE.write, STAGE.meta, STAGE.idle],
};

const BOUND_LABEL: Record<Verdict["bound"], string> = {
  "disk-read": "disk read",
  "disk-write": "disk write",
  network: "network",
  cpu: "CPU",
  unknown: "unclear",
};

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1320px;padding:0 16px;color:#212529;background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:28px 0 8px}
code.cmd{display:block;background:#f1f3f5;padding:8px 10px;border-radius:4px;white-space:pre-wrap;word-break:break-all}
dl.facts{display:flex;flex-wrap:wrap;gap:4px 28px;margin:12px 0}dl.facts div{display:flex;gap:6px}dt{color:#868e96}dd{margin:0;font-weight:600}
.verdict{border-left:6px solid #495057;background:#f8f9fa;padding:12px 16px;margin:16px 0;font-size:17px}
.verdict .bound{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:#868e96}
.verdict p{margin:4px 0 0;font-weight:600}
.v-disk-read,.v-disk-write{border-color:#d9822b}.v-cpu{border-color:#4c6ef5}.v-network{border-color:#2f9e44}
table{border-collapse:collapse;margin:8px 0 4px;min-width:720px}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{padding:3px 10px;border-bottom:1px solid #e9ecef;text-align:right;white-space:nowrap}th:first-child,td:first-child{text-align:left}
th{color:#868e96;font-weight:500}td.bar{width:160px}td.bar span{display:inline-block;height:9px;background:#adb5bd;vertical-align:middle}
tr.other td{color:#868e96}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.note{color:#868e96;font-size:13px}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0}
.chart{overflow-x:auto}
svg.tl text{font-size:11px;fill:#495057}svg.tl text.lane{text-anchor:end}svg.tl text.side{font-weight:600;font-size:12px}
svg.tl .axis line{stroke:#e9ecef}svg.tl .axis text{text-anchor:middle;fill:#868e96}svg.tl rect.bg{fill:#f8f9fa}
#tip{position:absolute;display:none;background:#212529;color:#fff;padding:3px 7px;border-radius:3px;font-size:12px;pointer-events:none}
${STAGES.map((s) => `.s${s.id}{fill:${STAGE_COLOURS[s.id]};background:${STAGE_COLOURS[s.id]}}`).join("")}
`;

function tooltipScript(): string {
  return `(function(){var svg=document.getElementById("tl"),tip=document.getElementById("tip");if(!svg||!tip)return;
var k=+svg.getAttribute("data-s-per-px"),names=${scriptJson(tooltipStageNames())};
function hide(){tip.style.display="none"}
svg.addEventListener("mousemove",function(e){var r=e.target,lane=r&&r.parentNode&&r.parentNode.getAttribute&&r.parentNode.getAttribute("data-lane");
var c=r&&r.getAttribute&&r.getAttribute("class");if(!lane||!c||c.charAt(0)!=="s"){hide();return}
var x=+r.getAttribute("x"),w=+r.getAttribute("width");
tip.textContent=lane+" \\u00b7 "+names[+c.slice(1)]+" \\u00b7 "+(x*k).toFixed(3)+"\\u2013"+((x+w)*k).toFixed(3)+" s";
tip.style.display="block";tip.style.left=(e.pageX+12)+"px";tip.style.top=(e.pageY+12)+"px"});
svg.addEventListener("mouseleave",hide)})();`;
}

function facts(p: Profile): string {
  const rate = p.wallS > 0 ? rateText(p.bytes / p.wallS) : "–";
  const hosts = p.sides.map((s) => `${s.side} ${s.host}`).join(", ");
  const items: Array<[string, string]> = [
    ["started", p.startedAt],
    ["moved", `${bytesText(p.bytes)} (${p.bytes.toLocaleString("en-US")} bytes)`],
    ["files", p.files.toLocaleString("en-US")],
    ["wall", secondsText(p.wallS)],
    ["throughput", rate],
    ["hosts", hosts || "–"],
  ];
  return `<dl class="facts">${items.map(([k, v]) => `<div><dt>${k}</dt><dd>${escapeHtml(v)}</dd></div>`).join("")}</dl>`;
}

function stageRow(stage: StageId, s: ReturnType<typeof stageShares>[number]): string {
  const info = stageInfo(stage);
  return (
    `<tr><td><span class="sw s${stage}"></span>${escapeHtml(info.label)}</td><td>${secondsText(s.ns / 1e9)}</td>` +
    `<td class="bar"><span style="width:${(s.share * 100).toFixed(1)}%"></span></td><td>${pctText(s.share)}</td>` +
    `<td>${s.bytes > 0 ? bytesText(s.bytes) : "–"}</td><td>${s.bytesPerSec > 0 ? rateText(s.bytesPerSec) : "–"}</td><td>${s.count.toLocaleString("en-US")}</td></tr>`
  );
}

function sideTable(side: SideProfile): string {
  const shares = stageShares(side);
  const order = [...PIPELINE[side.side], ...STAGES.map((s) => s.id).filter((id) => !PIPELINE[side.side].includes(id))];
  const rows = order.filter((id) => (shares[id]?.ns ?? 0) > 0 || (shares[id]?.count ?? 0) > 0 || PIPELINE[side.side].slice(0, 5).includes(id));
  const accounted = shares.reduce((sum, s) => sum + s.share, 0);
  const streams = dataStreamCount(side);
  const dropped = side.dropped > 0 ? `; ${side.dropped.toLocaleString("en-US")} spans dropped (ring full): the timeline is incomplete, the table is exact` : "";
  return (
    `<table><caption>${escapeHtml(`${side.side} — ${side.host}`)}: ${streams} data stream${streams === 1 ? "" : "s"} × ${secondsText(activeNs(side) / 1e9)} active${dropped}</caption>` +
    `<thead><tr><th>stage</th><th>stream time</th><th></th><th>share</th><th>bytes</th><th>rate in stage</th><th>count</th></tr></thead><tbody>` +
    rows.map((id) => stageRow(id, shares[id]!)).join("") +
    `<tr class="other"><td>not in any stage</td><td></td><td></td><td>${pctText(Math.max(0, 1 - accounted))}</td><td></td><td></td><td></td></tr>` +
    `</tbody></table>`
  );
}

function legend(): string {
  return `<div class="legend">${STAGES.map((s) => `<span title="${escapeHtml(s.about)}"><span class="sw s${s.id}"></span>${escapeHtml(s.label)} <span class="note">(${s.kind})</span></span>`).join("")}</div>`;
}

export function htmlReport(p: Profile, v: Verdict, o: TimelineOptions = {}): string {
  const t = timeline(p, o);
  const spans = t.lanes.reduce((n, l) => n + l.spans, 0);
  const thinning =
    t.binPx > 1 || t.rects < spans
      ? `${spans.toLocaleString("en-US")} spans drawn as ${t.rects.toLocaleString("en-US")} bars (each ${t.binPx}-pixel column shows its dominant stage)`
      : `${spans.toLocaleString("en-US")} spans`;
  const missing = p.sides.some((s) => s.side === "receiver")
    ? ""
    : `<p class="note">No receiver profile (the receiver failed or sent none): the verdict uses the sender alone.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>escp profile: ${escapeHtml(v.text)}</title><style>${CSS}</style></head><body>
<header><h1>escp profile</h1><code class="cmd">${escapeHtml(p.command)}</code>${facts(p)}</header>
<section class="verdict v-${v.bound}"><div class="bound">bottleneck: ${BOUND_LABEL[v.bound]}${v.side ? ` on the ${v.side}` : ""}</div><p>${escapeHtml(v.text)}</p></section>
${missing}<h2>Where the stream time went</h2>
<p class="note">Share = time in the stage summed over the data streams ÷ (streams × the side's active time). Rate = bytes ÷ time in the stage.</p>
${p.sides.map(sideTable).join("\n")}
<h2>Timeline</h2><p class="note">${thinning}; each side's time runs from its own start (the hosts' clocks are not aligned).</p>
${legend()}<div class="chart">${timelineSvg(t)}</div>
<footer class="note"><p>Open the trace JSON in <a href="https://ui.perfetto.dev">Perfetto</a> for every span.</p></footer>
<div id="tip"></div><script>${tooltipScript()}</script>
</body></html>
`;
}
