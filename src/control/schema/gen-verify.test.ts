// The verifier-table generator: flatc's field ids (unions take two, enums their base width),
// loud failure on schema features it does not handle, and a field appended to escp.fbs ends
// up verified (its out-of-bounds string is rejected) with no hand edit anywhere.
import { describe, expect, test } from "bun:test";
import * as flatbuffers from "flatbuffers";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../../harness/tmp-dir.ts";
import { EscpError } from "../../errors/escp-error.ts";
import type { TableSpec } from "../fb-table-spec.ts";
import { verifyBuffer } from "../fb-verify.ts";
import { parseSchema } from "./fbs-parse.ts";
import { renderVerifyTables, tableSlots } from "./gen-verify.ts";
import { FILE_ENTRY } from "./generated/verify-tables.ts";

const ESCP_FBS = readFileSync(join(import.meta.dir, "escp.fbs"), "utf8");
const wrap = (body: string) => `namespace t;\nfile_identifier "TEST";\n${body}\nroot_type A;\n`;

function schemaError(text: string): string {
  try {
    parseSchema(text);
    renderVerifyTables(parseSchema(text), "escp.fbs");
  } catch (e) {
    expect(e).toBeInstanceOf(EscpError);
    return (e as EscpError).message;
  }
  throw new Error("schema was accepted");
}

describe("field ids and widths", () => {
  test("declaration order; a union takes its _type byte then the value; enums take their base width", () => {
    const s = parseSchema(
      wrap("enum E : short { X = 1, Y }\nunion U { B, A }\ntable B {}\ntable A { e: E; u: U; s: string; v: [ubyte]; w: [B]; d: double = 1.5; }"),
    );
    expect(tableSlots(s, "A").map((x) => [x.id, x.name, x.spec])).toEqual([
      [0, "e", { kind: "scalar", width: 2 }],
      [1, "u_type", { kind: "scalar", width: 1 }],
      [2, "u", { kind: "union", members: ["B", "A"] }],
      [3, "s", { kind: "string" }],
      [4, "v", { kind: "bytes" }],
      [5, "w", { kind: "tables", table: "B" }],
      [6, "d", { kind: "scalar", width: 8 }],
    ]);
  });

  test("the version header is SessionInit's (and SessionReply's) first two fields", () => {
    const s = parseSchema(ESCP_FBS);
    for (const t of ["SessionInit", "SessionReply"]) {
      expect(
        tableSlots(s, t)
          .slice(0, 2)
          .map((x) => x.name),
      ).toEqual(["version_major", "version_minor"]);
    }
  });
});

describe("unsupported schema features fail loudly, naming the line", () => {
  const cases: [string, string, RegExp][] = [
    ["deprecated attribute", "table A { x: int (deprecated); }", /escp\.fbs:3: attributes .* not supported/],
    ["explicit id", "table A { x: int (id: 0); }", /attributes .* not supported/],
    ["table attribute", "table A (csharp_partial) { x: int; }", /attributes .* not supported/],
    ["struct", "struct S { a: int; }\ntable A { s: S; }", /unsupported declaration "struct"/],
    ["include", 'include "other.fbs";\ntable A {}', /unsupported declaration "include"/],
    ["attribute declaration", 'attribute "priority";\ntable A {}', /unsupported declaration "attribute"/],
    ["vector of ints", "table A { x: [uint32]; }", /vectors of uint32 are not supported/],
    ["unknown type", "table A { x: Missing; }", /A\.x: unknown or unsupported type Missing/],
    ["block comment", "/* hi */ table A {}", /block comments are not supported/],
    ["aliased union member", "table B {}\nunion U { b: B }\ntable A { u: U; }", /aliased or numbered members/],
    ["float enum", "enum E : float { X }\ntable A {}", /unsupported underlying type float/],
    ["recursive table", "table A { next: A; }", /recursive tables are not supported/],
    ["duplicate field", "table A { x: int; x: int; }", /declares field x twice/],
  ];
  for (const [what, body, re] of cases) test(what, () => expect(schemaError(wrap(body))).toMatch(re));

  test("missing root_type or file_identifier", () => {
    expect(schemaError('file_identifier "TEST";\ntable A {}')).toMatch(/root_type is missing/);
    expect(schemaError("table A {}\nroot_type A;")).toMatch(/file_identifier is missing/);
  });
});

/** The id a field appended to FileEntry gets. */
const OWNER_ID = FILE_ENTRY.fields.length;

/** A finished buffer whose root is a FileEntry with `name` (id 2) and the appended `owner`. */
function entryWithOwner(): { buf: Uint8Array; ownerAt: number } {
  const b = new flatbuffers.Builder(64);
  const name = b.createString("a");
  const owner = b.createString("root");
  b.startObject(OWNER_ID + 1);
  b.addFieldOffset(2, name, 0);
  b.addFieldOffset(OWNER_ID, owner, 0);
  b.finish(b.endObject(), "ESC1");
  const buf = b.asUint8Array().slice();
  const view = new DataView(buf.buffer);
  const root = view.getUint32(0, true);
  const vt = root - view.getInt32(root, true);
  return { buf, ownerAt: root + view.getUint16(vt + 4 + 2 * OWNER_ID, true) };
}

describe("a field appended to escp.fbs is verified", () => {
  test("the generated FileEntry table gains it, and a string offset outside the buffer is rejected", async () => {
    const grown = ESCP_FBS.replace(/(table FileEntry \{[^}]*)\}/, "$1  owner: string;\n}");
    expect(grown).not.toBe(ESCP_FBS);
    const dir = makeTmpDir("gen-verify");
    try {
      const out = join(dir, "verify-tables.ts");
      writeFileSync(out, renderVerifyTables(parseSchema(grown), "escp.fbs"));
      const grownEntry = (await import(out)).FILE_ENTRY as TableSpec;
      expect(grownEntry.fields).toEqual([...FILE_ENTRY.fields, "s"]);

      const { buf, ownerAt } = entryWithOwner();
      expect(verifyBuffer(buf, grownEntry, 1 << 20)).toBeGreaterThan(0);
      new DataView(buf.buffer).setUint32(ownerAt, buf.length, true); // points just past the end
      expect(() => verifyBuffer(buf, grownEntry, 1 << 20)).toThrow(new RegExp(`FileEntry field ${OWNER_ID} lies outside the \\d+-byte buffer`));
      // Today's table has no such id: the same bytes pass, which is why the table must follow the schema.
      expect(verifyBuffer(buf, FILE_ENTRY, 1 << 20)).toBeGreaterThan(0);
    } finally {
      removeTmpDir(dir);
    }
  });
});
