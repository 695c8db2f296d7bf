// Arbitrary small trees for the property tests: nested and empty directories, awkward names
// (spaces, unicode), file/dir modes and mtimes; materialised into a directory on disk.
import { chmod, mkdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { contentSpec, writeContent, type ContentSpec } from "./content.ts";

export interface FileNode {
  kind: "file";
  name: string;
  mode: number; // 0o600..0o777
  mtimeMs: number;
  content: ContentSpec;
}

export interface DirNode {
  kind: "dir";
  name: string;
  mode: number; // 0o700..0o777
  mtimeMs: number;
  children: TreeNode[];
}

export type TreeNode = FileNode | DirNode;

/** The source root's entries (the root itself is the directory escp -r copies). */
export interface TreeSpec {
  children: TreeNode[];
}

const STEMS = ["a", "b", "file", "with space", " lead", "trail ", "ünïcödé", "日本語", "emoji 🎉", "dash-", "x.dat", "ñ"];
const name = fc.tuple(fc.constantFrom(...STEMS), fc.nat({ max: 9 })).map(([s, n]) => `${s}${n}`);
// 2001-09-09 .. 2033-05-18, with a sub-second part so truncation (not rounding) is checked too.
const mtimeMs = fc.integer({ min: 1_000_000_000_000, max: 2_000_000_000_000 });
const fileMode = fc.integer({ min: 0o600, max: 0o777 });
const dirMode = fc.integer({ min: 0o700, max: 0o777 });

const children = (node: fc.Arbitrary<TreeNode>): fc.Arbitrary<TreeNode[]> => fc.uniqueArray(node, { maxLength: 4, selector: (n) => n.name });

const nodes = fc.letrec<{ node: TreeNode; file: FileNode; dir: DirNode }>((tie) => ({
  node: fc.oneof({ maxDepth: 4, depthIdentifier: "tree" }, tie("file"), tie("file"), tie("dir")),
  file: fc.record({ kind: fc.constant("file" as const), name, mode: fileMode, mtimeMs, content: contentSpec }),
  dir: fc.record({ kind: fc.constant("dir" as const), name, mode: dirMode, mtimeMs, children: children(tie("node")) }),
}));

export const treeSpec: fc.Arbitrary<TreeSpec> = fc.record({
  children: fc.uniqueArray(nodes.node, { minLength: 1, maxLength: 5, selector: (n) => n.name }),
});

export function countFiles(nodes: readonly TreeNode[]): number {
  return nodes.reduce((n, c) => n + (c.kind === "file" ? 1 : countFiles(c.children)), 0);
}

/** Writes `spec` under the existing directory `root`. Modes are set after contents and
 *  mtimes last, deepest first (adding an entry changes its directory's mtime). */
export async function materializeTree(root: string, spec: TreeSpec, blockSize: number): Promise<void> {
  const stamps: [string, number][] = [];
  const build = async (dir: string, list: readonly TreeNode[]): Promise<void> => {
    for (const n of list) {
      const p = join(dir, n.name);
      if (n.kind === "file") {
        await writeContent(p, n.content, blockSize);
        await chmod(p, n.mode);
      } else {
        await mkdir(p);
        await build(p, n.children);
        await chmod(p, n.mode);
      }
      stamps.push([p, n.mtimeMs]); // children are pushed before their directory
    }
  };
  await build(root, spec.children);
  for (const [p, ms] of stamps) await utimes(p, ms / 1000, ms / 1000);
}
