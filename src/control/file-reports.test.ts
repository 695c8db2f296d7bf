// FileReports (-3 with --manifest/--json: host1 → initiator): round trips exactly (property),
// hostile buffers decode to valid items or an E_PROTOCOL EscpError and nothing else, and the
// encoder refuses what the decoder would.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as flatbuffers from "flatbuffers";
import { ERROR_CODES } from "../errors/codes.ts";
import { EscpError } from "../errors/escp-error.ts";
import { decodeFileReports, decodeSessionSummary, encodeFileReports, encodeSessionSummary, MAX_REPORT_ITEMS, type FileResultMsg } from "./messages.ts";
import { FileReports } from "./schema/generated/escp/control/file-reports.ts";
import { FileResult } from "./schema/generated/escp/control/file-result.ts";

const SEED = Number(process.env.ESCP_SEED ?? 0x5eed);
const text = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => s.isWellFormed());
const pathText = text.filter((s) => !s.includes("\0"));
const code = fc.constantFrom(...Object.keys(ERROR_CODES));

const okItem: fc.Arbitrary<FileResultMsg> = fc.nat({ max: 2 ** 40 }).chain((bytes) =>
  fc.record({
    type: fc.constant("fileResult" as const),
    fino: fc.constant(0),
    code: fc.constant(""),
    errno: fc.constant(0),
    message: pathText,
    bytes: fc.constant(bytes),
    digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    path: pathText,
    resumed: fc.nat({ max: bytes }),
  }),
);
const failedItem: fc.Arbitrary<FileResultMsg> = fc.record({
  type: fc.constant("fileResult" as const),
  fino: fc.constant(0),
  code,
  errno: fc.nat({ max: 200 }),
  message: text,
  bytes: fc.constant(0),
  digest: fc.constant(new Uint8Array(0)),
  path: fc.constant(""),
  resumed: fc.constant(0),
});
const items = fc.array(fc.oneof(okItem, failedItem), { maxLength: 12 });

function thrown(f: () => unknown): EscpError {
  try {
    f();
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw new Error(`not an EscpError: ${String(e)}`);
  }
  throw new Error("expected an EscpError");
}

/** A FileReports built by hand (what a hostile host1 could send): `n` copies of one item. */
function handBuilt(n: number, item: { code?: string; digest?: number[]; path?: string; bytes?: bigint; resumed?: bigint }): Uint8Array {
  const b = new flatbuffers.Builder(1024);
  const offs: flatbuffers.Offset[] = [];
  for (let i = 0; i < n; i++) {
    const digest = FileResult.createDigestVector(b, item.digest ?? new Array(32).fill(7));
    offs.push(
      FileResult.createFileResult(
        b,
        0n,
        b.createString(item.code ?? ""),
        0,
        b.createString("m"),
        item.bytes ?? 10n,
        digest,
        b.createString(item.path ?? "a"),
        item.resumed ?? 0n,
        false,
        0,
        0,
      ),
    );
  }
  b.finish(FileReports.createFileReports(b, FileReports.createItemsVector(b, offs)), "ESC1");
  return b.asUint8Array().slice();
}

describe("FileReports codec", () => {
  test("round trips (property)", () => {
    fc.assert(
      fc.property(items, (xs) => {
        expect(decodeFileReports(encodeFileReports(xs))).toEqual(xs);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  test("the empty FileReports (the end marker) round trips", () => {
    expect(decodeFileReports(encodeFileReports([]))).toEqual([]);
  });

  test("mutated buffers decode to valid items or E_PROTOCOL, nothing else", () => {
    const mutated = fc.tuple(items, fc.nat(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.nat({ max: 2 })).map(([xs, a, b, junk, how]) => {
      const buf = encodeFileReports(xs);
      if (how === 0) return buf.slice(0, a % (buf.length + 1));
      const out = buf.slice();
      junk.forEach((j, k) => {
        out[(a + k * (b + 1)) % out.length] = j;
      });
      return out;
    });
    fc.assert(
      fc.property(mutated, (buf) => {
        let got: FileResultMsg[];
        try {
          got = decodeFileReports(buf);
        } catch (e) {
          if (!(e instanceof EscpError)) throw new Error(`non-EscpError escaped: ${String(e)}`);
          expect(e.code).toBe("E_PROTOCOL");
          return;
        }
        encodeFileReports(got); // what decodes is itself valid: it re-encodes without an error
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  test("random bytes, another message and a non-buffer are E_PROTOCOL", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (buf) => {
        try {
          encodeFileReports(decodeFileReports(buf));
        } catch (e) {
          if (!(e instanceof EscpError)) throw new Error(`non-EscpError escaped: ${String(e)}`);
        }
      }),
      { seed: SEED, numRuns: 500 },
    );
    const summary = encodeSessionSummary({
      filesOk: 3,
      filesFailed: 1,
      bytes: 99,
      failures: [{ code: "E_WRITE", message: "x" }],
      moreFailures: 0,
      bytesResumed: 0,
    });
    expect(decodeSessionSummary(summary).filesOk).toBe(3);
    try {
      // another table under the same identifier: whatever it reads as, nothing but an EscpError escapes
      encodeFileReports(decodeFileReports(summary));
    } catch (e) {
      expect(e).toBeInstanceOf(EscpError);
    }
    expect(thrown(() => decodeFileReports(new Uint8Array([1, 2, 3]))).code).toBe("E_PROTOCOL");
    expect(thrown(() => decodeFileReports("nope" as unknown as Uint8Array)).code).toBe("E_PROTOCOL");
  });

  test("hostile items: too many, a bad code, a short digest, resumed over bytes, a size past 2^53, a NUL in the path", () => {
    expect(thrown(() => decodeFileReports(handBuilt(MAX_REPORT_ITEMS + 1, {}))).message).toContain(`over ${MAX_REPORT_ITEMS}`);
    expect(decodeFileReports(handBuilt(MAX_REPORT_ITEMS, {}))).toHaveLength(MAX_REPORT_ITEMS);
    expect(thrown(() => decodeFileReports(handBuilt(1, { code: "rm -rf" }))).message).toContain("code");
    expect(thrown(() => decodeFileReports(handBuilt(1, { digest: [1, 2, 3] }))).message).toContain("digest");
    expect(thrown(() => decodeFileReports(handBuilt(1, { bytes: 5n, resumed: 6n }))).message).toContain("resumed");
    expect(thrown(() => decodeFileReports(handBuilt(1, { bytes: 2n ** 60n }))).code).toBe("E_PROTOCOL");
    expect(thrown(() => decodeFileReports(handBuilt(1, { path: "a\0b" }))).message).toContain("path");
  });

  test("the encoder refuses what the decoder would (E_INTERNAL: a bug on the sending side)", () => {
    const many = Array.from(
      { length: MAX_REPORT_ITEMS + 1 },
      (): FileResultMsg => ({
        type: "fileResult",
        fino: 0,
        code: "",
        errno: 0,
        message: "m",
        bytes: 1,
        digest: new Uint8Array(32),
        path: "p",
        resumed: 0,
      }),
    );
    expect(thrown(() => encodeFileReports(many)).code).toBe("E_INTERNAL");
    const bad: FileResultMsg = { ...many[0]!, digest: new Uint8Array(3) };
    expect(thrown(() => encodeFileReports([bad])).code).toBe("E_INTERNAL");
  });
});
