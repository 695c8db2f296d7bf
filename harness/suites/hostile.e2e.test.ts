// A hostile sender (harness/hostile-sender.ts) against a real receiver: unsafe names are refused
// per file with E_REJECTED_PATH and nothing lands outside the destination; protocol abuse stops
// the receiver cleanly (E_PROTOCOL, no partial file); strangers on the data port change nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { encodeControl, type FileEntry } from "../../src/control/messages.ts";
import { entry, HostileSender } from "../hostile-sender.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { b3sum, BASE, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-hostile");
const outside = makeTmpDir("outside"); // the place a symlink in the destination points to
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTmpDir(outside);
});
const payload = join(tmp, "payload.bin");
const SIZE = 100_000; // two 64 KiB blocks
const big = join(tmp, "big.bin");
const BIG = 4 << 20;
let ready: Promise<void> | undefined;
function sources(): Promise<void> {
  ready ??= Promise.all([writeRandomFile(payload, SIZE, 21), writeRandomFile(big, BIG, 22)]).then(() => undefined);
  return ready;
}

/** A fresh case directory holding the receiver's cwd and the destination root. */
function caseDirs(tag: string): { top: string; cwd: string; dest: string } {
  const top = join(tmp, tag);
  const cwd = join(top, "cwd");
  const dest = join(top, "dest");
  mkdirSync(cwd, { recursive: true });
  mkdirSync(dest);
  return { top, cwd, dest };
}

/** Run `body` against a fresh receiver; always releases it; returns its exit status and stderr. */
async function withReceiver(cwd: string, dest: string, body: (hs: HostileSender) => Promise<void>): Promise<{ code: number | null; stderr: string }> {
  const hs = await HostileSender.open({ cwd, destPath: dest });
  try {
    await body(hs);
  } finally {
    await hs.close(); // also when body failed: no receiver outlives its test
  }
  return hs.close(); // idempotent: the exit status and stderr it already has
}

const LONG_SEGMENT = "x".repeat(300);
const LONG_PATH = `${Array.from({ length: 50 }, () => "p".repeat(99)).join("/")}p`; // 5000 bytes, segments ≤ 255
const dir = (fino: number, name: string): FileEntry => entry(fino, name, 0, { kind: "dir", mode: 0o755 });

describe("hostile sender: unsafe names", () => {
  test("every unsafe name is refused per file, nothing escapes, good files land", async () => {
    await sources();
    expect(Buffer.byteLength(LONG_PATH)).toBe(5000);
    const { top, cwd, dest } = caseDirs("names");
    writeFileSync(join(outside, "target"), "outside original\n");
    symlinkSync(outside, join(dest, "link"));
    symlinkSync(join(outside, "target"), join(dest, "flink"));
    // fino → the name the refusal must quote (a dst field is what decides the path)
    const refused = new Map<number, string>([
      [1, "/etc/escp-pwned"], [2, "../escape"], [3, "a/../../b"], [4, LONG_SEGMENT], [5, LONG_PATH],
      [6, "link/pwned"], [7, "link"], [8, "link/deeper"], [9, "../escdir"], [10, "../escape-dst"], [11, "link/via-dst"],
    ]);
    const files: FileEntry[] = [
      entry(1, "/etc/escp-pwned", SIZE), entry(2, "../escape", SIZE), entry(3, "a/../../b", SIZE),
      entry(4, LONG_SEGMENT, SIZE), entry(5, LONG_PATH, SIZE), entry(6, "link/pwned", SIZE),
      dir(7, "link"), dir(8, "link/deeper"), dir(9, "../escdir"),
      entry(10, "innocent", SIZE, { dst: "../escape-dst" }), entry(11, "innocent-2", SIZE, { dst: "link/via-dst" }),
      entry(12, "flink", SIZE), dir(13, "sub"), entry(14, "sub/good", SIZE),
    ];
    const { code, stderr } = await withReceiver(cwd, dest, async (hs) => {
      hs.connect();
      hs.announce(files);
      for (const f of files) if (f.kind === "file") hs.addData(f.fino, payload, SIZE);
      hs.finish();
      // Every file gets a verdict; a refused directory's came earlier (answered on announce).
      const want = files.filter((f) => f.kind === "file").map((f) => f.fino);
      expect(await hs.until(() => want.every((f) => hs.results.has(f)))).toBe(true);
      for (const [fino, name] of refused) {
        const r = hs.results.get(fino);
        expect(r?.code).toBe("E_REJECTED_PATH");
        expect(r?.message).toContain(name);
      }
      expect(hs.results.get(12)?.code).toBe("");
      expect(hs.results.get(14)?.code).toBe("");
      expect(await hs.sessionDone(files.length)).toBe(true);
    });
    expect(code).toBe(0);
    expect(stderr).not.toContain("internal error");
    // nothing outside the root: not beside it, not in the receiver's cwd, not under /etc,
    // not behind the symlinks (a final-component symlink is replaced, never written through)
    expect(readdirSync(top).sort()).toEqual(["cwd", "dest"]);
    expect(readdirSync(cwd)).toEqual([]);
    expect(() => lstatSync("/etc/escp-pwned")).toThrow();
    expect(readdirSync(outside)).toEqual(["target"]);
    expect(readFileSync(join(outside, "target"), "utf8")).toBe("outside original\n");
    expect(readdirSync(dest).sort()).toEqual(["flink", "link", "sub"]);
    expect(lstatSync(join(dest, "flink")).isFile()).toBe(true);
    expect(await b3sum(join(dest, "flink"))).toBe(await b3sum(payload));
    expect(readdirSync(join(dest, "sub"))).toEqual(["good"]);
    expect(await b3sum(join(dest, "sub", "good"))).toBe(await b3sum(payload));
  });

  test("a NUL byte in a name cannot even be encoded", () => {
    const m = { type: "fileList" as const, files: [entry(1, "a\0b", 1)], last: true };
    expect(() => encodeControl(m)).toThrow("contains a NUL byte");
  });
});

/** Files under dir that a process whose working directory is cwd holds open: a named
 *  temporary shows as its path, an unnamed (O_TMPFILE) one as "dir/#inode (deleted)". */
function openFilesUnder(cwd: string, dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (readlinkSync(`/proc/${pid}/cwd`) !== cwd) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith(`${dir}/`)) found.push(target);
      }
    } catch {
      // the process exited meanwhile, or is not ours to inspect
    }
  }
  return found;
}

/** Announce a 4 MiB file, send all of it but hold back its completion, until the receiver
 *  holds the file open (written, waiting for the sender's digest). */
async function partialInFlight(hs: HostileSender, cwd: string, dest: string): Promise<void> {
  hs.connect();
  hs.withhold.add(1);
  hs.announce([entry(1, "partial.bin", BIG)]);
  hs.addData(1, big, BIG);
  hs.finish();
  const started = await hs.until(() => hs.sent.has(1) && openFilesUnder(cwd, dest).length > 0);
  expect(started).toBe(true);
  // Written but not verified: an unnamed file (O_TMPFILE), never a name in the destination.
  expect(openFilesUnder(cwd, dest)).toEqual([expect.stringMatching(/\/#\d+ \(deleted\)$/)]);
  expect(readdirSync(dest)).toEqual([]);
}

describe("hostile sender: protocol abuse stops the receiver cleanly", () => {
  const truncated = encodeControl({ type: "fileList", files: [entry(2, "x", 1)], last: true }).subarray(0, 20);
  const cases: [string, (hs: HostileSender) => void, string][] = [
    ["fileDone for an unknown fino", (hs) => hs.send({ type: "fileDone", fino: 99, blocks: 1, bytes: 0, code: "", errno: 0, message: "", digest: new Uint8Array(32) }), "completion for unknown file #99"],
    ["random bytes as a control message", (hs) => hs.sendRaw(new Uint8Array(randomBytes(200))), "malformed control message: file identifier is not ESC1"],
    ["a truncated control message", (hs) => hs.sendRaw(truncated), "malformed control message: Envelope table lies outside"],
  ];
  cases.forEach(([name, abuse, text], i) => {
    test(name, async () => {
      await sources();
      const { cwd, dest } = caseDirs(`abuse-${i}`);
      let errors: string[] = [];
      const { code, stderr } = await withReceiver(cwd, dest, async (hs) => {
        await partialInFlight(hs, cwd, dest);
        abuse(hs);
        expect(await hs.until(() => false)).toBe(false); // runs until the receiver is gone
        errors = hs.errors.map((e) => e.code);
      });
      expect(code).toBe(7); // E_PROTOCOL: a clean stop, not a crash (70) or a signal
      const lines = stderr.trim().split("\n");
      expect(lines).toHaveLength(1); // one line naming the cause
      expect(lines[0]).toStartWith(`escp server: error: ${text}`);
      expect(stderr).not.toContain("internal error");
      for (const c of errors) expect(c).toBe("E_PROTOCOL"); // its last words, when they arrive
      expect(readdirSync(dest)).toEqual([]); // no partial file under any name
    });
  });
});

function tcpConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

describe("hostile strangers on the data port", () => {
  test("a silent and a garbage connection before the sender do not stop the transfer", async () => {
    await sources();
    const { cwd, dest } = caseDirs("strangers");
    const socks: Socket[] = [];
    try {
      const { code } = await withReceiver(cwd, dest, async (hs) => {
        const silent = await tcpConnect(hs.port);
        const garbage = await tcpConnect(hs.port);
        socks.push(silent, garbage);
        garbage.on("error", () => undefined); // a reset is as good as a close here
        const hungUp = new Promise<void>((resolve) => garbage.once("close", () => resolve()));
        garbage.write(randomBytes(256));
        await hungUp; // the receiver judged the bogus HELLO and hung up on it
        hs.connect();
        hs.announce([entry(1, "real.bin", SIZE)]);
        hs.addData(1, payload, SIZE);
        hs.finish();
        expect(await hs.until(() => hs.results.has(1))).toBe(true);
        expect(hs.results.get(1)?.code).toBe("");
        expect(await hs.sessionDone(1)).toBe(true);
      });
      expect(code).toBe(0);
      expect(readdirSync(dest)).toEqual(["real.bin"]);
      expect(await b3sum(join(dest, "real.bin"))).toBe(await b3sum(payload));
    } finally {
      for (const s of socks) s.destroy();
    }
  });
});

describe("the real sender against a symlink planted in the destination", () => {
  test("files under it are refused and named once each, the rest land, exit 1", async () => {
    const { top, dest } = caseDirs("planted");
    const src = join(top, "tree");
    mkdirSync(join(src, "link"), { recursive: true });
    writeFileSync(join(src, "link", "x"), "x\n");
    writeFileSync(join(src, "ok"), "ok\n");
    const away = join(top, "away"); // outside the root, empty
    mkdirSync(away);
    mkdirSync(join(dest, "tree"));
    symlinkSync(away, join(dest, "tree", "link"));
    const r = await runEscp([...BASE, "-r", src, dest]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(2); // the directory and the file inside it, once each
    expect(lines.filter((l) => l.includes('"tree/link"') && l.includes("symlink or not a directory"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"tree/link/x"') && l.includes("symlink or not a directory"))).toHaveLength(1);
    expect(readdirSync(away)).toEqual([]);
    expect(readdirSync(join(dest, "tree")).sort()).toEqual(["link", "ok"]);
    expect(readFileSync(join(dest, "tree", "ok"), "utf8")).toBe("ok\n");
  });
});
