// Generator parameters: declarations per catalog entry (--size, --ratio, --files, and the
// universal --seed), parsing of command-line values such as "4G", and defaults.
import type { Params } from "./spec.ts";

export interface ParamDef {
  name: string;
  /** size: bytes with an optional K/M/G/T suffix (binary); int: whole number; number: real. */
  kind: "size" | "int" | "number";
  default: number;
  min: number;
  max: number;
  help: string;
}

export const SEED_PARAM: ParamDef = {
  name: "seed",
  kind: "int",
  default: 0,
  min: 0,
  max: Number.MAX_SAFE_INTEGER,
  help: "varies every byte and name-derived choice; same seed → same dataset",
};

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** "4G", "64MiB", "1.5m", "4096" → bytes (1024-based). Throws on anything else. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new Error(`bad size "${text}" (e.g. 4096, 64K, 256M, 4G)`);
  const bytes = Math.round(Number(m[1]) * (UNITS[(m[2] ?? "").toUpperCase()] as number));
  if (!Number.isSafeInteger(bytes)) throw new Error(`size "${text}" is too large`);
  return bytes;
}

/** Bytes as "256 MiB" / "1 GiB" / "1000 B" (for listings). */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of [
    ["TiB", 2 ** 40],
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ] as const) {
    if (bytes >= scale) {
      const v = bytes / scale;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

function parseValue(def: ParamDef, text: string): number {
  const v = def.kind === "size" ? parseSize(text) : Number(text);
  if (!Number.isFinite(v) || (def.kind === "int" && !Number.isSafeInteger(v))) {
    throw new Error(`--${def.name} wants ${def.kind === "int" ? "a whole number" : "a number"}, got "${text}"`);
  }
  checkRange(def, v);
  return v;
}

function checkRange(def: ParamDef, v: number): void {
  if (v < def.min || v > def.max) {
    const show = (x: number): string => (def.kind === "size" ? formatSize(x) : String(x));
    throw new Error(`--${def.name} must be in [${show(def.min)}, ${show(def.max)}], got ${show(v)}`);
  }
}

/** Defaults overlaid with `given` (numbers, e.g. from code), checked against the defs. */
export function resolveParams(defs: readonly ParamDef[], given: Partial<Record<string, number>> = {}): Params {
  const all = [...defs, SEED_PARAM];
  const out: Record<string, number> = {};
  for (const def of all) {
    const v = given[def.name] ?? def.default;
    checkRange(def, v);
    out[def.name] = v;
  }
  for (const key of Object.keys(given)) {
    if (!all.some((d) => d.name === key)) throw new Error(`unknown parameter --${key} (known: ${all.map((d) => `--${d.name}`).join(", ")})`);
  }
  return out;
}

/** Parses `--name value` / `--name=value` pairs for `defs` (plus --seed) into numbers. */
export function parseParamArgs(defs: readonly ParamDef[], args: readonly string[]): Partial<Record<string, number>> {
  const all = [...defs, SEED_PARAM];
  const given: Record<string, number> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const def = m ? all.find((d) => d.name === m[1]) : undefined;
    if (!m || !def) throw new Error(`unknown option ${arg} (this dataset takes: ${all.map((d) => `--${d.name}`).join(", ")})`);
    const text = m[2] ?? args[++i];
    if (text === undefined) throw new Error(`--${def.name} needs a value`);
    given[def.name] = parseValue(def, text);
  }
  return given;
}

/** "--size 256 MiB, --seed 0" style summary of defaults. */
export function describeParams(defs: readonly ParamDef[]): string {
  return defs.map((d) => `--${d.name} (${d.kind === "size" ? formatSize(d.default) : d.default})`).join(" ");
}
