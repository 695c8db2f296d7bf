// A hostile sender (harness/hostile-sender.ts) against a real receiver: unsafe names are refused
// per file with E_REJECTED_PATH and nothing lands outside the destination; protocol abuse stops
// the receiver cleanly (E_PROTOCOL, no partial file); strangers on the data port change nothing,
// whether silent, talking garbage, forging HELLOs with a wrong key or replaying a real one.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { encodeControl, type ControlMsg, type FileEntry } from "../../src/control/messages.ts";
import { loadNative } from "../../src/native/lib.ts";
import { ESCP_CHALLENGE_LEN, ESCP_PROTOCOL_VERSION, ESCP_ROLE_SENDER } from "../../src/native/symbols.ts";
import { startProxy } from "../faults/net-proxy.ts";
import { encodeFileListUnchecked, entry, HostileSender, type HostileOptions } from "../hostile-sender.ts";
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
async function withReceiver(
  cwd: string,
  dest: string,
  body: (hs: HostileSender) => Promise<void>,
  opts: Partial<HostileOptions> = {},
): Promise<{ code: number | null; stderr: string }> {
  const hs = await HostileSender.open({ ...opts, cwd, destPath: dest });
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
      [1, "/etc/escp-pwned"],
      [2, "../escape"],
      [3, "a/../../b"],
      [4, LONG_SEGMENT],
      [5, LONG_PATH],
      [6, "link/pwned"],
      [7, "link"],
      [8, "link/deeper"],
      [9, "../escdir"],
      [10, "../escape-dst"],
      [11, "link/via-dst"],
    ]);
    const files: FileEntry[] = [
      entry(1, "/etc/escp-pwned", SIZE),
      entry(2, "../escape", SIZE),
      entry(3, "a/../../b", SIZE),
      entry(4, LONG_SEGMENT, SIZE),
      entry(5, LONG_PATH, SIZE),
      entry(6, "link/pwned", SIZE),
      dir(7, "link"),
      dir(8, "link/deeper"),
      dir(9, "../escdir"),
      entry(10, "innocent", SIZE, { dst: "../escape-dst" }),
      entry(11, "innocent-2", SIZE, { dst: "link/via-dst" }),
      entry(12, "flink", SIZE),
      dir(13, "sub"),
      entry(14, "sub/good", SIZE),
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
    [
      "fileDone for an unknown fino",
      (hs) => hs.send({ type: "fileDone", fino: 99, blocks: 1, bytes: 0, code: "", errno: 0, message: "", digest: new Uint8Array(32) }),
      "completion for unknown file #99",
    ],
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
const HELLO_BODY = 48,
  HELLO_WIRE = 16 + HELLO_BODY + 16,
  FT_HELLO = 1,
  DIR_S2R = 0;

/** A connection to the data port that has read the listener's challenge. */
interface Stranger {
  sock: Socket;
  challenge: Uint8Array;
  closed: Promise<void>;
}

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
  const n = loadNative().escp_test_frame_seal(
    new Uint8Array(randomBytes(32)),
    sid,
    challenge,
    DIR_S2R,
    stream,
    0n,
    FT_HELLO,
    body,
    body.length,
    out,
    out.length,
  );
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
      faults: [
        {
          stream: 0,
          afterBytes: HELLO_WIRE,
          kind: "hold",
          until: async (hello) => {
            held = new DataView(hello.buffer, hello.byteOffset).getUint16(6, true); // its stream id: slot still free
            replayed = await stranger(port); // the captured HELLO, replayed on another connection
            all.push(replayed);
            replayed.sock.write(hello);
            await replayed.closed;
            for (let k = 0; k < 3; k++) {
              // well-formed HELLOs for the same free slot, wrong key
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
        },
      ],
    });
    try {
      const r = await runEscp(["-v", "--timeout", "20", "-t", String(T), "--escp_port", String(port), "--escp_portrange", "1", big, dest], {
        env: { ESCP_FAULT_DATA_PORT: String(proxy.port) },
      });
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

// ---- Sizes: a file announced with S bytes is exactly ceil(S/B) blocks (B = 64 KiB here) of
// their exact lengths, each once, and its FileDone names exactly those blocks and S bytes.

const BLOCK = 64 * 1024;
const small = join(tmp, "small.bin"); // one short block
const SMALL = 1000;
const over = join(tmp, "over.bin"); // a full block and 10 bytes: real data for a "10-byte" file
const OVER = BLOCK + 10;
const oneBlock = join(tmp, "one-block.bin");
const hundred = join(tmp, "hundred.bin");
const sparse = join(tmp, "sparse.bin"); // 1 TiB + 10 bytes, all holes
const SPARSE = 2 ** 40 + 10;
let sizeReady: Promise<void> | undefined;
function sizeSources(): Promise<void> {
  sizeReady ??= (async () => {
    await sources();
    await Promise.all([
      writeRandomFile(small, SMALL, 23),
      writeRandomFile(over, OVER, 24),
      writeRandomFile(oneBlock, BLOCK, 25),
      writeRandomFile(hundred, 100, 26),
    ]);
    writeFileSync(sparse, "");
    truncateSync(sparse, SPARSE);
  })();
  return sizeReady;
}

type FileDone = Extract<ControlMsg, { type: "fileDone" }>;
const fileDone = (fino: number, blocks: number, bytes: number, extra: Partial<FileDone> = {}): FileDone => ({
  type: "fileDone",
  fino,
  blocks,
  bytes,
  code: "",
  errno: 0,
  message: "",
  digest: new Uint8Array(32),
  ...extra,
});

/** escp temporaries (named ones: ".escp-<session>-<fino>.part") anywhere under dir. */
function temporariesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((n) => n.split("/").some((p) => p.startsWith(".escp-")));
}

/** The receiver holds a written, unverified file: a named temporary in dest (ESCP_TMPFILE=0),
 *  or an unnamed file it keeps open. */
function unverifiedHeld(cwd: string, dest: string, named: boolean): boolean {
  return named ? temporariesUnder(dest).length > 0 : openFilesUnder(cwd, dest).length > 0;
}

/** The receiver stopped cleanly on a session-scope protocol error whose one line matches `text`. */
function expectProtocolStop(r: { code: number | null; stderr: string }, errors: string[], text: string | RegExp): void {
  expect(r.code).toBe(7);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("escp server: error: ");
  if (typeof text === "string") expect(lines[0]).toContain(text);
  else expect(lines[0]).toMatch(text);
  expect(r.stderr).not.toContain("internal error");
  for (const c of errors) expect(c).toBe("E_PROTOCOL");
}

/** The receiver's words for a block the announced size does not allow: the data stream it
 *  came on, the file and why. */
const badBlock = (fino: number, why: string): RegExp => new RegExp(`^escp server: error: sender: data stream \\d+: protocol error: file #${fino}: ${why}$`);

const TEMPORARY_MODES: [string, Record<string, string>, boolean][] = [
  ["unnamed temporaries", {}, false],
  ["named temporaries, ESCP_TMPFILE=0", { ESCP_TMPFILE: "0" }, true],
];

describe("hostile sender: sizes are enforced", () => {
  for (const [mode, env, named] of TEMPORARY_MODES) {
    test(`a 10-byte file sent as ${OVER} bytes stops the session; no unfinished file survives (${mode})`, async () => {
      await sizeSources();
      const { top, cwd, dest } = caseDirs(`over-${named ? "named" : "anon"}`);
      let errors: string[] = [];
      const r = await withReceiver(
        cwd,
        dest,
        async (hs) => {
          hs.connect();
          hs.withhold.add(2); // held: written in full, never verified
          hs.withhold.add(3); // its FileDone would be refused too: the blocks must be what stops it
          hs.announce([entry(1, "done.bin", SMALL), entry(2, "held.bin", SIZE), entry(3, "short.bin", 10)]);
          hs.addData(1, small, SMALL);
          expect(await hs.until(() => hs.results.has(1))).toBe(true);
          expect(hs.results.get(1)?.code).toBe("");
          hs.addData(2, payload, SIZE);
          expect(await hs.until(() => hs.sent.has(2) && unverifiedHeld(cwd, dest, named))).toBe(true);
          hs.addData(3, over, OVER); // block 0: 65,536 bytes where 10 are due; block 1: past the size
          hs.finish();
          expect(await hs.until(() => hs.results.has(3))).toBe(false); // no verdict: the receiver stopped
          errors = hs.errors.map((e) => e.code);
        },
        { env },
      );
      expectProtocolStop(r, errors, badBlock(3, "a block (of the wrong length for its size|past its announced size)"));
      // The verified file stays; the held one and the short one are gone under every name.
      expect(readdirSync(dest)).toEqual(["done.bin"]);
      expect(await b3sum(join(dest, "done.bin"))).toBe(await b3sum(small));
      expect(readdirSync(top).sort()).toEqual(["cwd", "dest"]);
      expect(readdirSync(cwd)).toEqual([]);
    });
  }

  test("a 10-byte file whose source is a sparse 1 TiB file: stopped at its first blocks, nothing written", async () => {
    // The native sender reads a file from block 0 up (striped over the streams), so the
    // receiver sees block 0 with 65,536 bytes or block 1, which the size does not have; a
    // block at offset 2^40 would come 2^24 blocks later, long after the session is gone.
    await sizeSources();
    const { top, cwd, dest } = caseDirs("sparse");
    let errors: string[] = [];
    let sent = true;
    const r = await withReceiver(
      cwd,
      dest,
      async (hs) => {
        hs.connect();
        hs.withhold.add(1);
        hs.announce([entry(1, "tiny.bin", 10)]);
        hs.addData(1, sparse, SPARSE);
        hs.finish();
        expect(await hs.until(() => hs.results.has(1))).toBe(false);
        errors = hs.errors.map((e) => e.code);
        sent = hs.sent.has(1);
      },
      { env: { ESCP_TMPFILE: "0" } },
    );
    expectProtocolStop(r, errors, badBlock(1, "a block (of the wrong length for its size|past its announced size)"));
    expect(sent).toBe(false); // our sender never got near the end of it
    expect(readdirSync(dest)).toEqual([]);
    expect(readdirSync(top).sort()).toEqual(["cwd", "dest"]);
  });

  for (const [label, size] of [
    ["2^50 bytes", 2 ** 50],
    ["2^53-1 bytes (the limit)", Number.MAX_SAFE_INTEGER],
  ] as const) {
    test(`a file announced with ${label} but sent as 100 bytes: its first block is short, the session stops`, async () => {
      await sizeSources();
      const { cwd, dest } = caseDirs(`huge-${size}`);
      let errors: string[] = [];
      const r = await withReceiver(
        cwd,
        dest,
        async (hs) => {
          hs.connect();
          hs.withhold.add(1);
          hs.announce([entry(1, "huge.bin", size)]);
          hs.addData(1, hundred, 100);
          hs.finish();
          expect(await hs.until(() => hs.results.has(1))).toBe(false);
          errors = hs.errors.map((e) => e.code);
        },
        { env: { ESCP_TMPFILE: "0" } },
      );
      expectProtocolStop(r, errors, badBlock(1, "a block of the wrong length for its size"));
      expect(readdirSync(dest)).toEqual([]);
    });
  }

  for (const [label, size] of [
    ["2^53", "9007199254740992"],
    ["2^64-1", "18446744073709551615"],
  ] as const) {
    test(`a file announced with ${label} bytes, over the limit, is refused at the announcement`, async () => {
      const { cwd, dest } = caseDirs(`limit-${label}`);
      let errors: string[] = [];
      const r = await withReceiver(cwd, dest, async (hs) => {
        hs.connect();
        hs.sendRaw(encodeFileListUnchecked([entry(1, "too-big.bin", 0)], [BigInt(size)]));
        expect(await hs.until(() => false)).toBe(false);
        errors = hs.errors.map((e) => e.code);
      });
      expectProtocolStop(
        r,
        errors,
        `escp server: error: received control message fileList: files[0].size is ${size} bytes, over the 9007199254740991-byte limit`,
      );
      expect(readdirSync(dest)).toEqual([]);
    });
  }

  test("a block sent twice, and a block after the file was complete, stop the session", async () => {
    await sizeSources();
    // Three-block file: its block 0 (a real 64 KiB file) sent twice before the rest.
    const twice = caseDirs("twice");
    let errors: string[] = [];
    const r1 = await withReceiver(
      twice.cwd,
      twice.dest,
      async (hs) => {
        hs.connect();
        hs.withhold.add(1);
        hs.announce([entry(1, "three.bin", 2 * BLOCK + 100)]);
        hs.addData(1, oneBlock, BLOCK);
        expect(await hs.until(() => hs.sent.has(1))).toBe(true);
        hs.addData(1, oneBlock, BLOCK);
        hs.finish();
        expect(await hs.until(() => hs.results.has(1))).toBe(false);
        errors = hs.errors.map((e) => e.code);
      },
      { env: { ESCP_TMPFILE: "0" } },
    );
    expectProtocolStop(r1, errors, badBlock(1, "a block sent twice"));
    expect(readdirSync(twice.dest)).toEqual([]);
    // A whole file, then its blocks again while it waits for its FileDone.
    const again = caseDirs("again");
    const r2 = await withReceiver(
      again.cwd,
      again.dest,
      async (hs) => {
        hs.connect();
        hs.withhold.add(1);
        hs.announce([entry(1, "whole.bin", SIZE)]);
        hs.addData(1, payload, SIZE);
        // Sealed: its named temporary is there and the receiver no longer holds it open.
        const sealed = (): boolean => temporariesUnder(again.dest).length > 0 && openFilesUnder(again.cwd, again.dest).length === 0;
        expect(await hs.until(() => hs.sent.has(1) && sealed())).toBe(true);
        hs.addData(1, payload, SIZE);
        hs.finish();
        expect(await hs.until(() => hs.results.has(1))).toBe(false);
        errors = hs.errors.map((e) => e.code);
      },
      { env: { ESCP_TMPFILE: "0" } },
    );
    expectProtocolStop(r2, errors, badBlock(1, "a block after the file was complete"));
    expect(readdirSync(again.dest)).toEqual([]);
  });

  // A genuine two-block file (SIZE bytes), all of it in, then a FileDone we write.
  const lies: [string, (real: { blocks: number; digest: Uint8Array }) => FileDone, string][] = [
    [
      "one block more",
      (g) => fileDone(1, g.blocks + 1, SIZE, { digest: g.digest }),
      "completion of file #1 names 3 blocks, not the blocks its announced size implies",
    ],
    [
      "one block fewer",
      (g) => fileDone(1, g.blocks - 1, SIZE, { digest: g.digest }),
      "completion of file #1 names 1 blocks, not the blocks its announced size implies",
    ],
    [
      "one byte fewer",
      (g) => fileDone(1, g.blocks, SIZE - 1, { digest: g.digest }),
      `completion of file #1 names ${SIZE - 1} bytes, not its announced ${SIZE}`,
    ],
    ["one byte more", (g) => fileDone(1, g.blocks, SIZE + 1, { digest: g.digest }), `completion of file #1 names ${SIZE + 1} bytes, not its announced ${SIZE}`],
  ];
  lies.forEach(([name, lie, text], i) => {
    test(`a FileDone naming ${name} than the size implies stops the session, nothing is named`, async () => {
      await sizeSources();
      const { cwd, dest } = caseDirs(`lie-${i}`);
      let errors: string[] = [];
      const r = await withReceiver(
        cwd,
        dest,
        async (hs) => {
          hs.connect();
          hs.withhold.add(1);
          hs.announce([entry(1, "genuine.bin", SIZE)]);
          hs.addData(1, payload, SIZE);
          hs.finish();
          expect(await hs.until(() => hs.sent.has(1) && unverifiedHeld(cwd, dest, true))).toBe(true);
          const real = hs.sentInfo.get(1);
          if (!real) throw new Error("no FILE_DONE from our native sender");
          expect(real.blocks).toBe(2);
          hs.send(lie(real));
          expect(await hs.until(() => hs.results.has(1))).toBe(false);
          errors = hs.errors.map((e) => e.code);
        },
        { env: { ESCP_TMPFILE: "0" } },
      );
      expectProtocolStop(r, errors, `escp server: error: ${text}`);
      expect(readdirSync(dest)).toEqual([]); // not named, and its temporary removed
    });
  });

  test("an aborted FileDone (error code set) may name fewer blocks: that file fails alone", async () => {
    await sizeSources();
    const { cwd, dest } = caseDirs("aborted");
    const r = await withReceiver(
      cwd,
      dest,
      async (hs) => {
        hs.connect();
        hs.withhold.add(1);
        // Three blocks announced; the sender got one (a real 64 KiB block 0) out, then gave up.
        hs.announce([entry(1, "gave-up.bin", 2 * BLOCK + 100), entry(2, "fine.bin", SIZE)]);
        hs.addData(1, oneBlock, BLOCK);
        hs.addData(2, payload, SIZE);
        hs.finish();
        expect(await hs.until(() => hs.sent.has(1) && hs.results.has(2))).toBe(true);
        hs.send(fileDone(1, 1, BLOCK, { code: "E_SOURCE_UNREADABLE", errno: 5, message: "gave-up.bin: read failed", digest: new Uint8Array(0) }));
        expect(await hs.until(() => hs.results.has(1))).toBe(true);
        expect(hs.results.get(1)?.code).toBe("E_SOURCE_UNREADABLE");
        expect(hs.results.get(1)?.message).toContain("read failed"); // the sender's own words for it
        expect(hs.results.get(2)?.code).toBe("");
        expect(await hs.sessionDone(2)).toBe(true);
        expect(hs.ack?.filesOk).toBe(1);
        expect(hs.ack?.filesFailed).toBe(1);
      },
      { env: { ESCP_TMPFILE: "0" } },
    );
    expect(r.code).toBe(0);
    expect(readdirSync(dest)).toEqual(["fine.bin"]);
    expect(await b3sum(join(dest, "fine.bin"))).toBe(await b3sum(payload));
  });
});

/** Peak resident memory of a live process (VmHWM, KiB); 0 once it is gone. */
function peakRssKiB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // exited meanwhile
  }
}

describe("hostile sender: the window of files awaiting a verdict", () => {
  test("1,000,000 files announced without data: stopped at file #4097, memory bounded", async () => {
    const { cwd, dest } = caseDirs("window");
    const TOTAL = 1_000_000;
    const BATCH = 2000; // like a genuine sender's FileList batches: each message well under 1 MiB
    let errors: string[] = [];
    let peak = 0;
    let batches = 0;
    const r = await withReceiver(cwd, dest, async (hs) => {
      hs.connect();
      const pid = hs.receiverPid();
      if (pid === undefined) throw new Error("receiver process not found");
      const gone = (): boolean => hs.exitCode !== undefined || hs.lost.length > 0 || hs.errors.length > 0;
      for (let first = 1; first <= TOTAL && !gone(); first += BATCH) {
        const files = Array.from({ length: BATCH }, (_, i) => entry(first + i, `f${first + i}`, 1));
        const msg = encodeControl({ type: "fileList", files, last: first + BATCH > TOTAL });
        expect(msg.length).toBeLessThan(1 << 20);
        try {
          hs.sendRaw(msg);
        } catch {
          break; // the receiver has closed its end: it stopped
        }
        batches++;
        peak = Math.max(peak, peakRssKiB(pid));
        await hs.until(() => true); // take in what it said so far
      }
      // Sample until it is gone: VmHWM is its peak so far, read while it still runs.
      expect(
        await hs.until(() => {
          peak = Math.max(peak, peakRssKiB(pid));
          return false;
        }),
      ).toBe(false);
      errors = hs.errors.map((e) => e.code);
      expect(hs.resultLog).toEqual([]); // no verdict for anything: it never got that far
    });
    expectProtocolStop(r, errors, "escp server: error: sender announced file #4097 with 4096 files already awaiting their verdict (the window is 4096)");
    expect(batches).toBeLessThan(TOTAL / BATCH); // it stopped long before the last batch
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(300 * 1024); // KiB: a generous bound for one Bun process
    expect(readdirSync(dest)).toEqual([]); // nothing is created before its first block
  }, 60_000);
});

describe("hostile sender: `-r d host:new` maps d to the new destination itself", () => {
  for (const [mode, env] of TEMPORARY_MODES) {
    test(`a file named d is refused, d/f lands in new, nothing else appears beside it (${mode})`, async () => {
      await sources();
      const top = join(tmp, `top-level-${Object.keys(env).length}`);
      const cwd = join(top, "cwd");
      mkdirSync(cwd, { recursive: true });
      const dest = join(top, "new"); // does not exist: d's contents land directly in it
      const r = await withReceiver(
        cwd,
        dest,
        async (hs) => {
          hs.connect();
          hs.announce([dir(1, "d"), entry(2, "d", SIZE), entry(3, "d/f", SIZE)]);
          hs.addData(2, payload, SIZE);
          hs.addData(3, payload, SIZE);
          hs.finish();
          expect(await hs.until(() => hs.results.has(2) && hs.results.has(3))).toBe(true);
          expect(hs.results.get(2)?.code).toBe("E_REJECTED_PATH");
          expect(hs.results.get(2)?.message).toBe('refusing unsafe name "d": a file cannot take the place of the destination directory');
          expect(hs.results.get(3)?.code).toBe("");
          expect(hs.results.has(1)).toBe(false); // the directory itself was fine
          expect(await hs.sessionDone(3)).toBe(true);
        },
        { sources: [{ name: "d", isDir: true }], filelist: false, env },
      );
      expect(r.code).toBe(0);
      expect(readdirSync(top).sort()).toEqual(["cwd", "new"]); // no temporary, no file in new's place
      expect(lstatSync(dest).isDirectory()).toBe(true);
      expect(readdirSync(dest)).toEqual(["f"]);
      expect(await b3sum(join(dest, "f"))).toBe(await b3sum(payload));
      expect(readdirSync(cwd)).toEqual([]);
    });
  }
});

describe("hostile sender with -a: links it makes are never a way out", () => {
  const link = (fino: number, name: string, target: string): FileEntry => entry(fino, name, 0, { kind: "symlink", target });
  const hard = (fino: number, name: string, to: number): FileEntry => entry(fino, name, 0, { kind: "hardlink", linkTo: to });

  test("a symlink to outside is made as a link; names through it are refused; a hard link to a non-file fails alone", async () => {
    await sources();
    const { top, cwd, dest } = caseDirs("archive-links");
    const files: FileEntry[] = [
      link(1, "evil", outside),
      entry(2, "evil/pwned", SIZE),
      hard(3, "hl", 1),
      entry(4, "good", SIZE, { nlink: 2 }),
      hard(5, "good-too", 4),
      link(6, "abs", "/etc/passwd"),
    ];
    const { code, stderr } = await withReceiver(
      cwd,
      dest,
      async (hs) => {
        hs.connect();
        hs.announce(files);
        for (const f of files) if (f.kind === "file") hs.addData(f.fino, payload, SIZE);
        hs.finish();
        expect(await hs.until(() => files.every((f) => hs.results.has(f.fino)))).toBe(true);
        expect(hs.results.get(1)?.code).toBe("");
        expect(hs.results.get(2)?.code).toBe("E_REJECTED_PATH");
        expect(hs.results.get(3)?.code).toBe("E_WRITE");
        expect(hs.results.get(3)?.message).toContain("was not written");
        expect(hs.results.get(4)?.code).toBe("");
        expect(hs.results.get(5)?.code).toBe("");
        expect(hs.results.get(6)?.code).toBe("");
        expect(await hs.sessionDone(files.length)).toBe(true);
      },
      { archive: true },
    );
    expect(code).toBe(0);
    expect(stderr).not.toContain("internal error");
    expect(readdirSync(top).sort()).toEqual(["cwd", "dest"]);
    expect(readdirSync(outside)).not.toContain("pwned"); // nothing written through "evil"
    expect(readlinkSync(join(dest, "evil"))).toBe(outside);
    expect(readlinkSync(join(dest, "abs"))).toBe("/etc/passwd");
    expect(lstatSync(join(dest, "good-too")).ino).toBe(lstatSync(join(dest, "good")).ino);
    expect(readdirSync(dest).sort()).toEqual(["abs", "evil", "good", "good-too"]);
  });

  test("a symlink in a session without -a stops the receiver (E_PROTOCOL), nothing is made", async () => {
    const { cwd, dest } = caseDirs("archive-unasked");
    const { code, stderr } = await withReceiver(cwd, dest, async (hs) => {
      hs.connect();
      hs.announce([link(1, "evil", outside)]);
      expect(await hs.until(() => false)).toBe(false); // runs until the receiver is gone
    });
    expect(code).toBe(7);
    expect(stderr).toContain("a symbolic link");
    expect(stderr).toContain("without -a");
    expect(readdirSync(dest)).toEqual([]);
  });
});

describe("hostile sender: byte ranges the receiver's own limits refuse (--shard, protocol 2.8)", () => {
  const cases: [string, Partial<FileEntry>, 0 | 2, string][] = [
    [
      "a range not aligned to the receiver's block size",
      { range: { offset: 1000, length: 65536 } },
      2,
      "a range at 1000, not a multiple of the block size 65536",
    ],
    ["a range that is not whole blocks and does not end the file", { range: { offset: 0, length: 1000 } }, 2, "a range of 1000 bytes that is not whole blocks"],
    ["a range that is the whole file", { range: { offset: 0, length: SIZE } }, 2, "a range that is the whole file"],
    ["a range in a session without resume", { range: { offset: 0, length: 65536 } }, 0, "a byte range in a session without resume"],
  ];
  cases.forEach(([name, extra, resume, text], i) => {
    test(`${name}: the session ends E_PROTOCOL, one line, nothing created`, async () => {
      await sources();
      const { cwd, dest } = caseDirs(`range-${i}`);
      const { code, stderr } = await withReceiver(
        cwd,
        dest,
        async (hs) => {
          hs.connect();
          hs.announce([entry(1, "r.bin", SIZE, extra)]);
          hs.addData(1, payload, SIZE);
          expect(await hs.until(() => false)).toBe(false); // runs until the receiver is gone
        },
        { resume },
      );
      expect(code).toBe(7);
      const lines = stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toStartWith(`escp server: error: sender announced file #1 ("r.bin") with ${text}`);
      expect(readdirSync(dest)).toEqual([]); // no partial, no journal
    });
  });
});
