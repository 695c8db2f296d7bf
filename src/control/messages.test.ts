// Codec tests: every message round-trips exactly (property), mutated buffers decode to a valid
// object or an EscpError and nothing else (fuzz), and version/semantic checks say what is wrong.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ERROR_CODES } from "../errors/codes.ts";
import { EscpError } from "../errors/escp-error.ts";
import {
  decodeControl,
  decodeSessionInit,
  decodeSessionReply,
  encodeControl,
  encodeSessionInit,
  encodeSessionReply,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type ControlMsg,
  type FileEntry,
  type SessionInit,
  type SessionReply,
} from "./messages.ts";

const SEED = Number(process.env.ESCP_SEED ?? 0x5eed);
const text = fc.string({ unit: "binary", maxLength: 24 }).filter((s) => s.isWellFormed());
const pathText = text.filter((s) => !s.includes("\0"));
const name = pathText.filter((s) => s.length > 0);
const uint = fc.maxSafeNat();
const sint = fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const nsec = fc.integer({ min: 0, max: 999_999_999 });
const code = fc.constantFrom(...Object.keys(ERROR_CODES));
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const digest = fc.oneof(bytes(0), bytes(32));

const sessionInit: fc.Arbitrary<SessionInit> = fc.record({
  versionMajor: fc.constant(PROTOCOL_MAJOR),
  versionMinor: fc.nat({ max: 1000 }),
  sessionId: bytes(16),
  key: bytes(32),
  role: fc.constantFrom("sender", "receiver"),
  threads: fc.integer({ min: 1, max: 64 }),
  blockSize: fc.integer({ min: 16, max: 26 }).map((e) => 2 ** e),
  ioEngine: fc.constantFrom("posix", "dummy"),
  checksum: fc.boolean(),
  direct: fc.boolean(),
  sparse: fc.boolean(),
  preserve: fc.boolean(),
  compress: fc.boolean(),
  verbose: fc.boolean(),
  timeoutMs: uint,
  portStart: fc.integer({ min: 0, max: 60000 }),
  portRange: fc.integer({ min: 1, max: 5535 }),
  ipMode: fc.constantFrom(0, 4, 6),
  rateLimit: uint,
  logfile: pathText,
  destPath: pathText,
  recursive: fc.boolean(),
  filelist: fc.boolean(),
  sources: fc.array(fc.record({ name, isDir: fc.boolean() }), { maxLength: 5 }),
  compressLevel: fc.integer({ min: 0, max: 19 }),
  profile: fc.boolean(),
  sourcePaths: fc.array(name, { minLength: 1, maxLength: 4 }),
  connectPort: fc.integer({ min: 0, max: 65535 }),
  helloOnAccept: fc.boolean(),
  awaitGo: fc.boolean(),
  report: fc.boolean(),
  resume: fc.constantFrom(0 as const, 1 as const, 2 as const),
  wantPaths: fc.boolean(),
  retries: fc.integer({ min: 0, max: 1000 }),
  fileReports: fc.boolean(),
  archive: fc.boolean(),
  xattrs: fc.boolean(),
  bundleMax: fc.integer({ min: 0, max: 1 << 20 }),
});

const sessionReply: fc.Arbitrary<SessionReply> = fc.oneof(
  fc.record({
    versionMajor: fc.constant(PROTOCOL_MAJOR),
    versionMinor: fc.nat({ max: 9 }),
    port: fc.integer({ min: 1, max: 65535 }),
    address: pathText,
    sources: fc.array(fc.record({ name, isDir: fc.boolean() }), { maxLength: 5 }),
    totalFiles: uint,
    totalBytes: uint,
  }),
  fc.record({
    versionMajor: fc.nat({ max: 9 }),
    versionMinor: fc.nat({ max: 9 }),
    port: fc.constant(0),
    address: pathText,
    error: fc.record({ code, message: text }),
    sources: fc.constant<{ name: string; isDir: boolean }[]>([]),
    totalFiles: fc.constant(0),
    totalBytes: fc.constant(0),
  }),
);

const u32 = fc.integer({ min: 1, max: 0xffffffff }); // 0 travels as absent (the same to the receiver)
const plainEntry = fc.record(
  {
    fino: uint,
    kind: fc.constantFrom("file" as const, "dir" as const),
    name,
    size: uint,
    mode: fc.integer({ min: 0, max: 0o177777 }),
    mtimeSec: sint,
    mtimeNsec: nsec,
    atimeSec: sint,
    atimeNsec: nsec,
    dst: name,
    ino: uint,
    uid: u32,
    gid: u32,
    nlink: u32,
    xattrs: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  },
  { requiredKeys: ["fino", "kind", "name", "size", "mode", "mtimeSec", "mtimeNsec", "atimeSec", "atimeNsec", "ino"] },
);
// -a: a symbolic link (its target) or a hard link to an earlier fino; neither has a size.
const linkEntry = fc
  .record({
    fino: fc.integer({ min: 2, max: Number.MAX_SAFE_INTEGER }),
    name,
    mode: fc.integer({ min: 0, max: 0o177777 }),
    mtimeSec: sint,
    mtimeNsec: nsec,
    atimeSec: sint,
    atimeNsec: nsec,
    ino: uint,
    target: name,
    symlink: fc.boolean(),
    back: fc.nat(),
  })
  .map(
    ({ symlink, back, target, ...e }): FileEntry =>
      symlink ? { ...e, kind: "symlink", size: 0, target } : { ...e, kind: "hardlink", size: 0, linkTo: 1 + (back % (e.fino - 1)) },
  );
const entry: fc.Arbitrary<FileEntry> = fc.oneof(plainEntry, linkEntry);

const fileDone = fc.record({
  type: fc.constant("fileDone" as const),
  fino: uint,
  blocks: uint,
  bytes: uint,
  code: fc.oneof(fc.constant(""), code),
  errno: fc.nat(),
  message: text,
  digest,
});
const fileResult = fc.record({
  type: fc.constant("fileResult" as const),
  fino: uint,
  code: fc.oneof(fc.constant(""), code),
  errno: fc.nat(),
  message: text,
  bytes: uint,
  digest,
  path: pathText,
  resumed: fc.constant(0),
});
const resumeOffer = fc.oneof(
  fc.record({
    type: fc.constant("resumeOffer" as const),
    fino: uint,
    code: fc.constant(""),
    message: fc.constant(""),
    held: fc.uint8Array({ maxLength: 96 }),
    notice: text,
  }),
  fc.record({ type: fc.constant("resumeOffer" as const), fino: uint, code, message: text, held: bytes(0), notice: fc.constant("") }),
);
const resumeDecision = fc.record({ type: fc.constant("resumeDecision" as const), fino: uint, accept: fc.boolean(), notice: text });

// A bundle's verdict: digests for every record (or none), failures at increasing indexes.
const bundleResult = fc.integer({ min: 1, max: 6 }).chain((count) =>
  fc.record({
    type: fc.constant("bundleResult" as const),
    bundle: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    count: fc.constant(count),
    digests: fc.oneof(bytes(0), bytes(32 * count)),
    failures: fc
      .uniqueArray(fc.nat({ max: count - 1 }), { maxLength: count })
      .chain((ix) => fc.tuple(...[...ix].sort((a, b) => a - b).map((index) => fc.record({ index: fc.constant(index), code, errno: fc.nat(), message: text })))),
  }),
);

const controlMsg: fc.Arbitrary<ControlMsg> = fc.oneof(
  fc.record({ type: fc.constant("bundleResults"), items: fc.array(bundleResult, { minLength: 1, maxLength: 3 }) }),
  fc.record({ type: fc.constant("fileList"), files: fc.array(entry, { maxLength: 6 }), last: fc.boolean() }),
  fileDone,
  fileResult,
  fc.record({ type: fc.constant("fileDones"), items: fc.array(fileDone, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant("fileResults"), items: fc.array(fileResult, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant("resumeOffers"), items: fc.array(resumeOffer, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant("resumeDecisions"), items: fc.array(resumeDecision, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant("error"), code, message: text, fatal: fc.boolean(), fino: uint, path: text }),
  fc.record({ type: fc.constant("sessionDone"), files: uint, bytes: uint }),
  fc.record({ type: fc.constant("sessionDoneAck"), filesOk: uint, filesFailed: uint }),
  fc.constant({ type: "keepalive" } as const),
  fc.integer({ min: 1, max: 4 }).chain((streams) =>
    fc.record({
      type: fc.constant("profileData"),
      host: pathText,
      streams: fc.constant(streams),
      startNs: uint,
      endNs: uint,
      dropped: uint,
      totals: bytes((streams + 1) * 11 * 3 * 8),
      spans: fc.nat({ max: 5 }).chain((n) => bytes(24 * n)),
      last: fc.boolean(),
    }),
  ),
) as fc.Arbitrary<ControlMsg>;

describe("round trips", () => {
  test("SessionInit", () => {
    fc.assert(
      fc.property(sessionInit, (m) => {
        expect(decodeSessionInit(encodeSessionInit(m))).toEqual(m);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
  test("SessionReply", () => {
    fc.assert(
      fc.property(sessionReply, (m) => {
        expect(decodeSessionReply(encodeSessionReply(m))).toEqual(m);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
  test("every ControlMsg", () => {
    fc.assert(
      fc.property(controlMsg, (m) => {
        expect(decodeControl(encodeControl(m))).toEqual(m);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

/** A valid encoding, then truncated, extended, bit-flipped or overwritten. */
function mutated<T>(arb: fc.Arbitrary<T>, encode: (m: T) => Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.tuple(arb, fc.nat(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 3 })).map(([m, a, b, junk, how]) => {
    const buf = encode(m);
    switch (how) {
      case 0:
        return buf.slice(0, a % buf.length);
      case 1:
        return new Uint8Array([...buf, ...junk]);
      case 2: {
        const out = buf.slice();
        for (const j of junk) {
          const i = (a + j * 131) % out.length;
          out[i]! ^= 1 << (b % 8);
        }
        return out;
      }
      default: {
        const out = buf.slice();
        junk.forEach((j, k) => {
          out[(a + k * (b + 1)) % out.length] = j;
        });
        return out;
      }
    }
  });
}

function decodesOrEscpError<T>(decode: (b: Uint8Array) => T, check: (m: T) => unknown, buf: Uint8Array): void {
  let m: T;
  try {
    m = decode(buf);
  } catch (e) {
    if (!(e instanceof EscpError)) throw new Error(`non-EscpError escaped: ${String(e)}`);
    expect(["E_PROTOCOL", "E_VERSION"]).toContain(e.code);
    return;
  }
  check(m); // a decoded object must itself be valid (re-encodes without error)
}

describe("mutation fuzz", () => {
  test("control messages (3000 cases)", () => {
    fc.assert(
      fc.property(mutated(controlMsg, encodeControl), (buf) => decodesOrEscpError(decodeControl, encodeControl, buf)),
      { seed: SEED, numRuns: 3000 },
    );
  });
  test("SessionInit (1500 cases)", () => {
    fc.assert(
      fc.property(mutated(sessionInit, encodeSessionInit), (buf) => decodesOrEscpError(decodeSessionInit, encodeSessionInit, buf)),
      { seed: SEED, numRuns: 1500 },
    );
  });
  test("SessionReply (1000 cases)", () => {
    fc.assert(
      fc.property(mutated(sessionReply, encodeSessionReply), (buf) => decodesOrEscpError(decodeSessionReply, encodeSessionReply, buf)),
      { seed: SEED, numRuns: 1000 },
    );
  });
  test("random bytes and non-buffers", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (buf) => {
        decodesOrEscpError(decodeControl, encodeControl, buf);
        decodesOrEscpError(decodeSessionInit, encodeSessionInit, buf);
      }),
      { seed: SEED, numRuns: 500 },
    );
    expect(() => decodeControl("nope" as unknown as Uint8Array)).toThrow(EscpError);
  });
});

function init(over: Partial<SessionInit> = {}): SessionInit {
  return {
    versionMajor: PROTOCOL_MAJOR,
    versionMinor: 0,
    sessionId: new Uint8Array(16),
    key: new Uint8Array(32),
    role: "receiver",
    threads: 4,
    blockSize: 1 << 20,
    ioEngine: "posix",
    checksum: true,
    direct: false,
    sparse: false,
    preserve: false,
    compress: false,
    verbose: false,
    timeoutMs: 30000,
    portStart: 1232,
    portRange: 10,
    ipMode: 0,
    rateLimit: 0,
    logfile: "",
    destPath: "dst",
    recursive: false,
    filelist: false,
    sources: [{ name: "a", isDir: false }],
    compressLevel: 0,
    profile: false,
    sourcePaths: [],
    connectPort: 0,
    helloOnAccept: false,
    awaitGo: false,
    report: false,
    resume: 2,
    wantPaths: false,
    retries: 3,
    fileReports: false,
    archive: false,
    xattrs: false,
    bundleMax: 0,
    ...over,
  };
}

function thrown(f: () => unknown): EscpError {
  try {
    f();
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw e;
  }
  throw new Error("expected an EscpError");
}

describe("checks", () => {
  test("version mismatch names both versions", () => {
    expect(PROTOCOL_MAJOR).toBe(2); // protocol 2: per-connection challenge-bound keys (docs/protocol.md §2)
    const e = thrown(() => decodeSessionInit(encodeSessionInit(init({ versionMajor: 1, versionMinor: 3 }))));
    expect(e.code).toBe("E_VERSION");
    expect(e.message).toBe(`protocol version mismatch: sender speaks 1.3, receiver speaks 2.${PROTOCOL_MINOR}`);
    const r = thrown(() =>
      decodeSessionReply(encodeSessionReply({ versionMajor: 0, versionMinor: 9, port: 5, address: "", sources: [], totalFiles: 0, totalBytes: 0 })),
    );
    expect(r.message).toBe(`protocol version mismatch: receiver speaks 0.9, sender speaks 2.${PROTOCOL_MINOR}`);
  });
  test("a refusing reply of another major is still readable", () => {
    const m: SessionReply = {
      versionMajor: PROTOCOL_MAJOR + 1,
      versionMinor: 0,
      port: 0,
      address: "",
      error: { code: "E_VERSION", message: "x" },
      sources: [],
      totalFiles: 0,
      totalBytes: 0,
    };
    expect(decodeSessionReply(encodeSessionReply(m))).toEqual(m);
  });
  test.each([
    ["threads", { threads: 0 }],
    ["threads", { threads: 65 }],
    ["power of two", { blockSize: 3 << 20 }],
    ["blockSize", { blockSize: 32 << 10 }],
    ["sessionId has 8 bytes", { sessionId: new Uint8Array(8) }],
    ["key has 16 bytes", { key: new Uint8Array(16) }],
    ["timeoutMs", { timeoutMs: 2 ** 60 }],
    ["sources[0].name is empty", { sources: [{ name: "", isDir: false }] }],
    ["NUL", { destPath: "a\0b" }],
  ] as [string, Partial<SessionInit>][])("SessionInit rejects: %s", (what, over) => {
    const e = thrown(() => encodeSessionInit(init(over)));
    expect(e.code).toBe("E_INTERNAL");
    expect(e.message).toContain(what);
  });
  test("control messages name the bad field", () => {
    const bad = thrown(() => encodeControl({ type: "fileDone", fino: 1, blocks: 1, bytes: -1, code: "", errno: 0, message: "", digest: new Uint8Array() }));
    expect(bad.message).toContain("bytes");
    const dig = thrown(() =>
      encodeControl({ type: "fileResult", fino: 1, code: "", errno: 0, message: "", bytes: 1, digest: new Uint8Array(5), path: "", resumed: 0 }),
    );
    expect(dig.message).toContain("digest has 5 bytes");
    const kind = thrown(() =>
      encodeControl({
        type: "fileList",
        last: true,
        files: [{ fino: 1, kind: "link" as "file", name: "a", size: 0, mode: 0, mtimeSec: 0, mtimeNsec: 0, atimeSec: 0, atimeNsec: 0, ino: 0 }],
      }),
    );
    expect(kind.message).toContain("files[0].kind");
  });
  test("decoding a value above 2^53 is E_PROTOCOL, not a silent rounding", () => {
    const buf = encodeControl({ type: "sessionDone", files: 1, bytes: Number.MAX_SAFE_INTEGER });
    const i = buf.lastIndexOf(0x1f); // high byte of 2^53-1 (0x001fffff_ffffffff)
    buf[i] = 0x7f;
    const e = thrown(() => decodeControl(buf));
    expect(e.code).toBe("E_PROTOCOL");
    expect(e.message).toContain("bytes");
  });
  test("a file size over the 2^53-1 limit is E_PROTOCOL naming the exact size and the limit", () => {
    const buf = encodeControl({
      type: "fileList",
      last: true,
      files: [{ fino: 1, kind: "file", name: "a", size: Number.MAX_SAFE_INTEGER, mode: 0, mtimeSec: 0, mtimeNsec: 0, atimeSec: 0, atimeNsec: 0, ino: 0 }],
    });
    const i = buf.lastIndexOf(0x1f); // high byte of 2^53-1 (0x001fffff_ffffffff)
    buf[i] = 0x20;
    const e = thrown(() => decodeControl(buf));
    expect(e.code).toBe("E_PROTOCOL");
    expect(e.message).toBe(`received control message fileList: files[0].size is ${0x20ffffffffffffn} bytes, over the 9007199254740991-byte limit`);
  });
  test("wrong identifier and a SessionInit fed to decodeControl are rejected", () => {
    const buf = encodeControl({ type: "keepalive" });
    buf[4] = 0x58;
    expect(thrown(() => decodeControl(buf)).message).toContain("identifier");
    expect(thrown(() => decodeControl(encodeSessionInit(init()))).code).toBe("E_PROTOCOL");
  });
});

describe("byte ranges (--shard, minor 8)", () => {
  const file = { fino: 3, kind: "file" as const, name: "big", size: 300_000, mode: 0o644, mtimeSec: 1, mtimeNsec: 2, atimeSec: 3, atimeNsec: 4, ino: 5 };
  test("FileEntry.range and FileResult's committed, fileDigest and subtrees round-trip; absent stays absent", () => {
    const list: ControlMsg = {
      type: "fileList",
      last: true,
      files: [
        { ...file, range: { offset: 131072, length: 168_928 } },
        { ...file, fino: 4 },
      ],
    };
    expect(decodeControl(encodeControl(list))).toEqual(list);
    const result: ControlMsg = {
      type: "fileResult",
      fino: 3,
      code: "",
      errno: 0,
      message: "",
      bytes: 168_928,
      digest: new Uint8Array(32).fill(1),
      path: "big",
      resumed: 0,
      committed: true,
      fileDigest: new Uint8Array(32).fill(2),
      subtrees: new Uint8Array(96).fill(3),
    };
    expect(decodeControl(encodeControl(result))).toEqual(result);
    const { committed: _c, fileDigest: _f, subtrees: _s, ...plain } = result;
    expect(decodeControl(encodeControl(plain))).toEqual(plain);
  });
  test("a range past the file, of a directory, or of length 0 is refused by the codec checks", () => {
    const bad = (f: object) => thrown(() => encodeControl({ type: "fileList", last: true, files: [f as typeof file] })).message;
    expect(bad({ ...file, range: { offset: 200_000, length: 200_000 } })).toContain("files[0].range 200000+200000 runs past the file's 300000 bytes");
    expect(bad({ ...file, kind: "dir", size: 0, range: { offset: 0, length: 1 } })).toContain("files[0].range");
    expect(bad({ ...file, range: { offset: 0, length: 0 } })).toContain("files[0].range.length");
  });
});
