// Key hygiene end to end: during a real local transfer (-v, --logfile), neither process's
// argv or environment, nor the log files, the terminal output or any file under the temp
// directories holds the session key — raw, in hex or in base64 (standard or URL-safe, at any
// alignment inside a longer encoding). The test never learns the key: the sender writes its
// SHA-256 (ESCP_FAULT_KEY_SHA256), and every 32-byte candidate found is hashed and compared.
// The snapshot of /proc is taken by the receiver itself mid-transfer (ESCP_FAULT_EXEC_AT =
// receiver:midblock), while both processes are alive and hold the key's derivatives.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { b3sum, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-keys");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const KEY_LEN = 32;
const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Every 32-byte window of `bytes` whose SHA-256 is `want`: the offsets (usually none). */
function rawHits(bytes: Uint8Array, want: string): number[] {
  const hits: number[] = [];
  for (let i = 0; i + KEY_LEN <= bytes.length; i++) if (sha256(bytes.subarray(i, i + KEY_LEN)) === want) hits.push(i);
  return hits;
}

/** How the key (known by its SHA-256) appears in `bytes`, or [] when it does not: as raw
 *  bytes; as 64 hex digits (either case, any start); inside any base64 or base64url run
 *  (decoded at all four character alignments, then every 32-byte window). */
export function keyFindings(bytes: Uint8Array, want: string): string[] {
  const found: string[] = [];
  if (rawHits(bytes, want).length > 0) found.push("raw");
  const text = Buffer.from(bytes).toString("latin1");
  for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
    const run = m[0];
    for (let o = 0; o + 64 <= run.length; o++) {
      if (sha256(Buffer.from(run.slice(o, o + 64), "hex")) === want) found.push(`hex at ${m.index ?? 0}`);
    }
  }
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{43,}/g)) {
    const run = m[0].replace(/-/g, "+").replace(/_/g, "/");
    for (let o = 0; o < 4; o++) {
      // a trailing partial group still decodes its whole bytes
      if (rawHits(Buffer.from(run.slice(o), "base64"), want).length > 0) found.push(`base64 at ${m.index ?? 0}`);
    }
  }
  return found;
}

/** Regular files under dir (recursively). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("the scanner finds a key however it is written", () => {
  test("raw, hex, HEX, base64 at every alignment, base64url", () => {
    const key = new Uint8Array(randomBytes(KEY_LEN));
    const want = sha256(key);
    const around = (mid: Uint8Array | string): Uint8Array =>
      Buffer.concat([randomBytes(37), typeof mid === "string" ? Buffer.from(mid, "latin1") : Buffer.from(mid), randomBytes(11)]);
    expect(keyFindings(around(key), want)).toContain("raw");
    expect(keyFindings(around(`x=${Buffer.from(key).toString("hex")};`), want).some((f) => f.startsWith("hex"))).toBe(true);
    expect(keyFindings(around(Buffer.from(key).toString("hex").toUpperCase()), want).some((f) => f.startsWith("hex"))).toBe(true);
    for (const enc of ["base64", "base64url"] as const) {
      // the key alone: 43 characters (+ "=")
      expect(keyFindings(around(`k ${Buffer.from(key).toString(enc)} `), want).some((f) => f.startsWith("base64"))).toBe(true);
    }
    for (const pad of [0, 1, 2]) {
      // the key inside a longer buffer, as in a base64 SessionInit line
      const blob = Buffer.concat([randomBytes(20 + pad), key, randomBytes(9)]);
      expect(keyFindings(around(`ESCP1 ${blob.toString("base64")}\n`), want).some((f) => f.startsWith("base64"))).toBe(true);
      expect(keyFindings(around(blob.toString("base64url")), want).some((f) => f.startsWith("base64"))).toBe(true);
    }
    expect(keyFindings(new Uint8Array(randomBytes(4096)), want)).toEqual([]);
  });
});

describe("the session key stays out of argv, environ, logs and temp files", () => {
  test("a local transfer with -v and --logfile, snapshot of /proc taken mid-transfer", async () => {
    const src = join(tmp, "src"),
      dst = join(tmp, "dst"),
      proc = join(tmp, "proc"),
      tmpd = join(tmp, "tmp"),
      logs = join(tmp, "logs");
    for (const d of [src, dst, proc, tmpd, logs]) mkdirSync(d, { recursive: true });
    const big = join(src, "big.bin");
    await writeRandomFile(big, 24 << 20, 93); // paced below: in flight for about a second
    const keyDigest = join(tmp, "key.sha256"); // the fingerprint, outside the scanned trees
    // Run by the receiver (sh's parent) mid-transfer: copy argv and environment of it and of
    // its parent, the sender, as this user can read them.
    const snapshot = [
      "r=$PPID",
      "s=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$r/status)",
      `for p in $r $s; do cat /proc/$p/cmdline > '${proc}'/cmdline.$p; cat /proc/$p/environ > '${proc}'/environ.$p 2>/dev/null; done`,
      `echo $r > '${proc}'/receiver.pid; echo $s > '${proc}'/sender.pid`,
    ].join("; ");
    const r = await runEscp(["-v", "--logfile", join(logs, "escp"), "-t", "2", "-l", "16M", "--escp_port", "0", "--timeout", "20", big, `${dst}/`], {
      env: { TMPDIR: tmpd, ESCP_FAULT_EXEC_AT: "receiver:midblock", ESCP_FAULT_EXEC: snapshot, ESCP_FAULT_KEY_SHA256: keyDigest },
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(await b3sum(join(dst, "big.bin"))).toBe(await b3sum(big));

    const want = readFileSync(keyDigest, "utf8").trim();
    expect(want).toMatch(/^[0-9a-f]{64}$/);
    // The snapshot ran, in the right processes.
    const rx = readFileSync(join(proc, "receiver.pid"), "utf8").trim(),
      tx = readFileSync(join(proc, "sender.pid"), "utf8").trim();
    expect(readFileSync(join(proc, `cmdline.${rx}`), "latin1")).toContain("--server");
    expect(readFileSync(join(proc, `cmdline.${tx}`), "latin1")).toContain(big);
    for (const pid of [rx, tx]) {
      const env = readFileSync(join(proc, `environ.${pid}`), "latin1");
      // Both processes made themselves non-dumpable: only a privileged reader gets environ.
      if (process.getuid?.() === 0) expect(env).toContain("ESCP_FAULT_EXEC_AT=receiver:midblock");
      else expect(env).toBe("");
    }
    for (const side of ["client", "server"]) expect(statSync(join(logs, `escp.${side}`)).size).toBeGreaterThan(0);
    expect(r.stderr).toContain("debug:"); // -v really was on, on both sides
    expect(r.stderr).toContain("escp server: debug:");

    // Everything either process could have left the key in. The payload files are exempt:
    // written before the key existed, and the copy is proven byte-identical to them.
    const scanned: [string, Uint8Array][] = [
      ["stdout", Buffer.from(r.stdout)],
      ["stderr", Buffer.from(r.stderr)],
    ];
    for (const f of [...filesUnder(proc), ...filesUnder(logs), ...filesUnder(tmpd), ...filesUnder(dst), ...filesUnder(src)]) {
      if (f === big || f === join(dst, "big.bin")) continue;
      scanned.push([f, readFileSync(f)]);
    }
    expect(scanned.length).toBeGreaterThanOrEqual(2 + 6 + 2); // stdio, 2 × (cmdline, environ) + 2 pids, 2 logs
    const leaks = scanned.flatMap(([name, bytes]) => keyFindings(bytes, want).map((how) => `${name}: ${how}`));
    expect(leaks).toEqual([]);
  });
});
