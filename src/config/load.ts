// The ONLY place that reads argv, the environment and /etc/escp.conf. Precedence:
// command line > env (ESCP_<KEY>) > config file (ESCP_CONFIG overrides its path) > default.
// EScp differs: bad YAML or values are a usage error naming the file and key, never a panic.
import { readFileSync } from "node:fs";
import { EscpError, describeSysError } from "../errors/escp-error.ts";
import { splitPositionals, tokenizeArgv, type Endpoint, type RemoteSources } from "../cli/args.ts";
import { readFilelist, type FilelistEntry } from "../fs/filelist.ts";
import { logger } from "../log/logger.ts";
import { defaultOptions, findYamlKey, OPTION_TABLE, type Options, type OptionSpec } from "./options.ts";
import { assignOptionText, usageError } from "./values.ts";

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
}

function readConfigText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined; // no config file is fine
    throw new EscpError("E_USAGE", `${path}: cannot read: ${describeSysError(e)}`, { path, cause: e });
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

/** Options set by the config file (YAML mapping of yaml keys). */
export function readConfigFile(file: string): Partial<Options> {
  const text = readConfigText(file);
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

/** True when the command needs no SOURCE/DEST (help, version, license, receiver mode). */
function needsNoPositionals(opts: Options): boolean {
  return opts.help || opts.version || opts.license || opts.server;
}

/**
 * Build the run configuration from argv (without the program name), the environment and
 * the config file. Throws EscpError E_USAGE on any bad flag, value, file or argument.
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): RunConfig {
  const cli = tokenizeArgv(argv);
  const file = env.ESCP_CONFIG !== undefined && env.ESCP_CONFIG !== "" ? env.ESCP_CONFIG : DEFAULT_CONFIG_PATH;
  const opts: Options = { ...defaultOptions(), ...readConfigFile(file), ...readEnvOptions(env), ...cli.values };
  for (const w of cli.warnings) logger.warn(w);
  checkCombinations(opts);
  if (opts.archive) Object.assign(opts, { recursive: true, preserve: true });
  if (needsNoPositionals(opts)) {
    if (opts.server && cli.positionals.length > 0) {
      throw new EscpError("E_USAGE", `--server takes no paths, got ${JSON.stringify(cli.positionals[0])}`);
    }
    return { opts, sources: [], dest: undefined, filelistEntries: [] };
  }
  const hasFilelist = opts.filelist !== undefined;
  const { sources, remote, dest } = splitPositionals(cli.positionals, hasFilelist);
  const filelistEntries = opts.filelist !== undefined ? readFilelist(opts.filelist) : [];
  return { opts, sources, dest, filelistEntries, ...(remote ? { remote } : {}) };
}

