// What a catalog entry is (name, parameters, a spec builder) and the adapters between the
// declarative DatasetSpec and the older files-only TreeSpec that makeTree() takes.
import type { TreeSpec } from "./materialize.ts";
import { type ParamDef, resolveParams } from "./params.ts";
import { type DatasetSpec, type Entry, file, FILE_MODE, type Params, withParents } from "./spec.ts";

export interface CatalogEntry {
  name: string;
  description: string;
  /** Parameters besides the universal --seed. */
  params: readonly ParamDef[];
  /** The dataset for `given` parameters (missing ones take their defaults). */
  build(given?: Partial<Record<string, number>>): DatasetSpec;
  /** Files-only view of the default build for makeTree(); throws if the dataset holds
   *  anything but random-content files and directories. */
  spec(): TreeSpec;
}

/** A catalog entry from a builder of entries; parents are added and params checked. */
export function defineEntry(name: string, description: string, params: readonly ParamDef[], entries: (p: Params, name: string) => Entry[]): CatalogEntry {
  const build = (given: Partial<Record<string, number>> = {}): DatasetSpec => {
    const p = resolveParams(params, given);
    return { name, params: p, entries: withParents(entries(p, name)) };
  };
  return { name, description, params, build, spec: () => toTreeSpec(build()) };
}

/** A DatasetSpec of random files (their own seeds kept) and directories. With a non-zero
 *  --seed, seeds are re-derived from the dataset name, seed and path instead. */
export function fromTreeSpec(name: string, tree: TreeSpec, seed: number): Entry[] {
  const dirs: Entry[] = tree.emptyDirs.map((path) => ({ kind: "dir", path, mode: 0o755 }));
  const files: Entry[] = tree.files.map((f) =>
    seed === 0
      ? { kind: "file", path: f.path, size: f.sizeBytes, mode: FILE_MODE, content: { kind: "random" }, seed: f.seed }
      : file(name, seed, f.path, f.sizeBytes, { kind: "random" }),
  );
  return [...files, ...dirs];
}

/** The files and leaf directories of `spec` as a TreeSpec (random content only). */
export function toTreeSpec(spec: DatasetSpec): TreeSpec {
  const tree: TreeSpec = { files: [], emptyDirs: [] };
  const parents = new Set<string>();
  for (const e of spec.entries) {
    const cut = e.path.lastIndexOf("/");
    if (cut > 0) parents.add(e.path.slice(0, cut));
  }
  for (const e of spec.entries) {
    if (e.kind === "file" && e.content.kind === "random") tree.files.push({ path: e.path, sizeBytes: e.size, seed: e.seed });
    else if (e.kind === "dir") {
      if (!parents.has(e.path)) tree.emptyDirs.push(e.path);
    } else throw new Error(`${spec.name} holds ${e.path} (${e.kind === "file" ? e.content.kind : e.kind}); use makeDataset()`);
  }
  return tree;
}
