// scp destination naming (where each sent name lands) and safeJoin, the receiver's guard
// against unsafe names. Pure: the filesystem is seen only through an injected statKind().
// EScp differs: names are validated (no absolute, "..", NUL...), and `-r dir` onto a
// missing path strips the top level as scp does.
import { posix } from "node:path";
import { EscpError } from "../errors/escp-error.ts";

export type PathKind = "dir" | "file" | "missing";
export type StatKind = (path: string) => PathKind;

export interface DestSource {
  /** Basename of the source as the sender names it. */
  name: string;
  isDir: boolean;
}

export interface DestRequest {
  /** Destination path from `host:path`; "" = the receiver's login directory. */
  destPath: string;
  sources: readonly DestSource[];
  recursive: boolean;
  /** Sources come from --filelist: names are relative to the root, like several sources. */
  filelist?: boolean;
}

/** Files land at safeJoin(root, name), minus the name's first segment if stripTopLevel. */
export type DestRoot = { root: string; stripTopLevel: boolean } | { singleFileTarget: string };

/** Linux limits: PATH_MAX 4096 including the NUL, NAME_MAX 255. */
export const MAX_PATH_BYTES = 4095;
export const MAX_SEGMENT_BYTES = 255;

function destError(msg: string, path: string): EscpError {
  return new EscpError("E_DEST", msg, { path });
}

function parentOf(path: string): string {
  return posix.dirname(path.replace(/\/+$/, "") || "/");
}

/** A new file or directory may be created at `path` only inside an existing directory. */
function requireParentDir(path: string, statKind: StatKind): void {
  const parent = parentOf(path);
  if (parent === "." || statKind(parent) === "dir") return;
  throw destError(`destination ${path}: directory ${parent} does not exist`, path);
}

function singleFile(destPath: string, name: string, statKind: StatKind): DestRoot {
  if (name.includes("/")) throw rejected(name, "a source basename cannot contain /");
  // `scp f host:` → ~/f (empty path = the login directory).
  if (destPath === "") return { singleFileTarget: safeJoin("", name) };
  const kind = statKind(destPath);
  // `scp f host:/tmp` → /tmp/f (an existing directory gets the basename).
  if (kind === "dir") return { singleFileTarget: safeJoin(destPath, name) };
  if (destPath.endsWith("/")) {
    // `scp f host:/tmp/new/` → error: a trailing slash promises a directory.
    throw destError(`destination ${destPath} is not a directory`, destPath);
  }
  // `scp f host:/tmp/g` → /tmp/g (an existing file is replaced).
  if (kind === "file") return { singleFileTarget: destPath };
  // `scp f host:/tmp/new` → /tmp/new, if /tmp exists; `host:/no/such/new` → error.
  requireParentDir(destPath, statKind);
  return { singleFileTarget: destPath };
}

function recursiveDir(destPath: string, statKind: StatKind): DestRoot {
  // `scp -r d host:` → ~/d/...
  if (destPath === "") return { root: "", stripTopLevel: false };
  const kind = statKind(destPath);
  // `scp -r d host:/tmp` → /tmp/d/... (an existing directory keeps the top level).
  if (kind === "dir") return { root: destPath, stripTopLevel: false };
  // `scp -r d host:/tmp/f` (a file) → error.
  if (kind === "file") throw destError(`destination ${destPath} is not a directory`, destPath);
  // `scp -r d host:/tmp/new` → /tmp/new/... (d itself becomes /tmp/new, as scp does).
  requireParentDir(destPath, statKind);
  return { root: destPath, stripTopLevel: true };
}

/** Decide where the sent names land (see each rule's scp example). */
export function resolveDestRoot(req: DestRequest, statKind: StatKind): DestRoot {
  const [only] = req.sources;
  if (req.sources.length === 1 && only !== undefined && req.filelist !== true) {
    if (!only.isDir) return singleFile(req.destPath, only.name, statKind);
    // `scp -r d host:x` naming; without -r discovery skips d, the naming is the same.
    return recursiveDir(req.destPath, statKind);
  }
  // `scp a b host:` → ~/a, ~/b.
  if (req.destPath === "") return { root: "", stripTopLevel: false };
  // `scp a b host:/tmp` → /tmp/a, /tmp/b; also --filelist names relative to /tmp.
  if (statKind(req.destPath) === "dir") return { root: req.destPath, stripTopLevel: false };
  // `scp a b host:/tmp/f` or a missing path → error (several sources need a directory).
  throw destError(`destination ${req.destPath} is not a directory`, req.destPath);
}

export function rejected(relName: string, cause: string): EscpError {
  return new EscpError("E_REJECTED_PATH", `refusing unsafe name ${JSON.stringify(relName)}: ${cause}`, { path: relName });
}

/**
 * Join a peer-supplied relative name under root, refusing anything that could escape it or
 * that the filesystem cannot hold. root "" = the current (login) directory.
 */
export function safeJoin(root: string, relName: string): string {
  // `\0` would truncate the name in C; "/etc/passwd" or "a/../../x" would escape the root.
  if (relName.includes("\0")) throw rejected(relName, "contains a NUL byte");
  if (relName.startsWith("/")) throw rejected(relName, "absolute path");
  for (const seg of relName.split("/")) {
    if (seg === "") throw rejected(relName, "empty path segment");
    if (seg === "..") throw rejected(relName, '".." segment');
    if (seg === ".") throw rejected(relName, '"." segment');
    if (Buffer.byteLength(seg, "utf8") > MAX_SEGMENT_BYTES) throw rejected(relName, `a segment is over ${MAX_SEGMENT_BYTES} bytes`);
  }
  const joined = root === "" ? relName : `${root.replace(/\/+$/, "")}/${relName}`;
  if (Buffer.byteLength(joined, "utf8") > MAX_PATH_BYTES) throw rejected(relName, `path is over ${MAX_PATH_BYTES} bytes`);
  return joined;
}

/** Where one sent relative name lands under a DestRoot (applies stripTopLevel, then safeJoin). */
export function destPathFor(plan: DestRoot, relName: string): string {
  if ("singleFileTarget" in plan) return plan.singleFileTarget;
  if (!plan.stripTopLevel) return safeJoin(plan.root, relName);
  const slash = relName.indexOf("/");
  if (slash < 0) return plan.root; // the top directory itself
  return safeJoin(plan.root, relName.slice(slash + 1));
}
