// What a server does with the paths an initiator sent (fs/remote-path.ts does the work): `~` and
// `~user` expand on this side, as scp's remote shell would; relative paths stay relative to the
// login directory; a pull's source patterns are expanded without a shell.
import type { EscpError } from "../errors/escp-error.ts";
import type { SourceSpec } from "../fs/discover.ts";
import { expandDest, expandSources, systemRemotePathContext } from "../fs/remote-path.ts";

/** A push's destination path as this server sees it (E_DEST for an unknown ~user). */
export function expandDestPath(path: string): string {
  return expandDest(path, systemRemotePathContext());
}

/** A pull's requested sources as walkable specs, and the problems found expanding them (a
 * pattern with no match, a missing path: reported to the initiator, the others still go). */
export function expandSourcePaths(paths: string[]): { specs: SourceSpec[]; problems: EscpError[] } {
  const { sources, problems } = expandSources(paths, systemRemotePathContext());
  return { specs: sources.map((s) => ({ path: s.path })), problems };
}
