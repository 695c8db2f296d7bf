// Parses a --filelist file: YAML list(s) of `src` or `[src, dst]` items, or a plain
// newline-separated list of paths. Errors are E_USAGE naming the file and the item or line.
// EScp differs: a plain newline list is detected instead of being swallowed as one YAML scalar.
import { readFileSync } from "node:fs";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { ESCP_RANGE_BLOCKS_MAX } from "../native/symbols.ts";

export interface FilelistEntry {
  src: string;
  /** Destination name relative to the destination root, when the list gives one. */
  dst?: string;
  /** --shard: only these bytes of src (from an `@OFFSET+LENGTH` suffix). */
  range?: { offset: number; length: number };
}

/** Which option's list errors name: `--filelist FILE` or `--shard FILE`. */
let listFlag = "--filelist";

function bad(file: string, where: string, cause: string): EscpError {
  return new EscpError("E_USAGE", `${listFlag} ${file}: ${where}: ${cause}`, { path: file });
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
export function readFilelist(file: string, flag = "--filelist"): FilelistEntry[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new EscpError("E_USAGE", `${flag} ${file}: cannot read: ${describeSysError(e)}`, { path: file, cause: e });
  }
  listFlag = flag;
  try {
    return parseFilelist(file, text);
  } finally {
    listFlag = "--filelist";
  }
}

const RANGE_SUFFIX = /^(.*)@(\d+)\+(\d+)$/s;

/**
 * --shard: split `src@OFFSET+LENGTH` (decimal bytes) and check the range against the source's
 * size and the block size (a power of two): OFFSET a multiple of it, LENGTH > 0, the range
 * inside the file, LENGTH a multiple of it unless the range ends the file. `@0+SIZE` is the
 * whole file (no range). `size` stats a source (undefined: it does not exist — the walk
 * reports that; negative: it is not a regular file). Errors are E_USAGE naming the list, the item and the cause.
 */
export function shardRanges(file: string, entries: FilelistEntry[], blockSize: number, size: (path: string) => number | undefined): FilelistEntry[] {
  return entries.map((e, i) => {
    const m = RANGE_SUFFIX.exec(e.src);
    if (m === null) return e;
    const [, src = "", os = "", ls = ""] = m;
    const where = `item ${i + 1} (${JSON.stringify(e.src)})`;
    const fail = (cause: string) => new EscpError("E_USAGE", `--shard ${file}: ${where}: ${cause}`, { path: file });
    if (src.length === 0) throw fail("empty path before the range");
    const offset = Number(os);
    const length = Number(ls);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) throw fail("offset or length over 2^53 - 1");
    const sz = size(src);
    const plain: FilelistEntry = { ...e, src };
    if (sz === undefined) return plain; // missing or unreadable: the walk names it
    if (sz < 0) throw fail("not a regular file (a byte range needs one)");
    if (offset === 0 && length === sz) return plain; // the whole file
    if (length === 0) throw fail("the length is 0");
    if (offset % blockSize !== 0) throw fail(`offset ${offset} is not a multiple of the block size ${blockSize}`);
    if (offset + length > sz) throw fail(`the range ends at ${offset + length}, past the file's ${sz} bytes`);
    if (Math.ceil(length / blockSize) > ESCP_RANGE_BLOCKS_MAX)
      throw fail(`length ${length} is more than ${ESCP_RANGE_BLOCKS_MAX} blocks of ${blockSize} (cut the file into more ranges, or use a larger --blocksize)`);
    if (offset + length !== sz && length % blockSize !== 0)
      throw fail(`length ${length} is not a multiple of the block size ${blockSize} (only a range that ends the file may be shorter)`);
    return { ...plain, range: { offset, length } };
  });
}
