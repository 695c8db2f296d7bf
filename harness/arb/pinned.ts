// Concrete (tree, config) cases that run before the random ones in transfer.prop.test.ts:
// interesting shapes chosen by hand plus shrunk counterexamples that once failed.
//
// Adding a counterexample: when the property fails, fast-check prints "Counterexample: [...]"
// (the shrunk [tree, config] pair) and a seed/path. Copy that pair here as a new entry with a
// `why` naming the bug (and the seed it came from), fix the bug, and keep the entry forever.
import type { RunConfig } from "./config.ts";
import type { ContentSpec } from "./content.ts";
import type { FileNode, TreeNode, TreeSpec } from "./tree.ts";

export interface PinnedCase {
  why: string;
  tree: TreeSpec;
  config: RunConfig;
}

const T = 1_700_000_000_123; // an mtime (ms) with a sub-second part
const base: RunConfig = { threads: 4, blockSize: "64K", sparse: false, nodirect: false, checksum: true, preserve: true, compress: false, engine: "posix" };
const content = (blocks: number, delta: number, layout: ContentSpec["layout"] = "random"): ContentSpec => ({ size: { blocks, delta }, layout, seed: 42 });
const file = (name: string, c: ContentSpec, mode = 0o644): FileNode => ({ kind: "file", name, mode, mtimeMs: T, content: c });
const dir = (name: string, children: TreeNode[], mode = 0o755): TreeNode => ({ kind: "dir", name, mode, mtimeMs: T, children });

export const PINNED: PinnedCase[] = [
  { why: "a single empty file", tree: { children: [file("empty", content(0, 0))] }, config: base },
  {
    why: "one file of exactly one 64K block",
    tree: { children: [file("one block", content(1, 0), 0o600)] },
    config: { ...base, threads: 1 },
  },
  {
    why: "a sparse file with holes under --sparse (and an all-zero one)",
    tree: { children: [file("holes.bin", content(3, 17, "holes")), file("zeros.bin", content(2, 0, "zeros"))] },
    config: { ...base, blockSize: "128K", sparse: true },
  },
  {
    why: "deep nesting with an empty directory at the bottom and unicode names",
    tree: {
      children: [dir("d1", [dir("d 2", [dir("ünï3", [dir("日本4", [dir("empty5", [], 0o700), file("leaf 🎉", content(0, 5), 0o777)], 0o777)])])], 0o711)],
    },
    config: { ...base, nodirect: true },
  },
  {
    why: "a file of B+1 bytes over 8 streams",
    tree: { children: [file("b-plus-1", content(1, 1))] },
    config: { ...base, threads: 8, blockSize: "1M", preserve: false, compress: true, checksum: false },
  },
];
