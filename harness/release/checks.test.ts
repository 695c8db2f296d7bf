import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { releaseChecks, statusOf } from "./checks.ts";

describe("release checks", () => {
  test("exit statuses: 0 passed, 77 skipped, anything else failed", () => {
    expect([0, 77, 1, 2, 127, 134].map(statusOf)).toEqual(["passed", "skipped", "failed", "failed", "failed", "failed"]);
  });

  test("the generated-files check joins the list only when harness/gen-files.ts exists", () => {
    const repo = makeTmpDir("release-checks");
    try {
      const names = () => releaseChecks(repo, "/bin/bun").map((c) => c.name);
      expect(names()).toEqual(["typecheck (tsc --noEmit -p .)", "lint (biome lint)", "format (biome format)", "npm audit (allow list .ci/audit-allow.json)"]);
      mkdirSync(join(repo, "harness"));
      writeFileSync(join(repo, "harness", "gen-files.ts"), "");
      const gen = releaseChecks(repo, "/bin/bun").at(-1);
      expect(gen).toEqual({
        name: "generated files are fresh",
        argv: ["/bin/bun", join(repo, "harness", "gen-files.ts"), "--check"],
        hint: "bun harness/gen-files.ts",
      });
    } finally {
      removeTmpDir(repo);
    }
  });

  test("the tools run from the repository's node_modules", () => {
    const [tsc, lint, format] = releaseChecks("/repo", "/bin/bun");
    expect([tsc?.argv[0], lint?.argv[0], format?.argv[0]]).toEqual([
      "/repo/node_modules/.bin/tsc",
      "/repo/node_modules/.bin/biome",
      "/repo/node_modules/.bin/biome",
    ]);
  });
});
