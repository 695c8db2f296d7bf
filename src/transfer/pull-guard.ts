// What the initiator of a pull accepts from the server (the scp CVE-2019-6111 class): the
// top-level names the server reports must answer the request, and every announced entry must
// lie under one of them (a directory, or a nested name, only with -r; never a `dst`).
import type { FileEntry } from "../control/messages.ts";
import { EscpError } from "../errors/escp-error.ts";
import { rejected, safeJoin } from "../fs/dest-path.ts";

export interface PullGuard {
  accepted: { name: string; isDir: boolean }[];
  entry: (e: FileEntry) => EscpError | null;
}

function lying(prefix: string, what: string): EscpError {
  return new EscpError("E_PROTOCOL", `${prefix.replace(/:$/, "")}: server sent ${what}`);
}

/** Glob `pattern` (one path segment: *, ?, [...], \\x) against `name`; a leading dot only
 * matches a leading dot, as the shell does. */
export function segmentMatches(pattern: string, name: string): boolean {
  if (name.startsWith(".") && !pattern.startsWith(".")) return false;
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "\\" && i + 1 < pattern.length) re += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        const body = pattern.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`${re}$`, "s").test(name);
}

function lastSegment(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  return i < 0 ? trimmed : trimmed.slice(i + 1);
}

/** Does a reported top-level name answer one of the requests (by basename or its pattern)? */
function requested(requests: readonly string[], name: string): boolean {
  return requests.some((r) => {
    const last = lastSegment(r);
    if (last === "" || last === "." || last === ".." || last === "~" || /^~[^/]*$/.test(last)) return true; // a directory named indirectly
    return segmentMatches(last, name);
  });
}

export function pullGuard(requests: readonly string[], reported: { name: string; isDir: boolean }[], recursive: boolean, prefix: string): PullGuard {
  const seen = new Map<string, boolean>();
  for (const r of reported) {
    if (r.name === "" || r.name === "." || r.name === ".." || r.name.includes("/") || r.name.includes("\0")) {
      throw lying(prefix, `a source name that is not one path segment: ${JSON.stringify(r.name)}`);
    }
    if (seen.has(r.name)) throw lying(prefix, `the source name ${JSON.stringify(r.name)} twice`);
    if (!requested(requests, r.name)) throw lying(prefix, `a name it was not asked for: ${JSON.stringify(r.name)}`);
    seen.set(r.name, r.isDir);
  }
  const entry = (e: FileEntry): EscpError | null => {
    if (e.dst !== undefined) return lying(prefix, `a destination name (dst) for ${JSON.stringify(e.name)}`);
    const slash = e.name.indexOf("/");
    const top = slash < 0 ? e.name : e.name.slice(0, slash);
    const isDir = seen.get(top);
    if (isDir === undefined) return rejected(e.name, "the server sent a name it was not asked for");
    if (!recursive && (e.kind === "dir" || slash >= 0)) return rejected(e.name, "a directory or a nested name without -r");
    if (slash < 0 && (e.kind === "dir") !== isDir) return lying(prefix, `${JSON.stringify(e.name)} as a ${e.kind}, reported otherwise`);
    if (slash >= 0 && !isDir) return rejected(e.name, "a name below a file");
    try {
      safeJoin("", e.name);
    } catch (err) {
      return err as EscpError;
    }
    return null;
  };
  return { accepted: reported, entry };
}
