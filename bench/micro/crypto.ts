// AES-128-GCM (OpenSSL 3 EVP) seal and open of whole DATA frames (16-byte header as AAD,
// 24-byte data sub-header + payload encrypted, 16-byte tag) through the test hooks
// escp_test_frame_seal / escp_test_frame_open (native/src/testhook.c). Besides the cipher,
// seal copies the body into the frame and open copies it into a private heap buffer, and
// each hook call builds a fresh channel (HKDF key schedule + an EVP context) that a real
// stream builds once: that fixed cost is measured by the frame topic at a 0-byte payload
// and subtracted for the "net" rate.
import { do_not_optimize } from "mitata";
import { loadNative } from "../../src/native/lib.ts";
import { ESCP_E_AUTH, ESCP_OK } from "../../src/native/symbols.ts";
import { check, type Ctx, emptyTopic, KiB, MiB, sizeLabel, type Topic } from "./common.ts";

// Frame layout from native/src/frame.h (not in escp.h, so not generated).
export const FT_DATA = 3;
export const HDR = 16;
export const TAG = 16;
export const SUBHDR = 24;
export const DIR_S2R = 0;
export const SEQ = 12345n;
export const STREAM = 1;

export const KEY = new Uint8Array(32).map((_, i) => (i * 7 + 1) & 0xff);
export const SID = new Uint8Array(16).map((_, i) => (i * 13 + 5) & 0xff);
/** The listener's challenge of the connection the frames belong to (keys are per connection). */
export const CHALLENGE = new Uint8Array(16).map((_, i) => (i * 11 + 3) & 0xff);

/** DATA body for block 0 of file 1: sub-header (fino, offset, len, flags) + payload. */
export function dataBody(payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(SUBHDR + payload.length);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, 1n, true);
  dv.setBigUint64(8, 0n, true);
  dv.setUint32(16, payload.length, true);
  dv.setUint32(20, 0, true);
  b.set(payload, SUBHDR);
  return b;
}

/** Block size a receiver would use for this payload (a power of two >= 64 KiB). */
export function blockFor(len: number): number {
  let b = 64 * KiB;
  while (b < len) b *= 2;
  return b;
}

export const OVERHEAD_SEAL = "frame: seal DATA 0 B payload (per-frame cost)";
export const OVERHEAD_OPEN = "frame: open DATA 0 B payload (per-frame cost)";

export async function setup(ctx: Ctx): Promise<Topic> {
  const t = emptyTopic();
  const lib = loadNative();
  const sizes = ctx.smoke ? [64 * KiB, 256 * KiB] : [64 * KiB, 256 * KiB, MiB, 4 * MiB];
  for (const size of sizes) {
    const payload = new Uint8Array(size);
    crypto.getRandomValues(payload.subarray(0, Math.min(size, 65536)));
    for (let o = 65536; o < size; o += 65536) payload.copyWithin(o, 0, 65536); // fill fast, content irrelevant
    const body = dataBody(payload);
    const frame = new Uint8Array(HDR + body.length + TAG);
    const block = blockFor(size);
    const maxBody = SUBHDR + block;
    const seal = () => lib.escp_test_frame_seal(KEY, SID, CHALLENGE, DIR_S2R, STREAM, SEQ, FT_DATA, body, body.length, frame, frame.length);
    const open = () => lib.escp_test_frame_open(KEY, SID, CHALLENGE, DIR_S2R, STREAM, SEQ, maxBody, block, frame, frame.length);

    // Verify once: seal gives the full frame, the ciphertext is not the plaintext, open
    // authenticates and parses it, and one flipped bit makes it fail as E_AUTH.
    const n = seal();
    const differs = Buffer.compare(frame.subarray(HDR + SUBHDR, HDR + SUBHDR + 64), payload.subarray(0, 64)) !== 0;
    const st = open();
    const bit = HDR + (size >> 1);
    frame[bit] = (frame[bit] as number) ^ 1;
    const bad = open();
    frame[bit] = (frame[bit] as number) ^ 1;
    const label = sizeLabel(size);
    check(
      t,
      `crypto: seal→open ${label} verified`,
      n === frame.length && differs && st === ESCP_OK && bad === ESCP_E_AUTH,
      `seal ${n}/${frame.length} B, ciphertext differs ${differs}, open ${st}, open after bit flip ${bad} (want ${ESCP_E_AUTH})`,
    );

    t.cases.push(
      { name: `crypto: seal DATA ${label}`, bytesPerOp: size, unit: "GB/s", overheadOf: OVERHEAD_SEAL, fn: () => do_not_optimize(seal()) },
      { name: `crypto: open DATA ${label}`, bytesPerOp: size, unit: "GB/s", overheadOf: OVERHEAD_OPEN, fn: () => do_not_optimize(open()) },
    );
  }
  t.notes.push("crypto: every hook call also runs the channel key schedule (HKDF + EVP context); net rates subtract the frame topic's 0-byte figure");
  return t;
}
