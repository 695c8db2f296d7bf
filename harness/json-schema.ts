// A JSON Schema (2020-12) validator for the subset docs/escp-json.schema.json uses: local $ref
// into $defs, oneOf, type (one or a list), const, enum, properties, required,
// additionalProperties: false, items, minimum, maximum, pattern. Any other keyword in the schema
// is refused, so the schema cannot silently grow past what the tests check. As in JSON Schema,
// each keyword constrains only instances of its type (pattern: strings; minimum: numbers).
import { readFileSync } from "node:fs";
import { join } from "node:path";

export type Schema = { [k: string]: unknown };

const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "$defs"]);
const KEYWORDS = new Set([
  "$ref",
  "oneOf",
  "type",
  "const",
  "enum",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minimum",
  "maximum",
  "pattern",
]);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typeMatches(v: unknown, t: string): boolean {
  const actual = typeOf(v);
  return actual === t || (t === "number" && actual === "integer");
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class SchemaValidator {
  constructor(private readonly root: Schema) {
    this.check(root, "#");
  }

  /** Refuses keywords outside the subset (anywhere in the schema). */
  private check(s: Schema, at: string): void {
    for (const [k, v] of Object.entries(s)) {
      if (ANNOTATIONS.has(k)) {
        if (k === "$defs") for (const [n, d] of Object.entries(v as Record<string, Schema>)) this.check(d, `${at}/$defs/${n}`);
        continue;
      }
      if (!KEYWORDS.has(k)) throw new Error(`schema ${at}: keyword ${k} is outside the supported subset`);
      if (k === "oneOf") (v as Schema[]).forEach((d, i) => this.check(d, `${at}/oneOf/${i}`));
      if (k === "properties") for (const [n, d] of Object.entries(v as Record<string, Schema>)) this.check(d, `${at}/properties/${n}`);
      if (k === "items") this.check(v as Schema, `${at}/items`);
      if (k === "additionalProperties" && v !== false) throw new Error(`schema ${at}: only additionalProperties: false is supported`);
    }
  }

  private resolve(ref: string): Schema {
    const m = /^#\/\$defs\/([A-Za-z0-9_]+)$/.exec(ref);
    const defs = this.root.$defs as Record<string, Schema> | undefined;
    const s = m ? defs?.[m[1] as string] : undefined;
    if (!s) throw new Error(`schema: cannot resolve $ref ${ref}`);
    return s;
  }

  /** Every violation, each as "<instance path>: <what>"; empty when `v` is valid. */
  errors(v: unknown, s: Schema = this.root, at = "$"): string[] {
    const out: string[] = [];
    if (typeof s.$ref === "string") out.push(...this.errors(v, this.resolve(s.$ref), at));
    if (Array.isArray(s.oneOf)) {
      const matching = (s.oneOf as Schema[]).filter((d) => this.errors(v, d, at).length === 0).length;
      if (matching !== 1) out.push(`${at}: matches ${matching} of the ${s.oneOf.length} oneOf alternatives, not exactly one`);
    }
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((t) => typeMatches(v, t))) out.push(`${at}: is ${typeOf(v)}, not ${types.join(" or ")}`);
    }
    if ("const" in s && !deepEqual(v, s.const)) out.push(`${at}: is ${JSON.stringify(v)}, not ${JSON.stringify(s.const)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(v, e))) out.push(`${at}: ${JSON.stringify(v)} is not one of the allowed values`);
    if (typeof v === "number") {
      if (typeof s.minimum === "number" && v < s.minimum) out.push(`${at}: ${v} is below ${s.minimum}`);
      if (typeof s.maximum === "number" && v > s.maximum) out.push(`${at}: ${v} is above ${s.maximum}`);
    }
    if (typeof v === "string" && typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(v)) {
      out.push(`${at}: ${JSON.stringify(v)} does not match ${s.pattern}`);
    }
    if (Array.isArray(v) && s.items !== undefined) v.forEach((x, i) => out.push(...this.errors(x, s.items as Schema, `${at}[${i}]`)));
    if (typeOf(v) === "object") {
      const obj = v as Record<string, unknown>;
      const props = (s.properties ?? {}) as Record<string, Schema>;
      for (const r of (s.required ?? []) as string[]) if (!(r in obj)) out.push(`${at}: lacks required ${r}`);
      for (const [k, x] of Object.entries(obj)) {
        const p = props[k];
        if (p) out.push(...this.errors(x, p, `${at}.${k}`));
        else if (s.additionalProperties === false) out.push(`${at}: has undocumented property ${k}`);
      }
    }
    return out;
  }
}

/** The validator for escp's --json lines (docs/escp-json.schema.json). */
export function escpJsonValidator(): SchemaValidator {
  const path = join(import.meta.dir, "..", "docs", "escp-json.schema.json");
  return new SchemaValidator(JSON.parse(readFileSync(path, "utf8")) as Schema);
}

/** Parses escp's --json stdout: every line one JSON object valid against the schema, or throws
 *  naming the line and what is wrong with it. */
export function parseJsonLines(stdout: string, v: SchemaValidator = escpJsonValidator()): Record<string, unknown>[] {
  if (stdout !== "" && !stdout.endsWith("\n")) throw new Error(`--json output does not end with a newline: ${JSON.stringify(stdout.slice(-80))}`);
  const lines = stdout === "" ? [] : stdout.slice(0, -1).split("\n");
  return lines.map((line, i) => {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`--json line ${i + 1} is not JSON (${e instanceof Error ? e.message : String(e)}): ${line}`);
    }
    const errs = v.errors(obj);
    if (errs.length > 0) throw new Error(`--json line ${i + 1} does not match docs/escp-json.schema.json:\n  ${errs.join("\n  ")}\n  line: ${line}`);
    return obj as Record<string, unknown>;
  });
}
