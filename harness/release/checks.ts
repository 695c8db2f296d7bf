// The release checks `bun run test` runs after the test suites, each counted as one test
// (docs/release-checks.md lists them with the command to run each by hand).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { EXIT_SKIPPED } from "./audit.ts";

export interface ReleaseCheck {
  name: string;
  argv: string[];
  /** The failure line's hint: what to run to see or fix it. */
  hint: string;
}

export function releaseChecks(repo: string, bun = process.execPath): ReleaseCheck[] {
  const bin = (tool: string) => join(repo, "node_modules", ".bin", tool);
  const checks: ReleaseCheck[] = [
    { name: "typecheck (tsc --noEmit -p .)", argv: [bin("tsc"), "--noEmit", "-p", "."], hint: "npm run typecheck" },
    { name: "lint (biome lint)", argv: [bin("biome"), "lint", "--error-on-warnings", "--max-diagnostics=50", "."], hint: "npm run lint" },
    {
      name: "format (biome format)",
      argv: [bin("biome"), "format", "--reporter=summary", "."],
      hint: "npm run format rewrites the files listed above; docs/release-checks.md",
    },
    { name: "npm audit (allow list .ci/audit-allow.json)", argv: [bun, join(repo, "harness", "release", "audit.ts")], hint: "npm run audit:deps" },
  ];
  // Generated files (man page, completions, FFI symbols) match their sources.
  if (existsSync(join(repo, "harness", "gen-files.ts"))) {
    checks.push({ name: "generated files are fresh", argv: [bun, join(repo, "harness", "gen-files.ts"), "--check"], hint: "bun harness/gen-files.ts" });
  }
  return checks;
}

export type CheckStatus = "passed" | "failed" | "skipped";

/** A check's exit status: 0 passed, 77 skipped (the check could not run here, e.g. no audit
 *  endpoint; it says why), anything else failed. */
export function statusOf(code: number): CheckStatus {
  return code === 0 ? "passed" : code === EXIT_SKIPPED ? "skipped" : "failed";
}
