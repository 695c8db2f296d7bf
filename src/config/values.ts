// Turns one option's text (from argv, env or /etc/escp.conf) into its typed, range-checked value.
// Throws EscpError E_USAGE whose message is `<label>: <cause>`; callers choose the label
// (`--blocksize 300K`, `ESCP_THREADS=0`, `/etc/escp.conf: threads: 0`).
import { EscpError } from "../errors/escp-error.ts";
import { IO_ENGINES, setOption, type IoEngine, type Options, type OptionSpec, type OptionValue } from "./options.ts";

const UNIT_POWER: Record<string, number> = { "": 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

/** "64K" style text for a byte count (exact 1024 multiples only, else plain bytes). */
export function formatSizeUnit(bytes: number): string {
  const units = ["", "K", "M", "G", "T"];
  let v = bytes;
  let i = 0;
  while (i < units.length - 1 && v >= 1024 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v}${units[i]}`;
}

/** Human size in bytes: `1k` = 1024, `1M` = 2^20 (optional trailing B/iB); `…bit` = 1000-based bits / 8. */
export function parseHumanBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?b|bit|bits|bit\/s|b\/s|bps)?\s*$/i.exec(text);
  if (!m) return undefined;
  const num = Number(m[1]);
  const power = UNIT_POWER[(m[2] ?? "").toLowerCase()] ?? 0;
  const suffix = (m[3] ?? "").toLowerCase();
  const isBits = suffix.startsWith("bit") || suffix === "bps";
  const bytes = isBits ? (num * 1000 ** power) / 8 : num * 1024 ** power;
  return Number.isFinite(bytes) ? Math.floor(bytes) : undefined;
}

export function parseBoolText(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(t)) return true;
  if (["0", "false", "no", "off", ""].includes(t)) return false;
  return undefined;
}

export function usageError(label: string, cause: string): EscpError {
  return new EscpError("E_USAGE", `${label}: ${cause}`);
}

function parseInt10(spec: OptionSpec, text: string, label: string): number {
  const min = spec.min ?? 0;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(label, `must be an integer between ${min} and ${max}`);
  }
  return n * (spec.scale ?? 1);
}

function parseSize(spec: OptionSpec, text: string, label: string): number {
  const n = parseHumanBytes(text);
  if (n === undefined) throw usageError(label, "not a size (e.g. 1M or 256K)");
  const min = spec.min ?? 0;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  const pow2 = spec.powerOfTwo !== true || (n > 0 && (n & (n - 1)) === 0);
  if (n < min || n > max || !pow2) {
    const what = spec.powerOfTwo === true ? "a power of two" : "a size";
    throw usageError(label, `must be ${what} between ${formatSizeUnit(min)} and ${formatSizeUnit(max)}`);
  }
  return n;
}

function parseEnum(spec: OptionSpec, text: string, label: string): string {
  const choices = spec.choices ?? [];
  if (choices.includes(text)) return text;
  throw usageError(label, `must be one of ${choices.join(", ")}`);
}

/** `--ioengine TX` or the original's `TX::RX`; both halves must name an engine. */
export function parseIoEngine(text: string, label: string): { tx: IoEngine; rx: IoEngine } {
  const halves = text.split("::");
  if (halves.length > 2) throw usageError(label, "expected ENGINE or TX::RX");
  const engines = halves.map((h) => {
    const e = IO_ENGINES.find((x) => x === h);
    if (e === undefined) throw usageError(label, `unknown I/O engine ${JSON.stringify(h)} (expected ${IO_ENGINES.join(" or ")})`);
    return e;
  });
  const tx = engines[0] ?? "posix";
  return { tx, rx: engines[1] ?? tx };
}

/**
 * Parse `text` for `spec` and store it into `target` (ioengine also sets ioengineRx).
 * `append` (repeated CLI flags) adds to a list instead of replacing it.
 */
export function assignOptionText(target: Partial<Options>, spec: OptionSpec, text: string, label: string, append: boolean): void {
  if (spec.field === "ioengine") {
    const { tx, rx } = parseIoEngine(text, label);
    target.ioengine = tx;
    target.ioengineRx = rx;
    return;
  }
  if (spec.field === "cpumask" || spec.field === "nodemask") {
    target[spec.field] = parseHexMask(text, label);
    return;
  }
  if (spec.field === "numa") {
    // Whether the node exists is checked against sysfs when a session starts (transfer/numa.ts).
    if (!/^(off|auto|\d{1,4})$/.test(text) || Number(text) > 1023) throw usageError(label, "must be off, auto or a NUMA node number (0..1023)");
    target.numa = text;
    return;
  }
  if (spec.type === "list" && append) {
    if (text.length === 0) throw usageError(label, "must not be empty");
    const prev = (target as Record<string, OptionValue | undefined>)[spec.field];
    setOption(target as Options, spec.field, [...(Array.isArray(prev) ? prev : []), text]);
    return;
  }
  setOption(target as Options, spec.field, parseOptionText(spec, text, label));
}

/**
 * Parse one textual value for `spec`. Bool options accept 1/0/true/false/yes/no/on/off here
 * (the CLI form sets them by presence and never calls this). Lists split on newlines.
 */
export function parseOptionText(spec: OptionSpec, text: string, label: string): OptionValue {
  switch (spec.type) {
    case "bool": {
      const b = parseBoolText(text);
      if (b === undefined) throw usageError(label, "must be 1, 0, true, false, yes or no");
      return b;
    }
    case "int":
      return parseInt10(spec, text, label);
    case "size":
      return parseSize(spec, text, label);
    case "rate": {
      const n = parseHumanBytes(text);
      if (n === undefined) throw usageError(label, "not a rate in bytes/s (e.g. 100M, 1G or 800Mbit; 0 = off)");
      return n;
    }
    case "enum":
      return parseEnum(spec, text, label);
    case "list":
      return text
        .split("\n")
        .map((s) => s.replace(/\r$/, ""))
        .filter((s) => s.length > 0);
    case "string":
      if (text.length === 0) throw usageError(label, "must not be empty");
      return text;
  }
}

/** Validate a hex mask such as "FF00" (optional 0x prefix); returns it without the prefix. */
export function parseHexMask(text: string, label: string): string {
  const t = text.trim().replace(/^0x/i, "");
  if (!/^[0-9a-f]+$/i.test(t)) throw usageError(label, 'must be a hex string such as "ff00"');
  return t;
}
