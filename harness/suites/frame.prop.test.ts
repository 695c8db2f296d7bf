// Frame decoder fuzz (C, through the escp_test_frame_* hooks of native/src/testhook.c):
// valid frames of every type open with ESCP_OK, and every mutation (truncate, extend, bit
// flips, replay, reorder, wrong direction, stream or connection, huge lengths, garbage, bad
// bodies) gives the one typed status a receiver must see, never ESCP_OK and never a crash.
// Reproduce a run with ESCP_SEED=<the printed seed>.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { loadNative } from "../../src/native/lib.ts";
import {
  ESCP_CHALLENGE_LEN,
  ESCP_E_AUTH,
  ESCP_E_INVAL,
  ESCP_E_PROTO,
  ESCP_E_REPLAY,
  ESCP_E_TOOBIG,
  ESCP_E_VERSION,
  ESCP_OK,
  ESCP_PROTOCOL_VERSION as V,
} from "../../src/native/symbols.ts";

const SEED = Number(process.env.ESCP_SEED ?? 0xf4a3e);
console.log(`frame.prop: seed ${SEED} (set ESCP_SEED to reproduce)`);
const lib = loadNative();

// Frame types and layout from native/src/frame.h (not in escp.h, so not generated).
const FT = { HELLO: 1, HELLO_ACK: 2, DATA: 3, CTL: 4, BYE: 5, KEEPALIVE: 6 } as const;
const HDR = 16,
  TAG = 16,
  SUBHDR = 24,
  HELLO_MAGIC = 0x50435345,
  HELLO_LEN = 48;
const BLOCK = 1 << 16; // smallest legal block size: keeps full-block frames cheap
const MAX_BODY = SUBHDR + BLOCK; // a data stream's body limit
const U64_MAX = (1n << 64n) - 1n;
const HEADER_ERRORS = [ESCP_E_PROTO, ESCP_E_REPLAY, ESCP_E_AUTH];

let cases = 0;
afterAll(() => console.log(`frame.prop: ${cases} cases`));
function run<Ts extends unknown[]>(p: fc.IRawProperty<Ts>, numRuns: number): void {
  fc.assert(p, { seed: SEED, numRuns });
}

/** One frame of one connection: keys come from (key, sid, the listener's challenge ch). */
interface Spec {
  key: Uint8Array;
  sid: Uint8Array;
  ch: Uint8Array;
  dir: number;
  stream: number;
  seq: bigint;
  type: number;
  body: Uint8Array;
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u64 = (n: bigint) => Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const u16 = (n: number) => [n & 0xff, n >>> 8];

/** seq values a stream meets: the start, epoch edges (2^16 frames per key), anything, the top. */
const seqArb = fc.oneof(
  fc.bigInt(0n, 8n),
  fc.bigInt(65530n, 65541n),
  fc.tuple(fc.bigInt(1n, (1n << 47n) - 1n), fc.integer({ min: -2, max: 1 })).map(([e, d]) => (e << 16n) + BigInt(d)),
  fc.bigInt(0n, U64_MAX - 2n),
  fc.bigInt(U64_MAX - 6n, U64_MAX - 2n), // seal refuses U64_MAX and reorder needs seq + 1
);

function dataBody(fino: bigint, offset: bigint, len: number, flags: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(SUBHDR + payload.length); // set(), not spread: payloads reach 64 KiB
  b.set([...u64(fino), ...u64(offset), ...u32(len), ...u32(flags)]);
  b.set(payload, SUBHDR);
  return b;
}

function helloBody(version: number, stream: number, streams: number, role: number, sid: Uint8Array, ch: Uint8Array, magic = HELLO_MAGIC, reserved = 0) {
  return new Uint8Array([...u32(magic), ...u16(version), ...u16(stream), ...u16(streams), ...u16(role), ...u32(reserved), ...sid, ...ch]);
}

/** A payload of `len` bytes: short random ones, or a full block filled from a byte. */
const payloadArb = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.nat(255).map((b) => new Uint8Array(BLOCK).fill(b)) },
);

const base = fc.record({
  key: bytes(32),
  sid: bytes(16),
  ch: bytes(ESCP_CHALLENGE_LEN),
  dir: fc.constantFrom(0, 1),
  stream: fc.integer({ min: 0, max: 64 }),
  seq: seqArb,
});
const specArb: fc.Arbitrary<Spec> = fc
  .tuple(
    base,
    fc.integer({ min: FT.HELLO, max: FT.KEEPALIVE }),
    payloadArb,
    fc.bigInt(1n, U64_MAX),
    fc.bigInt(0n, (1n << 47n) - 2n),
    fc.nat(0xffff),
    fc.constantFrom(1, 2),
  )
  .map(([b, type, payload, fino, k, streams, role]) => {
    let body: Uint8Array = new Uint8Array(0);
    if (type === FT.DATA) body = dataBody(fino, k * BigInt(BLOCK), payload.length, 0, payload);
    else if (type === FT.CTL) body = payload.length > 300 ? payload.subarray(0, 300) : payload;
    else if (type === FT.HELLO || type === FT.HELLO_ACK) body = helloBody(V, b.stream, streams, role, b.sid, b.ch);
    return { ...b, type, body };
  });

function seal(s: Spec, over: Partial<Spec> = {}): Uint8Array {
  const t = { ...s, ...over };
  const out = new Uint8Array(HDR + t.body.length + TAG);
  const n = lib.escp_test_frame_seal(t.key, t.sid, t.ch, t.dir, t.stream, t.seq, t.type, t.body, t.body.length, out, out.length);
  if (n !== out.length) throw new Error(`seal failed: ${n}`);
  return out;
}

/** Opens `frame` as the receiving channel of `s` (overridable) would; counts one case. */
function open(s: Spec, frame: Uint8Array, over: Partial<Spec> = {}): number {
  const t = { ...s, ...over };
  cases++;
  return lib.escp_test_frame_open(t.key, t.sid, t.ch, t.dir, t.stream, t.seq, MAX_BODY, BLOCK, frame, frame.length);
}

const flip = (f: Uint8Array, bit: number) => {
  const g = f.slice();
  g[bit >> 3]! ^= 1 << (bit & 7);
  return g;
};
const setLen = (f: Uint8Array, n: number) => {
  const g = f.slice();
  new DataView(g.buffer).setUint32(0, n, true);
  return g;
};

describe("frame decoder properties", () => {
  test("an unmodified frame of every type opens with ESCP_OK", () => {
    run(
      fc.property(specArb, (s) => {
        expect(open(s, seal(s))).toBe(ESCP_OK);
      }),
      1000,
    );
  });

  test("truncated to any shorter length: E_PROTO", () => {
    run(
      fc.property(specArb, fc.nat(), (s, n) => {
        const f = seal(s);
        expect(open(s, f.slice(0, n % f.length))).toBe(ESCP_E_PROTO);
      }),
      700,
    );
  });

  test("extended by any bytes: E_PROTO", () => {
    run(
      fc.property(specArb, fc.uint8Array({ minLength: 1, maxLength: 64 }), (s, junk) => {
        expect(open(s, new Uint8Array([...seal(s), ...junk]))).toBe(ESCP_E_PROTO);
      }),
      700,
    );
  });

  test("one header bit flipped: the field's typed error, never ESCP_OK", () => {
    run(
      fc.property(specArb, fc.nat(HDR * 8 - 1), (s, bit) => {
        const rc = open(s, flip(seal(s), bit));
        expect(HEADER_ERRORS).toContain(rc);
        const at = bit >> 3; // body_len | type | flags | stream | seq
        const want = at < 4 ? [ESCP_E_PROTO] : at === 4 ? [ESCP_E_PROTO, ESCP_E_AUTH] : at === 5 ? [ESCP_E_AUTH] : at < 8 ? [ESCP_E_PROTO] : [ESCP_E_REPLAY];
        expect(want).toContain(rc);
      }),
      700,
    );
  });

  test("one body or tag bit flipped: E_AUTH", () => {
    run(
      fc.property(specArb, fc.nat(), (s, n) => {
        const f = seal(s);
        const bits = (f.length - HDR) * 8;
        expect(open(s, flip(f, HDR * 8 + (n % bits)))).toBe(ESCP_E_AUTH);
      }),
      700,
    );
  });

  test("replay and reorder: E_REPLAY", () => {
    run(
      fc.property(specArb, (s) => {
        const f = seal(s);
        expect(open(s, f, { seq: s.seq + 1n })).toBe(ESCP_E_REPLAY); // the same frame again
        expect(open(s, seal(s, { seq: s.seq + 1n }))).toBe(ESCP_E_REPLAY); // the next one first
        if (s.seq > 0n) expect(open(s, seal(s, { seq: s.seq - 1n }))).toBe(ESCP_E_REPLAY); // an old one
      }),
      500,
    );
  });

  test("wrong direction (reflected): E_AUTH; wrong stream: E_PROTO, or E_AUTH if relabelled", () => {
    run(
      fc.property(specArb, fc.integer({ min: 1, max: 64 }), (s, d) => {
        const f = seal(s);
        expect(open(s, f, { dir: 1 - s.dir })).toBe(ESCP_E_AUTH);
        const other = (s.stream + d) % 65;
        expect(open(s, f, { stream: other })).toBe(ESCP_E_PROTO);
        const relabelled = f.slice();
        new DataView(relabelled.buffer).setUint16(6, other, true); // claim the receiving stream
        expect(open(s, relabelled, { stream: other })).toBe(ESCP_E_AUTH);
      }),
      500,
    );
  });

  test("another connection (another challenge, same key, stream and seq): E_AUTH", () => {
    run(
      fc.property(specArb, fc.nat(ESCP_CHALLENGE_LEN * 8 - 1), (s, bit) => {
        const other = s.ch.slice();
        other[bit >> 3]! ^= 1 << (bit & 7);
        expect(open(s, seal(s), { ch: other })).toBe(ESCP_E_AUTH); // a replay onto another connection
        expect(open(s, seal(s, { ch: other }))).toBe(ESCP_E_AUTH);
      }),
      500,
    );
  });

  test("huge body_len: E_PROTO before the body is read", () => {
    run(
      fc.property(specArb, fc.integer({ min: MAX_BODY + 1, max: 0xffffffff }), (s, big) => {
        const f = seal(s);
        for (const n of [0xffffffff, MAX_BODY + 1, big]) {
          expect(open(s, setLen(f, n))).toBe(ESCP_E_PROTO);
          expect(open(s, setLen(f, n).slice(0, HDR + TAG))).toBe(ESCP_E_PROTO); // no body at all
        }
      }),
      400,
    );
  });

  test("garbage of any length 0..200: a known negative code", () => {
    run(
      fc.property(specArb, fc.uint8Array({ maxLength: 200 }), (s, junk) => {
        expect(HEADER_ERRORS).toContain(open(s, junk));
        // a genuine header in front of garbage of the right length: only the tag can refuse it
        const f = seal(s);
        const forged = new Uint8Array(f.length);
        forged.set(f.subarray(0, HDR));
        forged.set(junk.subarray(0, f.length - HDR), HDR);
        expect(open(s, forged)).toBe(ESCP_E_AUTH);
      }),
      700,
    );
  });
});

describe("authenticated but malformed bodies (post-tag parsers)", () => {
  const badData = fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: BLOCK - 1 }));
  test("a DATA sub-header that breaks a rule: E_PROTO", () => {
    run(
      fc.property(specArb, badData, fc.uint8Array({ maxLength: 64 }), (s, [rule, odd], p) => {
        const bodies = [
          dataBody(0n, 0n, p.length, 0, p), // fino 0
          dataBody(1n, BigInt(odd), p.length, 0, p), // offset not a block multiple
          dataBody(1n, 0n, p.length + 1 + (odd % 7), 0, p), // len != body_len - 24
          dataBody(1n, 0n, p.length, odd === 4 ? 12 : odd, p), // flags other than none, ZSTD (shorter payload), ZERO (none), BUNDLE (4: a valid raw bundle header)
          dataBody(1n, (1n << 63n) - BigInt(BLOCK), BLOCK, 0, new Uint8Array(BLOCK)), // past INT64_MAX
        ];
        const t = { ...s, type: FT.DATA, body: bodies[rule] ?? new Uint8Array(0) };
        expect(open(t, seal(t))).toBe(ESCP_E_PROTO);
        const short = { ...t, body: t.body.subarray(0, odd % SUBHDR) }; // shorter than a sub-header
        expect(open(short, seal(short))).toBe(ESCP_E_PROTO);
      }),
      500,
    );
  });

  test("a HELLO with a bad magic, reserved word, version, stream, session id or challenge: typed error", () => {
    run(
      fc.property(specArb, fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 0xfffe }), (s, rule, d) => {
        const sid = s.sid.slice();
        sid[d % 16]! ^= 1 + (d % 255);
        const ch = s.ch.slice();
        ch[d % ESCP_CHALLENGE_LEN]! ^= 1 + (d % 255); // sealed for this connection, echoing another's challenge
        const body =
          [
            helloBody(V, s.stream, 4, 1, s.sid, s.ch, HELLO_MAGIC ^ d),
            helloBody(V, s.stream, 4, 1, s.sid, s.ch, HELLO_MAGIC, d),
            helloBody((V + d) & 0xffff, s.stream, 4, 1, s.sid, s.ch),
            helloBody(V, (s.stream + d) & 0xffff, 4, 1, s.sid, s.ch),
            helloBody(V, s.stream, 4, 1, sid, s.ch),
            helloBody(V, s.stream, 4, 1, s.sid, ch),
          ][rule] ?? new Uint8Array(0);
        const t = { ...s, type: d % 2 ? FT.HELLO : FT.HELLO_ACK, body };
        expect(open(t, seal(t))).toBe(rule === 2 ? ESCP_E_VERSION : ESCP_E_PROTO);
      }),
      500,
    );
  });
});

describe("hook misuse", () => {
  test("seal refuses bad arguments and short buffers with a status", () => {
    const key = new Uint8Array(32),
      sid = new Uint8Array(16),
      ch = new Uint8Array(16),
      body = new Uint8Array(HELLO_LEN);
    const W = HDR + HELLO_LEN + TAG,
      out = new Uint8Array(W);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 1, 0n, FT.HELLO, body, HELLO_LEN, out, W - 1)).toBe(ESCP_E_TOOBIG);
    expect(lib.escp_test_frame_seal(key, sid, ch, 2, 1, 0n, FT.HELLO, body, HELLO_LEN, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 70000, 0n, FT.HELLO, body, HELLO_LEN, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 1, 0n, 7, body, HELLO_LEN, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 1, 0n, FT.BYE, body, HELLO_LEN, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 1, U64_MAX, FT.BYE, body, 0, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 1, 0n, FT.HELLO, body, HELLO_LEN - 16, out, W)).toBe(ESCP_E_INVAL); // a v1-sized HELLO
    expect(lib.escp_test_frame_seal(key, sid, null, 0, 1, 0n, FT.HELLO, body, HELLO_LEN, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_seal(key, sid, ch, 0, 1, 0n, FT.HELLO, body, HELLO_LEN, out, W)).toBe(W);
    expect(lib.escp_test_frame_open(key, sid, ch, 0, 1, 0n, -1, BLOCK, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_open(key, sid, ch, 0, 1, 0n, MAX_BODY, 0, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_open(key, sid, null, 0, 1, 0n, MAX_BODY, BLOCK, out, W)).toBe(ESCP_E_INVAL);
    expect(lib.escp_test_frame_open(key, sid, ch, 0, 1, U64_MAX, MAX_BODY, BLOCK, out, W)).toBe(ESCP_E_REPLAY);
    expect(lib.escp_test_frame_open(key, sid, ch, 0, 1, 0n, MAX_BODY, BLOCK, new Uint8Array(0), 0)).toBe(ESCP_E_PROTO);
  });
});
