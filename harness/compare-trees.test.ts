// compareTrees reports each kind of difference once, and nothing for identical trees.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTree } from "../datasets/materialize.ts";
import { compareTrees } from "./compare-trees.ts";
import { makeTmpDir, removeTmpDir } from "./tmp-dir.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeTmpDir(d);
});

/** Two identical trees a/ and b/ (files of several sizes, nested, empty dir, symlink). */
async function twinTrees(): Promise<{ a: string; b: string }> {
  const root = makeTmpDir("compare-trees");
  dirs.push(root);
  const a = join(root, "a");
  await makeTree(a, {
    files: [
      { path: "one.bin", sizeBytes: 1000, seed: 1 },
      { path: "empty", sizeBytes: 0, seed: 0 },
      { path: "sub/dir/two with space.bin", sizeBytes: 70_000, seed: 2 },
      { path: "ünï/three.bin", sizeBytes: 5, seed: 3 },
    ],
    emptyDirs: ["hollow"],
  });
  symlinkSync("one.bin", join(a, "link"));
  const b = join(root, "b");
  cpSync(a, b, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  return { a, b };
}

describe("compareTrees", () => {
  test("identical trees → []", async () => {
    const { a, b } = await twinTrees();
    expect(await compareTrees(a, b, { modes: true, mtimes: true })).toEqual([]);
  });

  test("missing and extra entries, including empty dirs", async () => {
    const { a, b } = await twinTrees();
    rmSync(join(b, "ünï/three.bin"));
    rmSync(join(b, "hollow"), { recursive: true });
    writeFileSync(join(b, "surplus"), "x");
    expect(await compareTrees(a, b)).toEqual([`missing in ${b}: hollow (dir)`, `missing in ${b}: ünï/three.bin (file)`, `extra in ${b}: surplus (file)`]);
  });

  test("type, size and content differences", async () => {
    const { a, b } = await twinTrees();
    rmSync(join(b, "hollow"), { recursive: true });
    writeFileSync(join(b, "hollow"), "");
    writeFileSync(join(b, "one.bin"), new Uint8Array(999));
    const two = join(b, "sub/dir/two with space.bin");
    const bytes = new Uint8Array(await Bun.file(two).arrayBuffer());
    bytes[65_536] = (bytes[65_536] as number) ^ 1; // one flipped bit past the first 64 KiB
    writeFileSync(two, bytes);
    const diffs = await compareTrees(a, b);
    expect(diffs).toHaveLength(3);
    expect(diffs[0]).toBe("type differs: hollow (dir vs file)");
    expect(diffs[1]).toBe("size differs: one.bin (1000 vs 999 bytes)");
    expect(diffs[2]).toStartWith("content differs: sub/dir/two with space.bin (BLAKE3 ");
  });

  test("symlinks are compared by target, not followed", async () => {
    const { a, b } = await twinTrees();
    rmSync(join(b, "link"));
    symlinkSync("empty", join(b, "link"));
    expect(await compareTrees(a, b)).toEqual(["symlink target differs: link (one.bin vs empty)"]);
  });

  test("modes and mtimes only when asked", async () => {
    const { a, b } = await twinTrees();
    chmodSync(join(a, "one.bin"), 0o644);
    chmodSync(join(b, "one.bin"), 0o600);
    utimesSync(join(a, "ünï/three.bin"), 1_000_000, 1_000_000);
    utimesSync(join(b, "ünï/three.bin"), 2_000_000, 2_000_000);
    expect(await compareTrees(a, b)).toEqual([]);
    expect(await compareTrees(a, b, { modes: true })).toEqual(["mode differs: one.bin (0644 vs 0600)"]);
    expect(await compareTrees(a, b, { mtimes: true })).toEqual(["mtime differs: ünï/three.bin (1000000 s vs 2000000 s)"]);
  });

  test("an emptied subtree lists each missing entry", async () => {
    const { a, b } = await twinTrees();
    rmSync(join(b, "sub"), { recursive: true });
    mkdirSync(join(b, "sub"));
    expect(await compareTrees(a, b)).toEqual([`missing in ${b}: sub/dir (dir)`, `missing in ${b}: sub/dir/two with space.bin (file)`]);
  });
});
