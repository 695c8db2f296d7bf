// Structural verifier for escp.fbs buffers: the checks flatc's C++ Verifier does (identifier,
// vtables, every field, string and vector inside the buffer), which the JS runtime lacks — its
// reads past the end silently yield 0. Run before any generated accessor touches a buffer.
// The per-table field lists are generated from escp.fbs (schema/gen.sh → generated/verify-tables.ts).
import { EscpError } from "../errors/escp-error.ts";
import type { FieldSpec, TableSpec } from "./fb-table-spec.ts";
import {
  ENVELOPE,
  FILE_IDENTIFIER,
  FILE_REPORTS,
  SESSION_GO,
  SESSION_GO_REPLY,
  SESSION_INIT,
  SESSION_REPLY,
  SESSION_SUMMARY,
} from "./schema/generated/verify-tables.ts";

export { ENVELOPE, FILE_IDENTIFIER, FILE_REPORTS, SESSION_GO, SESSION_GO_REPLY, SESSION_INIT, SESSION_REPLY, SESSION_SUMMARY };

const MAX_DEPTH = 8;

function fail(what: string): never {
  throw new EscpError("E_PROTOCOL", `malformed control message: ${what}`);
}

class Checker {
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(pos: number, len: number, what: string): void {
    if (!Number.isSafeInteger(pos) || pos < 0 || len < 0 || pos + len > this.buf.length) {
      fail(`${what} lies outside the ${this.buf.length}-byte buffer`);
    }
  }

  private u16(pos: number, what: string): number {
    this.need(pos, 2, what);
    return this.view.getUint16(pos, true);
  }

  private u32(pos: number, what: string): number {
    this.need(pos, 4, what);
    return this.view.getUint32(pos, true);
  }

  /** A string at `target`: u32 length, the bytes and a NUL, all inside the buffer. */
  private string(target: number, what: string): void {
    const len = this.u32(target, what);
    this.need(target + 4, len + 1, `${what} string`);
    if (this.buf[target + 4 + len] !== 0) fail(`${what} string is not NUL-terminated`);
  }

  /** Follow a uoffset stored at `pos`; returns the absolute target position. */
  private deref(pos: number, what: string): number {
    const target = pos + this.u32(pos, what);
    this.need(target, 1, what);
    return target;
  }

  table(pos: number, spec: TableSpec, depth: number): void {
    if (depth > MAX_DEPTH) fail(`${spec.name} nested too deeply`);
    this.need(pos, 4, `${spec.name} table`);
    const vt = pos - this.view.getInt32(pos, true);
    const vtSize = this.u16(vt, `${spec.name} vtable`);
    const tableSize = this.u16(vt + 2, `${spec.name} vtable`);
    if (vtSize < 4 || vtSize % 2 !== 0) fail(`${spec.name} vtable size ${vtSize}`);
    this.need(vt, vtSize, `${spec.name} vtable`);
    if (tableSize < 4) fail(`${spec.name} table size ${tableSize}`);
    this.need(pos, tableSize, `${spec.name} table`);
    spec.fields.forEach((field, id) => {
      const slot = 4 + 2 * id;
      if (slot >= vtSize) return;
      const fo = this.view.getUint16(vt + slot, true);
      if (fo === 0) return;
      const width = typeof field === "number" ? field : 4;
      if (fo < 4 || fo + width > tableSize) fail(`${spec.name} field ${id} outside its table`);
      this.field(pos + fo, field, `${spec.name} field ${id}`, depth, pos, vt, vtSize, id);
    });
  }

  private field(at: number, field: FieldSpec, what: string, depth: number, tablePos: number, vt: number, vtSize: number, id: number): void {
    if (typeof field === "number") return;
    const target = this.deref(at, what);
    if (field === "s") {
      this.string(target, what);
    } else if (field === "ss") {
      const n = this.u32(target, what);
      this.need(target + 4, n * 4, `${what} vector`);
      for (let i = 0; i < n; i++) this.string(this.deref(target + 4 + 4 * i, `${what}[${i}]`), `${what}[${i}]`);
    } else if (field === "b") {
      this.need(target + 4, this.u32(target, what), `${what} vector`);
    } else if ("table" in field) {
      this.table(target, field.table, depth + 1);
    } else if ("tables" in field) {
      const n = this.u32(target, what);
      this.need(target + 4, n * 4, `${what} vector`);
      for (let i = 0; i < n; i++) {
        const elem = target + 4 + 4 * i;
        this.table(elem + this.view.getUint32(elem, true), field.tables, depth + 1);
      }
    } else {
      // A union value at field id has its type byte at id-1 (flatc's layout).
      const typeSlot = 4 + 2 * (id - 1);
      const typeFo = id > 0 && typeSlot < vtSize ? this.view.getUint16(vt + typeSlot, true) : 0;
      const type = typeFo === 0 ? 0 : (this.buf[tablePos + typeFo] ?? 0);
      const spec = field.union[type];
      if (spec === undefined) fail(`${what} has unknown union type ${type}`);
      this.table(target, spec, depth + 1);
    }
  }
}

/**
 * Verify `buf` as a finished escp.fbs buffer whose root table is `root`. Throws
 * EscpError(E_PROTOCOL) naming the defect; returns the root table position on success.
 */
export function verifyBuffer(buf: Uint8Array, root: TableSpec, maxBytes: number): number {
  if (!(buf instanceof Uint8Array)) fail("not a byte buffer");
  if (buf.length < 12) fail(`${buf.length}-byte buffer is too short`);
  if (buf.length > maxBytes) fail(`${buf.length}-byte buffer exceeds ${maxBytes} bytes`);
  const id = String.fromCharCode(buf[4] ?? 0, buf[5] ?? 0, buf[6] ?? 0, buf[7] ?? 0);
  if (id !== FILE_IDENTIFIER) fail(`file identifier is not ${FILE_IDENTIFIER}`);
  const checker = new Checker(buf);
  const rootPos = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, true);
  checker.table(rootPos, root, 0);
  return rootPos;
}

/** Only the version fields (SessionInit's first two, which every major keeps): checked before
 *  the rest so a future major gets E_VERSION rather than E_PROTOCOL. */
export const VERSION_ONLY: TableSpec = { name: "version header", fields: SESSION_INIT.fields.slice(0, 2) };
