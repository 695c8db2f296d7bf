// Smoke test of the micro benchmarks (bench/micro): `bun run bench:micro --smoke` must finish,
// write its JSON with every topic's cases carrying positive numbers, and report that the
// outputs it timed were verified (seal→open, zstd round trips, BLAKE3 equal to b3sum's).
// No timing thresholds: this machine is shared and noisy.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { symbols } from "../../src/native/symbols.ts";
import { simdHonoured } from "../../bench/micro/blake3.ts";
import { type CaseResult, SCHEMA, TOPICS } from "../../bench/micro/run.ts";

const REPO = resolve(import.meta.dir, "..", "..");
const dir = makeTmpDir("bench-micro-test");
afterAll(() => removeTmpDir(dir));

interface Doc {
  schema: string;
  mode: string;
  topics: string[];
  host: { cpuModel: string; cpuFlags: Record<string, boolean>; kernel: string; bun: string };
  cases: CaseResult[];
  checks: { topic: string; name: string; ok: boolean; detail: string }[];
  skipped: { topic: string; name: string; reason: string }[];
}

describe("bench:micro --smoke", () => {
  const out = join(dir, "micro.json");
  let doc: Doc;
  let stdout = "";

  test("runs and writes its JSON", async () => {
    const p = Bun.spawn(["bun", "run", "bench:micro", "--smoke", "--out", out], {
      cwd: REPO,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [o, e, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    stdout = o;
    if (code !== 0) console.log(o, e);
    expect(code).toBe(0);
    expect(existsSync(out)).toBe(true);
    doc = JSON.parse(readFileSync(out, "utf8")) as Doc;
    expect(doc.schema).toBe(SCHEMA);
    expect(doc.mode).toBe("smoke");
  }, 60_000);

  test("host facts", () => {
    expect(doc.host.cpuModel.length).toBeGreaterThan(0);
    expect(typeof doc.host.cpuFlags.aes).toBe("boolean");
    expect(typeof doc.host.cpuFlags.avx2).toBe("boolean");
    expect(typeof doc.host.cpuFlags.avx512f).toBe("boolean");
    expect(doc.host.kernel.length).toBeGreaterThan(0);
    expect(doc.host.bun).toBe(Bun.version);
  });

  test("every topic has cases with positive numbers", () => {
    expect(doc.topics).toEqual([...TOPICS]);
    for (const topic of TOPICS) {
      const cases = doc.cases.filter((c) => c.topic === topic);
      expect(cases.length).toBeGreaterThan(0);
      for (const c of cases) {
        for (const v of [c.avgNs, c.p75Ns, c.p99Ns, c.opsPerSec]) {
          expect(Number.isFinite(v)).toBe(true);
          expect(v).toBeGreaterThan(0);
        }
        expect(c.samples).toBeGreaterThan(0);
        if (c.bytesPerOp > 0 && c.unit !== null) expect(c.throughput ?? 0).toBeGreaterThan(0);
        if (c.ratio !== undefined) expect(c.ratio).toBeGreaterThan(0);
      }
    }
    const names = doc.cases.map((c) => c.name);
    for (const want of [
      /^ffi: escp_abi_version/,
      /^ring: fill 256 \+ escp_event_poll/,
      /^ring: fill 256 \+ NativeSession\.drain/,
      /^crypto: seal DATA 64 KiB$/,
      /^crypto: open DATA 64 KiB$/,
      /^b3: escp_digest_buffer/,
      /^zstd\[text\]: zstd-napi compress/,
      /^zstd\[random\]: zstd-napi compress/,
      /^frame: ctl encode fileList/,
      /^frame: ctl decode fileList/,
      /^frame: seal DATA 0 B/,
    ]) {
      expect(names.some((n) => want.test(n))).toBe(true);
    }
    const ring = doc.cases.find((c) => c.name.startsWith("ring: fill 256 + escp_event_poll"));
    expect(ring?.nsPerItem ?? 0).toBeGreaterThan(0);
    expect(doc.cases.find((c) => c.name === "crypto: seal DATA 64 KiB")?.netThroughput ?? 0).toBeGreaterThan(0);
  });

  test("every output the bench timed was verified", () => {
    const failed = doc.checks.filter((c) => !c.ok);
    expect(failed).toEqual([]);
    const names = doc.checks.map((c) => c.name);
    const has = (re: RegExp) => expect(names.filter((n) => re.test(n)).length).toBeGreaterThan(0);
    has(/^crypto: seal→open 64 KiB verified$/);
    has(/^crypto: seal→open 256 KiB verified$/);
    has(/^frame: DATA 0 B payload seal→open verified$/);
    has(/^zstd\[text\]: zstd-napi round-trips$/);
    has(/^zstd\[random\]: zstd-napi round-trips$/);
    has(/^frame: control fileList .* round-trips$/);
    has(/^ffi: events_fill/);
    if (Bun.which("b3sum")) {
      has(/^b3: escp_digest_buffer 64 KiB equals b3sum$/);
      has(/^b3: escp_digest_buffer .* \(1 MiB blocks\) equals b3sum$/);
      expect(doc.cases.some((c) => c.method === "spawn" && c.name.startsWith("b3: b3sum"))).toBe(true);
    }
  });

  test("native zstd and per-path BLAKE3 cases run when the library has them, else are reported skipped", () => {
    const gen = symbols as unknown as Record<string, unknown>;
    const skipped = doc.skipped.map((s) => s.name);
    const checks = doc.checks.map((c) => c.name);
    if ("escp_zstd_block" in gen) {
      expect(checks).toContain("zstd[text]: escp_zstd_block round-trips (zstd-napi decodes it)");
      expect(doc.cases.some((c) => c.name.startsWith("zstd[text]: native escp_zstd_block"))).toBe(true);
    } else {
      expect(skipped).toContain("zstd: native escp_zstd_block");
    }
    if ("escp_zc_new" in gen) {
      expect(checks).toContain("zstd[text]: escp_zc stream round-trips");
      expect(doc.cases.some((c) => c.name.startsWith("zstd[text]: native escp_zc stream compress"))).toBe(true);
    } else {
      expect(skipped).toContain("zstd: native escp_zc stream");
    }
    if (simdHonoured()) {
      expect(doc.cases.filter((c) => c.method === "child").length).toBeGreaterThan(0);
    } else {
      expect(skipped).toContain("b3: per-path ESCP_B3_SIMD cases");
    }
    expect(stdout).toContain("wrote ");
  });
});
