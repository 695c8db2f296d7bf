// The dataset catalog: every named dataset (big-*, sparse, losf*, mixed, edge, and the older
// random-file trees quickstart/tree-2000/edge-blocks/random-64m), looked up by name.
import { bigEntries } from "./catalog-big.ts";
import { edgeEntries } from "./catalog-edge.ts";
import { treeEntries } from "./catalog-trees.ts";
import { createRng, type Rng, seedOf } from "./content.ts";
import { type CatalogEntry, defineEntry, fromTreeSpec } from "./entry.ts";
import type { FileSpec, TreeSpec } from "./materialize.ts";

export type { CatalogEntry } from "./entry.ts";

const MiB = 1 << 20;
const KiB = 1 << 10;
const SEGMENTS = ["alpha", "beta", "gamma", "with space", "ünïcödé", "日本語", "data", "x", "deep", "Ω-mega"];

/** `count` directory paths of depth 1–4 built from SEGMENTS (unique by an index suffix). */
function dirPool(rng: Rng, count: number): string[] {
  const dirs: string[] = [];
  for (let i = 0; i < count; i++) {
    const depth = rng.int(1, 4);
    const parts = Array.from({ length: depth }, () => rng.pick(SEGMENTS));
    parts[depth - 1] = `${parts[depth - 1]}-${i}`;
    dirs.push(parts.join("/"));
  }
  return dirs;
}

/** Small files spread over nested dirs, with one empty file, a name with spaces and a
 *  unicode name among them; every `emptyEvery`-th file is empty. */
function smallFiles(tag: string, count: number, maxBytes: number, dirs: number, emptyEvery: number): FileSpec[] {
  const rng = createRng(seedOf(tag));
  const pool = dirPool(rng, dirs);
  const files: FileSpec[] = [
    { path: "empty.txt", sizeBytes: 0, seed: 0 },
    { path: "name with spaces.txt", sizeBytes: rng.int(1, maxBytes), seed: seedOf(`${tag}/spaces`) },
    { path: `${rng.pick(pool)}/ünïcödé 名前 ✓.dat`, sizeBytes: rng.int(1, maxBytes), seed: seedOf(`${tag}/unicode`) },
  ];
  for (let i = files.length; i < count; i++) {
    const dir = rng.int(0, dirs) === 0 ? "" : `${rng.pick(pool)}/`; // some at the root
    const sizeBytes = i % emptyEvery === 0 ? 0 : rng.int(1, maxBytes);
    files.push({ path: `${dir}file-${i}.bin`, sizeBytes, seed: seedOf(`${tag}/${i}`) });
  }
  return files;
}

/** The first-cut trees (random files with fixed seeds); quickstart backs the README demo. */
const legacyTrees: readonly { name: string; description: string; spec: () => TreeSpec }[] = [
  {
    name: "quickstart",
    description: "the README demo: one 256 MiB file + 200 small files (0–64 KiB) in nested dirs, empty file/dir, spaces, unicode",
    spec: () => ({
      files: [{ path: "big.bin", sizeBytes: 256 * MiB, seed: seedOf("quickstart/big") }, ...smallFiles("quickstart", 200, 64 * KiB, 30, 97)],
      emptyDirs: ["empty-dir", "gamma/empty nested"],
    }),
  },
  {
    name: "tree-2000",
    description: "2000 small files (0–4 KiB) across nested dirs, names with spaces and unicode, empty files and dirs",
    spec: () => ({
      files: smallFiles("tree-2000", 2000, 4 * KiB, 150, 50),
      emptyDirs: ["empty", "alpha/empty inner", "日本語/空", "deep/a/b/c/d/empty"],
    }),
  },
  {
    name: "edge-blocks",
    description: "sizes around the 1 MiB block: 0, B-1, B, B+1 (and 1 byte)",
    spec: () => ({
      files: [0, 1, MiB - 1, MiB, MiB + 1].map((sizeBytes) => ({
        path: `size-${sizeBytes}.bin`,
        sizeBytes,
        seed: seedOf(`edge-blocks/${sizeBytes}`),
      })),
      emptyDirs: [],
    }),
  },
  {
    name: "random-64m",
    description: "one 64 MiB pseudo-random file",
    spec: () => ({ files: [{ path: "random-64m.bin", sizeBytes: 64 * MiB, seed: seedOf("random-64m") }], emptyDirs: [] }),
  },
];

export const catalog: readonly CatalogEntry[] = [
  ...bigEntries,
  ...treeEntries,
  ...edgeEntries,
  ...legacyTrees.map((t) => defineEntry(t.name, t.description, [], (p, name) => fromTreeSpec(name, t.spec(), p.seed as number))),
];

/** The catalog entry called `name`; throws listing the known names otherwise. */
export function catalogEntry(name: string): CatalogEntry {
  const entry = catalog.find((e) => e.name === name);
  if (!entry) throw new Error(`unknown dataset "${name}"; known: ${catalog.map((e) => e.name).join(", ")}`);
  return entry;
}
