// Symlink containment for receiver paths: safeJoin (dest-path.ts) stops lexical escapes;
// this stops a name that would leave the destination root through a symlink already there.
import { lstatSync, realpathSync } from "node:fs";
import { dirname } from "node:path";
import { rejected } from "./dest-path.ts";
import { EscpError, describeSysError } from "../errors/escp-error.ts";

/**
 * realpath of the deepest ancestor of `path` (itself included) that exists; null when that
 * entry is a dangling symlink (or a loop), whose target we cannot check.
 */
function deepestExistingReal(path: string): string | null {
  for (let p = path; ; p = dirname(p)) {
    try {
      lstatSync(p);
    } catch (e) {
      // Missing: we would create it as a real directory, so its parent decides. Any other
      // failure (EMFILE, EIO, EACCES) is reported as it is, never as a symlink problem.
      if (!isMissing(e)) throw new EscpError("E_WRITE", `${p}: ${describeSysError(e)}`, { path: p });
      if (dirname(p) === p) return null;
      continue;
    }
    try {
      return realpathSync(p);
    } catch (e) {
      if (isMissing(e) || (e as { code?: string }).code === "ELOOP") return null;
      throw new EscpError("E_WRITE", `${p}: ${describeSysError(e)}`, { path: p });
    }
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function isInside(realRoot: string, real: string): boolean {
  return real === realRoot || real.startsWith(realRoot === "/" ? "/" : `${realRoot}/`);
}

/**
 * Throw E_REJECTED_PATH (naming relName) unless `dir` — an existing or yet-to-be-created
 * directory — resolves inside realRoot. Directories missing below the deepest existing one
 * are created by us as real directories, so that ancestor decides. (A local user racing us
 * to swap a checked directory for a symlink is out of scope.)
 */
export function requireInside(realRoot: string, dir: string, relName: string): void {
  const real = deepestExistingReal(dir);
  if (real === null) throw rejected(relName, "it goes through a dangling symlink");
  if (!isInside(realRoot, real)) throw rejected(relName, `it leads outside the destination through a symlink (to ${real})`);
}
