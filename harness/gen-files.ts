// gen-files.ts — regenerates every generated file in the repository, or checks that each is fresh.
//   bun harness/gen-files.ts           write them all (same as `bun run gen`)
//   bun harness/gen-files.ts --check   regenerate nothing; exit 1 naming each stale file
// Generators: the man page and the bash/zsh completions (from src/config/options.ts), the bun:ffi
// symbol table (native/gen-ffi.ts from native/include/escp.h) and the flatc output
// (src/control/schema/gen.sh from escp.fbs). A new generator is one entry in GENERATORS.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { bashCompletion, zshCompletion } from "../src/cli/completion.ts";
import { manPage } from "../src/cli/manpage.ts";

const REPO = join(import.meta.dir, "..");

export interface Generator {
  /** Repository-relative outputs, named when stale. */
  readonly files: readonly string[];
  /** Writes the outputs. */
  write(): void;
  /** Stale outputs (empty when fresh), computed without touching the tree. */
  stale(): string[];
}

/** A file whose whole text comes from a TypeScript function (root: the repository, or a test's). */
export function textFile(path: string, render: () => string, root: string = REPO): Generator {
  const abs = join(root, path);
  return {
    files: [path],
    write() {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, render());
    },
    stale() {
      return existsSync(abs) && readFileSync(abs, "utf8") === render() ? [] : [path];
    },
  };
}

/** Runs a command in the repository with bun's directory (and node_modules/.bin) on PATH. */
function run(cmd: string[], cwd = REPO): { ok: boolean; out: string } {
  const bunDir = dirname(process.execPath);
  const PATH = [join(REPO, "node_modules", ".bin"), bunDir, process.env.PATH ?? ""].join(":");
  const p = Bun.spawnSync(cmd, { cwd, env: { ...process.env, PATH, BUN: process.execPath }, stdout: "pipe", stderr: "pipe" });
  return { ok: p.exitCode === 0, out: `${p.stdout.toString()}${p.stderr.toString()}`.trim() };
}

/** A generator that is an external program with its own --check mode (which writes nothing). */
function commandGenerator(files: string[], cmd: string[], cwd?: string): Generator {
  return {
    files,
    write() {
      const r = run(cmd, cwd);
      if (!r.ok) throw new Error(`${cmd.join(" ")} failed:\n${r.out}`);
    },
    stale() {
      const r = run([...cmd, "--check"], cwd);
      if (r.ok) return [];
      if (r.out !== "") console.error(r.out);
      return files;
    },
  };
}

export const GENERATORS: readonly Generator[] = [
  textFile("docs/escp.1", manPage),
  textFile("docs/completion/escp.bash", bashCompletion),
  textFile("docs/completion/_escp", zshCompletion),
  // `make -C native gen` is `bun gen-ffi.ts` in native/; --check compares in memory.
  commandGenerator(["src/native/symbols.ts"], [process.execPath, "gen-ffi.ts"], join(REPO, "native")),
  // gen.sh --check regenerates into a temp dir and diffs against generated/.
  commandGenerator(["src/control/schema/generated/"], ["bash", "src/control/schema/gen.sh"]),
];

/** Every stale output, in GENERATORS order. */
export function staleFiles(): string[] {
  return GENERATORS.flatMap((g) => g.stale());
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args.some((a) => a !== "--check")) {
    console.error("usage: bun harness/gen-files.ts [--check]");
    process.exit(2);
  }
  if (args.includes("--check")) {
    const stale = staleFiles();
    for (const f of stale) console.error(`gen-files: stale: ${f} (run \`bun run gen\` and commit the result)`);
    if (stale.length > 0) process.exit(1);
    console.log("gen-files: every generated file is up to date");
  } else {
    for (const g of GENERATORS) {
      g.write();
      console.log(`gen-files: wrote ${g.files.join(", ")}`);
    }
  }
}
