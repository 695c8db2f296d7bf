// Generates the fb-verify.ts field tables from escp.fbs (field ids as flatc assigns them), so a
// field appended to the schema is verified without anyone remembering to list it.
// Usage: bun src/control/schema/gen-verify.ts <escp.fbs> <out verify-tables.ts>  (gen.sh runs it)
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { EscpError } from "../../errors/escp-error.ts";
import { parseSchema, type FbsField, type FbsSchema } from "./fbs-parse.ts";

/** One generated slot: a scalar width, "s", "b", "ss" ([string]), or a reference to generated table constants. */
export type SlotSpec =
  | { readonly kind: "scalar"; readonly width: 1 | 2 | 4 | 8 }
  | { readonly kind: "string" | "bytes" | "strings" }
  | { readonly kind: "table" | "tables"; readonly table: string }
  | { readonly kind: "union"; readonly members: readonly string[] };

export interface Slot {
  readonly id: number;
  readonly name: string;
  readonly spec: SlotSpec;
}

const WIDTHS: Readonly<Record<string, 1 | 2 | 4 | 8>> = {
  bool: 1,
  byte: 1,
  ubyte: 1,
  int8: 1,
  uint8: 1,
  short: 2,
  ushort: 2,
  int16: 2,
  uint16: 2,
  int: 4,
  uint: 4,
  int32: 4,
  uint32: 4,
  float: 4,
  float32: 4,
  long: 8,
  ulong: 8,
  int64: 8,
  uint64: 8,
  double: 8,
  float64: 8,
};
const BYTE_ELEMS = new Set(["byte", "ubyte", "int8", "uint8"]);

function bad(f: FbsField, table: string, why: string): never {
  throw new EscpError("E_USAGE", `escp.fbs:${f.line}: ${table}.${f.name}: ${why}`);
}

function vectorSpec(s: FbsSchema, f: FbsField, table: string): SlotSpec {
  if (BYTE_ELEMS.has(f.type.name)) return { kind: "bytes" };
  if (f.type.name === "string") return { kind: "strings" };
  if (s.tables.has(f.type.name)) return { kind: "tables", table: f.type.name };
  return bad(f, table, `vectors of ${f.type.name} are not supported (only [ubyte], [string] and [Table])`);
}

function scalarSpec(s: FbsSchema, name: string): SlotSpec | undefined {
  const width = WIDTHS[s.enums.get(name) ?? name];
  return width === undefined ? undefined : { kind: "scalar", width };
}

/** The slots of one table in field-id order: a union field takes two (its `_type` ubyte, then the value). */
export function tableSlots(s: FbsSchema, table: string): Slot[] {
  const slots: Slot[] = [];
  for (const f of s.tables.get(table) ?? []) {
    const t = f.type.name;
    const add = (name: string, spec: SlotSpec): number => slots.push({ id: slots.length, name, spec });
    if (f.type.vector) add(f.name, vectorSpec(s, f, table));
    else if (t === "string") add(f.name, { kind: "string" });
    else if (s.tables.has(t)) add(f.name, { kind: "table", table: t });
    else if (s.unions.has(t)) {
      const members = s.unions.get(t) ?? [];
      for (const m of members) if (!s.tables.has(m)) bad(f, table, `union ${t} member ${m} is not a table`);
      if (members.length > 255) bad(f, table, `union ${t} has more than 255 members`);
      add(`${f.name}_type`, { kind: "scalar", width: 1 });
      add(f.name, { kind: "union", members });
    } else add(f.name, scalarSpec(s, t) ?? bad(f, table, `unknown or unsupported type ${t}`));
  }
  return slots;
}

/** The table a slot refers to, if any (nested table, table vector, union members). */
function refs(spec: SlotSpec): readonly string[] {
  if (spec.kind === "table" || spec.kind === "tables") return [spec.table];
  return spec.kind === "union" ? spec.members : [];
}

/** Tables ordered so each comes after every table it refers to (consts must be declared first). */
export function dependencyOrder(s: FbsSchema): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (t: string, from: string): void => {
    if (state.get(t) === "done") return;
    if (state.get(t) === "visiting") {
      throw new EscpError("E_USAGE", `escp.fbs: table ${t} refers back to itself via ${from}; recursive tables are not supported`);
    }
    state.set(t, "visiting");
    for (const slot of tableSlots(s, t)) for (const r of refs(slot.spec)) visit(r, t);
    state.set(t, "done");
    order.push(t);
  };
  for (const t of s.tables.keys()) visit(t, t);
  return order;
}

/** SessionInit → SESSION_INIT. */
export function constName(table: string): string {
  return table.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function renderSpec(spec: SlotSpec): string {
  switch (spec.kind) {
    case "scalar":
      return String(spec.width);
    case "string":
      return '"s"';
    case "bytes":
      return '"b"';
    case "strings":
      return '"ss"';
    case "table":
      return `{ table: ${constName(spec.table)} }`;
    case "tables":
      return `{ tables: ${constName(spec.table)} }`;
    case "union":
      return `{ union: { ${spec.members.map((m, i) => `${i + 1}: ${constName(m)}`).join(", ")} } }`;
  }
}

function renderTable(s: FbsSchema, table: string): string {
  const lines = tableSlots(s, table).map((slot) => `    ${renderSpec(slot.spec)}, // ${slot.id} ${slot.name}`);
  const fields = lines.length === 0 ? "[]" : `[\n${lines.join("\n")}\n  ]`;
  return `export const ${constName(table)}: TableSpec = {\n  name: "${table}",\n  fields: ${fields},\n};\n`;
}

/** The whole generated module for `schemaName` (a file name, so output is location-independent). */
export function renderVerifyTables(s: FbsSchema, schemaName: string): string {
  if (!s.tables.has(s.rootType)) throw new EscpError("E_USAGE", `${schemaName}: root_type ${s.rootType} is not a table`);
  const head = [
    `// GENERATED by src/control/schema/gen-verify.ts from ${schemaName} — do not edit; run src/control/schema/gen.sh.`,
    `// Verifier field tables of namespace ${s.namespace || "(none)"}: fields[i] describes field id i.`,
    'import type { TableSpec } from "../../fb-table-spec.ts";',
    "",
    `export const FILE_IDENTIFIER = ${JSON.stringify(s.fileIdentifier)};`,
    "",
  ];
  return (
    `${head.join("\n")}\n` +
    dependencyOrder(s)
      .map((t) => renderTable(s, t))
      .join("\n")
  );
}

if (import.meta.main) {
  const [schemaPath, outPath] = process.argv.slice(2);
  if (schemaPath === undefined || outPath === undefined) {
    process.stderr.write("usage: bun gen-verify.ts <escp.fbs> <out.ts>\n");
    process.exit(2);
  }
  try {
    writeFileSync(outPath, renderVerifyTables(parseSchema(readFileSync(schemaPath, "utf8")), basename(schemaPath)));
  } catch (e) {
    process.stderr.write(`gen-verify: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
