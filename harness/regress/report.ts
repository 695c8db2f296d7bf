// Regression results as a readable markdown table (the JSON beside it holds the same rows).
export interface CaseResult {
  dataset: string;
  transport: string;
  config: string;
  exitCode: number;
  expectedExit: number;
  seconds: number;
  bytes: number;
  files: number;
  ok: boolean;
  problems: string[];
}

export function markdownReport(mode: string, rows: CaseResult[], skipped: string[]): string {
  const lines = [
    `# escp regression run (${mode})`,
    "",
    `${new Date().toISOString()} · ${rows.filter((r) => r.ok).length}/${rows.length} cases verified byte for byte`,
    "",
    "| dataset | transport | config | files | MB | s | MB/s | exit | verified |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const mb = r.bytes / 1e6;
    const rate = r.seconds > 0 ? mb / r.seconds : 0;
    lines.push(
      `| ${r.dataset} | ${r.transport} | ${r.config} | ${r.files} | ${mb.toFixed(1)} | ${r.seconds.toFixed(2)} | ${rate.toFixed(1)} | ${r.exitCode} | ${r.ok ? "yes" : `**NO**: ${r.problems.join("; ")}`} |`,
    );
  }
  if (skipped.length > 0) lines.push("", "Skipped transports:", ...skipped.map((s) => `- ${s}`));
  lines.push("", "Rates include process start and session set-up; compare runs from the same machine only.");
  return `${lines.join("\n")}\n`;
}
