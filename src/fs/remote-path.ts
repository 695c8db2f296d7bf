// What the server does with the paths a client names: `~` and `~user` expansion, and pull sources
// expanded segment by segment (`*`, `?`, `[...]`, `\`) over readdir with bash's rules, no shell,
// sorted, bounded. The segment matcher is shared with the client's checks (transfer/request-guard.ts).
import { lstatSync, opendirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, resolve } from "node:path";
import type { ErrorCode } from "../errors/codes.ts";
import { EscpError, describeSysError } from "../errors/escp-error.ts";

export interface RemotePathContext {
  /** The login user's home: what `~` and `~/x` mean (bash uses $HOME). */
  home: string;
  /** Another user's home directory, or undefined for an unknown user (see lookupHome). */
  homeOf: (user: string) => string | undefined;
  /** Where relative paths resolve; default: the process's working directory (under ssh, the
   * login directory). When set, returned paths to open are prefixed with it. */
  cwd?: string;
  /** Put before a request in messages, e.g. "host:" gives "no match for host:*.h5". */
  label?: string;
  /** At most this many paths per pattern, at every step of its expansion. */
  maxMatches?: number;
}

export const MAX_MATCHES = 100_000;

// ---- users' homes -------------------------------------------------------------------------

/** `name:passwd:uid:gid:gecos:home:shell` → name and home; undefined for anything else. */
export function parsePasswdLine(line: string): { name: string; home: string } | undefined {
  const f = line.replace(/\r?\n$/, "").split(":");
  if (f.length !== 7 || f[0] === "" || f[5] === undefined || !f[5].startsWith("/")) return undefined;
  return { name: f[0] ?? "", home: f[5] };
}

/** The home of `user` in passwd-format text (the first line naming it), or undefined. */
export function homeFromPasswd(text: string, user: string): string | undefined {
  for (const line of text.split("\n")) {
    const e = parsePasswdLine(line);
    if (e?.name === user) return e.home;
  }
  return undefined;
}

/** A name getent may be asked about: no option look-alike, separator, space or control. */
const USER_NAME = /^[A-Za-z0-9_.@][A-Za-z0-9_.@$-]{0,255}$/;

/**
 * A user's home as the system's name service knows it (`getent passwd`, so LDAP/SSSD users
 * count, as they do for bash's `~user`); /etc/passwd when getent cannot run. The entry must
 * carry that very name: `getent passwd 0` answers root, but `~0` names no user.
 */
export function lookupHome(user: string): string | undefined {
  if (!USER_NAME.test(user)) return undefined;
  let out: string;
  try {
    const r = Bun.spawnSync(["getent", "passwd", user], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    if (r.exitCode === 2) return undefined; // not found
    if (r.exitCode !== 0) throw new Error(`getent exit ${r.exitCode}`);
    out = r.stdout.toString();
  } catch {
    try {
      out = readFileSync("/etc/passwd", "utf8");
    } catch {
      return undefined;
    }
  }
  return homeFromPasswd(out, user);
}

/** The context a server process runs with: $HOME (else the passwd home) and the name service. */
export function systemRemotePathContext(label = ""): RemotePathContext {
  return { home: process.env.HOME || homedir(), homeOf: lookupHome, label };
}

// ---- tilde --------------------------------------------------------------------------------

interface TildeSplit {
  /** The expanded home ("" when the path has no leading tilde). */
  home: string;
  /** What follows `~` or `~user`: "" or a string starting with "/". */
  rest: string;
}

function splitTilde(path: string, ctx: RemotePathContext, code: ErrorCode): TildeSplit | undefined {
  if (!path.startsWith("~")) return undefined;
  const slash = path.indexOf("/");
  const user = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const rest = slash < 0 ? "" : path.slice(slash);
  if (user === "") return { home: ctx.home, rest };
  const home = ctx.homeOf(user);
  if (home === undefined) {
    throw new EscpError(code, `${ctx.label ?? ""}${path}: no such user ${JSON.stringify(user)}`, { path });
  }
  return { home, rest };
}

function joinHome(home: string, rest: string): string {
  const joined = home.replace(/\/+$/, "") + rest;
  return joined === "" ? "/" : joined;
}

/**
 * `~` / `~/x` → the login home (+ /x); `~user` / `~user/x` → that user's home (+ /x); anything
 * else (relative, "", absolute, a later `~`) unchanged: relative paths stay relative to the
 * login directory. A trailing slash is kept. An unknown user throws `code` naming the user.
 */
export function expandTilde(path: string, ctx: RemotePathContext, code: ErrorCode = "E_SOURCE_MISSING"): string {
  const t = splitTilde(path, ctx, code);
  return t === undefined ? path : joinHome(t.home, t.rest);
}

/** A push destination as the server opens it: tilde expansion only (E_DEST for an unknown user). */
export function expandDest(path: string, ctx: RemotePathContext): string {
  return expandTilde(path, ctx, "E_DEST");
}

// ---- one path segment as a pattern --------------------------------------------------------

type SetItem = { lo: number; hi: number } | { cls: string };
type Token = { t: "ch"; c: string } | { t: "any" } | { t: "star" } | { t: "set"; negate: boolean; items: SetItem[] };

export interface SegmentPattern {
  readonly tokens: readonly Token[];
  /** Some `*`, `?` or complete `[...]`: the segment is matched against directory entries. */
  readonly magic: boolean;
  /** A non-magic segment with its escapes removed: the name it stands for. */
  readonly literal: string;
}

const CLASSES: Record<string, RegExp> = {
  alpha: /[A-Za-z]/,
  digit: /[0-9]/,
  alnum: /[A-Za-z0-9]/,
  upper: /[A-Z]/,
  lower: /[a-z]/,
  space: /[ \t\n\r\f\v]/,
  blank: /[ \t]/,
  punct: /[!-/:-@[-`{-~]/,
  xdigit: /[0-9A-Fa-f]/,
  cntrl: /[\x00-\x1f\x7f]/,
  print: /[ -~]/,
  graph: /[!-~]/,
};

/** `[...]` starting at chars[i] = "[": the set and the index after "]", or null (a literal "["). */
function parseSet(chars: readonly string[], i: number): { tok: Token; next: number } | null {
  let j = i + 1;
  const negate = chars[j] === "!" || chars[j] === "^";
  if (negate) j++;
  const items: SetItem[] = [];
  for (let first = true; j < chars.length; first = false) {
    const c = chars[j] ?? "";
    if (c === "]" && !first) return { tok: { t: "set", negate, items }, next: j + 1 };
    if (c === "[" && chars[j + 1] === ":") {
      const end = chars.indexOf(":", j + 2);
      if (end > 0 && chars[end + 1] === "]") {
        items.push({ cls: chars.slice(j + 2, end).join("") });
        j = end + 2;
        continue;
      }
    }
    let lo = c;
    if (c === "\\" && j + 1 < chars.length) lo = chars[++j] ?? "";
    j++;
    let hi = lo;
    if (chars[j] === "-" && chars[j + 1] !== undefined && chars[j + 1] !== "]") {
      hi = chars[j + 1] === "\\" && j + 2 < chars.length ? (chars[j + 2] ?? "") : (chars[j + 1] ?? "");
      j += chars[j + 1] === "\\" ? 3 : 2;
    }
    items.push({ lo: lo.codePointAt(0) ?? 0, hi: hi.codePointAt(0) ?? 0 });
  }
  return null;
}

/** Parse one segment (no "/") into tokens, by code point. An unclosed "[" is a literal "[",
 * a lone trailing backslash a literal backslash. */
export function parseSegment(segment: string): SegmentPattern {
  const chars = Array.from(segment);
  const tokens: Token[] = [];
  let literal = "";
  for (let i = 0; i < chars.length; ) {
    const c = chars[i] ?? "";
    const set = c === "[" ? parseSet(chars, i) : null;
    if (set !== null) {
      tokens.push(set.tok);
      i = set.next;
    } else if (c === "*") {
      // Consecutive stars are one star.
      if (tokens[tokens.length - 1]?.t !== "star") tokens.push({ t: "star" });
      i++;
    } else if (c === "?") {
      tokens.push({ t: "any" });
      i++;
    } else {
      const escaped = c === "\\" && i + 1 < chars.length;
      const ch = escaped ? (chars[i + 1] ?? "") : c;
      tokens.push({ t: "ch", c: ch });
      literal += ch;
      i += escaped ? 2 : 1;
    }
  }
  const magic = tokens.some((t) => t.t !== "ch");
  return { tokens, magic, literal };
}

function inSet(tok: Extract<Token, { t: "set" }>, ch: string): boolean {
  const cp = ch.codePointAt(0) ?? -1;
  const hit = tok.items.some((it) => ("cls" in it ? (CLASSES[it.cls]?.test(ch) ?? false) : it.lo <= cp && cp <= it.hi));
  return hit !== tok.negate;
}

function one(tok: Token, ch: string): boolean {
  if (tok.t === "ch") return tok.c === ch;
  if (tok.t === "any") return true;
  return tok.t === "set" && inSet(tok, ch);
}

/**
 * Does `name` (one directory entry) match the segment? bash's rules with dotglob off: a leading
 * "." is matched only by a literal "." (not `*`, `?` or `[.]`). Star backtracking is O(n·m).
 */
export function matchSegment(p: SegmentPattern, name: string): boolean {
  const s = Array.from(name);
  const first = p.tokens[0];
  if (s[0] === "." && !(first?.t === "ch" && first.c === ".")) return false;
  let ti = 0;
  let si = 0;
  let starTi = -1;
  let starSi = 0;
  while (si < s.length) {
    const tok = p.tokens[ti];
    if (tok !== undefined && tok.t === "star") {
      starTi = ti++;
      starSi = si;
    } else if (tok !== undefined && one(tok, s[si] ?? "")) {
      ti++;
      si++;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (p.tokens[ti]?.t === "star") ti++;
  return ti === p.tokens.length;
}

/** Split a path on "/" (an escaped "\/" is a separator too); empty segments are dropped. */
export function splitSegments(path: string): { segments: string[]; absolute: boolean; trailingSlash: boolean } {
  const segments: string[] = [];
  let cur = "";
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === "\\" && path[i + 1] === "/") continue; // the "/" that follows separates
    if (c === "\\" && i + 1 < path.length) {
      cur += c + path[++i];
    } else if (c === "/") {
      if (cur !== "") segments.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  if (cur !== "") segments.push(cur);
  return { segments, absolute: path.startsWith("/"), trailingSlash: /\/$/.test(path) && segments.length > 0 };
}

// ---- pull sources ---------------------------------------------------------------------------

export interface RemoteSource {
  /** The path to open: absolute, or relative to the process's working directory. */
  path: string;
  /** The path as the request named it, after `~` and glob expansion (for messages). */
  shown: string;
  /** The top-level name the client will see: the basename, as discover.ts's walk names it. */
  name: string;
}

export interface Expansion {
  /** In request order; each glob's matches sorted by bytes (UTF-8 code point order, as bash in C.UTF-8). */
  sources: RemoteSource[];
  /** Per request: no match, a missing literal path, an unknown ~user (the others still go). */
  problems: EscpError[];
}

interface Walker {
  ctx: RemotePathContext;
  pattern: string;
  max: number;
}

function joinPath(dir: string, name: string): string {
  if (dir === "") return name;
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function fsPath(shown: string, ctx: RemotePathContext): string {
  if (shown.startsWith("/") || ctx.cwd === undefined) return shown;
  return shown === "" ? ctx.cwd : joinPath(ctx.cwd, shown);
}

function isDir(shown: string, ctx: RemotePathContext): boolean {
  try {
    return statSync(fsPath(shown, ctx)).isDirectory();
  } catch {
    return false;
  }
}

function lstatError(shown: string, ctx: RemotePathContext): unknown {
  try {
    lstatSync(fsPath(shown, ctx));
    return undefined;
  } catch (e) {
    return e;
  }
}

function tooMany(w: Walker): EscpError {
  return new EscpError("E_USAGE", `${w.ctx.label ?? ""}${w.pattern} matches more than ${w.max} paths; name fewer`, { path: w.pattern });
}

/** The entries of `dir` matching p, one readdir entry in memory at a time. An unreadable or
 * missing directory has no matches (bash skips it too). */
function matchesIn(w: Walker, dir: string, p: SegmentPattern, out: string[]): void {
  let d;
  try {
    d = opendirSync(fsPath(dir === "" ? "." : dir, w.ctx));
  } catch {
    return;
  }
  try {
    for (let ent = d.readSync(); ent !== null; ent = d.readSync()) {
      if (!matchSegment(p, ent.name)) continue;
      out.push(joinPath(dir, ent.name));
      if (out.length > w.max) throw tooMany(w);
    }
  } catch (e) {
    if (e instanceof EscpError) throw e; // a read error mid-directory ends its matches
  } finally {
    d.closeSync();
  }
}

/** One segment applied to every path so far; non-final (or slash-ended) steps keep directories. */
function step(w: Walker, frontier: readonly string[], p: SegmentPattern, wantDir: boolean, last: boolean): string[] {
  let out: string[] = [];
  if (!p.magic) out = frontier.map((d) => joinPath(d, p.literal));
  else for (const d of frontier) matchesIn(w, d, p, out);
  if (wantDir) return out.filter((s) => isDir(s, w.ctx));
  return last ? out.filter((s) => lstatError(s, w.ctx) === undefined) : out;
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Where a request starts: "" (relative), "/" or a home (taken literally, never as a pattern). */
function startOf(pattern: string, ctx: RemotePathContext): { prefix: string; rest: string } {
  const t = splitTilde(pattern, ctx, "E_SOURCE_MISSING");
  if (t !== undefined) return { prefix: t.home.replace(/(.)\/+$/, "$1") || "/", rest: t.rest };
  return { prefix: pattern.startsWith("/") ? "/" : "", rest: pattern };
}

/** A request → the paths it names (shown form). A literal request is returned unchecked. */
function expandOne(w: Walker): { paths: string[]; glob: boolean } {
  const { prefix, rest } = startOf(w.pattern, w.ctx);
  const { segments, trailingSlash } = splitSegments(rest);
  const pats = segments.map(parseSegment);
  if (!pats.some((p) => p.magic)) {
    const shown = pats.reduce((d, p) => joinPath(d, p.literal), prefix) || ".";
    return { paths: [trailingSlash && shown !== "/" ? `${shown}/` : shown], glob: false };
  }
  let frontier = [prefix];
  pats.forEach((p, i) => {
    const last = i === pats.length - 1;
    frontier = step(w, frontier, p, !last || trailingSlash, last);
  });
  return { paths: frontier.sort(byBytes), glob: true };
}

function literalProblem(w: Walker, shown: string): EscpError | undefined {
  const e = lstatError(shown, w.ctx);
  if (e === undefined) return undefined;
  const missing = (e as { code?: string }).code === "ENOENT";
  const label = `${w.ctx.label ?? ""}${w.pattern}`;
  return new EscpError(missing ? "E_SOURCE_MISSING" : "E_SOURCE_UNREADABLE", `${label}: ${describeSysError(e)}`, { path: w.pattern });
}

function sourceOf(shown: string, ctx: RemotePathContext): RemoteSource {
  const path = fsPath(shown, ctx);
  return { path, shown, name: basename(resolve(path)) || "/" };
}

/** Expand one request into sources, or the problem that stops it. */
function sourcesFor(w: Walker): RemoteSource[] | EscpError {
  const label = `${w.ctx.label ?? ""}${w.pattern}`;
  let r;
  try {
    r = expandOne(w);
  } catch (e) {
    if (e instanceof EscpError && e.code !== "E_USAGE") return e; // unknown ~user
    throw e;
  }
  if (r.glob && r.paths.length === 0) return new EscpError("E_SOURCE_MISSING", `no match for ${label}`, { path: w.pattern });
  const only = r.paths[0];
  const bad = !r.glob && only !== undefined ? literalProblem(w, only) : undefined;
  if (bad !== undefined) return bad;
  const sources = r.paths.map((s) => sourceOf(s, w.ctx));
  if (sources.some((s) => s.name === "/")) {
    return new EscpError("E_SOURCE_UNREADABLE", `${label}: the root directory has no name to copy it under; name its entries (${w.ctx.label ?? ""}'/*')`, {
      path: w.pattern,
    });
  }
  return sources;
}

/**
 * Pull requests → the sources the server sends, in request order (a glob's matches sorted).
 * `*`, `?` and `[...]` (with `!`/`^`, ranges, `[:class:]`) match within one path segment and never
 * a leading "."; `\` escapes; `~`/`~user` expand first and the home is never a pattern; `..` is
 * an ordinary segment the filesystem resolves (the user's own request). A glob with no match,
 * a missing literal path or an unknown user is a problem for that request (E_SOURCE_MISSING).
 * Throws E_USAGE when a pattern passes ctx.maxMatches at any step, or when two sources would
 * reach the client under one name (`run*\/data.h5` matching run1/data.h5 and run2/data.h5).
 */
export function expandSources(patterns: readonly string[], ctx: RemotePathContext): Expansion {
  const out: Expansion = { sources: [], problems: [] };
  const max = ctx.maxMatches ?? MAX_MATCHES;
  const byName = new Map<string, string>();
  for (const pattern of patterns) {
    const r = sourcesFor({ ctx, pattern, max });
    if (r instanceof EscpError) {
      out.problems.push(r);
      continue;
    }
    for (const s of r) {
      const prev = byName.get(s.name);
      if (prev !== undefined) {
        const label = ctx.label ?? "";
        throw new EscpError("E_USAGE", `${label}${prev} and ${label}${s.shown} would both be copied as ${s.name}`, { path: s.shown });
      }
      byName.set(s.name, s.shown);
      out.sources.push(s);
    }
  }
  return out;
}
