// Where each announced entry lands on the receiver: scp naming rules (fs/dest-path.ts) plus
// path safety (every name must resolve inside the destination root) and directory creation.
import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { FileEntry, SessionInit } from "../control/messages.ts";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { resolveDestRoot, safeJoin } from "../fs/dest-path.ts";
import { checkWritable, ensureDir } from "../fs/commit.ts";

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
  const made = new Set<string>();
  const ensure = (d: string): void => {
    if (made.has(d)) return;
    ensureDir(d);
    made.add(d);
  };
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
  return {
    pathFor: (e) => {
      let rel = e.dst ?? e.name;
      if (r.stripTopLevel && e.dst === undefined) {
        const slash = rel.indexOf("/");
        rel = slash < 0 ? "" : rel.slice(slash + 1);
      }
      const final = rel === "" ? root : safeJoin(root, rel);
      if (e.kind === "dir") ensure(final);
      else ensure(dirname(final));
      return final;
    },
  };
}
