// Parses a --filelist file: YAML list(s) of `src` or `[src, dst]` items, or a plain
// newline-separated list of paths. Errors are E_USAGE naming the file and the item or line.
// EScp differs: a plain newline list is detected instead of being swallowed as one YAML scalar.
import { readFileSync } from "node:fs";
import { EscpError, describeSysError } from "../errors/escp-error.ts";

export interface FilelistEntry {
  src: string;
  /** Destination name relative to the destination root, when the list gives one. */
  dst?: string;
}

function bad(file: string, where: string, cause: string): EscpError {
  return new EscpError("E_USAGE", `--filelist ${file}: ${where}: ${cause}`, { path: file });
}

/** One item of a YAML sequence: "src" or [src, dst]. */
function entryFromItem(file: string, where: string, item: unknown): FilelistEntry {
  if (typeof item === "string") {
    if (item.length === 0) throw bad(file, where, "empty path");
    return { src: item };
  }
  if (Array.isArray(item)) {
    const [src, dst] = item as unknown[];
    if (item.length === 2 && typeof src === "string" && typeof dst === "string" && src.length > 0 && dst.length > 0) {
      return { src, dst };
    }
    throw bad(file, where, `expected [src, dst] with two non-empty strings, got ${JSON.stringify(item)}`);
  }
  const hint = typeof item === "number" || typeof item === "boolean" ? " (quote names that look like numbers)" : "";
  throw bad(file, where, `expected a path or [src, dst], got ${JSON.stringify(item)}${hint}`);
}

/** Newline list: one path per line; a trailing CR, blank lines and comment lines (first
 * non-blank character `#`) are skipped, other spaces kept. A file whose name starts with `#` is
 * listed as `./#name` (or by its absolute path). */
export function parseNewlineList(text: string): FilelistEntry[] {
  return text
    .split("\n")
    .map((line) => line.replace(/\r$/, ""))
    .filter((line) => line.trim().length > 0 && !line.trimStart().startsWith("#"))
    .map((src) => ({ src }));
}

/** Split on YAML document markers (`---`, `...`) so multi-document lists stay unambiguous. */
function splitDocuments(text: string): string[] {
  const docs: string[] = [];
  let cur: string[] = [];
  for (const line of text.split("\n")) {
    const l = line.replace(/\r$/, "");
    if (/^---(\s|$)/.test(l) || /^\.\.\.\s*$/.test(l)) {
      docs.push(cur.join("\n"));
      cur = /^---\s+\S/.test(l) ? [l.replace(/^---\s+/, "")] : [];
    } else cur.push(l);
  }
  docs.push(cur.join("\n"));
  return docs;
}

type YamlResult = { kind: "list"; entries: FilelistEntry[] } | { kind: "not-yaml" };

function parseYamlDocs(file: string, text: string): YamlResult {
  const docs = splitDocuments(text);
  const parsed: unknown[] = [];
  try {
    for (const d of docs) parsed.push(Bun.YAML.parse(d));
  } catch {
    return { kind: "not-yaml" };
  }
  const content = parsed.filter((p) => p !== null && p !== undefined);
  if (content.length === 1 && typeof content[0] === "string") return { kind: "not-yaml" };
  const entries: FilelistEntry[] = [];
  content.forEach((doc, d) => {
    const docName = content.length > 1 ? `document ${d + 1}` : "top level";
    if (!Array.isArray(doc)) {
      const got = typeof doc === "object" ? "a mapping" : JSON.stringify(doc);
      throw bad(file, docName, `expected a YAML list of paths, got ${got}`);
    }
    const prefix = content.length > 1 ? `${docName}, ` : "";
    doc.forEach((item: unknown, i) => entries.push(entryFromItem(file, `${prefix}item ${i + 1}`, item)));
  });
  return { kind: "list", entries };
}

/** Parse filelist text (pure; `file` names it in errors). Empty lists are an error. */
export function parseFilelist(file: string, text: string): FilelistEntry[] {
  if (text.includes("\0")) throw bad(file, "content", "contains a NUL byte (not a text file)");
  const yaml = parseYamlDocs(file, text);
  const entries = yaml.kind === "list" ? yaml.entries : parseNewlineList(text);
  if (entries.length === 0) throw bad(file, "content", "no paths listed");
  return entries;
}

/** Read and parse a --filelist file; an unreadable file is E_USAGE naming it. */
export function readFilelist(file: string): FilelistEntry[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new EscpError("E_USAGE", `--filelist ${file}: cannot read: ${describeSysError(e)}`, { path: file, cause: e });
  }
  return parseFilelist(file, text);
}
