// Catalog specs without writing anything: losf counts and size bounds, mixed spread, edge
// coverage, determinism of every spec, parameter parsing.
import { describe, expect, test } from "bun:test";
import { catalog, catalogEntry } from "./catalog.ts";
import { EDGE_BLOCKS, NAME_255_ASCII, NAME_255_UTF8 } from "./catalog-edge.ts";
import { LOSF_MAX_BYTES } from "./catalog-trees.ts";
import { parseParamArgs, parseSize } from "./params.ts";
import { checkSpec, type DatasetSpec, datasetTotals, type FileEntry } from "./spec.ts";

const filesOf = (spec: DatasetSpec): FileEntry[] => spec.entries.filter((e): e is FileEntry => e.kind === "file");

describe("catalog", () => {
  test("has the required datasets", () => {
    const names = catalog.map((e) => e.name);
    for (const n of ["big-random", "big-text", "big-zero", "sparse", "losf", "losf-small", "mixed", "small-mixed", "edge", "quickstart"]) {
      expect(names).toContain(n);
    }
  });

  test("every spec is valid, parents come first, and building twice gives the same spec", () => {
    // The big many-file sets are checked at a smaller count (same code path, quicker).
    const given = (name: string, seed?: number): Partial<Record<string, number>> => ({
      ...(name === "losf" ? { files: 4096 } : name === "small-mixed" ? { files: 5000 } : {}),
      ...(seed === undefined ? {} : { seed }),
    });
    for (const entry of catalog) {
      const a = entry.build(given(entry.name));
      checkSpec(a);
      const seen = new Set<string>();
      for (const e of a.entries) {
        const cut = e.path.lastIndexOf("/");
        if (cut > 0) expect(seen.has(e.path.slice(0, cut))).toBe(true);
        seen.add(e.path);
      }
      expect(JSON.stringify(entry.build(given(entry.name)))).toBe(JSON.stringify(a));
      if (entry.name !== "big-zero" && entry.name !== "edge-blocks") {
        const other = entry.build(given(entry.name, 9));
        expect(filesOf(other).map((f) => f.seed)).not.toEqual(filesOf(a).map((f) => f.seed));
      }
    }
  });

  test("losf: 65,536 files of 0–1 KiB in 8 dirs × 8192, distinct seeds (spec only)", () => {
    const spec = catalogEntry("losf").build();
    const files = filesOf(spec);
    expect(files.length).toBe(65_536);
    const dirs = spec.entries.filter((e) => e.kind === "dir");
    expect(dirs.map((d) => d.path)).toEqual(["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"]);
    for (const d of dirs) expect(files.filter((f) => f.path.startsWith(`${d.path}/`)).length).toBe(8192);
    const sizes = files.map((f) => f.size);
    expect(Math.min(...sizes)).toBe(0);
    expect(Math.max(...sizes)).toBe(LOSF_MAX_BYTES);
    expect(new Set(files.map((f) => f.seed)).size).toBe(65_536);
    const total = datasetTotals(spec).bytes;
    expect(total).toBeGreaterThan(65_536 * 480);
    expect(total).toBeLessThan(65_536 * 545);
  });

  test("losf-small: 1024 files in 8 × 128; --files rescales", () => {
    const spec = catalogEntry("losf-small").build();
    expect(filesOf(spec).length).toBe(1024);
    expect(spec.entries.filter((e) => e.kind === "dir").length).toBe(8);
    expect(filesOf(catalogEntry("losf-small").build({ files: 100 })).length).toBe(100);
  });

  test("mixed: many small, some medium, a few large, deep nesting", () => {
    const files = filesOf(catalogEntry("mixed").build());
    const small = files.filter((f) => f.size <= 16 * 1024).length;
    const medium = files.filter((f) => f.size > 16 * 1024 && f.size <= 1 << 20).length;
    const large = files.filter((f) => f.size > 1 << 20).length;
    expect(small).toBeGreaterThan(800);
    expect(medium).toBeGreaterThan(100);
    expect(large).toBeGreaterThanOrEqual(3);
    expect(large).toBeLessThan(20);
    expect(Math.max(...files.map((f) => f.path.split("/").length))).toBeGreaterThanOrEqual(20);
    expect(new Set(files.map((f) => f.content.kind))).toEqual(new Set(["text", "random"]));
  });

  test("edge: every listed case is in the spec", () => {
    const spec = catalogEntry("edge").build();
    const files = filesOf(spec);
    const sizes = new Set(files.map((f) => f.size));
    expect(sizes.has(0)).toBe(true);
    for (const [, b] of EDGE_BLOCKS) for (const s of [b - 1, b, b + 1]) expect(sizes.has(s)).toBe(true);
    const names = spec.entries.map((e) => e.path.split("/").at(-1) as string);
    expect(names).toContain(NAME_255_ASCII);
    expect(names).toContain(NAME_255_UTF8);
    expect(Buffer.byteLength(NAME_255_ASCII)).toBe(255);
    expect(Buffer.byteLength(NAME_255_UTF8)).toBe(255);
    expect(names.some((n) => n.includes(" "))).toBe(true);
    expect(names.some((n) => /[^\x00-\x7f]/.test(n))).toBe(true);
    expect(Math.max(...spec.entries.map((e) => e.path.split("/").length))).toBeGreaterThan(60);
    expect(Math.max(...spec.entries.map((e) => Buffer.byteLength(e.path)))).toBeGreaterThan(1600);
    expect(spec.entries.filter((e) => e.kind === "symlink").map((e) => e.path)).toEqual(
      expect.arrayContaining(["links/to-file", "links/to-dir", "links/dangling"]),
    );
    expect(spec.entries.some((e) => e.kind === "fifo")).toBe(true);
    expect(files.some((f) => (f.mode & 0o222) === 0)).toBe(true);
  });

  test("parameters: sizes with suffixes, ranges and unknown flags", () => {
    expect(parseSize("4G")).toBe(4 * 2 ** 30);
    expect(parseSize("64MiB")).toBe(64 * 2 ** 20);
    expect(parseSize("1.5k")).toBe(1536);
    expect(parseSize("4096")).toBe(4096);
    expect(() => parseSize("lots")).toThrow(/bad size/);
    const defs = catalogEntry("big-text").params;
    expect(parseParamArgs(defs, ["--size", "1M", "--ratio=5", "--seed", "3"])).toEqual({ size: 1 << 20, ratio: 5, seed: 3 });
    expect(() => parseParamArgs(defs, ["--files", "3"])).toThrow(/unknown option --files/);
    expect(() => parseParamArgs(catalogEntry("losf").params, ["--files", "1.5"])).toThrow(/whole number/);
    expect(catalogEntry("big-random").build({ size: 12345 }).entries).toHaveLength(1);
  });

  test("legacy TreeSpec view still serves makeTree users (quickstart), others say why not", () => {
    const tree = catalogEntry("quickstart").spec();
    expect(tree.files.length).toBe(201);
    expect(tree.emptyDirs).toEqual(expect.arrayContaining(["empty-dir", "gamma/empty nested"]));
    expect(() => catalogEntry("edge").spec()).toThrow(/makeDataset/);
  });
});
