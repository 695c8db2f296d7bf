// Arbitrary valid escp configurations for the property tests and their command-line form
// (threads, block size, sparse, O_DIRECT, checksum, -p, -C; the I/O engine is chosen per property).
import fc from "fast-check";

export const BLOCK_SIZES = { "64K": 64 << 10, "128K": 128 << 10, "1M": 1 << 20 } as const;
export type BlockSizeName = keyof typeof BLOCK_SIZES;

export interface RunConfig {
  threads: number; // 1..8
  blockSize: BlockSizeName;
  sparse: boolean;
  nodirect: boolean;
  checksum: boolean;
  preserve: boolean; // -p
  compress: boolean; // -C: only warns today, must not change the result
  engine: "posix" | "dummy";
}

const common = {
  threads: fc.integer({ min: 1, max: 8 }),
  blockSize: fc.constantFrom<BlockSizeName>("64K", "128K", "1M"),
  sparse: fc.boolean(),
  nodirect: fc.boolean(),
  checksum: fc.boolean(),
  preserve: fc.boolean(),
  compress: fc.boolean(),
};

/** Configurations that write files (posix engine). */
export const posixConfig: fc.Arbitrary<RunConfig> = fc.record({ ...common, engine: fc.constant("posix" as const) });
/** The dummy engine: data crosses the wire but the receiver writes no file. */
export const dummyConfig: fc.Arbitrary<RunConfig> = fc.record({ ...common, engine: fc.constant("dummy" as const) });

export function blockBytes(c: RunConfig): number {
  return BLOCK_SIZES[c.blockSize];
}

/** escp flags for `c` (without -q, ports, sources and destination). */
export function configArgs(c: RunConfig): string[] {
  const a = ["-r", "-t", String(c.threads), "--blocksize", c.blockSize, "--ioengine", c.engine];
  if (c.sparse) a.push("--sparse");
  if (c.nodirect) a.push("--nodirect");
  if (!c.checksum) a.push("--nochecksum");
  if (c.preserve) a.push("-p");
  if (c.compress) a.push("-C");
  return a;
}
