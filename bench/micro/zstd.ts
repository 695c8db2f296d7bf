// zstd level 3 per block: zstd-napi (the N-API binding, Compressor/Decompressor reused) vs
// libescp's native exports — escp_zstd_block (one independent frame per block) and the
// streaming per-stream context escp_zc_new / escp_zc_compress (history carried from block to
// block as a data stream compresses; a RAW block resets it) with escp_zc_new_rx /
// escp_zc_decompress. One call
// walks the whole corpus block by block. Corpora: word-like text from the datasets' big-text
// generator (≈ 3:1 with zstd -3) and incompressible random bytes. The native exports are
// looked up defensively: while src/native/symbols.ts lacks them those cases are skipped.
import { dlopen, FFIType } from "bun:ffi";
import { do_not_optimize } from "mitata";
import { Compressor, Decompressor } from "zstd-napi";
import { fillContent } from "../../datasets/content.ts";
import { fillerFor } from "../../datasets/generators.ts";
import { libraryPath } from "../../src/native/lib.ts";
import { ESCP_OK, symbols } from "../../src/native/symbols.ts";
import { check, type Ctx, emptyTopic, KiB, MiB, sizeLabel, type Topic } from "./common.ts";

const LEVEL = 3;

const BLOCK_SYMS = {
  escp_zstd_block: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
} as const;
const STREAM_SYMS = {
  escp_zc_new: { args: [FFIType.i32], returns: FFIType.ptr },
  escp_zc_new_rx: { args: [], returns: FFIType.ptr },
  escp_zc_free: { args: [FFIType.ptr], returns: FFIType.void },
  escp_zc_compress: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  escp_zc_decompress: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  escp_zc_raw: { args: [FFIType.ptr], returns: FFIType.void },
} as const;

type Decl = { readonly args: readonly FFIType[]; readonly returns: FFIType };

/** Opens `want` from libescp.so if escp.h declares every symbol with that signature. */
function optional<T extends Record<string, Decl>>(want: T): { lib: ReturnType<typeof dlopen<T>>["symbols"] } | { why: string } {
  const gen = symbols as unknown as Record<string, Decl | undefined>;
  for (const [name, d] of Object.entries(want)) {
    const g = gen[name];
    if (!g) return { why: `${name} is not in src/native/symbols.ts yet` };
    if (g.returns !== d.returns || g.args.length !== d.args.length || g.args.some((a, i) => a !== d.args[i])) {
      return { why: `${name} in symbols.ts has another signature than the bench expects` };
    }
  }
  try {
    return { lib: dlopen(libraryPath(), want).symbols };
  } catch (e) {
    return { why: `dlopen: ${(e as Error).message}` };
  }
}

function corpus(kind: "text" | "random", size: number): Uint8Array {
  const out = new Uint8Array(size);
  if (kind === "text") fillerFor({ kind: "text", ratio: 3 }, 0x5eed)(0, out);
  else fillContent(0x5eed, 0, out);
  return out;
}

function blocksOf(buf: Uint8Array, block: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < buf.length; o += block) out.push(buf.subarray(o, Math.min(buf.length, o + block)));
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const ratioOf = (input: number, output: number) => Math.round((input / output) * 1000) / 1000;

export async function setup(ctx: Ctx): Promise<Topic> {
  const t = emptyTopic();
  const block = ctx.smoke ? 64 * KiB : MiB;
  const size = ctx.smoke ? 512 * KiB : 16 * MiB;
  const cap = block + (block >> 7) + 1024; // >= ZSTD_compressBound(block)
  const outBuf = new Uint8Array(cap);
  const decBuf = new Uint8Array(block);
  const nat = optional(BLOCK_SYMS);
  const zc = optional(STREAM_SYMS);
  if ("why" in nat) t.skipped.push({ name: "zstd: native escp_zstd_block", reason: nat.why });
  if ("why" in zc) t.skipped.push({ name: "zstd: native escp_zc stream", reason: zc.why });

  for (const kind of ["text", "random"] as const) {
    const data = corpus(kind, size);
    const blocks = blocksOf(data, block);
    const tag = `zstd[${kind}]`;
    const per = `L${LEVEL}, ${sizeLabel(block)} blocks × ${blocks.length}`;

    // zstd-napi: compress every block once (ratio, round trip), then time both directions.
    const cmp = new Compressor();
    cmp.setParameters({ compressionLevel: LEVEL });
    const dec = new Decompressor();
    const napiOut = blocks.map((b) => cmp.compress(b));
    const napiBytes = napiOut.reduce((a, b) => a + b.length, 0);
    const napiOk = napiOut.every((c, i) => sameBytes(dec.decompress(c), blocks[i] as Uint8Array));
    check(t, `${tag}: zstd-napi round-trips`, napiOk, `${blocks.length} blocks, ${size} → ${napiBytes} B`);
    t.cases.push(
      {
        name: `${tag}: zstd-napi compress ${per}`,
        bytesPerOp: size,
        unit: "MB/s",
        ratio: ratioOf(size, napiBytes),
        fn: () => {
          for (const b of blocks) do_not_optimize(cmp.compress(b));
        },
      },
      {
        name: `${tag}: zstd-napi decompress ${per}`,
        bytesPerOp: size,
        unit: "MB/s",
        fn: () => {
          for (const c of napiOut) do_not_optimize(dec.decompress(c));
        },
      },
    );

    if ("lib" in nat) {
      const L = nat.lib;
      let bytes = 0;
      let ok = true;
      let detail = "";
      for (const b of blocks) {
        const n = L.escp_zstd_block(b, b.length, outBuf, cap, LEVEL);
        if (n <= 0) {
          ok = false;
          detail = `escp_zstd_block returned ${n}`;
          break;
        }
        bytes += n;
        // An ordinary zstd frame: any decoder must give the block back.
        try {
          if (!sameBytes(dec.decompress(outBuf.subarray(0, n)), b)) {
            ok = false;
            detail = "decompressed bytes differ";
            break;
          }
        } catch (e) {
          ok = false;
          detail = `zstd-napi cannot decode it: ${(e as Error).message}`;
          break;
        }
      }
      check(t, `${tag}: escp_zstd_block round-trips (zstd-napi decodes it)`, ok, detail || `${size} → ${bytes} B`);
      t.cases.push({
        name: `${tag}: native escp_zstd_block compress ${per}`,
        bytesPerOp: size,
        unit: "MB/s",
        ratio: ratioOf(size, bytes),
        fn: () => {
          for (const b of blocks) do_not_optimize(L.escp_zstd_block(b, b.length, outBuf, cap, LEVEL));
        },
      });
    }

    if ("lib" in zc) {
      const Z = zc.lib;
      // One pass with fresh contexts: every block compressed in order and decompressed in
      // order on an rx context. The RAW rule (native/src/zc.h): compress returning 0 means
      // "send RAW" and has already reset the sender; the receiver calls escp_zc_raw for it.
      const tx = Z.escp_zc_new(LEVEL);
      const rx = Z.escp_zc_new_rx();
      if (!tx || !rx) throw new Error("escp_zc_new / escp_zc_new_rx returned NULL");
      const frames: (Uint8Array | null)[] = [];
      let bytes = 0;
      let ok = true;
      let detail = "";
      for (const b of blocks) {
        const n = Z.escp_zc_compress(tx, b, b.length, outBuf, cap);
        if (n < 0) {
          ok = false;
          detail = `escp_zc_compress returned ${n}`;
          break;
        }
        if (n === 0) {
          frames.push(null);
          bytes += b.length;
          Z.escp_zc_raw(rx);
          continue;
        }
        frames.push(outBuf.slice(0, n));
        bytes += n;
        decBuf.fill(0);
        const st = Z.escp_zc_decompress(rx, outBuf, n, decBuf, b.length);
        if (st !== ESCP_OK || !sameBytes(decBuf.subarray(0, b.length), b)) {
          ok = false;
          detail = `escp_zc_decompress returned ${st} or the bytes differ`;
          break;
        }
      }
      Z.escp_zc_free(tx);
      Z.escp_zc_free(rx);
      const raws = frames.filter((f) => f === null).length;
      check(t, `${tag}: escp_zc stream round-trips`, ok, detail || `${size} → ${bytes} B, ${raws}/${blocks.length} blocks raw`);

      // Timed per call: a fresh context walks the corpus, as a new stream does (a long-lived
      // one would find a small corpus in its window on the next pass and just emit matches;
      // on random data its RAW backoff would skip ever more blocks).
      t.cases.push({
        name: `${tag}: native escp_zc stream compress ${per} (+ new ctx)`,
        bytesPerOp: size,
        unit: "MB/s",
        ratio: ratioOf(size, bytes),
        fn: () => {
          const z = Z.escp_zc_new(LEVEL);
          if (!z) throw new Error("escp_zc_new returned NULL");
          for (const b of blocks) do_not_optimize(Z.escp_zc_compress(z, b, b.length, outBuf, cap));
          Z.escp_zc_free(z);
        },
      });
      // Decompression needs the exact sequence from its start: a fresh rx context per call.
      if (raws === blocks.length) {
        t.skipped.push({ name: `${tag}: native escp_zc stream decompress`, reason: "every block went raw: nothing to decompress" });
      } else {
        t.cases.push({
          name: `${tag}: native escp_zc stream decompress ${per} (+ new ctx)`,
          bytesPerOp: size,
          unit: "MB/s",
          fn: () => {
            const r = Z.escp_zc_new_rx();
            if (!r) throw new Error("escp_zc_new_rx returned NULL");
            frames.forEach((f, i) => {
              if (f) do_not_optimize(Z.escp_zc_decompress(r, f, f.length, decBuf, (blocks[i] as Uint8Array).length));
              else Z.escp_zc_raw(r);
            });
            Z.escp_zc_free(r);
          },
        });
      }
    }
  }
  return t;
}
