// File content for the property tests: sizes stated relative to the block size (so one tree
// lands on block boundaries whatever size the config picks) and how the bytes are laid out.
import { open, truncate, writeFile } from "node:fs/promises";
import fc from "fast-check";
import { writeRandomFile } from "../../datasets/materialize.ts";

/** size = max(0, blocks * B + delta): 0-byte files, B-1 / B / B+1, 2B+small, tiny files. */
export interface SizeSpec {
  blocks: number;
  delta: number;
}

/** random: seeded pseudo-random bytes; zeros: all zero; holes: a sparse file (truncate) with
 *  small data islands at fractions of its size and a 3-byte tail. */
export type Layout = "random" | "zeros" | "holes";

export interface ContentSpec {
  size: SizeSpec;
  layout: Layout;
  seed: number;
}

export function sizeOf(s: SizeSpec, blockSize: number): number {
  return Math.max(0, s.blocks * blockSize + s.delta);
}

export const sizeSpec: fc.Arbitrary<SizeSpec> = fc.record({
  blocks: fc.integer({ min: 0, max: 3 }),
  delta: fc.oneof(fc.constantFrom(-1, 0, 1), fc.integer({ min: -4097, max: 4097 })),
});

export const contentSpec: fc.Arbitrary<ContentSpec> = fc.record({
  size: sizeSpec,
  layout: fc.constantFrom<Layout>("random", "random", "zeros", "holes"),
  seed: fc.nat({ max: 1_000_000 }),
});

/** Writes `c` to `path` (created or truncated) for block size `blockSize`. */
export async function writeContent(path: string, c: ContentSpec, blockSize: number): Promise<void> {
  const size = sizeOf(c.size, blockSize);
  if (c.layout === "random") return writeRandomFile(path, size, c.seed);
  await writeFile(path, "");
  await truncate(path, size);
  if (c.layout === "zeros" || size === 0) return;
  const fh = await open(path, "r+");
  try {
    const island = Buffer.alloc(Math.min(size, 1000), (c.seed % 251) + 1);
    for (const frac of [0.1, 0.55]) {
      const off = Math.floor(size * frac);
      await fh.write(island, 0, Math.min(island.length, size - off), off);
    }
    const tail = Buffer.from("end").subarray(0, Math.min(3, size));
    await fh.write(tail, 0, tail.length, size - tail.length);
  } finally {
    await fh.close();
  }
}
