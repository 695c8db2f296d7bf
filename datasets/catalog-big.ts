// Single-file datasets: big-random (incompressible), big-text (compressible, tunable ratio),
// big-zero (written zeros) and sparse (holes via ftruncate, data islands at odd offsets).
import { createRng, type Rng } from "./content.ts";
import { type CatalogEntry, defineEntry } from "./entry.ts";
import type { ParamDef } from "./params.ts";
import { file, fileSeed, type Island } from "./spec.ts";
import { MAX_TEXT_RATIO, MIN_TEXT_RATIO } from "./text.ts";

const MiB = 2 ** 20;
const DEFAULT_SIZE = 256 * MiB;
const MAX_SIZE = 2 ** 44; // 16 TiB

function sizeParam(min: number, help: string): ParamDef {
  return { name: "size", kind: "size", default: DEFAULT_SIZE, min, max: MAX_SIZE, help };
}

const num = (p: Readonly<Record<string, number>>, key: string): number => p[key] as number;

/** `count` islands spread over [0, limit): one per equal region, odd offset in the region's
 *  first half, odd length of at most a quarter of the region (≤ 1 MiB + 1), so every region
 *  keeps a hole of ≥ a quarter region. */
function islands(rng: Rng, limit: number, count: number): Island[] {
  const region = Math.floor(limit / count);
  const out: Island[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * region + rng.int(0, Math.floor(region / 2));
    const offset = at - (at % 2) + 1; // odd (no `| 1`: offsets pass 2^31)
    const length = rng.int(1, Math.min(MiB, Math.floor(region / 4))) | 1;
    out.push({ offset, length });
  }
  return out;
}

const SPARSE_ISLANDS = 16;

export const bigEntries: readonly CatalogEntry[] = [
  defineEntry("big-random", "one incompressible file (byte N depends only on seed and N)", [sizeParam(0, "file size")], (p, name) => [
    file(name, num(p, "seed"), "big-random.bin", num(p, "size"), { kind: "random" }),
  ]),
  defineEntry(
    "big-text",
    "one word-like text file that compresses ≈ --ratio:1 with zstd -3",
    [sizeParam(0, "file size"), { name: "ratio", kind: "number", default: 3, min: MIN_TEXT_RATIO, max: MAX_TEXT_RATIO, help: "target zstd -3 ratio" }],
    (p, name) => [file(name, num(p, "seed"), "big-text.txt", num(p, "size"), { kind: "text", ratio: num(p, "ratio") })],
  ),
  defineEntry("big-zero", "one file of written zeros (real blocks, no holes)", [sizeParam(0, "file size")], (p, name) => [
    file(name, num(p, "seed"), "big-zero.bin", num(p, "size"), { kind: "zero" }),
  ]),
  defineEntry(
    "sparse",
    "sparse files: 16 odd-offset random islands ending at EOF, islands then a tail hole, all hole",
    [sizeParam(MiB, "apparent size of each file")],
    (p, name) => {
      const seed = num(p, "seed");
      const size = num(p, "size");
      const rng = createRng(fileSeed(name, seed, "islands"));
      const main = islands(rng, size, SPARSE_ISLANDS);
      const tailLen = rng.int(1, 4096) | 1;
      main[SPARSE_ISLANDS - 1] = { offset: size - tailLen, length: tailLen }; // ends in data
      const headHalf = islands(rng, Math.floor(size / 2), SPARSE_ISLANDS / 2);
      return [
        file(name, seed, "sparse.bin", size, { kind: "sparse", islands: main }),
        file(name, seed, "sparse-tail-hole.bin", size, { kind: "sparse", islands: headHalf }),
        file(name, seed, "holes-only.bin", size, { kind: "sparse", islands: [] }),
      ];
    },
  ),
];
