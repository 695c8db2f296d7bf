// Walks the sources into the file list the sender announces: regular files and directories
// with their relative names; everything it cannot or will not send becomes a per-item problem,
// except what scp's -r would follow into nothing — a dangling symbolic link or a symbolic link
// loop inside a tree — which is skipped with a notice (not a failed run). With -a (archive)
// nothing is followed: symbolic links are entries of their own, files carry owner, group and
// link count (the announcer turns later names of one inode into hard links), and devices,
// FIFOs and sockets are skipped with a notice.
import { lstatSync, readlinkSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { errnoText } from "../native/events.ts";
import { xattrsRead } from "../native/session.ts";
import { fromBigIntStats, scanDir, type Stat } from "./scan-dir.ts";
import type { ReadAhead } from "./read-ahead.ts";
import { ESCP_LINKS_MAX as LINKS_MAX } from "../native/symbols.ts";

export interface SourceSpec {
  path: string; // as the user gave it
  dst?: string; // per-file destination name (from --filelist pairs)
  stdin?: true; // `-`: this process's standard input, a stream of unknown length
  range?: { offset: number; length: number }; // --shard: only these bytes of the file
}

/** What the walk follows and collects: -r, -a (implies -r), --xattrs. */
export interface WalkMode {
  recursive: boolean;
  archive?: boolean;
  xattrs?: boolean;
  /** Hand small files to the kernel's read-ahead as their directories are listed. */
  readAhead?: ReadAhead;
}

export interface FoundEntry {
  kind: "file" | "dir" | "symlink";
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
  /** -a: owner, group and link count. */
  uid?: number;
  gid?: number;
  nlink?: number;
  /** -a, a file with more than one link: its inode ("dev:ino"), to find its other names. */
  linkKey?: string;
  /** A symbolic link (-a): its contents. */
  target?: string;
  /** --xattrs: its extended attributes, packed by libescp (absent: none). */
  xattrs?: Uint8Array;
  /** `-`: standard input, read to its end (size 0 here: the length is known only then). */
  stream?: true;
  /** --shard: only these bytes of the file are sent (size stays the whole file's). */
  range?: { offset: number; length: number };
}

function entryFrom(kind: FoundEntry["kind"], path: string, name: string, st: Stat, mode: WalkMode): FoundEntry {
  const e: FoundEntry = {
    kind,
    path,
    name,
    size: kind === "file" ? st.size : 0,
    mode: st.perm,
    mtimeSec: st.mtimeSec,
    mtimeNsec: st.mtimeNsec,
    atimeSec: st.atimeSec,
    atimeNsec: st.atimeNsec,
    ino: st.ino,
  };
  if (mode.archive) {
    e.uid = st.uid;
    e.gid = st.gid;
    if (kind === "file") {
      e.nlink = st.nlink;
      if (st.nlink > 1) e.linkKey = st.id;
    }
  }
  return e;
}

export type WalkItem =
  | { kind: "entry"; entry: FoundEntry }
  | { kind: "problem"; error: EscpError }
  | { kind: "notice"; text: string }
  | { kind: "top"; name: string; isDir: boolean };

function problem(code: "E_SOURCE_MISSING" | "E_SOURCE_UNREADABLE" | "E_SOURCE_CHANGED", path: string, why: string): WalkItem {
  return { kind: "problem", error: new EscpError(code, `${path}: ${why}`, { path }) };
}

/** Lazily walks the sources: memory holds one directory listing per level, never the tree. */
export function* walk(sources: SourceSpec[], mode: WalkMode): Generator<WalkItem> {
  const m = mode.archive ? { ...mode, recursive: true } : mode;
  for (const spec of sources) yield* walkSource(spec, m);
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The entry for one walked path, with what -a and --xattrs add; a problem or notice instead
 * when it cannot be sent as it is. */
function found(kind: FoundEntry["kind"], abs: string, name: string, st: Stat, mode: WalkMode): WalkItem {
  const e = entryFrom(kind, abs, name, st, mode);
  if (kind === "symlink") {
    try {
      e.target = UTF8.decode(readlinkSync(abs, { encoding: "buffer" }));
    } catch (err) {
      return problem("E_SOURCE_UNREADABLE", abs, err instanceof TypeError ? "symbolic link target is not valid UTF-8" : describeSysError(err));
    }
    return { kind: "entry", entry: e };
  }
  if (mode.xattrs) {
    const x = xattrsRead(abs, mode.archive === true);
    if (!(x instanceof Uint8Array)) return problem("E_SOURCE_UNREADABLE", abs, `extended attributes: ${x.why}`);
    if (x.length > 0) e.xattrs = x;
  }
  return { kind: "entry", entry: e };
}

/** Devices, FIFOs and sockets: what they are, for the notice that skips them. */
function special(st: Stat): string {
  if (st.kind === "fifo") return "a FIFO";
  if (st.kind === "socket") return "a socket";
  if (st.kind === "char") return "a character device";
  if (st.kind === "block") return "a block device";
  return "not a regular file, directory or symbolic link";
}

function specialNotice(abs: string, st: Stat): WalkItem {
  return { kind: "notice", text: `${abs}: ${special(st)}, skipped (-a copies no devices, FIFOs or sockets)` };
}

/** The name a stream of standard input is announced with (the destination must name the file). */
export const STDIN_NAME = "stdin";

/** `-`: one file entry for standard input, dated now, mode rw-r--r--. */
function stdinEntry(): FoundEntry {
  const ms = Date.now();
  const sec = Math.floor(ms / 1000);
  const nsec = (ms % 1000) * 1_000_000;
  return {
    kind: "file",
    path: "-",
    name: STDIN_NAME,
    size: 0,
    mode: 0o644,
    mtimeSec: sec,
    mtimeNsec: nsec,
    atimeSec: sec,
    atimeNsec: nsec,
    ino: 0,
    stream: true,
  };
}

function* walkSource(spec: SourceSpec, mode: WalkMode): Generator<WalkItem> {
  if (spec.stdin) {
    yield { kind: "top", name: STDIN_NAME, isDir: false };
    return yield { kind: "entry", entry: stdinEntry() };
  }
  const abs = resolve(spec.path);
  // -a copies a named symbolic link as a link, unless the name ends in "/" (then: what it names)
  const follow = !mode.archive || spec.path.endsWith("/");
  let st: Stat;
  try {
    st = fromBigIntStats(follow ? statSync(abs, { bigint: true }) : lstatSync(abs, { bigint: true }));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" && lstatOk(abs)) return yield problem("E_SOURCE_MISSING", spec.path, "dangling symbolic link");
    return yield problem(code === "ENOENT" ? "E_SOURCE_MISSING" : "E_SOURCE_UNREADABLE", spec.path, describeSysError(e));
  }
  const name = basename(abs) || "/";
  if (st.kind === "dir") {
    if (!mode.recursive) return yield problem("E_SOURCE_UNREADABLE", spec.path, "is a directory (use -r)");
    yield { kind: "top", name, isDir: true };
    yield* walkDir(abs, name, st, new Set(), mode);
  } else if (st.kind === "file" || st.kind === "symlink") {
    yield { kind: "top", name, isDir: false };
    const item = found(st.kind, abs, name, st, mode);
    if (item.kind === "entry" && spec.range !== undefined) {
      const r = spec.range;
      if (item.entry.kind !== "file") return yield problem("E_SOURCE_UNREADABLE", spec.path, "a byte range of something that is not a regular file");
      if (r.offset + r.length > item.entry.size)
        return yield problem(
          "E_SOURCE_CHANGED",
          spec.path,
          `the range ${r.offset}+${r.length} runs past the file's ${item.entry.size} bytes (it changed since the list was read)`,
        );
      if (r.offset !== 0 || r.length !== item.entry.size) item.entry.range = r;
    }
    yield item.kind === "entry" && spec.dst !== undefined ? { kind: "entry", entry: { ...item.entry, dst: spec.dst } } : item;
  } else if (mode.archive) {
    yield specialNotice(spec.path, st);
  } else {
    yield problem("E_SOURCE_UNREADABLE", spec.path, "not a regular file or directory");
  }
}

function* walkDir(abs: string, name: string, st: Stat, ancestors: Set<string>, mode: WalkMode): Generator<WalkItem> {
  const id = st.id ?? "";
  if (ancestors.has(id)) return yield { kind: "notice", text: `${abs}: symbolic link loop, skipped` };
  const dir = found("dir", abs, name, st, mode);
  yield dir;
  if (dir.kind !== "entry") return;
  const children = scanDir(abs, mode.archive === true, mode.readAhead); // names sorted, each with its (l)stat
  if (!Array.isArray(children)) return yield problem("E_SOURCE_UNREADABLE", abs, errnoText(children.errno));
  const chain = new Set(ancestors).add(id);
  for (const child of children) {
    const childAbs = join(abs, child.name);
    const cst = child.st;
    if (typeof cst === "number") {
      const dangling = !mode.archive && cst === ENOENT && lstatOk(childAbs);
      yield dangling ? { kind: "notice", text: `${childAbs}: dangling symbolic link, skipped` } : problem("E_SOURCE_UNREADABLE", childAbs, errnoText(cst));
      continue;
    }
    const childName = `${name}/${child.name}`;
    if (cst.kind === "dir") yield* walkDir(childAbs, childName, cst, chain, mode);
    else if (cst.kind === "file") yield found("file", childAbs, childName, cst, mode);
    else if (cst.kind === "symlink")
      yield found("symlink", childAbs, childName, cst, mode); // only -a gets here
    else if (mode.archive) yield specialNotice(childAbs, cst);
    else yield problem("E_SOURCE_UNREADABLE", childAbs, "not a regular file or directory, skipped");
  }
}

const ENOENT = 2;

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
  /** A source is standard input: its length is unknown until it ends. */
  stream: boolean;
}

export function summarize(sources: SourceSpec[], mode: WalkMode): Summary {
  const sum: Summary = { topLevel: [], fileCount: 0, entryCount: 0, totalBytes: 0, stream: false };
  const links = new LinkSet(); // -a: a second name of an inode moves no data
  for (const item of walk(sources, { ...mode, xattrs: false })) {
    if (item.kind === "top") sum.topLevel.push({ name: item.name, isDir: item.isDir });
    else if (item.kind === "entry") {
      sum.entryCount++;
      if (item.entry.kind === "dir") continue;
      sum.fileCount++; // symlinks and hard links get a verdict each, like files
      if (item.entry.stream) sum.stream = true;
      if (item.entry.kind === "file" && !links.seen(item.entry)) sum.totalBytes += item.entry.range?.length ?? item.entry.size;
    }
  }
  return sum;
}

/** Inodes of files with more than one link seen so far (-a), at most LINKS_MAX of them: a
 * later name of one is a hard link. Past the cap, new inodes are not remembered (their later
 * names are copied as files) and `full` says so. */
export class LinkSet {
  private readonly first = new Map<string, number>();
  full = false;

  /** The tag (fino) the inode was first seen with, else undefined (and it is remembered with tag). */
  leader(e: FoundEntry, tag: number): number | undefined {
    if (e.linkKey === undefined) return undefined;
    const known = this.first.get(e.linkKey);
    if (known !== undefined) return known;
    if (this.first.size >= LINKS_MAX) this.full = true;
    else this.first.set(e.linkKey, tag);
    return undefined;
  }

  seen(e: FoundEntry): boolean {
    return this.leader(e, 0) !== undefined;
  }
}
