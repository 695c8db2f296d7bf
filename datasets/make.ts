// Materializes a DatasetSpec under a directory: dirs, streamed files, symlinks, FIFOs, modes,
// then the manifest (BLAKE3 by b3sum). Refuses a non-empty directory unless forced.
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileEntry } from "./generators.ts";
import { hashRecords, manifestRecords, type ManifestRecord, writeManifest } from "./manifest.ts";
import { checkSpec, type DatasetSpec, datasetTotals } from "./spec.ts";

export interface MakeDatasetOptions {
  /** Write into a non-empty directory, replacing whatever sits at the spec's paths. */
  force?: boolean;
  /** Where to write the manifest (none if omitted). */
  manifestPath?: string;
  /** Skip b3sum (records then carry no blake3). */
  noHash?: boolean;
  /** Called as data lands: data bytes and files (of all kinds) done so far. */
  onProgress?: (bytesDone: number, entriesDone: number) => void;
}

export class DirNotEmptyError extends Error {}

/** Throws DirNotEmptyError unless `dir` is missing or empty; creates it. */
export function prepareDir(dir: string, force: boolean): void {
  if (existsSync(dir)) {
    if (!lstatSync(dir).isDirectory()) throw new DirNotEmptyError(`${dir} exists and is not a directory`);
    if (!force && readdirSync(dir).length > 0) {
      throw new DirNotEmptyError(`${dir} is not empty: pick an empty or new directory, or pass --force`);
    }
  }
  mkdirSync(dir, { recursive: true });
}

/** With --force: clears the way for a new entry (an existing directory may stay a directory). */
function clearPath(path: string, keepDir: boolean): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (keepDir && st.isDirectory()) return;
  rmSync(path, { recursive: true, force: true });
}

/** FIFOs through coreutils mkfifo (node:fs has no mkfifo), all in one process. */
function makeFifos(paths: string[]): void {
  if (paths.length === 0) return;
  const p = Bun.spawnSync(["mkfifo", "--", ...paths], { stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`mkfifo failed: ${p.stderr.toString().trim()}`);
}

/** Writes every entry of `spec` under `dir` and returns the manifest records (with BLAKE3
 *  unless noHash); writes them to opts.manifestPath when given. */
export async function makeDataset(spec: DatasetSpec, dir: string, opts: MakeDatasetOptions = {}): Promise<ManifestRecord[]> {
  checkSpec(spec);
  const force = opts.force === true;
  prepareDir(dir, force);
  const progress = opts.onProgress ?? ((): void => {});
  let bytes = 0;
  let done = 0;
  const dirModes: [string, number][] = [];
  const fifos: [string, number][] = [];
  for (const e of spec.entries) {
    const abs = join(dir, e.path);
    if (force) clearPath(abs, e.kind === "dir");
    switch (e.kind) {
      case "dir":
        mkdirSync(abs, { recursive: true, mode: 0o700 });
        dirModes.push([abs, e.mode]);
        break;
      case "file":
        writeFileEntry(abs, e, (n) => progress((bytes += n), done));
        break;
      case "symlink":
        symlinkSync(e.target, abs);
        break;
      case "fifo":
        fifos.push([abs, e.mode]);
        break;
    }
    progress(bytes, ++done);
  }
  makeFifos(fifos.map(([p]) => p));
  for (const [p, mode] of fifos) chmodSync(p, mode);
  for (const [p, mode] of dirModes.reverse()) chmodSync(p, mode); // children first
  const records = manifestRecords(spec);
  if (!opts.noHash) await hashRecords(dir, records);
  if (opts.manifestPath) writeManifest(opts.manifestPath, records);
  return records;
}

/** Bytes the writer will put on disk (what the progress bar counts to). */
export function dataBytesOf(spec: DatasetSpec): number {
  return datasetTotals(spec).dataBytes;
}
