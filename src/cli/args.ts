// Pure scp-style argv handling, driven by the option table: flag tokenizing, endpoint
// parsing (`[user@]host:[path]`, `[user@][v6]:path`, `scp://…`, local paths) and the
// SOURCE... DEST split. No I/O: load.ts feeds it argv and logs the warnings it returns.
import { EscpError } from "../errors/escp-error.ts";
import { findLong, findShort, IGNORED_SCP_FLAGS, type OptionField, type Options, type OptionSpec } from "../config/options.ts";
import { assignOptionText, usageError } from "../config/values.ts";
import { USAGE_LINE } from "./usage.ts";

export interface Endpoint {
  /** undefined = a local path. IPv6 addresses are stored without brackets. */
  host?: string;
  user?: string;
  /** Only from an scp:// URI; it overrides -P. */
  port?: number;
  /** "" = the receiver's login directory (home). */
  path: string;
}

export interface ParsedArgv {
  /** Values given on the command line, already parsed and range-checked. */
  values: Partial<Options>;
  /** The flag spelling the user typed for each field (for later messages). */
  flags: Partial<Record<OptionField, string>>;
  positionals: string[];
  /** Ignored scp-compat flags, one warning line each, for the logger. */
  warnings: string[];
}

function setFlag(out: ParsedArgv, spec: OptionSpec, flag: string, value: string | undefined): void {
  out.flags[spec.field] = flag;
  if (spec.type === "bool") {
    if (value !== undefined) throw usageError(flag, "takes no value");
    (out.values as Record<string, boolean>)[spec.field] = true;
    return;
  }
  if (value === undefined) throw usageError(flag, `missing value (${spec.valueName ?? "VALUE"})`);
  assignOptionText(out.values, spec, value, `${flag} ${value}`, true);
}

function parseLong(out: ParsedArgv, argv: readonly string[], i: number): number {
  const arg = argv[i] ?? "";
  const eq = arg.indexOf("=");
  const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
  const negated = name.startsWith("no-") ? findLong(name.slice(3)) : undefined;
  if (negated?.negatable === true) {
    if (eq >= 0) throw usageError(`--${name}`, "takes no value");
    out.flags[negated.field] = `--${name}`;
    (out.values as Record<string, boolean>)[negated.field] = false;
    return i;
  }
  const spec = findLong(name);
  if (!spec) throw new EscpError("E_USAGE", `unknown option --${name}`);
  if (eq >= 0) {
    setFlag(out, spec, `--${name}`, arg.slice(eq + 1));
    return i;
  }
  if (spec.type === "bool") {
    setFlag(out, spec, `--${name}`, undefined);
    return i;
  }
  setFlag(out, spec, `--${name}`, argv[i + 1]);
  return i + 1;
}

/** `-rpq`, `-t4`, `-t 4`, `-rt4`: bools bundle; the first valued flag takes the rest or the next arg. */
function parseShortBundle(out: ParsedArgv, argv: readonly string[], i: number): number {
  const arg = argv[i] ?? "";
  for (let k = 1; k < arg.length; k++) {
    const ch = arg.charAt(k);
    const ignored = IGNORED_SCP_FLAGS.get(ch);
    if (ignored !== undefined) {
      out.warnings.push(ignored);
      continue;
    }
    const spec = findShort(ch);
    if (!spec) throw new EscpError("E_USAGE", `unknown option -${ch}`);
    if (spec.type === "bool") {
      setFlag(out, spec, `-${ch}`, undefined);
      continue;
    }
    const rest = arg.slice(k + 1);
    if (rest.length > 0) {
      setFlag(out, spec, `-${ch}`, rest);
      return i;
    }
    setFlag(out, spec, `-${ch}`, argv[i + 1]);
    return i + 1;
  }
  return i;
}

/** Tokenize argv (without the program name). `--` ends options; a lone `-` is positional. */
export function tokenizeArgv(argv: readonly string[]): ParsedArgv {
  const out: ParsedArgv = { values: {}, flags: {}, positionals: [], warnings: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) i = parseLong(out, argv, i);
    else if (arg.startsWith("-") && arg.length > 1) i = parseShortBundle(out, argv, i);
    else out.positionals.push(arg);
  }
  return out;
}

function checkHostUser(s: string, host: string, user: string | undefined): void {
  // A leading "-" would reach ssh as an option (e.g. -oProxyCommand=...): never allow it.
  if (host.length === 0) throw usageError(s, "missing host name");
  if (host.startsWith("-") || /[\s/]/.test(host)) throw usageError(s, `bad host name ${JSON.stringify(host)}`);
  if (user !== undefined && (user.length === 0 || user.startsWith("-") || /\s/.test(user))) {
    throw usageError(s, `bad user name ${JSON.stringify(user)}`);
  }
}

function splitUser(s: string, hostPart: string): { user?: string; host: string } {
  const at = hostPart.lastIndexOf("@");
  if (at < 0) return { host: hostPart };
  const user = hostPart.slice(0, at);
  if (user.length === 0) throw usageError(s, "empty user name before @");
  return { user, host: hostPart.slice(at + 1) };
}

/** scp://[user@]host[:port][/path]: the path is what follows the first "/" (so //abs is absolute). */
function parseScpUri(s: string): Endpoint {
  const rest = s.slice("scp://".length);
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash + 1);
  const { user, host: hostPort } = splitUser(s, authority);
  const m = /^(?:\[([^\]]*)\]|([^:]*))(?::(.*))?$/.exec(hostPort);
  const host = m?.[1] ?? m?.[2] ?? "";
  checkHostUser(s, host, user);
  const ep: Endpoint = { host, path };
  if (user !== undefined) ep.user = user;
  const portText = m?.[3];
  if (portText !== undefined && portText !== "") {
    const port = /^\d+$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) throw usageError(s, `bad port ${JSON.stringify(portText)} (must be 1..65535)`);
    ep.port = port;
  }
  return ep;
}

/**
 * Index of the colon separating host from path, or -1 for a local path (scp's colon()):
 * a leading ":" is part of a file name, a "/" before any colon makes it local,
 * `[v6]:` and `user@[v6]:` use the colon after "]", and `\:` is escaped.
 */
function hostColon(s: string): number {
  if (s.startsWith(":")) return -1;
  let bracket = s.startsWith("[");
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && s[i + 1] === ":") i++;
    else if (c === "@" && s[i + 1] === "[") bracket = true;
    else if (c === "]" && s[i + 1] === ":" && bracket) return i + 1;
    else if (c === ":" && !bracket) return i;
    else if (c === "/") return -1;
  }
  return -1;
}

/** Parse one SOURCE or DEST argument. Local paths get `\:` unescaped to `:`. */
export function parseEndpoint(s: string): Endpoint {
  if (s.startsWith("scp://")) return parseScpUri(s);
  const colon = hostColon(s);
  if (colon < 0) return { path: s.replaceAll("\\:", ":") };
  const { user, host: rawHost } = splitUser(s, s.slice(0, colon));
  const v6 = /^\[([^\]]*)\]$/.exec(rawHost);
  const host = v6 ? (v6[1] ?? "") : rawHost;
  checkHostUser(s, host, user);
  const ep: Endpoint = { host, path: s.slice(colon + 1) };
  if (user !== undefined) ep.user = user;
  return ep;
}

export interface RemoteSources {
  host: string;
  user?: string;
  port?: number;
  /** As typed after `host:` (globs and ~ are the server's to expand); "" = the login directory. */
  paths: string[];
}

export interface Positionals {
  /** Local source paths (push or local copy). */
  sources: string[];
  /** Remote sources, all on one host (a pull, or with a remote destination a third-party copy). */
  remote?: RemoteSources;
  dest: Endpoint;
}

function sameHost(a: Endpoint, b: RemoteSources): boolean {
  return a.host === b.host && a.user === b.user && a.port === b.port;
}

/** Remote sources must all name one host (one session); local and remote cannot mix. */
function remoteSources(eps: Endpoint[], raw: readonly string[]): RemoteSources | undefined {
  const remote = eps.filter((e) => e.host !== undefined);
  if (remote.length === 0) return undefined;
  if (remote.length !== eps.length) {
    throw new EscpError("E_USAGE", `${raw[eps.findIndex((e) => e.host === undefined)]}: local and remote sources cannot be mixed in one command`);
  }
  const first = remote[0] as Endpoint & { host: string };
  const out: RemoteSources = { host: first.host, paths: [], ...(first.user ? { user: first.user } : {}), ...(first.port ? { port: first.port } : {}) };
  remote.forEach((e, i) => {
    if (!sameHost(e, out))
      throw new EscpError("E_USAGE", `${raw[i]}: all remote sources must be on one host (${first.user ? `${first.user}@` : ""}${first.host})`);
    out.paths.push(e.path);
  });
  return out;
}

/**
 * The last positional is the destination, the rest are the sources: all local (push or a
 * local copy) or all on one remote host (pull; with a remote destination, a third-party copy,
 * with or without -3). With --filelist the only positional is the destination.
 */
export function splitPositionals(positionals: readonly string[], hasFilelist: boolean): Positionals {
  const last = positionals[positionals.length - 1];
  if (last === undefined) throw new EscpError("E_USAGE", `missing source and destination; ${USAGE_LINE}`);
  if (hasFilelist && positionals.length > 1) {
    throw new EscpError("E_USAGE", `--filelist: give only the destination after the options, not ${JSON.stringify(positionals[0])}`);
  }
  if (!hasFilelist && positionals.length < 2) throw new EscpError("E_USAGE", `missing destination; ${USAGE_LINE}`);
  const raw = positionals.slice(0, -1);
  const eps = raw.map(parseEndpoint);
  const dest = parseEndpoint(last);
  const remote = remoteSources(eps, raw);
  if (remote === undefined) {
    for (const e of eps) if (e.path.length === 0) throw new EscpError("E_USAGE", "empty source path");
    return { sources: eps.map((e) => e.path), dest };
  }
  return { sources: [], remote, dest }; // a remote destination too: a third-party copy (-3)
}
