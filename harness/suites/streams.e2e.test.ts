// Streams: `-` as the source (standard input) or the destination (standard output), through
// the loopback sshd fixture and locally. Lengths around the block size, a producer slower
// than the session timeout, a producer that stops early, a reader that goes away, the
// digest against b3sum, and the command lines that make no sense. Every copy is checked
// byte for byte; a failed stream leaves nothing under its name.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { b3sum, gate, runEscp } from "./e2e-helpers.ts";

const B = 65_536; // --blocksize: the smallest block, so the edges stay small
const FLAGS = ["-q", "--escp_port", "0", "--timeout", "20", "--blocksize", String(B)];

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-streams");
const remoteFlags = (): string[] => [...fx.sshArgs, "-D", ESCP_REMOTE_CMD];
const H = (path: string): string => `${fx.user}@${fx.host}:${path}`;

beforeAll(async () => {
  fx = await startSshd();
}, 60_000);

afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

const two = gate(2);
const LONG = 240_000;
const ptest = (name: string, body: () => Promise<void>): void => test(name, () => two(body), LONG);

let caseNo = 0;
function caseDir(tag: string): string {
  const d = join(tmp, `case-${++caseNo}-${tag}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Deterministic bytes: the same seed gives the same stream. */
function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const h = createHash("sha512").update(`${seed}:${i}`).digest();
    const k = Math.min(h.length, n - off);
    out.set(h.subarray(0, k), off);
    off += k;
  }
  return out;
}

/** b3sum of bytes, through a file (b3sum is the reference, not escp's own hashing). */
async function b3Of(dir: string, data: Uint8Array): Promise<string> {
  const p = join(dir, `.ref-${randomBytes(4).toString("hex")}`);
  writeFileSync(p, data);
  return b3sum(p);
}

/** A stream that yields `chunks`, each after `pauseMs` of nothing (a slow producer). */
function slowStream(chunks: Uint8Array[], pauseMs: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      if (i >= chunks.length) return c.close();
      await Bun.sleep(pauseMs); // the producer's pace, not a synchronisation
      c.enqueue(chunks[i++]!);
    },
  });
}

/** Nothing but `names` in dir (no temporary, no partial). */
function onlyNames(dir: string, names: string[]): void {
  expect(readdirSync(dir).sort()).toEqual([...names].sort());
}

function summaryDigest(text: string): string | undefined {
  return /^BLAKE3 {2}: ([0-9a-f]{64})$/m.exec(text)?.[1];
}

describe.concurrent("stdin to a remote file", () => {
  for (const [label, n] of [
    ["0 bytes", 0],
    ["1 byte", 1],
    ["block - 1", B - 1],
    ["block", B],
    ["block + 1", B + 1],
    ["5 blocks + 7", 5 * B + 7],
  ] as const) {
    ptest(`${label}, over 4 streams: the file holds exactly the input`, async () => {
      const d = caseDir("push");
      const data = bytesOf(n, n + 1);
      const r = await runEscp([...FLAGS, "-t", "4", ...remoteFlags(), "-", H(join(d, "out.bin"))], { stdin: data });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(await b3sum(join(d, "out.bin"))).toBe(await b3Of(tmp, data));
      onlyNames(d, ["out.bin"]);
    });
  }

  ptest("the summary names the stream's BLAKE3, equal to b3sum of the input", async () => {
    const d = caseDir("digest");
    const data = bytesOf(3 * B + 5, 42);
    const r = await runEscp(["--escp_port", "0", "--timeout", "20", "--blocksize", String(B), ...remoteFlags(), "-", H(join(d, "f"))], { stdin: data });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Sent {4}: +[\d.]+ [ KMGTPE]B in 1 file at/m);
    expect(summaryDigest(r.stdout)).toBe(await b3Of(tmp, data));
  });

  ptest("--json records the digest of the stream", async () => {
    const d = caseDir("json");
    const data = bytesOf(B + 9, 7);
    const r = await runEscp([...FLAGS, "--json", ...remoteFlags(), "-", H(join(d, "f"))], { stdin: data });
    expect(r.code).toBe(0);
    const ok = r.stdout
      .split("\n")
      .filter((l) => l.startsWith('{"type":"file"'))
      .map((l) => JSON.parse(l) as { status: string; digest: string; bytes: number });
    expect(ok[0]?.status).toBe("ok");
    expect(ok.length).toBe(1);
    expect(ok[0]?.bytes).toBe(B + 9);
    expect(ok[0]?.digest).toBe(await b3Of(tmp, data));
  });

  ptest("a producer that pauses longer than --timeout: keepalives carry the session", async () => {
    const d = caseDir("slow");
    const chunks = [bytesOf(1000, 1), bytesOf(B, 2), bytesOf(5, 3)];
    const all = new Uint8Array(1000 + B + 5);
    all.set(chunks[0]!, 0);
    all.set(chunks[1]!, 1000);
    all.set(chunks[2]!, 1000 + B);
    const r = await runEscp(["-q", "--escp_port", "0", "--timeout", "2", "--blocksize", String(B), ...remoteFlags(), "-", H(join(d, "f"))], {
      stdin: slowStream(chunks, 2500),
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(await b3sum(join(d, "f"))).toBe(await b3Of(tmp, all));
  });

  ptest("the sender killed mid-stream: nothing under the final name", async () => {
    const d = caseDir("killed");
    let pid = 0;
    let pulls = 0;
    const chunk = bytesOf(256 * 1024, 4); // more than a pipe holds: the next pull means escp is reading
    const stdin = new ReadableStream<Uint8Array>({
      pull(c) {
        if (++pulls === 3) process.kill(-pid, "SIGKILL"); // two chunks taken: the stream is flowing
        c.enqueue(chunk);
      },
    });
    const r = await runEscp([...FLAGS, ...remoteFlags(), "-", H(join(d, "f"))], { stdin, onSpawn: (p) => void (pid = p), timeoutMs: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(137);
    expect(pulls).toBeGreaterThanOrEqual(3);
    onlyNames(d, []);
  });

  ptest("an existing directory as the destination: exit 8 (E_DEST) naming it, nothing written", async () => {
    const d = caseDir("dir");
    const r = await runEscp([...FLAGS, ...remoteFlags(), "-", H(d)], { stdin: bytesOf(100, 1) });
    expect(r.code).toBe(8);
    expect(r.stderr).toContain(`-: ${d} is a directory: name the file standard input goes to`);
    expect(r.stderr.trim().split("\n").length).toBe(1);
    onlyNames(d, []);
  });
});

describe.concurrent("a remote file to stdout", () => {
  for (const [label, n] of [
    ["0 bytes", 0],
    ["block + 1", B + 1],
    ["40 blocks + 3, 4 streams", 40 * B + 3],
  ] as const) {
    ptest(`${label}: stdout holds exactly the file, the summary goes to stderr`, async () => {
      const d = caseDir("pull");
      const data = bytesOf(n, n + 3);
      writeFileSync(join(d, "src.bin"), data);
      const got: Uint8Array[] = [];
      const r = await runEscp(["--escp_port", "0", "--timeout", "20", "--blocksize", String(B), "-t", "4", ...remoteFlags(), H(join(d, "src.bin")), "-"], {
        onStdout: (c) => void got.push(c.slice()),
      });
      expect(r.code).toBe(0);
      expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
      expect(r.stderr).toMatch(/^Received: +[\d.]+ [ KMGTPE]B in 1 file at/m);
      expect(summaryDigest(r.stderr)).toBe(await b3Of(tmp, data));
      onlyNames(d, ["src.bin"]);
    });
  }

  ptest("a reader that goes away: exit 11 (E_BROKEN_PIPE), no hang", async () => {
    const d = caseDir("epipe");
    writeFileSync(join(d, "big.bin"), bytesOf(64 * B, 5));
    let seen = 0;
    const r = await runEscp([...FLAGS, ...remoteFlags(), H(join(d, "big.bin")), "-"], {
      onStdout: (c) => {
        seen += c.length;
        return seen < B; // close the pipe after the first block
      },
      timeoutMs: 60_000,
    });
    expect(r.timedOut).toBe(false);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 11, stderr: expect.stringContaining("standard output: broken pipe") });
  });
});

describe.concurrent("local streams", () => {
  ptest("escp - FILE and escp FILE -", async () => {
    const d = caseDir("local");
    const data = bytesOf(7 * B + 11, 9);
    const r1 = await runEscp([...FLAGS, "-", join(d, "a.bin")], { stdin: data });
    expect(r1.stderr).toBe("");
    expect(r1.code).toBe(0);
    expect(readFileSync(join(d, "a.bin")).equals(Buffer.from(data))).toBe(true);
    const got: Uint8Array[] = [];
    const r2 = await runEscp([...FLAGS, join(d, "a.bin"), "-"], { onStdout: (c) => void got.push(c.slice()) });
    expect(r2.stderr).toBe("");
    expect(r2.code).toBe(0);
    expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
    onlyNames(d, ["a.bin"]);
  });
});

describe.concurrent("command lines that make no sense", () => {
  const cases: [string, string[], string][] = [
    ["stdin beside another source", ["-", "x", "/tmp/y"], "standard input must be the only source"],
    ["stdin to stdout", ["-", "-"], "use cat"],
    ["--retries with stdin", ["--retries", "2", "-", "/tmp/y"], "--retries: standard input cannot be read twice"],
    ["-r to stdout", ["-r", "/etc", "-"], "standard output takes one file"],
    ["two sources to stdout", ["/etc/hostname", "/etc/hosts", "-"], "standard output takes exactly one source file"],
  ];
  for (const [label, args, msg] of cases) {
    ptest(`${label}: exit 2, one line naming it`, async () => {
      const r = await runEscp(["-q", ...args]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(msg);
      expect(r.stderr.trim().split("\n").length).toBe(1);
    });
  }

  ptest("--json to stdout: exit 2, the JSON error names it", async () => {
    const r = await runEscp(["--json", "/etc/hostname", "-"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('"code":"E_USAGE","message":"--json: not with - as the destination');
  });

  ptest("a missing remote file to stdout: an error, empty stdout", async () => {
    const d = caseDir("missing");
    const got: Uint8Array[] = [];
    const r = await runEscp([...FLAGS, ...remoteFlags(), H(join(d, "nope")), "-"], { onStdout: (c) => void got.push(c.slice()) });
    expect(r.code).not.toBe(0);
    expect(got.length).toBe(0);
    expect(existsSync(join(d, "nope"))).toBe(false);
  });
});

describe("a long stream", () => {
  /** 1 GiB, generated: a random MiB with its chunk number in its first 8 bytes, 1,024 times. */
  function gibStream(): ReadableStream<Uint8Array> {
    const base = bytesOf(1 << 20, 99);
    let i = 0;
    return new ReadableStream({
      pull(c) {
        if (i === 1024) return c.close();
        const chunk = base.slice();
        new DataView(chunk.buffer).setBigUint64(0, BigInt(i++));
        c.enqueue(chunk);
      },
    });
  }

  test("1 GiB from stdin: escp's digest equals b3sum of the same stream", async () => {
    const d = caseDir("gib");
    const ref = Bun.spawn(["b3sum", "--no-names", "-"], { stdin: gibStream(), stdout: "pipe", stderr: "pipe" });
    const r = await runEscp(["--escp_port", "0", "--timeout", "20", "--ioengine", "posix::dummy", "-", join(d, "big")], {
      stdin: gibStream(),
      timeoutMs: 120_000,
    });
    const want = (await new Response(ref.stdout).text()).trim();
    expect(await ref.exited).toBe(0);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Sent {4}: +1\.0 GB in 1 file at/m);
    expect(summaryDigest(r.stdout)).toBe(want);
    onlyNames(d, []); // a dummy receiver names nothing
  }, 180_000);
});
