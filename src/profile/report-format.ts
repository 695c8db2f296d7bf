// Text helpers for the HTML report: escaping (commands and hosts are untrusted text), number
// formats, and the stage colours shared by the table, the timeline and the legend.
import { formatBytes, formatRate } from "../cli/progress.ts";
import type { StageId } from "./stages.ts";

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** JSON for an inline <script>: no "</script>" or "<!--" can close or confuse it. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

export const bytesText = (n: number): string => formatBytes(n).trim();
export const rateText = (bytesPerSec: number): string => formatRate(bytesPerSec, false).trim();
export const pctText = (share: number): string => `${(share * 100).toFixed(1)} %`;

/** Seconds with a precision that suits the size: "0.000123 s", "1.23 s", "75.4 s". */
export function secondsText(s: number): string {
  if (s === 0) return "0 s";
  if (s < 0.01) return `${+s.toPrecision(3)} s`;
  return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
}

/** Fill colour per stage id: disk warm, CPU blue/violet, network green, idle grey. */
export const STAGE_COLOURS: Readonly<Record<StageId, string>> = {
  0: "#d9822b",
  1: "#4c6ef5",
  2: "#7950f2",
  3: "#1c7ed6",
  4: "#2f9e44",
  5: "#74b816",
  6: "#1098ad",
  7: "#ae3ec9",
  8: "#c92a2a",
  9: "#ced4da",
  10: "#f2c94c",
};
