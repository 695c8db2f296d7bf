// The shape of a verifier field table: what fb-verify.ts checks for each field id of a table.
// The tables themselves are generated from escp.fbs (schema/generated/verify-tables.ts).

/** One field slot: scalar byte width, "s" string, "b" byte vector, "ss" string vector, or a nested
 * table / table vector / union. */
export type FieldSpec =
  | 1
  | 2
  | 4
  | 8
  | "s"
  | "b"
  | "ss"
  | { readonly table: TableSpec }
  | { readonly tables: TableSpec }
  | { readonly union: Readonly<Record<number, TableSpec>> };

export interface TableSpec {
  readonly name: string;
  readonly fields: readonly FieldSpec[]; // index = field id in escp.fbs
}
