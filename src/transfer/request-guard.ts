// What the client of a pull accepts from the server (scp's CVE-2019-6111 class): every top-level
// name must answer one of the client's own requests, and every announced entry must lie, safely
// named, under one of those names, with the kind the server reported.
import { rejected, safeJoin } from "../fs/dest-path.ts";
import { matchSegment, parseSegment, splitSegments, type SegmentPattern } from "../fs/remote-path.ts";
import { EscpError } from "../errors/escp-error.ts";
import type { EntryKind } from "../control/messages.ts";

export interface ReportedSource {
  name: string;
  isDir: boolean;
}

/**
 * What one request (the remote path as the user wrote it) lets the server name:
 * - literal: exactly the last segment, escapes removed (`~/data/f.h5` → "f.h5");
 * - glob: names matching the last segment (`/data/run*\/*.h5` → `*.h5`, leading-dot rule);
 * - server-named: a request whose name only the server knows (`""`, `.`, `..`, `~`, `~user`,
 *   `x/.`, `x/..`): one directory with a name that is not hidden. The server names it by its
 *   basename, which the client cannot know; a lying server can still choose that one name
 *   (never ".ssh" or another hidden one), but nothing outside it.
 * `/` names nothing (the server refuses it).
 */
export type RequestShape = { kind: "literal"; name: string } | { kind: "glob"; pattern: SegmentPattern; text: string } | { kind: "server-named" };

export function requestShape(request: string): RequestShape {
  const { segments, absolute } = splitSegments(request);
  const last = segments[segments.length - 1];
  if (last === undefined && absolute) return { kind: "literal", name: "/" }; // refused by the server; matches no name
  if (last === undefined || last === "." || last === "..") return { kind: "server-named" };
  if (segments.length === 1 && request.startsWith("~")) return { kind: "server-named" };
  const pattern = parseSegment(last);
  return pattern.magic ? { kind: "glob", pattern, text: last } : { kind: "literal", name: pattern.literal };
}

/** Top-level name → whether the server reported it as a directory. */
export type AcceptedSources = ReadonlyMap<string, { isDir: boolean }>;

function lying(msg: string, name: string): EscpError {
  return new EscpError("E_PROTOCOL", msg, { path: name });
}

/** Why a reported top-level name is not one path segment this client could ever write, or "". */
function segmentFault(name: string): string {
  if (name.includes("/")) return "not a single path segment";
  try {
    safeJoin("", name);
    return "";
  } catch (e) {
    const prefix = `refusing unsafe name ${JSON.stringify(name)}: `;
    const msg = e instanceof Error ? e.message : String(e);
    return msg.startsWith(prefix) ? msg.slice(prefix.length) : msg;
  }
}

/** Claim `r` for a request: literal or glob first, else a not yet used server-named request. */
function claim(shapes: readonly RequestShape[], used: Set<number>, r: ReportedSource): boolean {
  for (const s of shapes) {
    if (s.kind === "literal" && s.name === r.name) return true;
    if (s.kind === "glob" && matchSegment(s.pattern, r.name)) return true;
  }
  if (!r.isDir || r.name.startsWith(".")) return false;
  const i = shapes.findIndex((s, k) => s.kind === "server-named" && !used.has(k));
  if (i < 0) return false;
  used.add(i);
  return true;
}

/**
 * Check the top-level names a server says it will send for `requests` (the remote paths as the
 * user wrote them). Each must be one safe path segment, answer a request (see RequestShape),
 * be a directory only with -r, and appear once. A server that says otherwise is lying: E_PROTOCOL
 * ("server sent a name it was not asked for: …"), and the pull stops before any data moves.
 * Stricter than scp, which checks names without -r only and lets `*` match a leading dot.
 */
export function checkReportedSources(requests: readonly string[], reported: readonly ReportedSource[], recursive: boolean): AcceptedSources {
  const shapes = requests.map(requestShape);
  const used = new Set<number>();
  const accepted = new Map<string, { isDir: boolean }>();
  for (const r of reported) {
    const q = JSON.stringify(r.name);
    const fault = segmentFault(r.name);
    if (fault !== "") throw lying(`server sent a name it was not asked for: ${q} (${fault})`, r.name);
    if (accepted.has(r.name)) throw lying(`server sent the name ${q} twice`, r.name);
    if (r.isDir && !recursive) throw lying(`server sent a directory it was not asked for: ${q} (no -r)`, r.name);
    if (!claim(shapes, used, r)) throw lying(`server sent a name it was not asked for: ${q}`, r.name);
    accepted.set(r.name, { isDir: r.isDir });
  }
  return accepted;
}

export interface AnnouncedEntry {
  name: string;
  kind: EntryKind;
  dst?: string;
}

/** null = write it; else the error refusing this entry. */
export type EntryGuard = (entry: AnnouncedEntry) => EscpError | null;

/**
 * The check for every entry the server announces in a pull. An unsafe name (NUL, absolute, "",
 * ".", "..", over-long: safeJoin's rules) is refused as that file's E_REJECTED_PATH, as the push
 * receiver does. Anything an honest escp server never sends is E_PROTOCOL and should end the
 * session: a `dst`, a name outside the accepted top-level names, anything below the top level or
 * a directory without -r, a top-level entry of the other kind than reported or announced twice,
 * an entry below a top-level file.
 */
export function makeEntryGuard(accepted: AcceptedSources, recursive: boolean): EntryGuard {
  const seenTop = new Set<string>();
  return (e) => {
    const q = JSON.stringify(e.name);
    if (e.dst !== undefined) return lying(`server sent a destination name for ${q}: a pull takes none`, e.name);
    try {
      safeJoin("", e.name);
    } catch (err) {
      return err instanceof EscpError ? err : rejected(e.name, String(err));
    }
    const slash = e.name.indexOf("/");
    const top = slash < 0 ? e.name : e.name.slice(0, slash);
    const reported = accepted.get(top);
    if (reported === undefined) return lying(`server sent a name it was not asked for: ${q}`, e.name);
    if (!recursive && (slash >= 0 || e.kind === "dir")) return lying(`server sent ${q}, a ${slash >= 0 ? "nested name" : "directory"}, without -r`, e.name);
    if (slash >= 0) return reported.isDir ? null : lying(`server sent ${q} below ${JSON.stringify(top)}, which it reported as a file`, e.name);
    if ((e.kind === "dir") !== reported.isDir) {
      return lying(`server sent ${q} as a ${e.kind}, but reported a ${reported.isDir ? "directory" : "file"}`, e.name);
    }
    if (seenTop.has(top)) return lying(`server sent ${q} twice`, e.name);
    seenTop.add(top);
    return null;
  };
}
