// Per-message and per-frame costs: the control-message codec (FlatBuffers Envelope of
// src/control/envelope-codec.ts, validated on both sides) for a FileList batch as the
// announcer sends it (up to 2000 entries) and for the per-file FileDone, and the data-frame
// header path at a 0-byte payload through the seal/open test hooks — the fixed cost every
// DATA frame pays (channel setup in the hook included; see crypto.ts).
import { do_not_optimize } from "mitata";
import { decodeControl, encodeControl, type ControlMsg, type FileEntry } from "../../src/control/messages.ts";
import { loadNative } from "../../src/native/lib.ts";
import { ESCP_OK } from "../../src/native/symbols.ts";
import { check, type Ctx, emptyTopic, type Topic } from "./common.ts";
import { blockFor, CHALLENGE, dataBody, DIR_S2R, FT_DATA, HDR, KEY, OVERHEAD_OPEN, OVERHEAD_SEAL, SEQ, SID, STREAM, SUBHDR, TAG } from "./crypto.ts";

/** A batch like a tree walk produces: nested relative names, sizes, modes, times. */
export function fileBatch(n: number): FileEntry[] {
  const files: FileEntry[] = [];
  for (let i = 0; i < n; i++) {
    files.push({
      fino: i + 1,
      kind: i % 50 === 0 ? "dir" : "file",
      name: `project/src/module-${(i / 50) | 0}/file-${String(i).padStart(6, "0")}.dat`,
      size: i % 50 === 0 ? 0 : 4096 + ((i * 7919) % 1_000_000),
      mode: i % 50 === 0 ? 0o755 : 0o644,
      mtimeSec: 1_760_000_000 + i,
      mtimeNsec: (i * 123_457) % 1e9,
      atimeSec: 1_760_000_000 + i,
      atimeNsec: 0,
      ino: 1000 + i,
    });
  }
  return files;
}

function roundTrips(m: ControlMsg): boolean {
  const back = decodeControl(encodeControl(m));
  return JSON.stringify(back, (_k, v) => (v instanceof Uint8Array ? [...v] : v)) === JSON.stringify(m, (_k, v) => (v instanceof Uint8Array ? [...v] : v));
}

export async function setup(ctx: Ctx): Promise<Topic> {
  const t = emptyTopic();
  const lib = loadNative();
  const big = ctx.smoke ? 200 : 2000;
  const msgs: [string, ControlMsg, number][] = [
    [`fileList ×${big}`, { type: "fileList", files: fileBatch(big), last: false }, big],
    ["fileList ×1", { type: "fileList", files: fileBatch(1), last: true }, 1],
    [
      "fileDone",
      {
        type: "fileDone",
        fino: 42,
        blocks: 17,
        bytes: 17 * 1048576 - 5,
        code: "",
        errno: 0,
        message: "",
        digest: new Uint8Array(32).fill(0xab),
      },
      1,
    ],
  ];
  for (const [label, m, items] of msgs) {
    const enc = encodeControl(m);
    check(t, `frame: control ${label} encode→decode round-trips`, roundTrips(m), `${enc.length} B encoded`);
    t.cases.push(
      { name: `frame: ctl encode ${label}`, bytesPerOp: enc.length, items, unit: "MB/s", fn: () => do_not_optimize(encodeControl(m)) },
      { name: `frame: ctl decode ${label}`, bytesPerOp: enc.length, items, unit: "MB/s", fn: () => do_not_optimize(decodeControl(enc)) },
    );
  }

  // DATA frame with an empty payload: 16 B header + 24 B sub-header + 16 B tag.
  const body = dataBody(new Uint8Array(0));
  const frame = new Uint8Array(HDR + body.length + TAG);
  const block = blockFor(0);
  const seal = () => lib.escp_test_frame_seal(KEY, SID, CHALLENGE, DIR_S2R, STREAM, SEQ, FT_DATA, body, body.length, frame, frame.length);
  const open = () => lib.escp_test_frame_open(KEY, SID, CHALLENGE, DIR_S2R, STREAM, SEQ, SUBHDR + block, block, frame, frame.length);
  const n = seal();
  const st = open();
  check(t, "frame: DATA 0 B payload seal→open verified", n === frame.length && st === ESCP_OK, `seal ${n} B, open ${st}`);
  t.cases.push(
    { name: OVERHEAD_SEAL, bytesPerOp: 0, fn: () => do_not_optimize(seal()) },
    { name: OVERHEAD_OPEN, bytesPerOp: 0, fn: () => do_not_optimize(open()) },
  );
  return t;
}
