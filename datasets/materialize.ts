// Writes dataset specs to disk: files streamed from datasets/content.ts in 1 MiB chunks,
// empty directories, and a manifest (path, size, optional BLAKE3) describing what was made.
import { mkdir, open, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { b3sumMany } from "../harness/b3sum.ts";
import { contentChunks } from "./content.ts";

export interface FileSpec {
  /** '/'-separated path relative to the tree root. */
  path: string;
  sizeBytes: number;
  seed: number;
}

export interface TreeSpec {
  files: FileSpec[];
  /** Directories that stay empty ('/'-separated, relative). */
  emptyDirs: string[];
}

export interface ManifestEntry {
  path: string;
  size: number;
  /** Hex BLAKE3 of the content, when requested. */
  blake3?: string;
}

export interface MakeTreeOptions {
  /** Hash every file with b3sum after writing (adds ≈ 1 s per 3 GB). */
  hash?: boolean;
  /** Also write the manifest as JSON here (keep it outside `root`). */
  manifestPath?: string;
}

/** Writes `sizeBytes` of content stream `seed` to `path` (created or truncated). */
export async function writeRandomFile(path: string, sizeBytes: number, seed: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, "w");
  try {
    for (const chunk of contentChunks(seed, sizeBytes)) {
      let written = 0;
      while (written < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, written, chunk.length - written);
        written += bytesWritten;
      }
    }
  } finally {
    await fh.close();
  }
}

/** Rejects paths that would escape the root or are not plain relative paths. */
function checkRelative(rel: string): void {
  const norm = normalize(rel);
  if (rel === "" || isAbsolute(rel) || norm.startsWith("..") || norm !== rel.replace(/\/+$/, "")) {
    throw new Error(`dataset path must be a plain relative path: ${JSON.stringify(rel)}`);
  }
}

/** Materializes `spec` under `root` (which may exist) and returns its manifest, files in
 *  spec order. Empty directories are listed by the spec, not the manifest. */
export async function makeTree(root: string, spec: TreeSpec, opts: MakeTreeOptions = {}): Promise<ManifestEntry[]> {
  await mkdir(root, { recursive: true });
  for (const dir of spec.emptyDirs) {
    checkRelative(dir);
    await mkdir(join(root, dir), { recursive: true });
  }
  for (const file of spec.files) {
    checkRelative(file.path);
    await writeRandomFile(join(root, file.path), file.sizeBytes, file.seed);
  }
  const manifest: ManifestEntry[] = spec.files.map((f) => ({ path: f.path, size: f.sizeBytes }));
  if (opts.hash) {
    const digests = await b3sumMany(spec.files.map((f) => join(root, f.path)));
    manifest.forEach((entry, i) => {
      entry.blake3 = digests[i];
    });
  }
  if (opts.manifestPath) await writeFile(opts.manifestPath, JSON.stringify(manifest, null, 1) + "\n");
  return manifest;
}

/** Total bytes and file count of a spec (for listings and summaries). */
export function specTotals(spec: TreeSpec): { files: number; bytes: number; emptyDirs: number } {
  return {
    files: spec.files.length,
    bytes: spec.files.reduce((sum, f) => sum + f.sizeBytes, 0),
    emptyDirs: spec.emptyDirs.length,
  };
}
