// Parses the subset of the FlatBuffers schema language escp.fbs uses into a plain model, and
// fails loudly (naming the line) on anything outside it: structs, attributes, includes, ...
import { EscpError } from "../../errors/escp-error.ts";

export interface FbsType {
  readonly name: string; // scalar, "string", or a declared enum / union / table
  readonly vector: boolean;
}

export interface FbsField {
  readonly name: string;
  readonly type: FbsType;
  readonly line: number;
}

export interface FbsSchema {
  namespace: string;
  fileIdentifier: string;
  rootType: string;
  readonly enums: Map<string, string>; // enum name → underlying scalar type
  readonly unions: Map<string, string[]>; // union name → member tables in declaration order
  readonly tables: Map<string, FbsField[]>; // table name → fields in declaration order
}

interface Tok {
  readonly text: string;
  readonly kind: "id" | "num" | "str" | "punct";
  readonly line: number;
}

const TOKEN = /\s+|\/\/[^\n]*|\/\*|([A-Za-z_][A-Za-z0-9_.]*)|([-+]?[0-9][0-9A-Za-z_.+-]*)|"([^"\\\n]*)"|([{}[\]():;=,])/y;

function bad(line: number, what: string): never {
  throw new EscpError("E_USAGE", `escp.fbs:${line}: ${what}`);
}

/** Splits schema text into tokens, dropping whitespace and `//` comments. */
export function tokenize(text: string): Tok[] {
  const toks: Tok[] = [];
  let line = 1;
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (m === null) bad(line, `unexpected character ${JSON.stringify(text[at])}`);
    if (m[0] === "/*") bad(line, "block comments are not supported");
    if (m[1] !== undefined) toks.push({ text: m[1], kind: "id", line });
    else if (m[2] !== undefined) toks.push({ text: m[2], kind: "num", line });
    else if (m[3] !== undefined) toks.push({ text: m[3], kind: "str", line });
    else if (m[4] !== undefined) toks.push({ text: m[4], kind: "punct", line });
    line += m[0].split("\n").length - 1;
  }
  return toks;
}

class Parser {
  private pos = 0;
  readonly schema: FbsSchema = {
    namespace: "",
    fileIdentifier: "",
    rootType: "",
    enums: new Map(),
    unions: new Map(),
    tables: new Map(),
  };
  private readonly declared = new Set<string>();

  constructor(private readonly toks: Tok[]) {}

  get line(): number {
    return this.toks[Math.min(this.pos, this.toks.length - 1)]?.line ?? 1;
  }

  peek(): string {
    return this.toks[this.pos]?.text ?? "<end of file>";
  }

  take(kind: Tok["kind"], what: string): string {
    const t = this.toks[this.pos];
    if (t === undefined || t.kind !== kind) bad(this.line, `expected ${what}, found ${JSON.stringify(this.peek())}`);
    this.pos++;
    return t.text;
  }

  expect(punct: string): void {
    if (this.peek() === "(") bad(this.line, "attributes (deprecated, id, required, ...) are not supported");
    if (this.peek() !== punct || this.toks[this.pos]?.kind !== "punct") {
      bad(this.line, `expected "${punct}", found ${JSON.stringify(this.peek())}`);
    }
    this.pos++;
  }

  /** Consumes `punct` if it is next. */
  skip(punct: string): boolean {
    if (this.peek() !== punct || this.toks[this.pos]?.kind !== "punct") return false;
    this.pos++;
    return true;
  }

  declare(name: string): string {
    if (this.declared.has(name)) bad(this.line, `${name} is declared twice`);
    this.declared.add(name);
    return name;
  }

  done(): boolean {
    return this.pos >= this.toks.length;
  }
}

const ENUM_BASES = new Set([
  "byte",
  "ubyte",
  "short",
  "ushort",
  "int",
  "uint",
  "long",
  "ulong",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
]);

function parseEnum(p: Parser): void {
  const name = p.declare(p.take("id", "an enum name"));
  p.expect(":");
  const base = p.take("id", "the enum's underlying type");
  if (!ENUM_BASES.has(base)) bad(p.line, `enum ${name} has unsupported underlying type ${base}`);
  p.expect("{");
  while (!p.skip("}")) {
    p.take("id", "an enum value name");
    if (p.skip("=")) p.take("num", "an integer value");
    if (!p.skip(",") && p.peek() !== "}") bad(p.line, `expected "," or "}" in enum ${name}`);
  }
  p.schema.enums.set(name, base);
}

function parseUnion(p: Parser): void {
  const name = p.declare(p.take("id", "a union name"));
  p.expect("{");
  const members: string[] = [];
  while (!p.skip("}")) {
    members.push(p.take("id", "a union member table"));
    if (p.peek() === ":" || p.peek() === "=") bad(p.line, `union ${name}: aliased or numbered members are not supported`);
    if (!p.skip(",") && p.peek() !== "}") bad(p.line, `expected "," or "}" in union ${name}`);
  }
  p.schema.unions.set(name, members);
}

function parseField(p: Parser, table: string, seen: Set<string>): FbsField {
  const line = p.line;
  const name = p.take("id", `a field name in table ${table}`);
  if (seen.has(name)) bad(line, `table ${table} declares field ${name} twice`);
  seen.add(name);
  p.expect(":");
  const vector = p.skip("[");
  const type: FbsType = { name: p.take("id", `the type of ${table}.${name}`), vector };
  if (vector) p.expect("]");
  if (p.skip("=")) {
    if (p.peek() === "(" || p.peek() === ";") bad(p.line, `${table}.${name}: a default value is missing`);
    p.take(/^[-+0-9]/.test(p.peek()) ? "num" : "id", `a scalar default for ${table}.${name}`);
  }
  p.expect(";");
  return { name, type, line };
}

function parseTable(p: Parser): void {
  const name = p.declare(p.take("id", "a table name"));
  p.expect("{");
  const fields: FbsField[] = [];
  const seen = new Set<string>();
  while (!p.skip("}")) fields.push(parseField(p, name, seen));
  p.schema.tables.set(name, fields);
}

function parseDecl(p: Parser): void {
  const line = p.line;
  const kw = p.take("id", "a declaration");
  switch (kw) {
    case "namespace":
      p.schema.namespace = p.take("id", "a namespace");
      return p.expect(";");
    case "file_identifier":
      p.schema.fileIdentifier = p.take("str", "a quoted file identifier");
      if (p.schema.fileIdentifier.length !== 4) bad(line, "file_identifier must be 4 characters");
      return p.expect(";");
    case "root_type":
      p.schema.rootType = p.take("id", "the root table");
      return p.expect(";");
    case "enum":
      return parseEnum(p);
    case "union":
      return parseUnion(p);
    case "table":
      return parseTable(p);
    default:
      bad(line, `unsupported declaration "${kw}" (the verifier generator handles namespace, file_identifier, enum, union, table, root_type)`);
  }
}

/** Parses escp.fbs text; throws EscpError(E_USAGE) naming the line of anything unsupported. */
export function parseSchema(text: string): FbsSchema {
  const p = new Parser(tokenize(text));
  while (!p.done()) parseDecl(p);
  if (p.schema.fileIdentifier === "") bad(p.line, "file_identifier is missing");
  if (p.schema.rootType === "") bad(p.line, "root_type is missing");
  return p.schema;
}
