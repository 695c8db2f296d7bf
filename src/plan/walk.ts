// One walk of the plan's local sources: every regular file with the destination name a plain
// `escp -r SRC… DEST` would give it (scp's naming: placement.ts's rules via resolveDestRoot),
// relative to DEST. A remote DEST (or any DEST with --hosts, whose lines name the hosts) is taken
// to be an existing directory.
import { statSync } from "node:fs";
import type { Endpoint } from "../cli/args.ts";
import { EscpError } from "../errors/escp-error.ts";
import { destPathFor, resolveDestRoot, type PathKind } from "../fs/dest-path.ts";
import { walk, type SourceSpec } from "../fs/discover.ts";
import type { PlanFile } from "./pack.ts";

export interface PlanWalk {
  files: PlanFile[];
  /** Problems and notices of the walk, one line each (the plan goes on without them). */
  problems: string[];
  notices: string[];
}

function localKind(path: string): PathKind {
  try {
    return statSync(path).isDirectory() ? "dir" : "file";
  } catch {
    return "missing";
  }
}

/** Walks `sources` (paths as given, with --filelist's dst names when it gave them). */
export function walkPlanSources(sources: SourceSpec[], dest: Endpoint, recursive: boolean, filelist: boolean, assumeDir = false): PlanWalk {
  const out: PlanWalk = { files: [], problems: [], notices: [] };
  const found: { abs: string; name: string; dst?: string; size: number }[] = [];
  const top: { name: string; isDir: boolean }[] = [];
  for (const item of walk(sources, { recursive })) {
    if (item.kind === "top") top.push({ name: item.name, isDir: item.isDir });
    else if (item.kind === "problem") out.problems.push(item.error.message);
    else if (item.kind === "notice") out.notices.push(item.text);
    else if (item.entry.kind === "file") {
      const e = item.entry;
      found.push({ abs: e.path, name: e.name, size: e.size, ...(e.dst !== undefined ? { dst: e.dst } : {}) });
    }
  }
  const statKind = dest.host === undefined && !assumeDir ? localKind : (): PathKind => "dir";
  const destPath = dest.path === "" ? "." : dest.path;
  const root = resolveDestRoot({ destPath, sources: top, recursive, filelist }, statKind);
  if ("singleFileTarget" in root) {
    // one file: into DEST when it is a directory; a new name is not a plan's (DEST must be a directory)
    if (dest.path !== "" && statKind(destPath) !== "dir") {
      throw new EscpError("E_USAGE", `escp plan: destination ${dest.path} must be an existing directory (shards name their files relative to it)`);
    }
    for (const f of found) out.files.push({ src: f.abs, dst: f.dst ?? f.name, size: f.size });
    return out;
  }
  if (root.stripTopLevel)
    out.notices.push(`${dest.path}: does not exist yet; the files of ${top[0]?.name ?? "the source"} go straight into it (create it before the shards run)`);
  for (const f of found) {
    destPathFor(root, f.name); // refuses a name no receiver would take
    const rel = f.dst ?? (root.stripTopLevel ? f.name.slice(f.name.indexOf("/") + 1) : f.name);
    out.files.push({ src: f.abs, dst: rel, size: f.size });
  }
  return out;
}
