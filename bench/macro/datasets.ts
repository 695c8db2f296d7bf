// Catalog datasets materialised once under WORK/datasets/<name>-<params>/ and reused by later
// runs (generation is deterministic, so name + params + seed is the whole key). A dataset is
// only used when its `.complete` marker exists; a half-made one is removed and made again.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { catalogEntry } from "../../datasets/catalog.ts";
import { makeDataset } from "../../datasets/make.ts";
import type { ManifestRecord } from "../../datasets/manifest.ts";
import { datasetTotals } from "../../datasets/spec.ts";
import type { DatasetRef } from "./scenarios.ts";

export interface Materialized {
  ref: DatasetRef;
  /** What to hand a copy tool: the single file, or the tree's root directory. */
  source: string;
  /** Name the copy gets inside a run directory ("big-random.bin", or "tree"). */
  destName: string;
  kind: "file" | "tree";
  bytes: number;
  files: number;
  /** Manifest records (files with BLAKE3, directories), paths relative to the tree root. */
  records: ManifestRecord[];
  made: boolean;
  seconds: number;
}

export function datasetKey(ref: DatasetRef): string {
  const params = Object.keys(ref.params)
    .sort()
    .map((k) => `${k}${ref.params[k]}`)
    .join("-");
  return `${ref.name}-${params}`.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** The dataset under `work`, made first if no complete copy is cached there. */
export async function materialize(ref: DatasetRef, work: string, log: (msg: string) => void): Promise<Materialized> {
  const entry = catalogEntry(ref.name);
  const spec = entry.build(ref.params);
  const totals = datasetTotals(spec);
  const dir = join(work, "datasets", datasetKey(ref));
  const data = join(dir, "data");
  const manifestPath = join(dir, "manifest.json");
  const marker = join(dir, ".complete");
  let made = false;
  const t0 = performance.now();
  if (!existsSync(marker) || !existsSync(manifestPath)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    log(`making dataset ${ref.name} (${JSON.stringify(ref.params)}) in ${data} …`);
    await makeDataset(spec, data, { manifestPath });
    writeFileSync(marker, `${new Date().toISOString()}\n`);
    made = true;
  }
  const records = JSON.parse(readFileSync(manifestPath, "utf8")) as ManifestRecord[];
  const files = records.filter((r) => r.type === "file");
  const single = records.length === 1 && files.length === 1 ? files[0] : undefined;
  return {
    ref,
    source: single ? join(data, single.path) : data,
    destName: single ? single.path : "tree",
    kind: single ? "file" : "tree",
    bytes: totals.bytes,
    files: totals.files,
    records,
    made,
    seconds: (performance.now() - t0) / 1000,
  };
}
