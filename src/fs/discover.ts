// Walks the sources into the file list the sender announces: regular files and directories
// with their relative names; everything it cannot or will not send becomes a per-item problem,
// except what scp's -r would follow into nothing — a dangling symbolic link or a symbolic link
// loop inside a tree — which is skipped with a notice (not a failed run).
import { lstatSync, readdirSync, statSync, type Stats } from "node:fs";
import { basename, join, resolve } from "node:path";
import { EscpError, describeSysError } from "../errors/escp-error.ts";

export interface SourceSpec {
  path: string; // as the user gave it
  dst?: string; // per-file destination name (from --filelist pairs)
}

export interface FoundEntry {
  kind: "file" | "dir";
  path: string; // absolute local path
  name: string; // relative, '/'-separated destination name (top level = the source's basename)
  size: number;
  mode: number;
  mtimeSec: number;
  mtimeNsec: number;
  atimeSec: number;
  atimeNsec: number;
  dst?: string;
  /** Inode number (0 if over 2^53): with size and mtime, identifies the file for resume. */
  ino: number;
}

function timeParts(ms: number, ns: bigint | undefined): [number, number] {
  if (ns !== undefined) return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
  const sec = Math.floor(ms / 1000);
  return [sec, Math.round((ms - sec * 1000) * 1e6)];
}

function entryFrom(kind: "file" | "dir", path: string, name: string, st: Stats, big: { mtimeNs?: bigint; atimeNs?: bigint; ino?: bigint }): FoundEntry {
  const [mtimeSec, mtimeNsec] = timeParts(st.mtimeMs, big.mtimeNs);
  const [atimeSec, atimeNsec] = timeParts(st.atimeMs, big.atimeNs);
  const ino = big.ino !== undefined && big.ino <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big.ino) : 0;
  return { kind, path, name, size: kind === "file" ? st.size : 0, mode: st.mode & 0o7777, mtimeSec, mtimeNsec, atimeSec, atimeNsec, ino };
}

function statFollow(path: string): { st: Stats; big: { mtimeNs: bigint; atimeNs: bigint; ino: bigint } } {
  const b = statSync(path, { bigint: true });
  return { st: statSync(path), big: { mtimeNs: b.mtimeNs, atimeNs: b.atimeNs, ino: b.ino } };
}

export type WalkItem =
  | { kind: "entry"; entry: FoundEntry }
  | { kind: "problem"; error: EscpError }
  | { kind: "notice"; text: string }
  | { kind: "top"; name: string; isDir: boolean };

function problem(code: "E_SOURCE_MISSING" | "E_SOURCE_UNREADABLE", path: string, why: string): WalkItem {
  return { kind: "problem", error: new EscpError(code, `${path}: ${why}`, { path }) };
}

/** Lazily walks the sources: memory holds one directory listing per level, never the tree. */
export function* walk(sources: SourceSpec[], recursive: boolean): Generator<WalkItem> {
  for (const spec of sources) yield* walkSource(spec, recursive);
}

function* walkSource(spec: SourceSpec, recursive: boolean): Generator<WalkItem> {
  const abs = resolve(spec.path);
  let found;
  try {
    found = statFollow(abs);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" && lstatOk(abs)) return yield problem("E_SOURCE_MISSING", spec.path, "dangling symbolic link");
    return yield problem(code === "ENOENT" ? "E_SOURCE_MISSING" : "E_SOURCE_UNREADABLE", spec.path, describeSysError(e));
  }
  const name = basename(abs) || "/";
  if (found.st.isDirectory()) {
    if (!recursive) return yield problem("E_SOURCE_UNREADABLE", spec.path, "is a directory (use -r)");
    yield { kind: "top", name, isDir: true };
    yield* walkDir(abs, name, found, new Set());
  } else if (found.st.isFile()) {
    yield { kind: "top", name, isDir: false };
    const entry = entryFrom("file", abs, name, found.st, found.big);
    yield { kind: "entry", entry: spec.dst === undefined ? entry : { ...entry, dst: spec.dst } };
  } else {
    yield problem("E_SOURCE_UNREADABLE", spec.path, "not a regular file or directory");
  }
}

function* walkDir(abs: string, name: string, found: ReturnType<typeof statFollow>, ancestors: Set<string>): Generator<WalkItem> {
  const id = `${found.st.dev}:${found.st.ino}`;
  if (ancestors.has(id)) return yield { kind: "notice", text: `${abs}: symbolic link loop, skipped` };
  yield { kind: "entry", entry: entryFrom("dir", abs, name, found.st, found.big) };
  let names: string[];
  try {
    names = readdirSync(abs);
  } catch (e) {
    return yield problem("E_SOURCE_UNREADABLE", abs, describeSysError(e));
  }
  names.sort();
  const chain = new Set(ancestors).add(id);
  for (const child of names) {
    const childAbs = join(abs, child);
    let st;
    try {
      st = statFollow(childAbs);
    } catch (e) {
      const dangling = lstatOk(childAbs) && (e as { code?: string }).code === "ENOENT";
      yield dangling ? { kind: "notice", text: `${childAbs}: dangling symbolic link, skipped` } : problem("E_SOURCE_UNREADABLE", childAbs, describeSysError(e));
      continue;
    }
    if (st.st.isDirectory()) yield* walkDir(childAbs, `${name}/${child}`, st, chain);
    else if (st.st.isFile()) yield { kind: "entry", entry: entryFrom("file", childAbs, `${name}/${child}`, st.st, st.big) };
    else yield problem("E_SOURCE_UNREADABLE", childAbs, "not a regular file or directory, skipped");
  }
}

function lstatOk(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Totals for the progress bar and the top-level names for scp naming, from a first,
 * storage-free pass (the second pass, `walk`, streams the entries themselves). */
export interface Summary {
  topLevel: { name: string; isDir: boolean }[];
  fileCount: number;
  entryCount: number;
  totalBytes: number;
}

export function summarize(sources: SourceSpec[], recursive: boolean): Summary {
  const sum: Summary = { topLevel: [], fileCount: 0, entryCount: 0, totalBytes: 0 };
  for (const item of walk(sources, recursive)) {
    if (item.kind === "top") sum.topLevel.push({ name: item.name, isDir: item.isDir });
    else if (item.kind === "entry") {
      sum.entryCount++;
      if (item.entry.kind === "file") {
        sum.fileCount++;
        sum.totalBytes += item.entry.size;
      }
    }
  }
  return sum;
}
