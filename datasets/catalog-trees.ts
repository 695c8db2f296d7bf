// Many-file datasets: losf (65,536 files of 0–1 KiB in 8 × 8192 dirs, like the original's
// micro-files set), losf-small (its CI-sized cut), losf-4k (10,000 × 4 KiB, the small-file benchmark),
// mixed (a source-tree size spread) and small-mixed (100,000 or 1,000,000 files of 0–64 KiB in
// directories of 1,000: the files-100k / files-1m benchmarks).
import { createRng, type Rng } from "./content.ts";
import { type CatalogEntry, defineEntry } from "./entry.ts";
import type { ParamDef } from "./params.ts";
import { type Content, type Entry, file, fileSeed, type Params } from "./spec.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
export const LOSF_DIRS = 8;
export const LOSF_MAX_BYTES = KiB;

const filesParam = (def: number, help: string): ParamDef => ({ name: "files", kind: "int", default: def, min: 1, max: 10_000_000, help });
const num = (p: Params, key: string): number => p[key] as number;

/** `files` random files of 0–1 KiB (inclusive), spread evenly over d0..d7. */
function losf(p: Params, name: string): Entry[] {
  const seed = num(p, "seed");
  const files = num(p, "files");
  const perDir = Math.ceil(files / LOSF_DIRS);
  const width = String(perDir - 1).length;
  const rng = createRng(fileSeed(name, seed, "sizes"));
  const out: Entry[] = [];
  for (let i = 0; i < files; i++) {
    const path = `d${Math.floor(i / perDir)}/f${String(i % perDir).padStart(width, "0")}`;
    out.push(file(name, seed, path, rng.int(0, LOSF_MAX_BYTES), { kind: "random" }));
  }
  return out;
}

/** `files` random files of exactly 4 KiB in 10 dirs: the issue's small-file benchmark
 * (10,000 × 4 KiB), the shape peers were timed on (cp -r, rsync -e ssh, scp -r, EScp). */
function losf4k(p: Params, name: string): Entry[] {
  const seed = num(p, "seed");
  const files = num(p, "files");
  const perDir = Math.ceil(files / 10);
  const width = String(perDir - 1).length;
  const out: Entry[] = [];
  for (let i = 0; i < files; i++) {
    const path = `d${Math.floor(i / perDir)}/f${String(i % perDir).padStart(width, "0")}`;
    out.push(file(name, seed, path, 4 * KiB, { kind: "random" }));
  }
  return out;
}

/** Log-uniform integer in [lo, hi]. */
function logUniform(rng: Rng, lo: number, hi: number): number {
  const u = rng.next() / 2 ** 32;
  return Math.min(hi, Math.floor(Math.exp(Math.log(lo) + u * (Math.log(hi + 1) - Math.log(lo)))));
}

const DIR_NAMES = ["src", "lib", "internal", "pkg", "test", "docs", "util", "core", "api", "vendor", "build", "assets"];
const SMALL_EXT: [string, Content][] = [
  ["c", { kind: "text", ratio: 3 }],
  ["h", { kind: "text", ratio: 4 }],
  ["ts", { kind: "text", ratio: 3 }],
  ["md", { kind: "text", ratio: 2.5 }],
  ["o", { kind: "random" }],
];
const MEDIUM_EXT: [string, Content][] = [
  ["json", { kind: "text", ratio: 6 }],
  ["png", { kind: "random" }],
  ["a", { kind: "random" }],
];
const LARGE_EXT: [string, Content][] = [
  ["tar", { kind: "random" }],
  ["log", { kind: "text", ratio: 8 }],
  ["so", { kind: "random" }],
];
export const MIXED_DEEP_CHAIN = 24;

/** A source-tree-like spread: 0.5 % large (1–32 MiB), 15 % medium (16 KiB–1 MiB), the rest
 *  small (0–16 KiB, every 50th empty), in a random tree of depth ≤ 12 plus one 24-deep chain. */
function mixed(p: Params, name: string): Entry[] {
  const seed = num(p, "seed");
  const files = num(p, "files");
  const rng = createRng(fileSeed(name, seed, "layout"));
  const dirs: string[] = [""];
  const dirCount = Math.max(1, Math.round(files / 12));
  for (let i = 0; i < dirCount; i++) {
    const parent = rng.pick(dirs);
    const depth = parent === "" ? 0 : parent.split("/").length;
    if (depth >= 12) continue;
    dirs.push(`${parent === "" ? "" : `${parent}/`}${rng.pick(DIR_NAMES)}-${i}`);
  }
  let chain = "node_modules";
  for (let d = 1; d < MIXED_DEEP_CHAIN; d++) chain += `/${rng.pick(DIR_NAMES)}`;
  dirs.push(chain);
  const large = Math.max(1, Math.round(files * 0.005));
  const medium = Math.round(files * 0.15);
  const out: Entry[] = [];
  for (let i = 0; i < files; i++) {
    const [ext, content, size] =
      i < large
        ? ([...rng.pick(LARGE_EXT), logUniform(rng, MiB, 32 * MiB)] as const)
        : i < large + medium
          ? ([...rng.pick(MEDIUM_EXT), logUniform(rng, 16 * KiB, MiB)] as const)
          : ([...rng.pick(SMALL_EXT), i % 50 === 0 ? 0 : logUniform(rng, 1, 16 * KiB)] as const);
    const dir = i === files - 1 ? chain : rng.pick(dirs);
    out.push(file(name, seed, `${dir === "" ? "" : `${dir}/`}file-${i}.${ext}`, size, content));
  }
  return out;
}

export const SMALL_MIXED_MAX_BYTES = 64 * KiB;
/** Half of small-mixed's sizes are drawn up to this instead of 64 KiB (a lower mean). */
export const SMALL_MIXED_SMALL_BYTES = 4 * KiB;
/** Leaf directories per top-level directory of small-mixed (d0000/d00 … d0000/d99, d0001/d00 …). */
export const SMALL_MIXED_FANOUT = 100;
/** In small-mixed, files whose index is a multiple of SMALL_MIXED_EMPTY_EVERY are empty, and
 *  those whose index is SMALL_MIXED_MAX_EVERY / 2 modulo SMALL_MIXED_MAX_EVERY are exactly 64 KiB. */
export const SMALL_MIXED_EMPTY_EVERY = 100;
export const SMALL_MIXED_MAX_EVERY = 500;

/** `files` random files of 0–64 KiB: every 100th empty, every 500th exactly 64 KiB, the rest
 *  log-uniform in [1, 4 KiB] or in [1, 64 KiB] (a coin toss per file), so the median is ≈ 110 B,
 *  the mean ≈ 3.2 KiB and 1,000,000 files hold ≈ 3.3 GB (≈ 6.7 GB on disk in 4 KiB blocks). Leaf
 *  directories hold `perdir` consecutive files each (f000 … f999), 100 leaves per top-level
 *  directory: d0000/d00/f000 … d0000/d99/f999, d0001/d00/f000 … (1,000,000 files: 10 × 100 × 1000). */
function smallMixed(p: Params, name: string): Entry[] {
  const seed = num(p, "seed");
  const files = num(p, "files");
  const perDir = num(p, "perdir");
  const leaves = Math.ceil(files / perDir);
  const topWidth = Math.max(4, String(Math.ceil(leaves / SMALL_MIXED_FANOUT) - 1).length);
  const subWidth = String(SMALL_MIXED_FANOUT - 1).length;
  const fileWidth = String(perDir - 1).length;
  const rng = createRng(fileSeed(name, seed, "sizes"));
  const out: Entry[] = [];
  for (let i = 0; i < files; i++) {
    const leaf = Math.floor(i / perDir);
    const top = String(Math.floor(leaf / SMALL_MIXED_FANOUT)).padStart(topWidth, "0");
    const sub = String(leaf % SMALL_MIXED_FANOUT).padStart(subWidth, "0");
    const path = `d${top}/d${sub}/f${String(i % perDir).padStart(fileWidth, "0")}`;
    // Every file draws from the size stream, so a file's size depends only on the seed and its index.
    const upper = rng.next() < 2 ** 31 ? SMALL_MIXED_SMALL_BYTES : SMALL_MIXED_MAX_BYTES;
    const drawn = logUniform(rng, 1, upper);
    const size = i % SMALL_MIXED_EMPTY_EVERY === 0 ? 0 : i % SMALL_MIXED_MAX_EVERY === SMALL_MIXED_MAX_EVERY / 2 ? SMALL_MIXED_MAX_BYTES : drawn;
    out.push(file(name, seed, path, size, { kind: "random" }));
  }
  return out;
}

export const treeEntries: readonly CatalogEntry[] = [
  defineEntry(
    "losf",
    "65,536 random files of 0–1 KiB in 8 dirs × 8192 (the original's micro-files set)",
    [filesParam(65_536, "file count (split over 8 dirs)")],
    losf,
  ),
  defineEntry("losf-small", "losf cut to CI size: 1024 files of 0–1 KiB in 8 dirs × 128", [filesParam(1024, "file count (split over 8 dirs)")], losf),
  defineEntry(
    "losf-4k",
    "10,000 random files of exactly 4 KiB in 10 dirs (the small-file benchmark)",
    [filesParam(10_000, "file count (split over 10 dirs)")],
    losf4k,
  ),
  defineEntry("mixed", "source-tree spread: many small text files, some medium, a few large; deep nesting", [filesParam(1000, "file count")], mixed),
  defineEntry(
    "small-mixed",
    "100,000 random files of 0–64 KiB (log-uniform-ish, mean ≈ 3.2 KiB; every 100th empty, every 500th 64 KiB) in dirs of 1,000 (d0000/d00/f000)",
    [
      filesParam(100_000, "file count"),
      { name: "perdir", kind: "int", default: 1000, min: 1, max: 1_000_000, help: "files per leaf directory (100 leaves per top-level dir)" },
    ],
    smallMixed,
  ),
];
