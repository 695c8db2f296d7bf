// BLAKE3 through escp's own hasher (escp_digest_buffer: per block of block_size bytes as a
// complete subtree, merged the way the data path merges them) against the reference `b3sum`
// binary on a file of the same bytes. b3sum is a process: its start-up is timed on an empty
// file and subtracted for its net rate. With ESCP_B3_SIMD honoured by libescp.so (the
// variable's name is in the binary), each path is timed in a child bun process, since the
// library reads the choice once.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { do_not_optimize } from "mitata";
import { libraryPath, loadNative } from "../../src/native/lib.ts";
import { ESCP_OK } from "../../src/native/symbols.ts";
import { check, type Ctx, emptyTopic, type ExternalResult, hex, KiB, MiB, sizeLabel, spawnText, timingOf, type Topic } from "./common.ts";

export const SIMD_VALUES = ["portable", "avx2", "avx512"] as const;
const CHILD = resolve(import.meta.dir, "b3-simd-child.ts");

/** Deterministic pseudo-random bytes: a random tile repeated (BLAKE3 does not care). */
export function b3Data(size: number, tile = Math.min(size, 4 * MiB)): Uint8Array {
  const out = new Uint8Array(size);
  let x = 0x9e3779b9;
  const words = new Uint32Array(out.buffer, 0, tile >>> 2);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let o = tile; o < size; o += tile) out.copyWithin(o, 0, Math.min(tile, size - o));
  return out;
}

export function digest(lib: ReturnType<typeof loadNative>, buf: Uint8Array, blockSize: number, out: Uint8Array): number {
  return lib.escp_digest_buffer(buf, buf.length, blockSize, 0, out);
}

async function b3sumHex(path: string, threads?: number): Promise<string> {
  const args = ["b3sum", "--no-names", ...(threads ? ["--num-threads", String(threads)] : []), path];
  return (await spawnText(args)).trim();
}

async function timeSpawn(argv: string[], reps: number): Promise<number[]> {
  const ns: number[] = [];
  for (let i = 0; i < reps + 1; i++) {
    const t0 = Bun.nanoseconds();
    await spawnText(argv);
    if (i > 0) ns.push(Bun.nanoseconds() - t0); // the first run warms the page cache / binary
  }
  return ns;
}

export function simdHonoured(): boolean {
  try {
    return readFileSync(libraryPath()).includes("ESCP_B3_SIMD");
  } catch {
    return false;
  }
}

export async function setup(ctx: Ctx): Promise<Topic> {
  const t = emptyTopic();
  const lib = loadNative();
  const out = new Uint8Array(32);
  const sizes = ctx.smoke ? [64 * KiB, MiB] : [64 * KiB, MiB, 4 * MiB];
  const bigSize = ctx.smoke ? 8 * MiB : 256 * MiB;
  const haveB3sum = Bun.which("b3sum") !== null;
  if (!haveB3sum) t.skipped.push({ name: "b3: b3sum cases", reason: "b3sum is not installed (apt-get install b3sum)" });

  for (const size of sizes) {
    const buf = b3Data(size);
    const label = sizeLabel(size);
    const st = digest(lib, buf, size, out);
    if (haveB3sum) {
      const file = join(ctx.tmp, `b3-${size}.bin`);
      writeFileSync(file, buf);
      const ref = await b3sumHex(file);
      check(t, `b3: escp_digest_buffer ${label} equals b3sum`, st === ESCP_OK && hex(out) === ref, `escp ${hex(out)} b3sum ${ref}`);
    }
    t.cases.push({
      name: `b3: escp_digest_buffer ${label} (one block)`,
      bytesPerOp: size,
      unit: "GB/s",
      fn: () => do_not_optimize(digest(lib, buf, size, out)),
    });
  }

  const big = b3Data(bigSize);
  const bigLabel = sizeLabel(bigSize);
  const bigFile = join(ctx.tmp, "b3-big.bin");
  const emptyFile = join(ctx.tmp, "b3-empty.bin");
  writeFileSync(bigFile, big);
  writeFileSync(emptyFile, new Uint8Array(0));
  const bst = digest(lib, big, MiB, out);
  const bigHex = hex(out);
  if (haveB3sum) {
    const ref = await b3sumHex(bigFile, 1);
    check(t, `b3: escp_digest_buffer ${bigLabel} (1 MiB blocks) equals b3sum`, bst === ESCP_OK && bigHex === ref, `escp ${bigHex} b3sum ${ref}`);
  }
  t.cases.push({
    name: `b3: escp_digest_buffer ${bigLabel} (1 MiB blocks)`,
    bytesPerOp: bigSize,
    unit: "GB/s",
    fn: () => do_not_optimize(digest(lib, big, MiB, out)),
  });

  const honoured = simdHonoured();
  if (!honoured) {
    t.skipped.push({ name: "b3: per-path ESCP_B3_SIMD cases", reason: `${libraryPath()} does not read ESCP_B3_SIMD (the name is not in the binary)` });
  }

  t.external = async (c: Ctx): Promise<ExternalResult[]> => {
    const res: ExternalResult[] = [];
    if (haveB3sum) {
      const reps = c.smoke ? 2 : 8;
      const start = "b3: b3sum --num-threads 1 empty file (process start)";
      res.push({ name: start, method: "spawn", bytesPerOp: 0, timing: timingOf(await timeSpawn(["b3sum", "--num-threads", "1", emptyFile], reps)) });
      const mid = join(c.tmp, `b3-${sizes[sizes.length - 1]}.bin`);
      const midSize = sizes[sizes.length - 1] as number;
      res.push({
        name: `b3: b3sum --num-threads 1 ${sizeLabel(midSize)} file`,
        method: "spawn",
        bytesPerOp: midSize,
        unit: "GB/s",
        overheadOf: start,
        timing: timingOf(await timeSpawn(["b3sum", "--num-threads", "1", mid], reps)),
      });
      res.push({
        name: `b3: b3sum --num-threads 1 ${bigLabel} file`,
        method: "spawn",
        bytesPerOp: bigSize,
        unit: "GB/s",
        overheadOf: start,
        timing: timingOf(await timeSpawn(["b3sum", "--num-threads", "1", bigFile], c.smoke ? 2 : 5)),
        note: "file in page cache (b3sum mmaps it)",
      });
      res.push({
        name: `b3: b3sum (all ${navigator.hardwareConcurrency} threads) ${bigLabel} file`,
        method: "spawn",
        bytesPerOp: bigSize,
        unit: "GB/s",
        overheadOf: start,
        timing: timingOf(await timeSpawn(["b3sum", bigFile], c.smoke ? 2 : 5)),
      });
    }
    if (honoured) {
      for (const v of SIMD_VALUES) {
        const env = { ...process.env, ESCP_B3_SIMD: v };
        let parsed: { digest: string; results: ExternalResult[]; note?: string };
        try {
          parsed = JSON.parse(await spawnText(["bun", CHILD, ...(c.smoke ? ["--smoke"] : [])], env)) as typeof parsed;
        } catch (e) {
          t.skipped.push({ name: `b3: ESCP_B3_SIMD=${v}`, reason: (e as Error).message.slice(0, 300) });
          continue;
        }
        const want = hex(childRef(lib, c.smoke));
        check(t, `b3: ESCP_B3_SIMD=${v} digest equals the default path`, parsed.digest === want, `child ${parsed.digest} parent ${want}`);
        res.push(...parsed.results);
      }
    }
    return res;
  };
  return t;
}

/** What the child hashes (b3-simd-child.ts): the digest the parent expects of it. */
export function childSize(smoke: boolean): number {
  return smoke ? MiB : 4 * MiB;
}

function childRef(lib: ReturnType<typeof loadNative>, smoke: boolean): Uint8Array {
  const out = new Uint8Array(32);
  const size = childSize(smoke);
  digest(lib, b3Data(size), MiB, out);
  return out;
}
