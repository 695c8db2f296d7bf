// Compares two directory trees and lists every difference in words a failing test can print:
// missing/extra entries, type, size, content (BLAKE3 via b3sum), symlink target, mode, mtime;
// with `archive` also what -a keeps: owner, group, nanosecond times of every entry, hard links.
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { b3sumMany } from "./b3sum.ts";

export interface CompareOptions {
  /** Compare permission bits (mode & 0o7777) of files and directories. */
  modes?: boolean;
  /** Compare regular files' mtimes to the second (the granularity scp -p guarantees). */
  mtimes?: boolean;
  /** What -a keeps (implies modes): uid/gid and mtime to the nanosecond of files, directories
   * and symlinks, and hard links (names sharing an inode in a share one in b). */
  archive?: boolean;
  /** Also atimes to the nanosecond (files, directories, symlinks). */
  atimes?: boolean;
  /** Also extended attributes, read by this function (name → value). */
  xattrs?: (path: string) => Record<string, string>;
}

type EntryType = "file" | "dir" | "symlink" | "other";

interface Entry {
  type: EntryType;
  size: number;
  mode: number;
  mtimeSec: bigint;
  mtimeNs: bigint;
  atimeNs: bigint;
  uid: number;
  gid: number;
  inode: string;
  target?: string;
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  return "other";
}

/** Walks `root` without following symlinks; keys are '/'-separated paths relative to root. */
async function walk(root: string): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const pending: string[] = [""];
  while (pending.length > 0) {
    const rel = pending.pop() as string;
    const names = await readdir(rel === "" ? root : join(root, rel));
    for (const name of names) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const abs = join(root, childRel);
      const st = await lstat(abs, { bigint: true });
      const type = typeOf(st);
      const entry: Entry = {
        type,
        size: Number(st.size),
        mode: Number(st.mode) & 0o7777,
        mtimeSec: st.mtimeNs / 1_000_000_000n,
        mtimeNs: st.mtimeNs,
        atimeNs: st.atimeNs,
        uid: Number(st.uid),
        gid: Number(st.gid),
        inode: `${st.dev}:${st.ino}`,
      };
      if (type === "symlink") entry.target = await readlink(abs);
      if (type === "dir") pending.push(childRel);
      entries.set(childRel, entry);
    }
  }
  return entries;
}

const octal = (mode: number): string => `0${mode.toString(8)}`;

/** -a: owner, group, times to the nanosecond and extended attributes of an entry. */
function compareArchived(rel: string, a: string, b: string, ea: Entry, eb: Entry, opts: CompareOptions, diffs: string[]): void {
  if (ea.uid !== eb.uid || ea.gid !== eb.gid) diffs.push(`owner differs: ${rel} (${ea.uid}:${ea.gid} vs ${eb.uid}:${eb.gid})`);
  if (ea.type === "other") return;
  if (ea.mtimeNs !== eb.mtimeNs) diffs.push(`mtime differs: ${rel} (${ea.mtimeNs} ns vs ${eb.mtimeNs} ns)`);
  if (opts.atimes && ea.atimeNs !== eb.atimeNs) diffs.push(`atime differs: ${rel} (${ea.atimeNs} ns vs ${eb.atimeNs} ns)`);
  if (opts.xattrs && ea.type !== "symlink") {
    const [xa, xb] = [JSON.stringify(opts.xattrs(join(a, rel))), JSON.stringify(opts.xattrs(join(b, rel)))];
    if (xa !== xb) diffs.push(`extended attributes differ: ${rel} (${xa} vs ${xb})`);
  }
}

/** Names of a that share an inode must share one in b, and only with each other. */
function compareLinks(ta: Map<string, Entry>, tb: Map<string, Entry>, diffs: string[]): void {
  const groups = new Map<string, string[]>();
  for (const [rel, e] of ta) if (e.type === "file") groups.set(e.inode, [...(groups.get(e.inode) ?? []), rel]);
  const seenB = new Map<string, string>(); // inode in b → the a-inode whose names hold it
  for (const [inode, names] of groups) {
    const inB = new Set(names.map((n) => tb.get(n)?.inode));
    if (inB.size !== 1) diffs.push(`hard links not kept: ${names.join(", ")} (${inB.size} inodes)`);
    for (const ib of inB) {
      if (ib === undefined) continue;
      const other = seenB.get(ib);
      if (other !== undefined && other !== inode) diffs.push(`hard link made that the source lacks: ${names.join(", ")} share an inode with other names`);
      seenB.set(ib, inode);
    }
  }
}

function compareEntry(rel: string, ea: Entry, eb: Entry, opts: CompareOptions, diffs: string[]): boolean {
  if (ea.type !== eb.type) {
    diffs.push(`type differs: ${rel} (${ea.type} vs ${eb.type})`);
    return false;
  }
  if (ea.type === "symlink") {
    if (ea.target !== eb.target) diffs.push(`symlink target differs: ${rel} (${ea.target} vs ${eb.target})`);
    return false;
  }
  if ((opts.modes || opts.archive) && ea.type !== "other" && ea.mode !== eb.mode) {
    diffs.push(`mode differs: ${rel} (${octal(ea.mode)} vs ${octal(eb.mode)})`);
  }
  if (ea.type !== "file") return false;
  if (opts.mtimes && ea.mtimeSec !== eb.mtimeSec) {
    diffs.push(`mtime differs: ${rel} (${ea.mtimeSec} s vs ${eb.mtimeSec} s)`);
  }
  if (ea.size !== eb.size) {
    diffs.push(`size differs: ${rel} (${ea.size} vs ${eb.size} bytes)`);
    return false;
  }
  return ea.size > 0; // same-size non-empty files need a content check
}

/** Differences between trees `a` (expected) and `b` (actual); [] means identical.
 *  Roots themselves are compared by content only (not mode/mtime). */
export async function compareTrees(a: string, b: string, opts: CompareOptions = {}): Promise<string[]> {
  const [ta, tb] = await Promise.all([walk(a), walk(b)]);
  const diffs: string[] = [];
  const toHash: string[] = [];
  const byPath = ([x]: [string, Entry], [y]: [string, Entry]): number => (x < y ? -1 : x > y ? 1 : 0);
  for (const [rel, ea] of [...ta].sort(byPath)) {
    const eb = tb.get(rel);
    if (eb === undefined) diffs.push(`missing in ${b}: ${rel} (${ea.type})`);
    else {
      if (compareEntry(rel, ea, eb, opts, diffs)) toHash.push(rel);
      if (opts.archive && ea.type === eb.type) compareArchived(rel, a, b, ea, eb, opts, diffs);
    }
  }
  if (opts.archive) compareLinks(ta, tb, diffs);
  for (const [rel, eb] of [...tb].sort(byPath)) {
    if (!ta.has(rel)) diffs.push(`extra in ${b}: ${rel} (${eb.type})`);
  }
  const [ha, hb] = await Promise.all([b3sumMany(toHash.map((rel) => join(a, rel))), b3sumMany(toHash.map((rel) => join(b, rel)))]);
  toHash.forEach((rel, i) => {
    if (ha[i] !== hb[i]) diffs.push(`content differs: ${rel} (BLAKE3 ${ha[i]?.slice(0, 16)}… vs ${hb[i]?.slice(0, 16)}…)`);
  });
  return diffs;
}
