// One command-line parser for the bench, datasets, regress and release scripts: node:util
// parseArgs (strict), `--help`/`-h` printing the script's usage, and one-line errors
// (`regress: unknown option --foo`) with exit status 2.
import { parseArgs } from "node:util";

export interface CliOption {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  help?: string;
  /** The value may start with "-" (e.g. --flags "--nochecksum -P 2"): `--name VALUE` always
   *  takes the next argument. */
  dashValue?: boolean;
}

export interface CliSpec {
  /** First line(s) of --help, e.g. "usage: bun run regress [options]". */
  usage: string;
  options: Record<string, CliOption>;
  /** Positional arguments allowed (default none). */
  positionals?: boolean;
}

export interface ParsedCli {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** A bad command line; `message` is the one-line error without the program name. */
export class CliError extends Error {}

/** `--help` text: the usage line(s) and one line per option that has help text. */
export function helpText(spec: CliSpec): string {
  const rows = Object.entries(spec.options)
    .filter(([, o]) => o.help !== undefined)
    .map(([name, o]) => [`${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? " V" : ""}`, o.help as string]);
  const width = Math.max(0, ...rows.map(([flag]) => (flag as string).length));
  return [spec.usage, ...rows.map(([flag, help]) => `  ${(flag as string).padEnd(width)}  ${help}`)].join("\n");
}

/** Turns parseArgs' multi-sentence errors into short ones naming the flag. */
function shortMessage(e: Error & { code?: string }, argv: readonly string[]): string {
  const quoted = /'(?:-\w, )?(-[^' ]+)/.exec(e.message)?.[1]; // "Option '-q, --quick' does not…" names --quick
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${quoted ?? "?"}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (/argument missing/.test(e.message)) return `${quoted ?? "option"} needs a value`;
      if (/ambiguous/.test(e.message)) return `${quoted ?? "option"} needs a value (one starting with "-" is written ${quoted ?? "--option"}=VALUE)`;
      return `${quoted ?? "option"} takes no value`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const arg = /'([^']*)'/.exec(e.message)?.[1] ?? argv.find((a) => !a.startsWith("-"));
      return `unexpected argument ${arg ?? "?"}`;
    }
    default:
      return e.message.split("\n")[0] as string;
  }
}

/** Parses argv (without the interpreter and script); throws CliError on a bad command line.
 *  `help` is true when -h/--help was given (the other values are then not checked). */
export function parseCliOrThrow(argv: readonly string[], spec: CliSpec): ParsedCli & { help: boolean } {
  if (argv.includes("--help") || argv.includes("-h")) return { values: {}, positionals: [], help: true };
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const takesDash = a.startsWith("--") && spec.options[a.slice(2)]?.dashValue === true && i + 1 < argv.length;
    args.push(takesDash ? `${a}=${argv[++i]}` : a);
  }
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: spec.positionals ?? false });
    for (const [name, v] of Object.entries(r.values)) {
      if (spec.options[name]?.type === "string" && (v === "" || (Array.isArray(v) && v.includes("")))) throw new CliError(`--${name} needs a value`);
    }
    return { values: r.values as ParsedCli["values"], positionals: r.positionals, help: false };
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(shortMessage(e as Error & { code?: string }, argv));
  }
}

/** parseCliOrThrow for a script's main: --help prints the help and exits 0; a bad command
 *  line prints `<prog>: <error>` (one line) to stderr and exits 2. */
export function parseCli(prog: string, argv: readonly string[], spec: CliSpec): ParsedCli {
  let r: ReturnType<typeof parseCliOrThrow>;
  try {
    r = parseCliOrThrow(argv, spec);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    usageExit(prog, e.message);
  }
  if (r.help) {
    console.log(helpText(spec));
    process.exit(0);
  }
  return r;
}

/** Prints `<prog>: <message>` to stderr and exits 2 (for checks made after parsing). */
export function usageExit(prog: string, message: string): never {
  process.stderr.write(`${prog}: ${message}\n`);
  process.exit(2);
}

/** A numeric option's value (> 0, or ≥ 0 with allowZero): `def` when absent; exits 2 (`<prog>: NAME X: needs a positive
 *  number`; name as the user wrote it, e.g. "--repeat") when it is not a finite number > 0. */
export function positiveNumber(prog: string, name: string, value: unknown, def: number, allowZero = false): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    usageExit(prog, `${name} ${String(value)}: needs a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return n;
}
