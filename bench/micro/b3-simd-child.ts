// Child of bench/micro/blake3.ts: times escp_digest_buffer under the ESCP_B3_SIMD value of
// this process's environment (libescp.so reads it once) and prints one JSON object:
// { digest, results: ExternalResult[] }. Usage: ESCP_B3_SIMD=avx2 bun b3-simd-child.ts [--smoke]
import { do_not_optimize, measure } from "mitata";
import { loadNative } from "../../src/native/lib.ts";
import { type ExternalResult, hex, hostFacts, KiB, MiB, SMOKE_MEASURE, sizeLabel, timingOfStats } from "./common.ts";
import { b3Data, childSize, digest } from "./blake3.ts";

const smoke = process.argv.includes("--smoke");
const path = process.env.ESCP_B3_SIMD ?? "(unset)";
const lib = loadNative();
const out = new Uint8Array(32);
// libescp never runs a path the CPU lacks: it silently takes the best one it has instead.
const flags = hostFacts().cpuFlags;
const capped = (path === "avx512" && !flags.avx512f) || (path === "avx2" && !flags.avx2);
const note = capped ? `this CPU lacks ${path}: libescp ran its best supported path instead` : undefined;
const results: ExternalResult[] = [];
const size = childSize(smoke);
const big = b3Data(size);
digest(lib, big, MiB, out);
const digestHex = hex(out);
const small = b3Data(64 * KiB);
const cases: [string, Uint8Array, number][] = [
  [`b3[ESCP_B3_SIMD=${path}]: escp_digest_buffer 64 KiB (one block)`, small, 64 * KiB],
  [`b3[ESCP_B3_SIMD=${path}]: escp_digest_buffer ${sizeLabel(size)} (1 MiB blocks)`, big, MiB],
];
for (const [name, buf, block] of cases) {
  const stats = await measure(() => do_not_optimize(digest(lib, buf, block, out)), smoke ? { ...SMOKE_MEASURE } : {});
  results.push({ name, method: "child", bytesPerOp: buf.length, unit: "GB/s", timing: timingOfStats(stats), ...(note ? { note } : {}) });
}
process.stdout.write(JSON.stringify({ digest: digestHex, results }));
