// gen-ffi.ts — generates src/native/symbols.ts from native/include/escp.h: the bun:ffi
// symbol table (from the one-line `ESCP_API` prototypes), every numeric #define, and the
// escp_event layout measured by compiling a probe with the C compiler (session.c pins the
// same offsets with _Static_assert, so header, library and TS cannot drift apart).
// Usage: bun gen-ffi.ts          (write)     bun gen-ffi.ts --check   (fail if stale)
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const HERE = import.meta.dir;
const HEADER = join(HERE, "include", "escp.h");
const OUT = join(HERE, "..", "src", "native", "symbols.ts");

const SCALARS: Record<string, string> = {
  void: "void", uint8_t: "u8", int8_t: "i8", uint16_t: "u16", int16_t: "i16",
  uint32_t: "u32", int32_t: "i32", uint64_t: "u64", int64_t: "i64", int: "i32", double: "f64",
};

function ffiType(ctype: string, isReturn: boolean): string {
  const t = ctype.replace(/\bconst\b/g, "").replace(/\s+/g, " ").trim();
  if (t.includes("*")) {
    // a returned const char* is a NUL-terminated static string; every other pointer is raw
    return isReturn && /^char\s*\*$/.test(t) ? "cstring" : "ptr";
  }
  const f = SCALARS[t];
  if (!f) throw new Error(`gen-ffi: no FFI mapping for C type '${ctype}'`);
  return f;
}

interface Fn { name: string; args: string[]; returns: string }

function parsePrototypes(src: string): Fn[] {
  const fns: Fn[] = [];
  for (const line of src.split("\n")) {
    if (!line.startsWith("ESCP_API ")) continue;
    const m = /^ESCP_API\s+(.*?)\b(escp_\w+)\s*\((.*)\)\s*;\s*$/.exec(line);
    if (!m) throw new Error(`gen-ffi: cannot parse prototype line: ${line}`);
    const [, ret = "", name = "", argText = ""] = m;
    const args = argText.trim() === "void" || argText.trim() === "" ? [] : argText.split(",").map((a) => {
      const am = /^(.*?)\s*\b\w+\s*$/.exec(a.trim()); // drop the parameter name
      if (!am || !am[1]) throw new Error(`gen-ffi: cannot parse argument '${a}' of ${name}`);
      return ffiType(am[1], false);
    });
    fns.push({ name, args, returns: ffiType(ret, true) });
  }
  if (fns.length === 0) throw new Error("gen-ffi: no ESCP_API prototypes found");
  return fns;
}

/** Numeric #defines; values may be literals or shift/arith expressions of literals. */
function parseDefines(src: string): [string, number | bigint][] {
  const out: [string, number | bigint][] = [];
  for (const line of src.split("\n")) {
    const m = /^#define\s+(ESCP_\w+)\s+(.+?)\s*(\/\*.*)?$/.exec(line);
    if (!m || !m[2]) continue;
    const expr = m[2];
    if (!/^[-+()<>\s0-9a-fA-FxXuUlL]+$/.test(expr)) continue; // not numeric (e.g. ESCP_API)
    const clean = expr.replace(/(0x[0-9a-fA-F]+|\d+)[uUlL]+/g, "$1");
    // A plain literal past 2^53 (a u64 sentinel such as ESCP_SIZE_STREAM) becomes a bigint.
    if (/^\d+$/.test(clean) && !Number.isSafeInteger(Number(clean))) {
      out.push([m[1] as string, BigInt(clean)]);
      continue;
    }
    const v = Function(`"use strict"; return (${clean});`)() as number;
    if (!Number.isSafeInteger(v)) throw new Error(`gen-ffi: ${m[1]} = ${expr} is not an integer`);
    out.push([m[1] as string, v]);
  }
  return out;
}

function eventFields(src: string): string[] {
  const m = /typedef struct escp_event \{([\s\S]*?)\} escp_event;/.exec(src);
  if (!m || !m[1]) throw new Error("gen-ffi: escp_event struct not found");
  const names: string[] = [];
  for (const line of m[1].split("\n")) {
    const f = /^\s*[\w ]+?\s+(\w+)(\[\d+\])?\s*;/.exec(line);
    if (f && f[1]) names.push(f[1]);
  }
  return names;
}

/** Ask the C compiler for sizeof/offsetof: the only authority on the layout. */
function measureEvent(fields: string[]): { size: number; off: Record<string, number> } {
  const dir = mkdtempSync(join(tmpdir(), "escp-gen-ffi-"));
  try {
    const c = join(dir, "probe.c");
    const exe = join(dir, "probe");
    const lines = fields.map((f) => `  printf("${f} %zu\\n", offsetof(escp_event, ${f}));`).join("\n");
    writeFileSync(c, `#include <stddef.h>\n#include <stdio.h>\n#include "escp.h"\nint main(void) {\n  printf("size %zu\\n", sizeof(escp_event));\n${lines}\n  return 0;\n}\n`);
    const cc = process.env.CC ?? "cc";
    const build = Bun.spawnSync([cc, "-std=gnu11", "-I", join(HERE, "include"), "-o", exe, c]);
    if (build.exitCode !== 0) throw new Error(`gen-ffi: probe compile failed: ${build.stderr.toString()}`);
    const run = Bun.spawnSync([exe]);
    if (run.exitCode !== 0) throw new Error("gen-ffi: probe failed to run");
    const off: Record<string, number> = {};
    let size = 0;
    for (const l of run.stdout.toString().trim().split("\n")) {
      const [k = "", v = ""] = l.split(" ");
      if (k === "size") size = Number(v);
      else off[k] = Number(v);
    }
    return { size, off };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function render(src: string): string {
  const fns = parsePrototypes(src);
  const defs = parseDefines(src);
  const ev = measureEvent(eventFields(src));
  const o: string[] = [];
  o.push("// GENERATED by native/gen-ffi.ts from native/include/escp.h — do not edit.");
  o.push("// Regenerate with `make -C native gen`; `make -C native check` fails when this file is stale.");
  o.push('import { FFIType } from "bun:ffi";');
  o.push("");
  o.push("/** bun:ffi symbol table for dlopen(libescp.so, symbols). */");
  o.push("export const symbols = {");
  for (const f of fns) {
    const args = f.args.map((a) => `FFIType.${a}`).join(", ");
    o.push(`  ${f.name}: { args: [${args}], returns: FFIType.${f.returns} },`);
  }
  o.push("} as const;");
  o.push("");
  o.push("// Every numeric #define of escp.h.");
  for (const [k, v] of defs) o.push(`export const ${k} = ${typeof v === "bigint" ? `${v}n` : v};`);
  o.push("");
  o.push("// escp_event layout as the C compiler lays it out (pinned by _Static_assert in session.c).");
  o.push(`export const EVENT_SIZE = ${ev.size};`);
  for (const [k, v] of Object.entries(ev.off)) o.push(`export const EVENT_OFF_${k.toUpperCase()} = ${v};`);
  o.push("");
  return o.join("\n");
}

const text = render(readFileSync(HEADER, "utf8"));
if (process.argv.includes("--check")) {
  const cur = existsSync(OUT) ? readFileSync(OUT, "utf8") : "";
  if (cur !== text) {
    console.error(`gen-ffi: ${OUT} is stale; run \`make -C native gen\``);
    process.exit(1);
  }
  console.log("gen-ffi: symbols.ts is up to date");
} else {
  writeFileSync(OUT, text);
  console.log(`gen-ffi: wrote ${OUT}`);
}
