// One directory's names with their stat, from one native call (escp_dir_scan), and the plain
// stat record the walk works with (from that call, or from one node:fs stat of a named source).
import type { BigIntStats } from "node:fs";
import { cstr, loadNative } from "../native/lib.ts";
import * as C from "../native/symbols.ts";
import type { ReadAhead } from "./read-ahead.ts";

export type StatKind = "dir" | "file" | "symlink" | "fifo" | "socket" | "char" | "block" | "other";

/** What the walk needs of a stat: numbers (times as whole seconds and 0..999,999,999 ns). */
export interface Stat {
  kind: StatKind;
  size: number;
  /** Inode number, 0 if over 2^53. */
  ino: number;
  /** "dev:ino", exact: an inode's identity (loops, hard links); set for directories and for
   *  files of more than one link (what the walk asks it of). */
  id?: string;
  perm: number; // mode & 0o7777
  uid: number;
  gid: number;
  nlink: number;
  mtimeSec: number;
  mtimeNsec: number;
  atimeSec: number;
  atimeNsec: number;
}

const S_IFMT = 0o170000;
const KINDS: Record<number, StatKind> = {
  0o040000: "dir",
  0o100000: "file",
  0o120000: "symlink",
  0o010000: "fifo",
  0o140000: "socket",
  0o020000: "char",
  0o060000: "block",
};

function kindOf(mode: number): StatKind {
  return KINDS[mode & S_IFMT] ?? "other";
}

const NS = 1_000_000_000n;
/** Whole seconds (floored) and a positive nanosecond part of a time in ns. */
function split(ns: bigint): [number, number] {
  let s = ns / NS;
  let n = ns % NS;
  if (n < 0n) (s -= 1n), (n += NS);
  return [Number(s), Number(n)];
}

export function fromBigIntStats(st: BigIntStats): Stat {
  const [mtimeSec, mtimeNsec] = split(st.mtimeNs);
  const [atimeSec, atimeNsec] = split(st.atimeNs);
  return {
    kind: kindOf(Number(st.mode)),
    size: Number(st.size),
    ino: st.ino <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(st.ino) : 0,
    id: `${st.dev}:${st.ino}`,
    perm: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: Number(st.nlink),
    mtimeSec,
    mtimeNsec,
    atimeSec,
    atimeNsec,
  };
}

export interface ScanEntry {
  name: string;
  /** The stat, or the errno of the stat that failed. */
  st: Stat | number;
}

const names = new TextDecoder(); // a name that is not UTF-8 gets replacement characters, as readdir's does
let buf = new Uint8Array(256 * 1024);

/** The names of directory `path` (sorted by their bytes) with their stat (lstat when
 * nofollow), or the errno that kept it from being read. With `ra`, small regular files are
 * handed to the kernel's read-ahead within its allowance (see read-ahead.ts). */
export function scanDir(path: string, nofollow: boolean, ra?: ReadAhead): ScanEntry[] | { errno: number } {
  const lib = loadNative();
  const err = new Int32Array(1);
  const raKib = ra ? Math.min(0x7fffffff, Math.floor(ra.allowance() / 1024)) : 0;
  let n = lib.escp_dir_scan(cstr(path), nofollow ? 1 : 0, raKib, buf, buf.length, err);
  if (n === C.ESCP_E_TOOBIG) {
    buf = new Uint8Array(Math.max(err[0] ?? 0, buf.length * 2));
    n = lib.escp_dir_scan(cstr(path), nofollow ? 1 : 0, raKib, buf, buf.length, err);
  }
  if (n < 0) return { errno: n === C.ESCP_E_NOMEM ? 12 : err[0] || 5 };
  const v = new DataView(buf.buffer, 0, n);
  const out: ScanEntry[] = [];
  let advised = 0;
  let eligible = 0;
  for (let at = 0; at < n; ) {
    const len = v.getUint16(at + C.ESCP_DS_NAME_LEN, true);
    const name = names.decode(buf.subarray(at + C.ESCP_DS_ENT, at + C.ESCP_DS_ENT + len));
    const errno = v.getInt32(at + C.ESCP_DS_ERRNO, true);
    const st = errno !== 0 ? errno : statAt(v, at);
    const flags = v.getUint16(at + C.ESCP_DS_FLAGS, true);
    if (typeof st !== "number" && (flags & C.ESCP_DS_F_RA_SMALL) !== 0) {
      eligible += st.size;
      if ((flags & C.ESCP_DS_F_RA) !== 0) advised += st.size;
    }
    out.push({ name, st });
    at += C.ESCP_DS_ENT + Math.ceil(len / 8) * 8;
  }
  ra?.listed(advised, eligible, raKib > 0);
  return out;
}

function statAt(v: DataView, at: number): Stat {
  const ino = v.getBigUint64(at + C.ESCP_DS_INO, true);
  const mode = v.getUint32(at + C.ESCP_DS_MODE, true);
  const kind = kindOf(mode);
  const nlink = v.getUint32(at + C.ESCP_DS_NLINK, true);
  const st: Stat = {
    kind,
    size: Number(v.getBigUint64(at + C.ESCP_DS_SIZE, true)),
    ino: ino <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ino) : 0,
    perm: mode & 0o7777,
    uid: v.getUint32(at + C.ESCP_DS_UID, true),
    gid: v.getUint32(at + C.ESCP_DS_GID, true),
    nlink,
    mtimeSec: Number(v.getBigInt64(at + C.ESCP_DS_MTIME_S, true)),
    mtimeNsec: v.getUint32(at + C.ESCP_DS_MTIME_NS, true),
    atimeSec: Number(v.getBigInt64(at + C.ESCP_DS_ATIME_S, true)),
    atimeNsec: v.getUint32(at + C.ESCP_DS_ATIME_NS, true),
  };
  if (kind === "dir" || nlink > 1) st.id = `${v.getBigUint64(at + C.ESCP_DS_DEV, true)}:${ino}`;
  return st;
}
