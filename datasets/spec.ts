// Declarative dataset specs: a dataset is a list of entries (file, dir, symlink, fifo), each
// file with a content generator and a seed derived from the dataset name, --seed and its path.
import { seed53Of } from "./content.ts";

/** A run of real data inside a sparse file; everything else is a hole. */
export interface Island {
  offset: number;
  length: number;
}

/** How a file's bytes are made (datasets/generators.ts). */
export type Content =
  | { kind: "random" } // incompressible, byte N depends only on (seed, N)
  | { kind: "text"; ratio: number } // word-like, compresses ≈ ratio:1 with zstd -3
  | { kind: "zero" } // written zeros (real blocks, not holes)
  | { kind: "sparse"; islands: readonly Island[] }; // ftruncate + random islands

export interface FileEntry {
  kind: "file";
  /** '/'-separated path relative to the dataset root. */
  path: string;
  size: number;
  /** Permission bits, e.g. 0o644 (applied with chmod, so the umask does not matter). */
  mode: number;
  content: Content;
  seed: number;
}

export interface DirEntry {
  kind: "dir";
  path: string;
  mode: number;
}

export interface SymlinkEntry {
  kind: "symlink";
  path: string;
  /** The link text, as is (relative targets are relative to the link's directory). */
  target: string;
}

export interface FifoEntry {
  kind: "fifo";
  path: string;
  mode: number;
}

export type Entry = FileEntry | DirEntry | SymlinkEntry | FifoEntry;

/** Generator parameters after parsing: size/files/ratio/seed, per catalog entry. */
export type Params = Readonly<Record<string, number>>;

export interface DatasetSpec {
  name: string;
  params: Params;
  /** Parents come before children; every directory has its own entry. */
  entries: Entry[];
}

export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;

/** The seed of the file at `path` in dataset `name` made with `--seed seed`. */
export function fileSeed(name: string, seed: number, path: string): number {
  return seed53Of(`${name}\0${seed}\0${path}`);
}

/** A file entry with the default mode and its derived seed. */
export function file(name: string, seed: number, path: string, size: number, content: Content, mode = FILE_MODE): FileEntry {
  return { kind: "file", path, size, mode, content, seed: fileSeed(name, seed, path) };
}

/** `entries` with every parent directory placed before its first use: an explicit dir
 *  entry moves up to that point (keeping its mode), a missing one is added with 0755. */
export function withParents(entries: readonly Entry[]): Entry[] {
  const explicit = new Map<string, Entry>();
  for (const e of entries) if (e.kind === "dir") explicit.set(e.path, e);
  const emitted = new Set<string>();
  const out: Entry[] = [];
  for (const entry of entries) {
    const parts = entry.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (emitted.has(dir)) continue;
      emitted.add(dir);
      out.push(explicit.get(dir) ?? { kind: "dir", path: dir, mode: DIR_MODE });
    }
    if (entry.kind === "dir") {
      if (emitted.has(entry.path)) continue;
      emitted.add(entry.path);
    }
    out.push(entry);
  }
  return out;
}

/** Apparent bytes, data bytes actually written (sparse files count islands only), counts. */
export interface SpecTotals {
  files: number;
  dirs: number;
  symlinks: number;
  fifos: number;
  bytes: number;
  dataBytes: number;
}

export function datasetTotals(spec: DatasetSpec): SpecTotals {
  const t: SpecTotals = { files: 0, dirs: 0, symlinks: 0, fifos: 0, bytes: 0, dataBytes: 0 };
  for (const e of spec.entries) {
    if (e.kind === "file") {
      t.files++;
      t.bytes += e.size;
      t.dataBytes += e.content.kind === "sparse" ? e.content.islands.reduce((s, i) => s + i.length, 0) : e.size;
    } else if (e.kind === "dir") t.dirs++;
    else if (e.kind === "symlink") t.symlinks++;
    else t.fifos++;
  }
  return t;
}

/** Throws unless every path is a plain relative '/'-path, unique, with components ≤ 255 bytes. */
export function checkSpec(spec: DatasetSpec): void {
  const seen = new Set<string>();
  for (const e of spec.entries) {
    const parts = e.path.split("/");
    const bad = parts.some((p) => p === "" || p === "." || p === ".." || Buffer.byteLength(p) > 255 || p.includes("\0"));
    if (bad) throw new Error(`${spec.name}: bad entry path ${JSON.stringify(e.path)}`);
    if (seen.has(e.path)) throw new Error(`${spec.name}: duplicate entry path ${JSON.stringify(e.path)}`);
    seen.add(e.path);
    if (e.kind === "file" && e.content.kind === "sparse") {
      for (const i of e.content.islands) {
        if (i.offset < 0 || i.length <= 0 || i.offset + i.length > e.size) throw new Error(`${spec.name}: island outside ${e.path}`);
      }
    }
  }
}
