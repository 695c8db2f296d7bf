// The built-in client's host key policy: -o parsing (names, aliases, first value wins, file
// lists) and the outcome per StrictHostKeyChecking for known, new, changed and revoked keys.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { EscpError } from "../errors/escp-error.ts";
import { hostKeyAlgorithms, hostKeyChecker, hostKeyConfig, type HostKeyConfig } from "./host-key-policy.ts";
import { blobKeyType, fingerprint, parseKnownHosts } from "./known-hosts.ts";

const dir = makeTmpDir("host-key-policy");
afterAll(() => removeTmpDir(dir));
let n = 0;
const fresh = (): string => join(dir, `kh-${++n}`);

function blob(type: string): Buffer {
  const t = Buffer.from(type, "latin1");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, randomBytes(32)]);
}
const line = (hosts: string, key: Buffer): string => `${hosts} ${blobKeyType(key)} ${key.toString("base64")}`;

function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof EscpError && e.code === "E_USAGE") return e.message;
    throw e;
  }
  throw new Error("expected E_USAGE");
}

describe("hostKeyConfig", () => {
  test("defaults: refuse new keys, ~/.ssh/known_hosts, the global files read-only", () => {
    expect(hostKeyConfig([], "/home/u")).toEqual({
      strict: "yes",
      userFiles: ["/home/u/.ssh/known_hosts", "/home/u/.ssh/known_hosts2"],
      globalFiles: ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
      hashNew: false,
    });
  });

  test("values and aliases; case-insensitive keys; Key=Value or Key Value; the first value wins", () => {
    const strict = (v: string): string => hostKeyConfig([`StrictHostKeyChecking=${v}`], "/h").strict;
    expect(["yes", "on", "ask", "ASK", "accept-new", "no", "off"].map(strict)).toEqual(["yes", "yes", "yes", "yes", "accept-new", "no", "no"]);
    expect(hostKeyConfig(["stricthostkeychecking no"], "/h").strict).toBe("no");
    expect(hostKeyConfig(["StrictHostKeyChecking = accept-new"], "/h").strict).toBe("accept-new");
    expect(hostKeyConfig(["StrictHostKeyChecking=no", "StrictHostKeyChecking=yes"], "/h").strict).toBe("no");
    expect(hostKeyConfig(["HashKnownHosts=yes", "BatchMode=yes"], "/h").hashNew).toBe(true);
  });

  test("file lists: several, quoted, ~ expanded, none and /dev/null", () => {
    const c = hostKeyConfig(['UserKnownHostsFile=~/a "/with space/b" /c', "GlobalKnownHostsFile none"], "/h");
    expect([c.userFiles, c.globalFiles]).toEqual([["/h/a", "/with space/b", "/c"], []]);
    expect(hostKeyConfig(["UserKnownHostsFile=/dev/null"], "/h").userFiles).toEqual(["/dev/null"]);
  });

  test("other options and bad values are E_USAGE", () => {
    expect(usageError(() => hostKeyConfig(["ProxyCommand=nc %h %p"]))).toBe(
      "the built-in ssh client does not support -o ProxyCommand=nc %h %p; use the system ssh",
    );
    expect(usageError(() => hostKeyConfig(["StrictHostKeyChecking"]))).toBe("-o StrictHostKeyChecking: missing value");
    expect(usageError(() => hostKeyConfig(["UserKnownHostsFile= "]))).toBe("-o UserKnownHostsFile= : missing value");
    expect(usageError(() => hostKeyConfig(["Strict-Host=yes"]))).toContain("does not support -o Strict-Host=yes");
    expect(usageError(() => hostKeyConfig(["StrictHostKeyChecking=maybe"]))).toBe(
      "-o StrictHostKeyChecking=maybe: expected one of yes, on, ask, accept-new, no, off",
    );
    expect(usageError(() => hostKeyConfig(["BatchMode=sometimes"]))).toContain("-o BatchMode=sometimes");
  });
});

function config(over: Partial<HostKeyConfig>): HostKeyConfig {
  return { strict: "yes", userFiles: [], globalFiles: [], hashNew: false, ...over };
}

function check(cfg: HostKeyConfig, key: Buffer, port = 2222): { err: EscpError | undefined; warnings: string[] } {
  const warnings: string[] = [];
  const err = hostKeyChecker(cfg, "h.example", port, (w) => warnings.push(w)).verify(key);
  return { err, warnings };
}

describe("hostKeyChecker", () => {
  const key = blob("ssh-ed25519");
  const fp = fingerprint(key);

  test("a known key is accepted silently, from the user or the global file", () => {
    const user = fresh();
    writeFileSync(user, `${line("[h.example]:2222", key)}\n`);
    expect(check(config({ userFiles: [user] }), key)).toEqual({ err: undefined, warnings: [] });
    expect(check(config({ globalFiles: [user] }), key)).toEqual({ err: undefined, warnings: [] });
  });

  test("an unknown key with yes is E_SSH_HOSTKEY naming the fingerprint and the file to add it to", () => {
    const user = fresh();
    const { err } = check(config({ userFiles: [user] }), key);
    expect(err?.code).toBe("E_SSH_HOSTKEY");
    expect(err?.exitCode).toBe(4);
    expect(err?.message).toBe(
      `ssh to h.example: host key verification failed: unknown host key (ED25519 ${fp}); add it to ${user} or pass -o StrictHostKeyChecking=accept-new`,
    );
    expect(existsSync(user)).toBe(false);
  });

  test("accept-new appends a plain (or hashed) line to the first user file and warns", () => {
    const [first, second] = [join(dir, "accept-dir", "known_hosts"), fresh()];
    const r = check(config({ strict: "accept-new", userFiles: [first, second] }), key);
    expect(r.err).toBeUndefined();
    expect(r.warnings).toEqual([`ssh to h.example: added [h.example]:2222 (ED25519 ${fp}) to ${first}`]);
    expect(readFileSync(first, "utf8")).toBe(`${line("[h.example]:2222", key)}\n`);
    expect(statSync(first).mode & 0o777).toBe(0o600);
    expect(existsSync(second)).toBe(false);
    expect(check(config({ userFiles: [first] }), key)).toEqual({ err: undefined, warnings: [] });

    const hashed = fresh();
    expect(check(config({ strict: "accept-new", userFiles: [hashed], hashNew: true }), key, 22).err).toBeUndefined();
    const es = parseKnownHosts(readFileSync(hashed, "utf8"), hashed);
    expect(es.map((e) => [e.hashed !== undefined, e.hosts.includes("h.example")])).toEqual([[true, false]]);
    expect(check(config({ userFiles: [hashed] }), key, 22).err).toBeUndefined();
  });

  test("no accepts an unknown key with one warning and writes nothing", () => {
    const user = fresh();
    const r = check(config({ strict: "no", userFiles: [user] }), key);
    expect(r.err).toBeUndefined();
    expect(r.warnings).toEqual([`ssh to h.example: unknown host key (ED25519 ${fp}) accepted unverified (StrictHostKeyChecking=no); not added to known_hosts`]);
    expect(existsSync(user)).toBe(false);
  });

  test("a changed key is refused whatever StrictHostKeyChecking says, naming file:line", () => {
    const user = fresh();
    writeFileSync(user, `# old key\n${line("[h.example]:2222", blob("ssh-ed25519"))}\n`);
    for (const strict of ["yes", "accept-new", "no"] as const) {
      const { err, warnings } = check(config({ strict, userFiles: [user] }), key);
      expect(err?.code).toBe("E_SSH_HOSTKEY");
      expect(err?.message).toBe(
        `ssh to h.example: host key verification failed: REMOTE HOST KEY CHANGED (ED25519 ${fp}; ${user}:2 has another key): possible man-in-the-middle; refusing`,
      );
      expect(warnings).toEqual([]);
    }
    expect(readFileSync(user, "utf8").split("\n").length).toBe(3); // nothing appended
  });

  test("a revoked key is refused whatever StrictHostKeyChecking says", () => {
    const user = fresh();
    writeFileSync(user, `@revoked * ${blobKeyType(key)} ${key.toString("base64")}\n`);
    for (const strict of ["yes", "accept-new", "no"] as const) {
      expect(check(config({ strict, userFiles: [user] }), key).err?.message).toContain(`REVOKED host key (ED25519 ${fp}; ${user}:1 marks it @revoked)`);
    }
  });

  test("a re-key must present the key accepted first", () => {
    const checker = hostKeyChecker(config({ strict: "no" }), "h.example", 22, () => undefined);
    expect(checker.verify(key)).toBeUndefined();
    expect(checker.verify(key)).toBeUndefined();
    expect(checker.verify(blob("ssh-ed25519"))?.code).toBe("E_SSH_HOSTKEY");
  });

  test("host key algorithms: the types known for the host first, in ssh2's order", () => {
    expect(hostKeyAlgorithms([])[0]).toBe("ssh-ed25519");
    expect(hostKeyAlgorithms(["ssh-rsa", "ecdsa-sha2-nistp384"])).toEqual([
      "ecdsa-sha2-nistp384",
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
      "ssh-ed25519",
      "ecdsa-sha2-nistp256",
      "ecdsa-sha2-nistp521",
    ]);
    const user = fresh();
    writeFileSync(user, `${line("[h.example]:2222", blob("ecdsa-sha2-nistp256"))}\n`);
    expect(hostKeyChecker(config({ userFiles: [user] }), "h.example", 2222, () => undefined).algorithms[0]).toBe("ecdsa-sha2-nistp256");
  });
});
