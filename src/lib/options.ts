// The library's options: an object keyed by the option table's fields (src/config/options.ts),
// validated by the very code that validates the command line — each value becomes the text
// its flag would carry and goes through assignOptionText (bounds, powers of two, choices),
// then configFrom checks the combinations and the endpoints as loadConfig does. Precedence
// as for the CLI: these values > ESCP_<KEY> variables > /etc/escp.conf > defaults.
import { baseOptions, configFrom, type RunConfig, type RunIo } from "../config/load.ts";
import { OPTION_TABLE, type Options, type OptionSpec } from "../config/options.ts";
import { assignOptionText } from "../config/values.ts";
import { EscpError } from "../errors/escp-error.ts";

/** Options that only make sense for the command line (terminal output, files the CLI writes,
 * the process's logging, the server role): refused by name in a library call. */
export const CLI_ONLY = [
  "help",
  "version",
  "license",
  "json",
  "manifest",
  "quiet",
  "server",
  "restrict",
  "mgmt",
  "verbose",
  "logfile",
  "filelist",
  "cpumask",
  "nodemask",
  "shards",
  "planDir",
  "hosts",
  "maxParallel",
  "runCmd",
  "force",
] as const;
type CliOnly = (typeof CLI_ONLY)[number] | "ioengineRx";

/** What the transfer reports while it runs (TransferProgress in docs/api.md). */
export interface TransferProgress {
  /** File bytes moved so far (with resumed bytes the receiver held). */
  bytes: number;
  /** Files verified so far. */
  files: number;
  /** What the source side found; null when unknown (a stream). */
  totalBytes: number | null;
  /** Since the call. */
  seconds: number;
}

/** The option table's fields (in stored units: blocksize in bytes, timeoutMs in milliseconds,
 * limit in bytes/s), plus what only a library call has. */
export type TransferOptions = Partial<Omit<Options, CliOnly | "ioengine">> & {
  /** "posix", "dummy", or "TX::RX" (the receiver's engine separately). */
  ioengine?: Options["ioengine"] | `${Options["ioengine"]}::${Options["ioengine"]}`;
  /** Aborting it stops the transfer: the Transfer rejects with E_INTERRUPTED. */
  signal?: AbortSignal;
  /** Called with progress while the transfer runs (at most every 100 ms, and once at the end). */
  onProgress?: (p: TransferProgress) => void;
};

const LIB_ONLY = new Set(["signal", "onProgress"]);

/** A typed value as the text its flag would carry (in the user's unit: `scale` undone). */
function optionText(spec: OptionSpec, key: string, v: unknown): string {
  const bad = (want: string): EscpError => new EscpError("E_USAGE", `options.${key}: ${JSON.stringify(v) ?? String(v)}: must be ${want}`);
  switch (spec.type) {
    case "bool":
      if (typeof v !== "boolean") throw bad("a boolean");
      return String(v);
    case "int":
      if (typeof v !== "number" || !Number.isFinite(v)) throw bad("a number");
      if (spec.scale !== undefined && v % spec.scale !== 0) throw bad(`a multiple of ${spec.scale}`);
      return String(v / (spec.scale ?? 1));
    case "size":
    case "rate":
      if (typeof v === "number" && Number.isFinite(v) && v >= 0) return String(v);
      if (typeof v === "string") return v; // "1M", "100Mbit": the flag's own syntax
      throw bad('a number of bytes or a size such as "1M"');
    case "list":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string" && x !== "" && !x.includes("\n"))) throw bad("an array of non-empty one-line strings");
      return v.join("\n");
    case "string":
    case "enum":
      if (typeof v === "number" && spec.field === "numa") return String(v);
      if (typeof v !== "string") throw bad("a string");
      return v;
  }
}

/** The run configuration of a library call: its options validated as the CLI's flags are,
 * its endpoints in scp syntax (`host:path`, `user@host:path`, `scp://…`, a local path). */
export function libConfig(options: TransferOptions, positionals: string[], io: RunIo, env: Record<string, string | undefined> = process.env): RunConfig {
  if (options === null || typeof options !== "object") throw new EscpError("E_USAGE", "options: must be an object");
  const values: Partial<Options> = {};
  const flags: Partial<Record<keyof Options, string>> = {};
  for (const [key, v] of Object.entries(options)) {
    if (LIB_ONLY.has(key) || v === undefined) continue;
    const spec = OPTION_TABLE.find((s) => s.field === key);
    if (spec === undefined || (CLI_ONLY as readonly string[]).includes(key)) {
      const why = spec === undefined ? "unknown option" : "a command-line option only (see docs/api.md)";
      throw new EscpError("E_USAGE", `options.${key}: ${why}`);
    }
    const text = optionText(spec, key, v);
    assignOptionText(values, spec, text, `options.${key}: ${text.replaceAll("\n", ", ")}`, false);
    flags[spec.field] = `options.${key}`;
  }
  const opts: Options = { ...baseOptions(env), ...values, quiet: true, json: false };
  const cfg = configFrom(opts, flags, positionals);
  return { ...cfg, io };
}
