// A hostile sender (harness/hostile-sender.ts) against a real receiver: unsafe names are refused
// per file with E_REJECTED_PATH and nothing lands outside the destination; protocol abuse stops
// the receiver cleanly (E_PROTOCOL, no partial file); strangers on the data port change nothing,
// whether silent, talking garbage, forging HELLOs with a wrong key or replaying a real one.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { encodeControl, type FileEntry } from "../../src/control/messages.ts";
import { loadNative } from "../../src/native/lib.ts";
import { ESCP_CHALLENGE_LEN, ESCP_PROTOCOL_VERSION, ESCP_ROLE_SENDER } from "../../src/native/symbols.ts";
import { startProxy } from "../faults/net-proxy.ts";
import { entry, HostileSender } from "../hostile-sender.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { b3sum, BASE, freePort, runEscp, writeRandomFile } from "./e2e-helpers.ts";

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

// Wire layout from native/src/frame.h (not in escp.h, so not generated): a HELLO frame is a
// 16-byte header, a 48-byte body and a 16-byte tag; frame type 1; direction 0 = s2r.
const HELLO_BODY = 48, HELLO_WIRE = 16 + HELLO_BODY + 16, FT_HELLO = 1, DIR_S2R = 0;

/** A connection to the data port that has read the listener's challenge. */
interface Stranger { sock: Socket; challenge: Uint8Array; closed: Promise<void> }

function stranger(port: number, localAddress?: string): Promise<Stranger> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port, ...(localAddress ? { localAddress } : {}) });
    sock.on("error", () => undefined); // a reset is as good as a close here
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    let got = Buffer.alloc(0);
    sock.on("data", (b: Buffer) => {
      got = Buffer.concat([got, b]);
      if (got.length >= ESCP_CHALLENGE_LEN) resolve({ sock, challenge: new Uint8Array(got.subarray(0, ESCP_CHALLENGE_LEN)), closed });
    });
    void closed.then(() => reject(new Error("closed before sending its challenge")));
  });
}

/** A well-formed HELLO for `stream` of a T-stream sender session, sealed for `challenge`
 *  with a key (and session id) that is not the session's. */
function forgedHello(stream: number, threads: number, challenge: Uint8Array): Uint8Array {
  const sid = new Uint8Array(randomBytes(16));
  const body = new Uint8Array(HELLO_BODY);
  const v = new DataView(body.buffer);
  v.setUint32(0, 0x50435345, true); // "ESCP"
  v.setUint16(4, ESCP_PROTOCOL_VERSION, true);
  v.setUint16(6, stream, true);
  v.setUint16(8, threads, true);
  v.setUint16(10, ESCP_ROLE_SENDER, true);
  body.set(sid, 16);
  body.set(challenge, 32);
  const out = new Uint8Array(HELLO_WIRE);
  const n = loadNative().escp_test_frame_seal(new Uint8Array(randomBytes(32)), sid, challenge, DIR_S2R, stream, 0n, FT_HELLO, body, body.length, out, out.length);
  expect(n).toBe(HELLO_WIRE);
  return out;
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

  test("during a real transfer, forged, replayed and silent connections change nothing: byte-identical, exit 0", async () => {
    await sources();
    const { dest } = caseDirs("strangers-real");
    const T = 2;
    const cap = 2 * (T + 1) + 8; // pending connections one source address may hold (native/src/net.h)
    const port = await freePort(); // the receiver binds exactly this port: strangers know it
    const all: Stranger[] = [];
    let replayed: Stranger | undefined;
    let held = -1;
    const forged: Stranger[] = [];
    const near: Stranger[] = [];
    const far: Stranger[] = [];
    // The real sender's streams pass a proxy that holds back its first HELLO: with it in hand,
    // strangers act on the data port before the real one arrives.
    const proxy = await startProxy({
      target: { host: "127.0.0.1", port },
      faults: [{
        stream: 0, afterBytes: HELLO_WIRE, kind: "hold", until: async (hello) => {
          held = new DataView(hello.buffer, hello.byteOffset).getUint16(6, true); // its stream id: slot still free
          replayed = await stranger(port); // the captured HELLO, replayed on another connection
          all.push(replayed);
          replayed.sock.write(hello);
          await replayed.closed;
          for (let k = 0; k < 3; k++) { // well-formed HELLOs for the same free slot, wrong key
            const f = await stranger(port);
            all.push(f);
            forged.push(f);
            f.sock.write(forgedHello(held, T, f.challenge));
            await f.closed;
          }
          for (let i = 0; i < 4; i++) near.push(await stranger(port)); // silent, the sender's own address
          for (let i = 0; i < cap + 2; i++) far.push(await stranger(port, "127.0.0.2")); // silent, another one
          all.push(...near, ...far);
          await Promise.all(far.slice(0, 2).map((f) => f.closed)); // over its cap: its oldest were closed
        },
      }],
    });
    try {
      const r = await runEscp(["-v", "--timeout", "20", "-t", String(T), "--escp_port", String(port), "--escp_portrange", "1", big, dest],
        { env: { ESCP_FAULT_DATA_PORT: String(proxy.port) } });
      if (r.code !== 0) console.error(r.stderr);
      expect(r.code).toBe(0);
      expect(await b3sum(join(dest, "big.bin"))).toBe(await b3sum(big));
      expect(proxy.stats.conns[0]?.fired).toEqual(["hold"]);
      expect(replayed).toBeDefined();
      expect(forged).toHaveLength(3);
      // The receiver (-v) judged each: the replay and every forgery failed their tag (the
      // slot was free, so nothing else could have refused them), and the real one came after.
      const authFails = r.stderr.split("\n").filter((l) => l.includes(`rejected hello for stream ${held}: ESCP_E_AUTH`));
      if (authFails.length !== 1 + forged.length) console.error(r.stderr);
      expect(authFails).toHaveLength(1 + forged.length);
      await Promise.all(all.map((s) => s.closed)); // and every silent one was closed too
    } finally {
      for (const s of all) s.sock.destroy();
      await proxy.stop();
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
