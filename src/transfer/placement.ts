// Where each announced entry lands on the receiver: scp naming rules (fs/dest-path.ts) plus
// path safety (every name must resolve inside the destination root) and directory creation.
import { mkdirSync, realpathSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { FileEntry, SessionInit } from "../control/messages.ts";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { resolveDestRoot, safeJoin } from "../fs/dest-path.ts";
import { checkWritable, ensureDir } from "../fs/commit.ts";
import { requireInside } from "../fs/contain.ts";

export interface Placement {
  /** Final path for an entry; creates directories on the way. Throws E_REJECTED_PATH / E_WRITE. */
  pathFor(e: FileEntry): string;
}

function statKind(p: string): "dir" | "file" | "missing" {
  try {
    return statSync(p).isDirectory() ? "dir" : "file";
  } catch {
    return "missing";
  }
}

export function placeDestination(init: SessionInit): Placement {
  const r = resolveDestRoot({ destPath: init.destPath, sources: init.sources, recursive: init.recursive, filelist: init.filelist }, statKind);
  if ("singleFileTarget" in r) {
    const target = r.singleFileTarget;
    checkWritable(dirname(target) || ".");
    return {
      pathFor: (e) => {
        if (e.kind === "dir") throw new EscpError("E_PROTOCOL", `unexpected directory ${e.name} for a single-file transfer`);
        return target;
      },
    };
  }
  const root = r.root === "" ? "." : r.root;
  if (statKind(root) === "missing") {
    try {
      mkdirSync(root);
    } catch (e) {
      throw new EscpError("E_DEST", `cannot create destination ${root}: ${describeSysError(e)}`, { path: root });
    }
  }
  checkWritable(root);
  const realRoot = realpathSync(root);
  const inside = new Set<string>(); // directories already checked (and created)
  /** `dir` must resolve inside the root before mkdir -p could follow a symlink out of it. */
  const ensureInside = (dir: string, rel: string): void => {
    if (inside.has(dir)) return;
    requireInside(realRoot, dir, rel);
    ensureDir(dir);
    inside.add(dir);
  };
  return {
    pathFor: (e) => {
      let rel = e.dst ?? e.name;
      if (r.stripTopLevel && e.dst === undefined) {
        const slash = rel.indexOf("/");
        rel = slash < 0 ? "" : rel.slice(slash + 1);
      }
      if (rel === "") return root;
      const final = safeJoin(root, rel);
      // A directory is checked including its last component: an existing symlink there would
      // lead its files (and -p's chmod) outside. A file's last component is not: the commit
      // rename() replaces an existing symlink itself and never writes through it.
      if (e.kind === "dir") ensureInside(final, rel);
      else ensureInside(dirname(final), rel);
      return final;
    },
  };
}
