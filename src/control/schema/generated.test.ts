// The generated code in ./generated must match escp.fbs: gen.sh --check fails CI when flatc's
// output or the verifier tables are stale, and the tables agree with flatc's own field ids.
import { describe, expect, test } from "bun:test";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../../harness/tmp-dir.ts";
import type { FieldSpec, TableSpec } from "../fb-table-spec.ts";
import { parseSchema } from "./fbs-parse.ts";
import { Msg } from "./generated/escp/control/msg.ts";
import * as tables from "./generated/verify-tables.ts";

const HERE = import.meta.dir;
const GEN_SH = join(HERE, "gen.sh");

function genSh(args: string[], schemaDir?: string): { code: number; err: string } {
  const env = { ...process.env, BUN: process.execPath, ...(schemaDir === undefined ? {} : { ESCP_SCHEMA_DIR: schemaDir }) };
  const r = Bun.spawnSync(["bash", GEN_SH, ...args], { env, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, err: r.stderr.toString() };
}

describe("gen.sh --check", () => {
  test("src/control/schema/generated is up to date with escp.fbs", () => {
    const r = genSh(["--check"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
  });

  test("fails when escp.fbs gains a field, and passes again once gen.sh regenerated", () => {
    const dir = makeTmpDir("gen-check");
    try {
      cpSync(join(HERE, "escp.fbs"), join(dir, "escp.fbs"));
      cpSync(join(HERE, "generated"), join(dir, "generated"), { recursive: true });
      expect(genSh(["--check"], dir).code).toBe(0);
      const fbs = readFileSync(join(dir, "escp.fbs"), "utf8");
      const grown = fbs.replace(/(table FileEntry \{[^}]*)\}/, "$1  owner: string;\n}");
      expect(grown).not.toBe(fbs);
      writeFileSync(join(dir, "escp.fbs"), grown);
      const stale = genSh(["--check"], dir);
      expect(stale.code).toBe(1);
      expect(stale.err).toContain("is stale against escp.fbs");
      expect(stale.err).toContain("owner"); // both flatc's accessor and the verifier table changed
      expect(genSh([], dir).code).toBe(0);
      expect(genSh(["--check"], dir)).toEqual({ code: 0, err: "" });
      expect(readFileSync(join(dir, "generated/verify-tables.ts"), "utf8")).toContain(`"s", // ${tables.FILE_ENTRY.fields.length} owner`);
    } finally {
      removeTmpDir(dir);
    }
  });
});

function allTables(): TableSpec[] {
  return Object.values(tables).filter((v): v is TableSpec => typeof v === "object" && "fields" in v);
}

/** flatc's builder for `table`: field id → the width it writes (an offset is 4 bytes). */
function flatcFieldWidths(table: string): Map<number, number | "offset"> {
  const file = table.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
  const src = readFileSync(join(HERE, "generated/escp/control", `${file}.ts`), "utf8");
  const widths = new Map<number, number | "offset">();
  for (const m of src.matchAll(/builder\.addField(Int8|Int16|Int32|Int64|Float32|Float64|Offset)\((\d+),/g)) {
    const kind = m[1] as string;
    widths.set(Number(m[2]), kind === "Offset" ? "offset" : Number(kind.replace(/\D/g, "")) / 8);
  }
  return widths;
}

function expectedWidth(f: FieldSpec): number | "offset" {
  return typeof f === "number" ? f : "offset";
}

describe("verifier tables agree with flatc's generated builders", () => {
  test("every table, field id and width", () => {
    const seen = allTables();
    expect(seen.map((t) => t.name).sort()).toEqual([...parseSchema(readFileSync(join(HERE, "escp.fbs"), "utf8")).tables.keys()].sort());
    for (const t of seen) {
      const flatc = flatcFieldWidths(t.name);
      expect({ table: t.name, ids: flatc.size }).toEqual({ table: t.name, ids: t.fields.length });
      t.fields.forEach((f, id) => expect({ table: t.name, id, width: flatc.get(id) }).toEqual({ table: t.name, id, width: expectedWidth(f) }));
    }
  });

  test("union members carry flatc's Msg values", () => {
    const union = tables.ENVELOPE.fields[1];
    if (typeof union !== "object" || !("union" in union)) throw new Error("Envelope.msg is not a union");
    const names = Object.entries(union.union).map(([id, spec]) => [Number(id), spec.name]);
    expect(names).toEqual(
      Object.entries(Msg)
        .filter(([, v]) => typeof v === "number" && v > 0)
        .map(([k, v]) => [v, k]),
    );
  });
});
