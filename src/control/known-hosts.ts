// OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT") for the built-in ssh client:
// parse lines, match host patterns (plain, wildcard, negated, hashed, [host]:port) and say whether
// a server's host key is known, changed, revoked or new. Pure except readKnownHosts/appendKnownHost.
import { createHash, createHmac, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  /** An `@revoked` line: its key is never accepted for the hosts it names. */
  revoked: boolean;
  /** The host field as written: a pattern list, or one hashed name `|1|salt|hmac`. */
  hosts: string;
  hashed: { salt: Buffer; mac: Buffer } | undefined;
  keyType: string;
  /** The decoded public key blob (what the server sends in key exchange). */
  key: Buffer;
}

export type HostKeyVerdict =
  | { kind: "known"; entry: KnownHostEntry }
  | { kind: "revoked"; entry: KnownHostEntry }
  | { kind: "changed"; entry: KnownHostEntry }
  | { kind: "unknown" };

const HASH_MAGIC = "|1|";
const SHA1_LEN = 20;
const DEFAULT_PORT = 22;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** The name known_hosts stores for a host and port: bare for port 22, else `[host]:port`. */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === DEFAULT_PORT || port === 0 ? h : `[${h}]:${port}`;
}

/** OpenSSH wildcards: `*` any run of characters (also none), `?` exactly one; case-insensitive. */
export function wildcardMatch(pattern: string, s: string): boolean {
  const p = pattern.toLowerCase();
  const t = s.toLowerCase();
  let pi = 0;
  let ti = 0;
  let star = -1; // index in p of the last `*` seen
  let resume = 0; // index in t where that `*` currently stops
  while (ti < t.length) {
    if (p[pi] === "*") {
      star = pi++;
      resume = ti;
    } else if (pi < p.length && (p[pi] === "?" || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === "*") pi++;
  return pi === p.length;
}

/** Does `name` match a comma-separated pattern list? A matching `!pattern` vetoes the whole list. */
export function matchHostPatterns(list: string, name: string): boolean {
  let hit = false;
  for (const item of list.split(",")) {
    const negated = item.startsWith("!");
    const pattern = negated ? item.slice(1) : item;
    if (pattern === "" || !wildcardMatch(pattern, name)) continue;
    if (negated) return false;
    hit = true;
  }
  return hit;
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, the form `ssh-keygen -H` writes. */
export function hashHostName(name: string, salt: Buffer = randomBytes(SHA1_LEN)): string {
  const mac = createHmac("sha1", salt).update(name).digest("base64");
  return `${HASH_MAGIC}${salt.toString("base64")}|${mac}`;
}

function decode64(s: string | undefined, len?: number): Buffer | undefined {
  if (s === undefined || !BASE64_RE.test(s)) return undefined;
  const b = Buffer.from(s, "base64");
  return len === undefined || b.length === len ? b : undefined;
}

function parseHashed(field: string): { salt: Buffer; mac: Buffer } | undefined {
  const parts = field.slice(HASH_MAGIC.length).split("|");
  const salt = decode64(parts[0], SHA1_LEN);
  const mac = decode64(parts[1], SHA1_LEN);
  return parts.length === 2 && salt && mac ? { salt, mac } : undefined;
}

/** The key type a public key blob names in its first SSH string (`ssh-ed25519`, ...). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  return len > 0 && len <= blob.length - 4 ? blob.toString("latin1", 4, 4 + len) : undefined;
}

/** One line of a known_hosts file, or undefined for blank lines, comments and malformed lines. */
export function parseKnownHostLine(text: string, file: string, line: number): KnownHostEntry | undefined {
  const fields = text.trim().split(/\s+/);
  let revoked = false;
  if (fields[0]?.startsWith("@")) {
    // `@cert-authority` lines trust a CA for host certificates; ssh2 never presents a
    // certificate, so they are ignored (as is any other marker).
    if (fields.shift()?.toLowerCase() !== "@revoked") return undefined;
    revoked = true;
  }
  const [hosts, keyType, b64] = fields;
  if (hosts === undefined || hosts === "" || hosts.startsWith("#") || keyType === undefined) return undefined;
  const key = decode64(b64);
  if (key === undefined || blobKeyType(key) !== keyType) return undefined;
  const hashed = hosts.startsWith(HASH_MAGIC) ? parseHashed(hosts) : undefined;
  if (hosts.startsWith("|") && hashed === undefined) return undefined;
  return { file, line, revoked, hosts, hashed, keyType, key };
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split("\n").forEach((l, i) => {
    const e = parseKnownHostLine(l, file, i + 1);
    if (e) out.push(e);
  });
  return out;
}

/** Does the entry's host field name `name` (from knownHostName)? */
export function entryMatches(e: KnownHostEntry, name: string): boolean {
  if (e.hashed === undefined) return matchHostPatterns(e.hosts, name);
  return createHmac("sha1", e.hashed.salt).update(name).digest().equals(e.hashed.mac);
}

/**
 * What `key` means for `name`: a matching @revoked line wins; then a line with this very key;
 * then any other line for the host (same key type preferred) means the key changed.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  const mine = entries.filter((e) => entryMatches(e, name));
  const revoked = mine.find((e) => e.revoked && e.key.equals(key));
  if (revoked) return { kind: "revoked", entry: revoked };
  const valid = mine.filter((e) => !e.revoked);
  const known = valid.find((e) => e.key.equals(key));
  if (known) return { kind: "known", entry: known };
  const type = blobKeyType(key);
  const other = valid.find((e) => e.keyType === type) ?? valid[0];
  return other ? { kind: "changed", entry: other } : { kind: "unknown" };
}

/** Key types known_hosts holds (not revoked) for `name`, in file order, without repeats. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  return [...new Set(entries.filter((e) => !e.revoked && entryMatches(e, name)).map((e) => e.keyType))];
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type as `ssh-keygen -l` names it: ED25519, ECDSA, RSA, ... */
export function keyLabel(blob: Buffer): string {
  const t = blobKeyType(blob) ?? "unknown";
  if (t === "ssh-ed25519") return "ED25519";
  if (t.startsWith("ecdsa-sha2-")) return "ECDSA";
  if (t === "ssh-rsa") return "RSA";
  if (t === "ssh-dss") return "DSA";
  return t.toUpperCase();
}

/** A known_hosts line for `name` and `key`, the name hashed on request. */
export function knownHostLine(name: string, key: Buffer, hash: boolean): string {
  return `${hash ? hashHostName(name) : name} ${blobKeyType(key) ?? "unknown"} ${key.toString("base64")}`;
}

/** Entries of every readable file in order; a missing file is skipped silently, others are reported. */
export function readKnownHosts(files: readonly string[]): { entries: KnownHostEntry[]; problems: string[] } {
  const entries: KnownHostEntry[] = [];
  const problems: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") problems.push(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    entries.push(...parseKnownHosts(text, file));
  }
  return { entries, problems };
}

/** Append one line; a missing parent directory is created (one level, 0700), a new file is 0600. */
export function appendKnownHost(file: string, line: string): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: 0o700 });
  const fd = fs.openSync(file, "a+", 0o600);
  try {
    const size = fs.fstatSync(fd).size;
    const last = Buffer.alloc(1);
    const needsNewline = size > 0 && fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
    fs.writeSync(fd, `${needsNewline ? "\n" : ""}${line}\n`);
  } finally {
    fs.closeSync(fd);
  }
}
