// Release check: `npm audit` against an allow list (.ci/audit-allow.json).
// Exit 0 = no advisory outside the allow list; 1 = some advisory is not allowed (or an allow
// entry is malformed); 77 = SKIPPED, npm could not reach an audit endpoint (the reason is printed).
// Usage: bun harness/release/audit.ts [--dev] [--allow FILE]
//   --dev  audit devDependencies too (default: runtime dependencies only, `--omit=dev`)
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseCli } from "../cli-args.ts";

export const EXIT_SKIPPED = 77;

export interface AllowEntry {
  id: string;
  package?: string;
  reason: string;
  expires: string;
}

export interface Advisory {
  id: string;
  package: string;
  severity: string;
  title: string;
}

export type AuditOutcome =
  | { status: "pass"; advisories: Advisory[]; allowed: Advisory[] }
  | { status: "fail"; problems: string[] }
  | { status: "skip"; reason: string };

/** Validates the allow list; every entry needs an id, a reason and an expiry date. */
export function parseAllowList(text: string): { entries: AllowEntry[]; problems: string[] } {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { entries: [], problems: [`allow list is not JSON: ${(e as Error).message}`] };
  }
  const list = (doc as { allow?: unknown }).allow;
  if (!Array.isArray(list)) return { entries: [], problems: ["allow list has no `allow` array"] };
  const entries: AllowEntry[] = [];
  list.forEach((raw, i) => {
    const e = raw as Partial<AllowEntry>;
    if (typeof e.id !== "string" || e.id === "") problems.push(`allow[${i}]: no id`);
    else if (typeof e.reason !== "string" || e.reason.trim() === "") problems.push(`allow[${i}] ${e.id}: no reason`);
    else if (typeof e.expires !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(e.expires) || Number.isNaN(Date.parse(e.expires)))
      problems.push(`allow[${i}] ${e.id}: expires must be a YYYY-MM-DD date`);
    else entries.push({ id: e.id, package: e.package, reason: e.reason, expires: e.expires });
  });
  return { entries, problems };
}

/** Advisories in `npm audit --json` output (report version 2): one per (package, advisory). */
export function advisoriesOf(report: unknown): Advisory[] {
  const vulns = (report as { vulnerabilities?: Record<string, { severity?: string; via?: unknown[] }> }).vulnerabilities ?? {};
  const out: Advisory[] = [];
  for (const [pkg, v] of Object.entries(vulns)) {
    for (const via of v.via ?? []) {
      if (typeof via !== "object" || via === null) continue; // a string names the dependency it comes through
      const a = via as { source?: number; url?: string; title?: string; severity?: string; name?: string };
      const ghsa = /GHSA-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}/i.exec(a.url ?? "")?.[0];
      out.push({ id: ghsa ?? String(a.source ?? "?"), package: a.name ?? pkg, severity: a.severity ?? v.severity ?? "?", title: a.title ?? "" });
    }
  }
  return out;
}

/** Judges one `npm audit --json` run: its exit status, stdout and stderr. */
export function judgeAudit(run: { code: number; stdout: string; stderr: string }, allowText: string, today: Date): AuditOutcome {
  const allow = parseAllowList(allowText);
  if (allow.problems.length > 0) return { status: "fail", problems: allow.problems };
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    const why = run.stderr.trim().split("\n").at(-1) || `npm audit exited with status ${run.code} and printed no JSON`;
    return { status: "skip", reason: `npm audit gave no report: ${why}` };
  }
  if (report.vulnerabilities === undefined) {
    // npm prints {message, statusCode, ...} when the audit endpoint refuses or cannot be reached.
    const why = typeof report.message === "string" ? report.message : run.stderr.trim().split("\n").at(-1) || "no vulnerabilities section";
    return { status: "skip", reason: `audit endpoint unavailable: ${why}` };
  }
  const advisories = advisoriesOf(report);
  const day = today.toISOString().slice(0, 10);
  const problems: string[] = [];
  const allowed: Advisory[] = [];
  for (const a of advisories) {
    const entry = allow.entries.find((e) => e.id === a.id && (e.package === undefined || e.package === a.package));
    if (!entry) problems.push(`${a.id} ${a.package} (${a.severity}): ${a.title} — not in the allow list`);
    else if (entry.expires < day) problems.push(`${a.id} ${a.package}: allow entry expired on ${entry.expires} (${entry.reason})`);
    else allowed.push(a);
  }
  return problems.length > 0 ? { status: "fail", problems } : { status: "pass", advisories, allowed };
}

async function main(argv: string[]): Promise<number> {
  const repo = resolve(import.meta.dir, "..", "..");
  const { values } = parseCli("audit", argv, {
    usage: "bun harness/release/audit.ts [--dev] [--allow FILE]",
    options: {
      dev: { type: "boolean", help: "audit devDependencies too (default: runtime dependencies only)" },
      allow: { type: "string", help: "allow list (default .ci/audit-allow.json)" },
    },
  });
  const allowPath = (values.allow as string | undefined) ?? join(repo, ".ci", "audit-allow.json");
  const argvNpm = ["npm", "audit", "--json", ...(values.dev ? [] : ["--omit=dev"])];
  const proc = Bun.spawn(argvNpm, { cwd: repo, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const outcome = judgeAudit({ code: proc.exitCode ?? 1, stdout, stderr }, readFileSync(allowPath, "utf8"), new Date());
  const what = argvNpm.join(" ");
  if (outcome.status === "skip") {
    console.log(`audit: SKIPPED (${what}): ${outcome.reason}`);
    return EXIT_SKIPPED;
  }
  if (outcome.status === "fail") {
    for (const p of outcome.problems) console.log(`audit: FAIL ${p}`);
    return 1;
  }
  for (const a of outcome.allowed) console.log(`audit: allowed ${a.id} ${a.package} (${a.severity})`);
  console.log(`audit: ok (${what}): ${outcome.advisories.length} advisories, all allowed`);
  return 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
