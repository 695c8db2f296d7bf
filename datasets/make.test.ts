// Materialization end to end: edge entries have the right types and modes on disk, manifest
// BLAKE3 equals b3sum, making twice gives identical manifests, `make` guards non-empty dirs.
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { b3sum } from "../harness/b3sum.ts";
import { makeTmpDir, removeTmpDir } from "../harness/tmp-dir.ts";
import { catalogEntry } from "./catalog.ts";
import { EDGE_BLOCKS, NAME_255_ASCII, NAME_255_UTF8 } from "./catalog-edge.ts";
import { makeDataset } from "./make.ts";
import { formatManifest, type ManifestRecord } from "./manifest.ts";

const tmp = makeTmpDir("datasets-make");
afterAll(() => removeTmpDir(tmp));
const CLI = resolve(import.meta.dir, "cli.ts");

async function make(name: string, dir: string, given: Partial<Record<string, number>> = {}): Promise<ManifestRecord[]> {
  return makeDataset(catalogEntry(name).build(given), dir, { manifestPath: `${dir}.manifest.json` });
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync([process.execPath, CLI, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("make", () => {
  const edgeDir = join(tmp, "edge-a");
  let edge: ManifestRecord[] = [];

  test("edge: every case exists on disk with the right type and mode", async () => {
    edge = await make("edge", edgeDir);
    const at = (p: string): string => join(edgeDir, p);
    expect(lstatSync(at("links/to-file")).isSymbolicLink()).toBe(true);
    expect(statSync(at("links/to-file")).isFile()).toBe(true);
    expect(statSync(at("links/to-dir")).isDirectory()).toBe(true);
    expect(readlinkSync(at("links/dangling"))).toBe("../does-not-exist");
    expect(() => statSync(at("links/dangling"))).toThrow(); // dangling
    expect(lstatSync(at("special/fifo")).isFIFO()).toBe(true);
    expect(lstatSync(at(NAME_255_ASCII)).size).toBe(255);
    expect(lstatSync(at(`long-names/${NAME_255_UTF8}`)).isFile()).toBe(true);
    expect(lstatSync(at("readonly/ro-0444.txt")).mode & 0o7777).toBe(0o444);
    expect(lstatSync(at("readonly/ro-0400.bin")).mode & 0o7777).toBe(0o400);
    expect(lstatSync(at("modes/exec-0755.sh")).mode & 0o7777).toBe(0o755);
    expect(lstatSync(at("empty-file")).size).toBe(0);
    expect(lstatSync(at("empty-dir")).isDirectory()).toBe(true);
    for (const [label, b] of EDGE_BLOCKS) expect(lstatSync(at(`blocks/${label}-plus-1.bin`)).size).toBe(b + 1);
    const deep = edge.filter((r) => r.path.endsWith("bottom.txt"))[0];
    expect(deep && lstatSync(at(deep.path)).isFile()).toBe(true);
    // the manifest says the same
    const byPath = new Map(edge.map((r) => [r.path, r]));
    expect(byPath.get("special/fifo")?.type).toBe("fifo");
    expect(byPath.get("links/to-dir")).toMatchObject({ type: "symlink", target: "../nested" });
    expect(byPath.get("readonly/ro-0444.txt")?.mode).toBe("0444");
    expect(readFileSync(`${edgeDir}.manifest.json`, "utf8")).toBe(formatManifest(edge));
  });

  test("manifest BLAKE3 equals b3sum", async () => {
    const picks = ["blocks/4M-plus-1.bin", "ünïcödé 名前 ✓.dat", "empty-file", NAME_255_ASCII, "readonly/ro-0400.bin"];
    for (const p of picks) {
      const rec = edge.find((r) => r.path === p);
      expect(rec?.blake3).toBe(await b3sum(join(edgeDir, p)));
    }
    expect(edge.filter((r) => r.type === "file").every((r) => /^[0-9a-f]{64}$/.test(r.blake3 ?? ""))).toBe(true);
  });

  test("same name + params + seed → identical manifest; another seed differs", async () => {
    expect(await make("edge", join(tmp, "edge-b"))).toEqual(edge);
    for (const [name, given] of [
      ["losf-small", { files: 200 }],
      ["sparse", { size: 2 << 20 }],
      ["big-text", { size: 3 << 20, ratio: 4 }],
      ["big-random", { size: (1 << 20) + 3 }],
      ["big-zero", { size: 1 << 20 }],
      ["mixed", { files: 60 }],
    ] as const) {
      const a = await make(name, join(tmp, `${name}-1`), given);
      const b = await make(name, join(tmp, `${name}-2`), given);
      expect(formatManifest(b)).toBe(formatManifest(a));
      if (name !== "big-zero") expect(formatManifest(await make(name, join(tmp, `${name}-3`), { ...given, seed: 7 }))).not.toBe(formatManifest(a));
    }
  });

  test("losf-small (default) materializes 1024 files in 8 dirs", async () => {
    const recs = await make("losf-small", join(tmp, "losf-small"));
    expect(recs.filter((r) => r.type === "file").length).toBe(1024);
    expect(recs.filter((r) => r.type === "dir").length).toBe(8);
    expect(recs.every((r) => r.type !== "file" || (r.size >= 0 && r.size <= 1024))).toBe(true);
  });

  test("cli: make refuses a non-empty dir (non-zero, clear message) unless --force", () => {
    const dir = join(tmp, "busy");
    mkdirSync(dir);
    writeFileSync(join(dir, "keep.txt"), "x");
    const refused = cli(["make", "big-random", dir, "--size", "4K", "-q"]);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("not empty");
    expect(() => lstatSync(join(dir, "big-random.bin"))).toThrow();
    const forced = cli(["make", "big-random", dir, "--size", "4K", "-q", "--force", "--manifest", join(tmp, "busy.json")]);
    expect(forced.code).toBe(0);
    expect(forced.out).toBe(""); // -q and not a TTY: silent
    expect(lstatSync(join(dir, "big-random.bin")).size).toBe(4096);
    const recs = JSON.parse(readFileSync(join(tmp, "busy.json"), "utf8")) as ManifestRecord[];
    expect(recs).toHaveLength(1);
  });

  test("cli: default manifest at DIR/../NAME.manifest.json, list, usage errors", () => {
    const made = cli(["make", "big-zero", join(tmp, "z", "zero-dir"), "--size", "1K"]);
    expect(made.code).toBe(0);
    expect(made.out).toContain("made big-zero");
    expect(made.out).not.toContain("\r"); // no bar when stdout is not a TTY
    const recs = JSON.parse(readFileSync(join(tmp, "z", "big-zero.manifest.json"), "utf8")) as ManifestRecord[];
    expect(recs[0]).toMatchObject({ path: "big-zero.bin", type: "file", size: 1024, mode: "0644" });
    const listed = cli(["list"]);
    expect(listed.code).toBe(0);
    for (const n of ["big-random", "losf", "edge", "mixed"]) expect(listed.out).toContain(n);
    expect(cli(["make", "no-such-set", join(tmp, "n")]).err).toContain("unknown dataset");
    expect(cli(["make", "big-random", join(tmp, "n"), "--ratio", "3"]).code).not.toBe(0);
    expect(cli(["frobnicate"]).code).toBe(2);
  });
});
