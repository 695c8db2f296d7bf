// The ONLY place that reads argv, the environment and /etc/escp.conf. Precedence:
// command line > env (ESCP_<KEY>) > config file (ESCP_CONFIG overrides its path) > default.
// EScp differs: bad YAML or values are a usage error naming the file and key, never a panic.
import { readFileSync, statSync } from "node:fs";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { splitPositionals, tokenizeArgv, type Endpoint, type ParsedArgv, type RemoteSources } from "../cli/args.ts";
import { readFilelist, shardRanges, type FilelistEntry } from "../fs/filelist.ts";
import { skipDone } from "../fs/shard-done.ts";
import { logger } from "../log/logger.ts";
import { defaultOptions, findYamlKey, OPTION_TABLE, type Options, type OptionSpec } from "./options.ts";
import { assignOptionText, usageError } from "./values.ts";
import type { StreamFeed } from "../transfer/stream-feed.ts";

export const DEFAULT_CONFIG_PATH = "/etc/escp.conf";

export interface RunConfig {
  opts: Options;
  /** Local source paths from the command line (empty with --filelist, --server or a pull). */
  sources: string[];
  /** A pull: the remote host and the paths to fetch from it. */
  remote?: RemoteSources;
  /** undefined only for --server, --help, --version and --license. */
  dest: Endpoint | undefined;
  filelistEntries: FilelistEntry[];
  /** `escp - DEST`: the one source is this process's standard input (a stream). */
  stdin?: boolean;
  /** `escp SRC -`: the one source file is written to standard output. */
  stdout?: boolean;
  /** Library calls only (src/lib): what replaces standard input and output, and the abort. */
  io?: RunIo;
  /** --shard-done: entries of the shard skipped as verified by an earlier attempt, of how many. */
  shardDone?: { skipped: number; of: number };
}

/** What a library call puts where the CLI has its standard input and output. */
export interface RunIo {
  /** With `stdin`: the stream's bytes come from this feed instead of file descriptor 0. */
  feed?: StreamFeed;
  /** With `stdout`: the file's bytes are written, in order, to this descriptor instead of 1. */
  stdoutFd?: number;
  /** Aborting it stops the session: E_INTERRUPTED. */
  signal?: AbortSignal;
}

/** `-` as the source (stdin) or the destination (stdout): what may go with it, checked before
 * anything starts. `flags` holds the options the user typed (a default is not an objection). */
function streamEnds(
  opts: Options,
  flags: ParsedArgv["flags"],
  sources: string[],
  remote: RemoteSources | undefined,
  dest: Endpoint,
): { stdin: boolean; stdout: boolean } {
  const stdin = sources.includes("-");
  const stdout = dest.host === undefined && dest.path === "-";
  if (stdin) {
    if (sources.length > 1) throw new EscpError("E_USAGE", "-: standard input must be the only source");
    if (stdout) throw new EscpError("E_USAGE", "- -: standard input to standard output is not a transfer (use cat)");
    if (opts.filelist !== undefined) throw new EscpError("E_USAGE", "--filelist: not with - (standard input as the source)");
    if (flags.retries !== undefined && opts.retries > 0)
      throw new EscpError("E_USAGE", `${flags.retries}: standard input cannot be read twice, so a dropped stream cannot be resent (use --retries 0)`);
    if (flags.resume !== undefined && opts.resume) throw new EscpError("E_USAGE", `${flags.resume}: a stream from standard input cannot be resumed`);
  }
  if (stdout) {
    const n = remote ? remote.paths.length : sources.length;
    if (n !== 1) throw new EscpError("E_USAGE", "-: standard output takes exactly one source file");
    if (opts.recursive || opts.archive)
      throw new EscpError("E_USAGE", `${flags.recursive ?? flags.archive ?? "-r"}: standard output takes one file, not a tree`);
    if (opts.json) throw new EscpError("E_USAGE", "--json: not with - as the destination (standard output carries the file)");
    if (opts.filelist !== undefined) throw new EscpError("E_USAGE", "--filelist: not with - as the destination");
    if (opts.thirdParty) throw new EscpError("E_USAGE", "-3: not with - as the destination");
  }
  return { stdin, stdout };
}

/** `named`: the path came from ESCP_CONFIG, so the file must exist; a missing /etc/escp.conf is fine. */
function readConfigText(path: string, named: boolean): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if (!named && (e as { code?: string }).code === "ENOENT") return undefined; // no config file is fine
    const via = named ? " (ESCP_CONFIG)" : "";
    throw new EscpError("E_USAGE", `${path}${via}: cannot read: ${describeSysError(e)}`, { path, cause: e });
  }
}

/** A YAML scalar as option text; lists only for list options. */
function yamlValueText(file: string, key: string, spec: OptionSpec, value: unknown): string {
  if (typeof value === "string") return value;
  if (spec.type === "list" && Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return value.join("\n");
  }
  if (spec.field === "cpumask" || spec.field === "nodemask") {
    // An unquoted 10 is the integer ten in YAML but "0x10" in the original: refuse to guess.
    throw usageError(`${file}: ${key}: ${JSON.stringify(value)}`, 'must be a quoted hex string such as "ff00"');
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw usageError(`${file}: ${key}: ${JSON.stringify(value)}`, `expected a ${spec.type === "list" ? "string or list of strings" : "scalar value"}`);
}

/** Options set by the config file (YAML mapping of yaml keys). `named` (ESCP_CONFIG): a missing
 * file is an error too, not only an unreadable one. */
export function readConfigFile(file: string, named = false): Partial<Options> {
  const text = readConfigText(file, named);
  if (text === undefined) return {};
  let doc: unknown;
  try {
    doc = Bun.YAML.parse(text);
  } catch (e) {
    throw new EscpError("E_USAGE", `${file}: bad YAML: ${e instanceof Error ? e.message : String(e)}`, { path: file });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new EscpError("E_USAGE", `${file}: expected a YAML mapping of key: value`, { path: file });
  }
  const out: Partial<Options> = {};
  for (const [key, value] of Object.entries(doc)) {
    const spec = findYamlKey(key);
    if (!spec) throw new EscpError("E_USAGE", `${file}: unknown key ${JSON.stringify(key)}`, { path: file });
    if (value === null) continue;
    const text = yamlValueText(file, key, spec, value);
    assignOptionText(out, spec, text, `${file}: ${key}: ${text.replaceAll("\n", ", ")}`, false);
  }
  return out;
}

/** Options set by ESCP_<KEY> variables (an empty value counts as unset). */
export function readEnvOptions(env: Record<string, string | undefined>): Partial<Options> {
  const out: Partial<Options> = {};
  for (const spec of OPTION_TABLE) {
    const value = spec.env === undefined ? undefined : env[spec.env];
    if (value === undefined || value === "") continue;
    assignOptionText(out, spec, value, `${spec.env}=${value}`, false);
  }
  return out;
}

function checkCombinations(opts: Options): void {
  if (opts.ipv4 && opts.ipv6) throw new EscpError("E_USAGE", "-4 and -6: cannot be used together");
  if (opts.manifest !== undefined && opts.nochecksum) {
    throw new EscpError("E_USAGE", `--manifest ${opts.manifest}: not with --nochecksum (without checksums there are no digests to list)`);
  }
  if (opts.escpPort + opts.escpPortrange - 1 > 65535) {
    throw new EscpError("E_USAGE", `--escp_portrange ${opts.escpPortrange}: ports ${opts.escpPort}..${opts.escpPort + opts.escpPortrange - 1} go past 65535`);
  }
}

/** --shard FILE: a list and a destination, resume on (forced; --no-resume is refused). */
function shardChecks(opts: Options, flags: ParsedArgv["flags"], positionals: string[]): void {
  if (opts.filelist !== undefined) throw new EscpError("E_USAGE", "--shard: not with --filelist (the shard's list names the sources)");
  if (flags.resume !== undefined && !opts.resume) throw new EscpError("E_USAGE", `--shard: not with ${flags.resume} (a shard is resumed when it is run again)`);
  if (opts.nochecksum) throw new EscpError("E_USAGE", "--shard: not with --nochecksum (ranges are verified and joined by their BLAKE3)");
  if (positionals.length > 1) throw new EscpError("E_USAGE", `--shard: give only the destination after the options, not ${JSON.stringify(positionals[0])}`);
  opts.resume = true;
}

function shardEntries(file: string, blockSize: number): FilelistEntry[] {
  return shardRanges(file, readFilelist(file, "--shard"), blockSize, (p) => {
    try {
      const st = statSync(p);
      return st.isFile() ? st.size : -1;
    } catch {
      return undefined;
    }
  });
}

/** True when the command needs no SOURCE/DEST (help, version, license, receiver mode). */
function needsNoPositionals(opts: Options): boolean {
  return opts.help || opts.version || opts.license || opts.server;
}

/** Defaults, then /etc/escp.conf (ESCP_CONFIG overrides its path), then ESCP_<KEY> variables:
 * the options every run starts from, before its own values (argv, or a library call's). */
export function baseOptions(env: Record<string, string | undefined>): Options {
  const named = env.ESCP_CONFIG !== undefined && env.ESCP_CONFIG !== "";
  const file = named ? (env.ESCP_CONFIG as string) : DEFAULT_CONFIG_PATH;
  return { ...defaultOptions(), ...readConfigFile(file, named), ...readEnvOptions(env) };
}

/**
 * The run configuration from options already parsed and merged (`flags`: how the user spelt
 * each option set explicitly, for messages) and the SOURCE… DEST positionals: the checks of
 * combinations, scp's endpoint syntax and `-` (standard input or output). The CLI
 * (loadConfig) and the library (src/lib/options.ts) both end here. Throws EscpError E_USAGE.
 */
export function configFrom(opts: Options, flags: ParsedArgv["flags"], positionals: string[], plan = false): RunConfig {
  checkCombinations(opts);
  if (!plan) {
    const planOnly = OPTION_TABLE.find((s) => s.plan === true && flags[s.field] !== undefined);
    if (planOnly) throw new EscpError("E_USAGE", `${flags[planOnly.field]}: only with escp plan (escp plan SRC... DEST --shards N)`);
  }
  if (opts.archive) Object.assign(opts, { recursive: true, preserve: true });
  if (needsNoPositionals(opts)) {
    if (opts.server && positionals.length > 0) {
      throw new EscpError("E_USAGE", `--server takes no paths, got ${JSON.stringify(positionals[0])}`);
    }
    return { opts, sources: [], dest: undefined, filelistEntries: [] };
  }
  if (opts.shard !== undefined) shardChecks(opts, flags, positionals);
  else if (opts.shardDone !== undefined) throw new EscpError("E_USAGE", `${flags.shardDone ?? "--shard-done"}: only with --shard`);
  const hasFilelist = opts.filelist !== undefined || opts.shard !== undefined;
  const { sources, remote, dest } = splitPositionals(positionals, hasFilelist);
  const ends = streamEnds(opts, flags, sources, remote, dest);
  let filelistEntries = opts.shard !== undefined ? shardEntries(opts.shard, opts.blocksize) : opts.filelist !== undefined ? readFilelist(opts.filelist) : [];
  let shardDone: RunConfig["shardDone"];
  if (opts.shardDone !== undefined) {
    const of = filelistEntries.length;
    const left = skipDone(opts.shardDone, filelistEntries);
    filelistEntries = left.entries;
    shardDone = { skipped: left.skipped, of };
  }
  return {
    opts,
    sources,
    dest,
    filelistEntries,
    ...(shardDone ? { shardDone } : {}),
    ...(remote ? { remote } : {}),
    ...(ends.stdin ? { stdin: true } : {}),
    ...(ends.stdout ? { stdout: true } : {}),
  };
}

/**
 * Build the run configuration from argv (without the program name), the environment and
 * the config file. Throws EscpError E_USAGE on any bad flag, value, file or argument.
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): RunConfig {
  const cli = tokenizeArgv(argv);
  const opts: Options = { ...baseOptions(env), ...cli.values };
  for (const w of cli.warnings) logger.warn(w);
  return configFrom(opts, cli.flags, cli.positionals);
}
