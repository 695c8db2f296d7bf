// Dataset manifests: one record per entry (path, type, size, octal mode, BLAKE3 for regular
// files via the system b3sum, symlink target), written as a JSON array, one record a line.
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { b3sumMany } from "../harness/b3sum.ts";
import type { DatasetSpec, Entry } from "./spec.ts";

export interface ManifestRecord {
  path: string;
  type: "file" | "dir" | "symlink" | "fifo";
  /** Apparent size for files (holes included), target length for symlinks, else 0. */
  size: number;
  /** Permission bits as 4 octal digits, e.g. "0644" (symlinks: "0777", as lstat shows). */
  mode: string;
  /** Lowercase hex BLAKE3 of a regular file's bytes; equals `b3sum FILE`. */
  blake3?: string;
  /** A symlink's target text. */
  target?: string;
}

const PATHS_PER_B3SUM = 1000;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function recordOf(e: Entry): ManifestRecord {
  switch (e.kind) {
    case "file":
      return { path: e.path, type: "file", size: e.size, mode: octal(e.mode) };
    case "dir":
      return { path: e.path, type: "dir", size: 0, mode: octal(e.mode) };
    case "fifo":
      return { path: e.path, type: "fifo", size: 0, mode: octal(e.mode) };
    case "symlink":
      return { path: e.path, type: "symlink", size: Buffer.byteLength(e.target), mode: "0777", target: e.target };
  }
}

/** The records of `spec` in spec order, without digests. */
export function manifestRecords(spec: DatasetSpec): ManifestRecord[] {
  return spec.entries.map(recordOf);
}

/** Adds `blake3` to every file record, hashing the files under `root` with b3sum: one
 *  process per 1000 paths, as many processes at once as there are CPUs. */
export async function hashRecords(root: string, records: ManifestRecord[]): Promise<void> {
  const files = records.filter((r) => r.type === "file");
  const batches: ManifestRecord[][] = [];
  for (let i = 0; i < files.length; i += PATHS_PER_B3SUM) batches.push(files.slice(i, i + PATHS_PER_B3SUM));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++] as ManifestRecord[];
      const digests = await b3sumMany(batch.map((r) => join(root, r.path)));
      batch.forEach((r, i) => {
        r.blake3 = digests[i];
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
}

/** A JSON array with one record per line (stable key order, diff-friendly). */
export function formatManifest(records: readonly ManifestRecord[]): string {
  if (records.length === 0) return "[]\n";
  return `[\n${records.map((r) => JSON.stringify(r)).join(",\n")}\n]\n`;
}

export function writeManifest(path: string, records: readonly ManifestRecord[]): void {
  writeFileSync(path, formatManifest(records));
}

/** Where `make NAME DIR` puts the manifest by default: DIR/../NAME.manifest.json. */
export function defaultManifestPath(name: string, dir: string): string {
  return join(dirname(resolve(dir)), `${name}.manifest.json`);
}
