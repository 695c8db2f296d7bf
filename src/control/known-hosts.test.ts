// known_hosts parsing and matching: plain, wildcard and negated patterns, hashed names (ours and
// real `ssh-keygen -H` output), [host]:port, @revoked, comments, malformed lines, several files.
import { afterAll, describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import {
  appendKnownHost,
  blobKeyType,
  checkHostKey,
  entryMatches,
  fingerprint,
  hashHostName,
  keyLabel,
  knownHostLine,
  knownHostName,
  knownKeyTypes,
  matchHostPatterns,
  parseKnownHostLine,
  parseKnownHosts,
  readKnownHosts,
  wildcardMatch,
} from "./known-hosts.ts";

const dir = makeTmpDir("known-hosts");
afterAll(() => removeTmpDir(dir));

/** A syntactically valid public key blob of `type` (string type, then random bytes). */
function blob(type: string): Buffer {
  const t = Buffer.from(type, "latin1");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, randomBytes(32)]);
}
const line = (hosts: string, key: Buffer): string => `${hosts} ${blobKeyType(key)} ${key.toString("base64")}`;

function sh(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** A real ed25519 key from ssh-keygen: its public key line and blob. */
function realKey(name: string): { pubFile: string; key: Buffer } {
  const file = join(dir, name);
  sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", file]);
  const b64 = readFileSync(`${file}.pub`, "utf8").split(" ")[1] ?? "";
  return { pubFile: `${file}.pub`, key: Buffer.from(b64, "base64") };
}

describe("host names and patterns", () => {
  test("port 22 is the bare name, other ports [host]:port; lower case", () => {
    expect(knownHostName("Example.COM", 22)).toBe("example.com");
    expect(knownHostName("10.1.2.3", 2222)).toBe("[10.1.2.3]:2222");
    expect(knownHostName("::1", 2222)).toBe("[::1]:2222");
  });

  test("wildcards * and ? (case-insensitive)", () => {
    expect(wildcardMatch("*.example.com", "a.b.example.com")).toBe(true);
    expect(wildcardMatch("*.example.com", "example.com")).toBe(false);
    expect(wildcardMatch("host?", "host1")).toBe(true);
    expect(wildcardMatch("host?", "host12")).toBe(false);
    expect(wildcardMatch("h*t*", "HOST")).toBe(true);
    expect(wildcardMatch("*", "")).toBe(true);
    expect(wildcardMatch("a*b*c", "axxbyyc")).toBe(true);
    expect(wildcardMatch("a*b*c", "axxbyy")).toBe(false);
    expect(wildcardMatch("[10.0.0.?]:2222", "[10.0.0.7]:2222")).toBe(true);
  });

  test("lists: any positive match, but a matching !pattern vetoes", () => {
    expect(matchHostPatterns("a.com,b.com", "b.com")).toBe(true);
    expect(matchHostPatterns("a.com,b.com", "c.com")).toBe(false);
    expect(matchHostPatterns("*.corp,!bad.corp", "good.corp")).toBe(true);
    expect(matchHostPatterns("*.corp,!bad.corp", "bad.corp")).toBe(false);
    expect(matchHostPatterns("!bad.corp,*.corp", "bad.corp")).toBe(false);
    expect(matchHostPatterns("!bad.corp", "good.corp")).toBe(false); // negation alone matches nothing
  });
});

describe("parsing", () => {
  const k = blob("ssh-ed25519");

  test("plain, marker, comment, blank and malformed lines", () => {
    const text = [
      "# a comment",
      "",
      "   ",
      line("a.com,10.0.0.1", k),
      `@revoked * ${blobKeyType(k)} ${k.toString("base64")}`,
      `@cert-authority *.com ${blobKeyType(k)} ${k.toString("base64")}`,
      "only-a-host",
      "host ssh-ed25519",
      "host ssh-ed25519 !!!not-base64!!!",
      `host ssh-rsa ${k.toString("base64")}`, // type field disagrees with the blob
      "host ssh-ed25519 AAAA", // blob too short to name a type
      `|1|bad|hash ${blobKeyType(k)} ${k.toString("base64")}`,
      `|2|${randomBytes(20).toString("base64")}|${randomBytes(20).toString("base64")} ssh-ed25519 ${k.toString("base64")}`,
      `${line("b.com", k)} trailing comment words`,
    ].join("\n");
    const es = parseKnownHosts(text, "kh");
    expect(es.map((e) => [e.line, e.hosts, e.revoked])).toEqual([
      [4, "a.com,10.0.0.1", false],
      [5, "*", true],
      [14, "b.com", false],
    ]);
    expect(es[0]?.key.equals(k)).toBe(true);
    expect(es[0]?.keyType).toBe("ssh-ed25519");
  });

  test("key types: ed25519, ecdsa, rsa", () => {
    for (const t of ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]) {
      const b = blob(t);
      expect(parseKnownHostLine(line("h", b), "kh", 1)?.key.equals(b)).toBe(true);
    }
    expect(["ssh-ed25519", "ecdsa-sha2-nistp384", "ssh-rsa"].map((t) => keyLabel(blob(t)))).toEqual(["ED25519", "ECDSA", "RSA"]);
  });
});

describe("hashed names", () => {
  test("our |1| hash is HMAC-SHA1 of the name keyed by the salt", () => {
    const salt = randomBytes(20);
    const hashed = hashHostName("[127.0.0.1]:2222", salt);
    expect(hashed).toBe(`|1|${salt.toString("base64")}|${createHmac("sha1", salt).update("[127.0.0.1]:2222").digest("base64")}`);
    const e = parseKnownHostLine(line(hashed, blob("ssh-ed25519")), "kh", 1);
    expect(e === undefined ? undefined : [entryMatches(e, "[127.0.0.1]:2222"), entryMatches(e, "127.0.0.1")]).toEqual([true, false]);
  });

  test("lines hashed by the real ssh-keygen -H match; ssh-keygen -F finds our hashed lines", () => {
    const { key } = realKey("hash-key");
    const file = join(dir, "hashed_known_hosts");
    writeFileSync(file, `${line("[127.0.0.1]:2222", key)}\n${line("example.org", key)}\n`);
    sh(["ssh-keygen", "-q", "-H", "-f", file]);
    const es = parseKnownHosts(readFileSync(file, "utf8"), file);
    expect(es.length).toBe(2);
    expect(es.every((e) => e.hashed !== undefined && e.key.equals(key))).toBe(true);
    expect(checkHostKey(es, "[127.0.0.1]:2222", key)).toMatchObject({ kind: "known", entry: { line: 1 } });
    expect(checkHostKey(es, "example.org", key)).toMatchObject({ kind: "known", entry: { line: 2 } });
    expect(checkHostKey(es, "127.0.0.1", key).kind).toBe("unknown");

    const ours = join(dir, "ours_known_hosts");
    writeFileSync(ours, `${knownHostLine("[10.9.8.7]:2200", key, true)}\n`);
    expect(sh(["ssh-keygen", "-F", "[10.9.8.7]:2200", "-f", ours])).toContain("found: line 1");
  });
});

describe("checkHostKey", () => {
  const k1 = blob("ssh-ed25519");
  const k2 = blob("ssh-ed25519");
  const rsa = blob("ssh-rsa");

  test("[host]:port entries match only that port; bare names only port 22", () => {
    const es = parseKnownHosts(`${line("[h.com]:2222", k1)}\n${line("h.com", k2)}\n`, "kh");
    expect(checkHostKey(es, knownHostName("h.com", 2222), k1)).toMatchObject({ kind: "known", entry: { line: 1 } });
    expect(checkHostKey(es, knownHostName("h.com", 22), k2)).toMatchObject({ kind: "known", entry: { line: 2 } });
    expect(checkHostKey(es, knownHostName("h.com", 22), k1)).toMatchObject({ kind: "changed", entry: { line: 2 } });
    expect(checkHostKey(es, knownHostName("h.com", 2200), k1).kind).toBe("unknown");
  });

  test("a different key is changed (same type preferred as the old entry); no entry is unknown", () => {
    const es = parseKnownHosts(`${line("h", rsa)}\n${line("h", k1)}\n${line("other", k2)}\n`, "kh");
    expect(checkHostKey(es, "h", k2)).toMatchObject({ kind: "changed", entry: { line: 2 } });
    expect(checkHostKey(es, "h", blob("ecdsa-sha2-nistp256"))).toMatchObject({ kind: "changed", entry: { line: 1 } });
    expect(checkHostKey(es, "nobody", k1).kind).toBe("unknown");
    expect(knownKeyTypes(es, "h")).toEqual(["ssh-rsa", "ssh-ed25519"]);
  });

  test("wildcard and negated entries", () => {
    const es = parseKnownHosts(`${line("*.corp,!evil.corp", k1)}\n`, "kh");
    expect(checkHostKey(es, "a.corp", k1).kind).toBe("known");
    expect(checkHostKey(es, "evil.corp", k1).kind).toBe("unknown");
  });

  test("@revoked wins over a line accepting the same key; revoked lines are no known key types", () => {
    const es = parseKnownHosts(`${line("h", k1)}\n@revoked * ${blobKeyType(k1)} ${k1.toString("base64")}\n`, "kh");
    expect(checkHostKey(es, "h", k1)).toMatchObject({ kind: "revoked", entry: { line: 2 } });
    expect(checkHostKey(es, "elsewhere", k1)).toMatchObject({ kind: "revoked" });
    expect(checkHostKey(es, "h", k2)).toMatchObject({ kind: "changed", entry: { line: 1 } });
    const onlyRevoked = parseKnownHosts(`@revoked h ${blobKeyType(k1)} ${k1.toString("base64")}\n`, "kh");
    expect(checkHostKey(onlyRevoked, "h", k2).kind).toBe("unknown");
    expect(knownKeyTypes(onlyRevoked, "h")).toEqual([]);
  });

  test("@cert-authority lines are ignored", () => {
    const es = parseKnownHosts(`@cert-authority h ${blobKeyType(k1)} ${k1.toString("base64")}\n`, "kh");
    expect(checkHostKey(es, "h", k1).kind).toBe("unknown");
  });
});

describe("files", () => {
  test("several files in order; missing ones skipped, unreadable ones reported", () => {
    const k = blob("ssh-ed25519");
    const a = join(dir, "a_known_hosts");
    const b = join(dir, "b_known_hosts");
    const sub = join(dir, "a-directory");
    mkdirSync(sub);
    writeFileSync(a, `# nothing for h here\n${line("x", blob("ssh-ed25519"))}\n`);
    writeFileSync(b, `\n\n${line("h", k)}\n`);
    const { entries, problems } = readKnownHosts([join(dir, "missing"), a, sub, b]);
    expect(entries.map((e) => [e.file, e.line])).toEqual([
      [a, 2],
      [b, 3],
    ]);
    expect(problems).toEqual([expect.stringContaining(`cannot read ${sub}`)]);
    expect(checkHostKey(entries, "h", k)).toMatchObject({ kind: "known", entry: { file: b, line: 3 } });
  });

  test("append creates the directory 0700 and the file 0600, and ends a last line first", () => {
    const k = blob("ssh-ed25519");
    const file = join(dir, "new-ssh-dir", "known_hosts");
    appendKnownHost(file, knownHostLine("[h]:2", k, false));
    expect(statSync(join(dir, "new-ssh-dir")).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, readFileSync(file, "utf8").trimEnd()); // no final newline
    appendKnownHost(file, knownHostLine("g", k, false));
    expect(readFileSync(file, "utf8")).toBe(`${line("[h]:2", k)}\n${line("g", k)}\n`);
  });

  test("fingerprint is what ssh-keygen -l prints", () => {
    const { pubFile, key } = realKey("fp-key");
    expect(sh(["ssh-keygen", "-l", "-E", "sha256", "-f", pubFile])).toContain(`${fingerprint(key)} t (ED25519)`);
  });
});
