// The timeline as inline SVG: a titled block of lanes per side, one rect per merged run,
// a time axis with round ticks, and the data attributes the report's tooltip script reads.
import { STAGES } from "./stages.ts";
import { escapeHtml } from "./report-format.ts";
import type { Timeline } from "./timeline.ts";

const LABEL_W = 110;
const LANE_H = 12;
const LANE_GAP = 3;
const SIDE_TITLE_H = 20;
const AXIS_H = 26;

/** A round tick step (1, 2 or 5 × 10^k s) giving about `target` ticks. */
export function tickStepS(axisS: number, target = 8): number {
  if (!(axisS > 0)) return 1;
  const raw = axisS / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

function axis(t: Timeline, top: number, height: number): string {
  const axisS = t.axisNs / 1e9;
  const step = tickStepS(axisS);
  const pxPerS = t.widthPx / axisS;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const parts: string[] = [`<g class="axis" transform="translate(${LABEL_W},0)">`];
  for (let i = 0; i * step <= axisS * (1 + 1e-9); i++) {
    const x = +(i * step * pxPerS).toFixed(1);
    const label = `${(i * step).toFixed(decimals)} s`;
    parts.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + height}"/><text x="${x}" y="${top + height + 14}">${label}</text>`);
  }
  parts.push("</g>");
  return parts.join("");
}

export function timelineSvg(t: Timeline): string {
  const body: string[] = [];
  let y = 0;
  let side = "";
  for (const lane of t.lanes) {
    if (lane.side !== side) {
      side = lane.side;
      y += side === t.lanes[0]?.side ? 0 : LANE_GAP * 2;
      body.push(`<text class="side" x="0" y="${y + 14}">${escapeHtml(`${lane.side} — ${lane.host}`)}</text>`);
      y += SIDE_TITLE_H;
    }
    const name = lane.stream === 0 ? "control" : `stream ${lane.stream}`;
    body.push(`<text class="lane" x="${LABEL_W - 6}" y="${y + LANE_H - 2}">${name}</text>`);
    body.push(`<g transform="translate(${LABEL_W},${y})" data-lane="${escapeHtml(`${lane.side} ${name}`)}">`);
    body.push(`<rect class="bg" width="${t.widthPx}" height="${LANE_H}"/>`);
    for (const r of lane.runs) body.push(`<rect x="${r.x}" width="${r.w}" height="${LANE_H}" class="s${r.stage}"/>`);
    body.push("</g>");
    y += LANE_H + LANE_GAP;
  }
  const plotH = Math.max(y, LANE_H);
  const width = LABEL_W + t.widthPx + 30;
  const height = plotH + AXIS_H;
  const sPerPx = t.axisNs / 1e9 / t.widthPx;
  const label = t.lanes.length === 0 ? "no spans recorded" : `${t.lanes.length} lanes, time since each side's start`;
  return (
    `<svg id="tl" class="tl" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
    ` data-s-per-px="${sPerPx}" role="img" aria-label="${escapeHtml(label)}">` +
    axis(t, 0, plotH) +
    body.join("") +
    "</svg>"
  );
}

/** The stage names the tooltip script shows, indexed by the rect class number. */
export function tooltipStageNames(): string[] {
  return STAGES.map((s) => s.label);
}
