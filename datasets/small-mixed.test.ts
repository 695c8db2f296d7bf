// small-mixed (the files-100k / files-1m benchmarks' dataset): sizes within 0–64 KiB with
// exact 0 and 64 KiB files among them, a log-uniform-ish spread, leaf directories of `perdir`
// files, determinism from the seed; and a small cut written to disk matches its manifest.
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { b3sum } from "../harness/b3sum.ts";
import { makeTmpDir, removeTmpDir } from "../harness/tmp-dir.ts";
import { catalogEntry } from "./catalog.ts";
import { SMALL_MIXED_FANOUT, SMALL_MIXED_MAX_BYTES } from "./catalog-trees.ts";
import { makeDataset } from "./make.ts";
import { checkSpec, type DatasetSpec, datasetTotals, type FileEntry } from "./spec.ts";

const tmp = makeTmpDir("datasets-small-mixed");
afterAll(() => removeTmpDir(tmp));

const build = (given: Partial<Record<string, number>>): DatasetSpec => catalogEntry("small-mixed").build(given);
const filesOf = (spec: DatasetSpec): FileEntry[] => spec.entries.filter((e): e is FileEntry => e.kind === "file");
const dirOf = (path: string): string => path.slice(0, path.lastIndexOf("/"));

describe("small-mixed", () => {
  test("defaults: 100,000 files in 100 leaf dirs of 1,000 under d0000", () => {
    const spec = build({});
    checkSpec(spec);
    const files = filesOf(spec);
    expect(files).toHaveLength(100_000);
    expect(files[0]?.path).toBe("d0000/d00/f000");
    expect(files.at(-1)?.path).toBe("d0000/d99/f999");
    const dirs = spec.entries.filter((e) => e.kind === "dir").map((e) => e.path);
    expect(dirs).toHaveLength(101);
    expect(dirs[0]).toBe("d0000");
  }, 30_000);

  test("deterministic from the seed; another seed changes sizes and contents", () => {
    const a = build({ files: 3000, seed: 7 });
    expect(JSON.stringify(build({ files: 3000, seed: 7 }))).toBe(JSON.stringify(a));
    const b = build({ files: 3000, seed: 8 });
    expect(filesOf(b).map((f) => f.path)).toEqual(filesOf(a).map((f) => f.path));
    expect(filesOf(b).map((f) => f.size)).not.toEqual(filesOf(a).map((f) => f.size));
    expect(filesOf(b).map((f) => f.seed)).not.toEqual(filesOf(a).map((f) => f.seed));
    // A file's size does not depend on the file count: a smaller cut is a prefix.
    expect(filesOf(build({ files: 1000, seed: 7 })).map((f) => f.size)).toEqual(
      filesOf(a)
        .map((f) => f.size)
        .slice(0, 1000),
    );
    expect(new Set(filesOf(a).map((f) => f.seed)).size).toBe(3000);
  });

  test("sizes: within 0–64 KiB, exact 0 and 64 KiB files, log-uniform-ish with a mean of a few KiB", () => {
    const files = filesOf(build({ files: 20_000, seed: 1 }));
    const sizes = files.map((f) => f.size);
    expect(Math.min(...sizes)).toBe(0);
    expect(Math.max(...sizes)).toBe(SMALL_MIXED_MAX_BYTES);
    expect(sizes.every((s) => Number.isInteger(s) && s >= 0 && s <= SMALL_MIXED_MAX_BYTES)).toBe(true);
    expect(sizes.filter((s) => s === 0).length).toBeGreaterThanOrEqual(200); // every 100th
    expect(sizes.filter((s) => s === SMALL_MIXED_MAX_BYTES).length).toBeGreaterThanOrEqual(40); // every 500th
    // Log-uniform-ish: every power-of-two band from 1 B to 64 KiB holds files, the small ones most.
    for (let bit = 0; bit < 16; bit++) {
      const inBand = sizes.filter((s) => s >= 2 ** bit && s < 2 ** (bit + 1)).length;
      expect(inBand).toBeGreaterThan(files.length * (bit < 12 ? 0.04 : 0.015));
      expect(inBand).toBeLessThan(files.length * 0.12);
    }
    const mean = datasetTotals(build({ files: 20_000, seed: 1 })).bytes / files.length;
    expect(mean).toBeGreaterThan(2.5 * 1024);
    expect(mean).toBeLessThan(4 * 1024);
    const sorted = [...sizes].sort((x, y) => x - y);
    expect(sorted[sorted.length >> 1]).toBeLessThan(1024); // median: a few hundred bytes at most
  });

  test("directory spread: consecutive files fill leaf dirs of perdir, 100 leaves per top dir", () => {
    const spec = build({ files: 2345, perdir: 10, seed: 3 });
    const files = filesOf(spec);
    const perLeaf = new Map<string, number>();
    for (const f of files) perLeaf.set(dirOf(f.path), (perLeaf.get(dirOf(f.path)) ?? 0) + 1);
    expect(perLeaf.size).toBe(235);
    expect([...perLeaf.values()].filter((n) => n !== 10)).toEqual([5]); // only the last is short
    const tops = new Set(files.map((f) => f.path.split("/")[0]));
    expect([...tops]).toEqual(["d0000", "d0001", "d0002"]);
    for (const top of tops)
      expect(new Set(files.filter((f) => f.path.startsWith(`${top}/`)).map((f) => dirOf(f.path))).size).toBeLessThanOrEqual(SMALL_MIXED_FANOUT);
    expect(files[10]?.path).toBe("d0000/d01/f0");
    expect(files[1000]?.path).toBe("d0001/d00/f0");
    expect(files.every((f) => /^d\d{4}\/d\d{2}\/f\d$/.test(f.path))).toBe(true);
    // 1,000,000 files at the default 1,000 per dir: 10 top dirs × 100 leaves (layout only).
    const last = (n: number): string => {
      const leaf = Math.floor((n - 1) / 1000);
      return `d${String(Math.floor(leaf / 100)).padStart(4, "0")}/d${String(leaf % 100).padStart(2, "0")}/f${String((n - 1) % 1000).padStart(3, "0")}`;
    };
    expect(filesOf(build({ files: 250_000 })).at(-1)?.path).toBe(last(250_000));
    expect(last(1_000_000)).toBe("d0009/d99/f999");
  }, 30_000);

  test("a small cut on disk: sizes, directories and manifest digests match", async () => {
    const dir = join(tmp, "data");
    const spec = build({ files: 600, perdir: 50, seed: 1 });
    const t0 = performance.now();
    const records = await makeDataset(spec, dir, { manifestPath: join(tmp, "manifest.json") });
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeLessThan(30);
    const leaves = readdirSync(join(dir, "d0000")).sort();
    expect(leaves).toEqual(Array.from({ length: 12 }, (_, i) => `d${String(i).padStart(2, "0")}`));
    for (const leaf of leaves) expect(readdirSync(join(dir, "d0000", leaf))).toHaveLength(50);
    const files = records.filter((r) => r.type === "file");
    expect(files).toHaveLength(600);
    for (const r of files) expect(lstatSync(join(dir, r.path)).size).toBe(r.size);
    for (const r of [files[0], files[50], files[250], files[599]]) {
      expect(r?.blake3).toBe(await b3sum(join(dir, r?.path as string)));
    }
  }, 60_000);
});
