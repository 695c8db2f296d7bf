// Where each announced entry lands on the receiver: scp naming rules (fs/dest-path.ts) decide
// the destination root and each entry's name relative to it; the native destination (directory
// fds, no symlink followed below the root) opens the root once and does every file-system step.
import { constants } from "node:os";
import { posix } from "node:path";
import type { FileEntry } from "../control/messages.ts";
import { EscpError } from "../errors/escp-error.ts";
import { errnoText } from "../native/events.ts";
import type { DestResult, NativeSession, PathKind } from "../native/session.ts";
import { rejected, resolveDestRoot, safeJoin, type DestRequest } from "../fs/dest-path.ts";

export interface Placement {
  /** The root as the user named it ("." = the login directory; under --restrict, inside DIR). */
  readonly root: string;
  /** An entry's name relative to the root ("" = the root itself, directories only). Throws
   * E_REJECTED_PATH for a name that may not be written; E_PROTOCOL for a directory in a
   * single-file transfer. */
  relFor(e: FileEntry): string;
  /** The path users see for a relative name. */
  show(rel: string): string;
}

/** Why a destination call failed, as a one-line error about `name` (a refusal names the
 * sender's name; a system error the path on this host). */
export function destFailure(r: Exclude<DestResult, { ok: true }>, name: string, shown: string): EscpError {
  if (r.refused) return rejected(name, "a component below the destination is a symlink or not a directory");
  return new EscpError("E_WRITE", `${shown}: ${errnoText(r.errno)}`, { path: shown, errno: r.errno });
}

function rootFailure(r: DestResult, path: string, what: string): EscpError {
  if (r.ok) return new EscpError("E_INTERNAL", `${what} ${path}: no failure to report`);
  const why = r.refused ? "it leads through a symlink or a non-directory" : errnoText(r.errno);
  return new EscpError("E_DEST", `${what} ${path}: ${why}`, { path, errno: r.errno });
}

function kindOf(native: NativeSession, path: string): PathKind {
  const k = native.rxProbe(path);
  if (typeof k === "string") return k;
  throw rootFailure(k, path, "destination");
}

const { EACCES, EPERM, EROFS } = constants.errno;
const NOT_WRITABLE = new Set([EACCES, EPERM, EROFS]);

function openRoot(native: NativeSession, path: string, create: boolean): void {
  const r = native.rxRoot(path, create);
  if (r.ok) return;
  if (!r.refused && NOT_WRITABLE.has(r.errno)) {
    throw new EscpError("E_DEST", `destination ${path} is not writable: ${errnoText(r.errno)}`, { path, errno: r.errno });
  }
  throw rootFailure(r, path, create ? "cannot create destination" : "destination");
}

/** `escp - host:dir`: standard input has no name of its own to put in a directory. */
function streamIntoDir(dir: string): EscpError {
  const shown = dir === "" ? "the login directory" : dir;
  return new EscpError("E_DEST", `-: ${shown} is a directory: name the file standard input goes to (e.g. ${posix.join(dir === "" ? "~" : dir, "file")})`, {
    path: dir,
  });
}

function showUnder(root: string): (rel: string) => string {
  const base = root.replace(/\/+$/, "");
  return (rel) => (rel === "" ? root : root === "." ? rel : `${base}/${rel}`);
}

/** Decide the root from the request (scp's rules) and open it; names are checked lexically
 * here and resolved beneath the root by C. */
export function placeDestination(req: DestRequest, native: NativeSession): Placement {
  const r = resolveDestRoot(req, (p) => kindOf(native, p));
  if ("singleFileTarget" in r) {
    const target = r.singleFileTarget;
    const root = posix.dirname(target);
    const leaf = posix.basename(target);
    openRoot(native, root, false);
    const intoDir = req.destPath === "" || req.destPath === "." || kindOf(native, req.destPath) === "dir";
    return {
      root,
      show: showUnder(root),
      relFor: (e) => {
        if (e.kind === "dir") throw new EscpError("E_PROTOCOL", `unexpected directory ${e.name} for a single-file transfer`);
        if (e.stream && intoDir) throw streamIntoDir(req.destPath);
        return safeJoin("", leaf);
      },
    };
  }
  const root = r.root === "" ? "." : r.root;
  openRoot(native, root, kindOf(native, root) === "missing");
  return {
    root,
    show: showUnder(root),
    relFor: (e) => {
      let rel = e.dst ?? e.name;
      if (r.stripTopLevel && e.dst === undefined) {
        const slash = rel.indexOf("/");
        rel = slash < 0 ? "" : rel.slice(slash + 1);
      }
      // Standard input has no name of its own: the destination must name the file.
      if (e.stream) throw streamIntoDir(req.destPath);
      if (rel !== "") return safeJoin("", rel);
      // `-r d host:new` maps d itself to the root: only a directory may take that place.
      if (e.kind === "dir") return "";
      throw rejected(e.name, "a file cannot take the place of the destination directory");
    },
  };
}

/** `escp host:file -`: no directory is touched; the one file goes to standard output. */
export function stdoutPlacement(): Placement {
  return {
    root: "-",
    show: () => "standard output",
    relFor: (e) => {
      if (e.kind !== "file") throw new EscpError("E_PROTOCOL", `unexpected ${e.kind} ${e.name} for standard output`);
      return e.name;
    },
  };
}
