// CPU facts both benchmark suites record: model, cores, the instruction-set flags that
// decide escp's speed (AES-NI/VAES for AES-GCM, AVX2/AVX-512 for BLAKE3), memory, kernel.
import { readFileSync } from "node:fs";
import { availableParallelism, release, totalmem } from "node:os";

const FLAGS = ["aes", "pclmulqdq", "avx2", "avx512f", "avx512vl", "vaes", "vpclmulqdq", "sha_ni"] as const;

export interface CpuFacts {
  cpuModel: string;
  nproc: number;
  cpuFlags: Record<string, boolean>;
  memGiB: number;
  kernel: string;
}

export function cpuFacts(): CpuFacts {
  let info = "";
  try {
    info = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // not Linux: flags stay false, the model unknown
  }
  const have = new Set((/^flags\s*:\s*(.+)$/m.exec(info)?.[1] ?? "").split(/\s+/));
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? "unknown",
    nproc: availableParallelism(),
    cpuFlags: Object.fromEntries(FLAGS.map((f) => [f, have.has(f)])),
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
  };
}
