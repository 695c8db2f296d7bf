// The encoded-size bounds really bound what encodeControl produces (ASCII and multi-byte names,
// 4,095-byte worst cases), and batches cut by them always fit one native control message.
import { describe, expect, test } from "bun:test";
import { ESCP_CTL_MAX } from "../native/symbols.ts";
import { batchBytes, cutBatches, fileEntryBytes, verdictBytes } from "./batch-bytes.ts";
import { decodeControl, encodeControl, MAX_BATCH, MAX_CONTROL_BYTES, type FileEntry, type FileResultMsg } from "./messages.ts";

/** `bytes` UTF-8 bytes made of `ch` (1–4 bytes each), topped up with ASCII. */
function textOf(ch: string, bytes: number): string {
  const w = Buffer.byteLength(ch, "utf8");
  return ch.repeat(Math.floor(bytes / w)) + "x".repeat(bytes % w);
}

const MAXED = {
  fino: Number.MAX_SAFE_INTEGER,
  size: Number.MAX_SAFE_INTEGER,
  mode: 0o177777,
  mtimeSec: -Number.MAX_SAFE_INTEGER,
  mtimeNsec: 999_999_999,
  atimeSec: Number.MAX_SAFE_INTEGER,
  atimeNsec: 999_999_999,
  ino: Number.MAX_SAFE_INTEGER,
};

function entry(name: string, dst?: string): FileEntry {
  return { ...MAXED, kind: "file", name, ...(dst === undefined ? {} : { dst }) };
}

function result(message: string): FileResultMsg {
  return {
    type: "fileResult",
    fino: Number.MAX_SAFE_INTEGER,
    code: "E_REJECTED_PATH",
    errno: 0x7fffffff,
    message,
    bytes: Number.MAX_SAFE_INTEGER,
    digest: new Uint8Array(32).fill(7),
    path: "",
    resumed: 0,
  };
}

describe("size bounds cover the real encoding", () => {
  const chars = ["x", "é", "語", "😀"];
  for (const ch of chars) {
    for (const len of [1, 2, 3, 4, 5, 255, 4095]) {
      test(`FileList of ${JSON.stringify(ch)} names and dsts of ${len} bytes`, () => {
        for (const n of [1, 2, 3, 7]) {
          const files = Array.from({ length: n }, (_, i) => entry(textOf(ch, len), i % 2 === 0 ? textOf(ch, len) : undefined));
          const real = encodeControl({ type: "fileList", files, last: true }).length;
          expect(real).toBeLessThanOrEqual(batchBytes(files, fileEntryBytes));
        }
      });
    }
  }

  test("FileResults with empty, short and 4,095-byte multi-byte messages and paths", () => {
    for (const message of ["", "x", textOf("語", 100), textOf("😀", 4095), textOf("x", 8190)]) {
      for (const n of [1, 2, 5]) {
        const items = Array.from({ length: n }, () => ({ ...result(message), path: message.slice(0, 2000) }));
        expect(encodeControl({ type: "fileResults", items }).length).toBeLessThanOrEqual(batchBytes(items, verdictBytes));
        const dones = items.map((r) => ({ ...r, type: "fileDone" as const, blocks: Number.MAX_SAFE_INTEGER }));
        expect(encodeControl({ type: "fileDones", items: dones }).length).toBeLessThanOrEqual(batchBytes(dones, verdictBytes));
      }
    }
  });
});

describe("cutBatches", () => {
  test("keeps order, honours the item cap and the byte budget; an oversized item travels alone", () => {
    const sizes = [40, 40, 40, 90, 200, 10, 10, 10, 10];
    const cut = [...cutBatches(sizes, 3, (s) => s, 100)];
    expect(cut).toEqual([[40, 40], [40], [90], [200], [10, 10, 10], [10]]);
    expect([...cutBatches([], 3, (s: number) => s, 100)]).toEqual([]);
  });

  test("a full drain pass of 4,096 verified files with 4 KiB paths (--manifest, --json) is cut into messages that fit", () => {
    const q = Array.from({ length: MAX_BATCH }, (_, i) => ({ ...result(""), code: "", path: `${i}/${textOf("語", 4000)}` }));
    const batches = [...cutBatches(q, MAX_BATCH, verdictBytes)];
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flat()).toEqual(q);
    for (const items of batches) expect(encodeControl({ type: "fileResults", items }).length).toBeLessThanOrEqual(ESCP_CTL_MAX);
  });

  test("a full drain pass of 4,096 failures with 4 KiB messages is cut into messages that fit", () => {
    const q = Array.from({ length: MAX_BATCH }, (_, i) => result(`${i}: ${textOf("語", 4000)}`));
    const batches = [...cutBatches(q, MAX_BATCH, verdictBytes)];
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flat()).toEqual(q);
    for (const items of batches) {
      const buf = encodeControl({ type: "fileResults", items });
      expect(buf.length).toBeLessThanOrEqual(ESCP_CTL_MAX);
      expect(decodeControl(buf)).toMatchObject({ type: "fileResults", items: { length: items.length } });
    }
  });
});

test("the decoder's limit is the native control frame limit", () => {
  expect(MAX_CONTROL_BYTES).toBe(ESCP_CTL_MAX);
});
