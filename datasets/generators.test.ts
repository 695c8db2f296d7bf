// Content generators: each kind is deterministic and chunking-independent, text compresses
// to ≈ the requested ratio under zstd -3, sparse files really have holes.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../harness/tmp-dir.ts";
import { catalogEntry } from "./catalog.ts";
import { entryChunks, writeFileEntry } from "./generators.ts";
import { type Content, type FileEntry, file } from "./spec.ts";
import { TextSource } from "./text.ts";

const tmp = makeTmpDir("datasets-gen");
afterAll(() => removeTmpDir(tmp));

const MiB = 1 << 20;
const KINDS: [string, Content][] = [
  ["random", { kind: "random" }],
  ["text", { kind: "text", ratio: 3 }],
  ["zero", { kind: "zero" }],
  [
    "sparse",
    {
      kind: "sparse",
      islands: [
        { offset: 1, length: 999 },
        { offset: 1_500_001, length: 70_001 },
      ],
    },
  ],
];

function streamOf(entry: FileEntry, chunkBytes: number): Buffer {
  const parts: Buffer[] = [];
  for (const chunk of entryChunks(entry, chunkBytes)) parts.push(Buffer.from(chunk)); // copy: views are reused
  return Buffer.concat(parts);
}

describe("generators", () => {
  for (const [label, content] of KINDS) {
    test(`${label}: same spec + seed → identical bytes; disk = stream; chunking irrelevant`, () => {
      const size = 2 * MiB + 12_345;
      const a = file("gen-test", 0, `${label}.bin`, size, content);
      const b = file("gen-test", 0, `${label}.bin`, size, content); // built afresh
      const other = file("gen-test", 1, `${label}.bin`, size, content); // another --seed
      writeFileEntry(join(tmp, `${label}-a`), a);
      writeFileEntry(join(tmp, `${label}-b`), b);
      const onDisk = readFileSync(join(tmp, `${label}-a`));
      expect(onDisk.length).toBe(size);
      expect(onDisk.equals(readFileSync(join(tmp, `${label}-b`)))).toBe(true);
      expect(streamOf(a, MiB).equals(onDisk)).toBe(true);
      expect(streamOf(a, 65_537).equals(onDisk)).toBe(true);
      if (label !== "zero") expect(streamOf(other, MiB).equals(onDisk)).toBe(false);
      else expect(onDisk.every((x) => x === 0)).toBe(true);
    });
  }

  test("text: random access at odd offsets matches the sequential stream", () => {
    const src = new TextSource(77, 4);
    const whole = new Uint8Array(300_000);
    src.fill(0, whole);
    const part = new Uint8Array(100_003);
    new TextSource(77, 4).fill(131_071, part);
    expect(Buffer.from(part).equals(Buffer.from(whole.subarray(131_071, 231_074)))).toBe(true);
    expect(whole.every((x) => x === 0x0a || (x >= 0x20 && x < 0x7f))).toBe(true); // printable
  });

  const hasZstd = Bun.which("zstd") !== null;
  test.skipIf(!hasZstd)("text: zstd -3 ratio ≈ requested (±30 %)", () => {
    for (const ratio of [1.5, 3, 8, 20]) {
      const path = join(tmp, `ratio-${ratio}.txt`);
      writeFileEntry(path, file("gen-test", 0, "r.txt", 8 * MiB, { kind: "text", ratio }));
      const z = Bun.spawnSync(["zstd", "-3", "-q", "-c", path], { stdout: "pipe" });
      expect(z.exitCode).toBe(0);
      const actual = (8 * MiB) / z.stdout.length;
      expect(actual).toBeGreaterThan(ratio * 0.7);
      expect(actual).toBeLessThan(ratio * 1.3);
    }
  });

  test("text: out-of-range ratios are refused", () => {
    expect(() => new TextSource(1, 1)).toThrow(/ratio/);
    expect(() => catalogEntry("big-text").build({ ratio: 1000 })).toThrow(/--ratio/);
  });

  test("sparse: holes exist (stat blocks), islands sit at odd offsets, bytes match", () => {
    const spec = catalogEntry("sparse").build({ size: 16 * MiB });
    const dir = join(tmp, "sparse");
    mkdirSync(dir);
    for (const e of spec.entries) {
      if (e.kind !== "file") continue;
      expect(e.content.kind).toBe("sparse");
      if (e.content.kind !== "sparse") continue;
      for (const i of e.content.islands) expect(i.offset % 2).toBe(1);
      const path = join(dir, e.path);
      writeFileEntry(path, e);
      const st = statSync(path);
      const data = e.content.islands.reduce((s, i) => s + i.length, 0);
      expect(st.size).toBe(16 * MiB);
      expect(st.blocks * 512).toBeLessThan(st.size / 2); // mostly holes
      expect(st.blocks * 512).toBeLessThanOrEqual(data + e.content.islands.length * 2 * 4096 + 4096);
      expect(streamOf(e, MiB).equals(readFileSync(path))).toBe(true);
    }
    const main = spec.entries.find((e) => e.path === "sparse.bin");
    if (main?.kind !== "file" || main.content.kind !== "sparse") throw new Error("no sparse.bin");
    const last = main.content.islands.at(-1);
    expect(last && last.offset + last.length).toBe(16 * MiB); // ends in data
    expect(statSync(join(dir, "holes-only.bin")).blocks).toBe(0);
  });
});
