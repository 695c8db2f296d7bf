// -C end to end: streaming zstd per data stream. Every kind of content arrives intact
// (text, random, zeros, empty, 1 byte, block ±1, mixed in one stream so RAW blocks reset
// the zstd session between compressed ones), text really travels compressed, random data
// travels raw, and -C combines with --nochecksum, -t 1 and small block sizes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_REMOTE_CMD, REPO_ROOT } from "../escp-run.ts";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { BASE, expectOk, expectSameTree, writeRandomFile } from "./e2e-helpers.ts";

let fx: SshdFixture;
let tmp = "";
let src = "";
const remote = (): string[] => [...BASE, ...fx.sshArgs, "-D", ESCP_REMOTE_CMD];
const MiB = 1 << 20;

/** Word-like text that zstd shrinks ≈ 3:1 (the big-text generator of the dataset catalog). */
function makeText(path: string, size: string): void {
  const dir = `${path}.d`;
  const r = Bun.spawnSync([process.execPath, "datasets/cli.ts", "make", "big-text", dir, "--size", size, "-q"], { cwd: REPO_ROOT, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`datasets make big-text failed: ${r.stderr.toString()}`);
  writeFileSync(path, readFileSync(join(dir, "big-text.txt")));
}

beforeAll(async () => {
  tmp = makeTmpDir("compress");
  fx = await startSshd();
  src = join(tmp, "src");
  mkdirSync(join(src, "sub"), { recursive: true });
  makeText(join(src, "text.txt"), "12M");
  await writeRandomFile(join(src, "random.bin"), 6 * MiB + 123, 3);
  writeFileSync(join(src, "zeros.bin"), new Uint8Array(5 * MiB));
  writeFileSync(join(src, "empty"), "");
  writeFileSync(join(src, "one"), "x");
  await writeRandomFile(join(src, "sub", "block-1.bin"), MiB - 1, 4);
  await writeRandomFile(join(src, "sub", "block+1.bin"), MiB + 1, 5);
  writeFileSync(join(src, "sub", "small.txt"), "hello hello hello hello hello hello\n".repeat(200));
}, 120_000);

afterAll(async () => {
  await fx?.stop();
  if (tmp) removeTmpDir(tmp);
});

interface Stage {
  stage: string;
  bytes: number;
}
interface SideMeta {
  side: string;
  stages: Stage[];
}

/** Bytes the sender put on the data sockets (the profiler's exact send total). */
function sentBytes(profile: string): number {
  const meta = (JSON.parse(readFileSync(profile, "utf8")) as { metadata: { sides: SideMeta[] } }).metadata;
  const sender = meta.sides.find((s) => s.side === "sender");
  return sender?.stages.find((s) => s.stage === "send")?.bytes ?? -1;
}

describe("-C (streaming zstd)", () => {
  for (const extra of [[], ["-t", "1"], ["--nochecksum", "--blocksize", "64K"], ["-t", "3", "--compress-level", "1"]]) {
    test(`a mixed tree arrives intact ${extra.join(" ") || "(defaults)"}`, async () => {
      const dst = join(tmp, `out-${extra.join("") || "default"}`);
      await expectOk([...remote(), "-r", "-C", ...extra, src, `${fx.user}@127.0.0.1:${dst}`]);
      await expectSameTree(src, dst);
    }, 120_000);
  }

  test("text travels compressed, random data raw (sender's wire bytes)", async () => {
    const text = join(tmp, "t.json");
    await expectOk([...remote(), "-C", "--profile", text, join(src, "text.txt"), `${fx.user}@127.0.0.1:${join(tmp, "t.out")}`]);
    expect(sentBytes(text)).toBeGreaterThan(0);
    expect(sentBytes(text)).toBeLessThan(0.6 * 12 * MiB);
    const rnd = join(tmp, "r.json");
    await expectOk([...remote(), "-C", "--profile", rnd, join(src, "random.bin"), `${fx.user}@127.0.0.1:${join(tmp, "r.out")}`]);
    expect(sentBytes(rnd)).toBeGreaterThanOrEqual(6 * MiB + 123);
    const plain = join(tmp, "p.json");
    await expectOk([...remote(), "--profile", plain, join(src, "text.txt"), `${fx.user}@127.0.0.1:${join(tmp, "p.out")}`]);
    expect(sentBytes(plain)).toBeGreaterThanOrEqual(12 * MiB);
  }, 120_000);

  test("a bad --compress-level is a usage error naming the flag", async () => {
    const { runEscp } = await import("../escp-run.ts");
    const r = await runEscp([...remote(), "-C", "--compress-level", "20", join(src, "one"), `${fx.user}@127.0.0.1:${join(tmp, "x")}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--compress-level");
  });
});
