// How escp finds and re-runs itself: from a source checkout (`bun src/cli/main.ts`) or as the
// single executable `bun build --compile` makes (the .deb's /usr/bin/escp, harness/package/).
//
// Compiled or not is decided by where this module's own code lives: a compiled executable
// serves its bundled modules from Bun's embedded file system, whose paths start with
// "/$bunfs/". That holds however the binary is named, copied or symlinked, whereas looking at
// process.execPath's name (is it "bun"?) breaks on a renamed bun or a binary called "bun".
import { realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** True when running as a `bun build --compile` executable. */
export const COMPILED = import.meta.path.startsWith("/$bunfs/");

/** The source checkout's root (meaningless when COMPILED). */
export const REPO_ROOT = resolve(import.meta.dir, "..", "..");

/** argv that starts another escp like this one: the binary alone, or bun plus main.ts. */
export function selfArgv(): string[] {
  return COMPILED ? [process.execPath] : [process.execPath, join(REPO_ROOT, "src", "cli", "main.ts")];
}

/** Where libescp.so is when no $ESCP_LIBESCP says otherwise. Compiled: <prefix>/lib/escp/
 *  next to <prefix>/bin/escp (symlinks to the binary resolved first); from source: the
 *  checkout's native/build/. */
export function defaultLibraryPath(): string {
  if (!COMPILED) return join(REPO_ROOT, "native", "build", "libescp.so");
  let exe = process.execPath;
  try {
    exe = realpathSync(exe);
  } catch {
    // keep the path as given
  }
  return join(dirname(exe), "..", "lib", "escp", "libescp.so");
}
