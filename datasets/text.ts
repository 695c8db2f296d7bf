// Word-like compressible content with a tunable zstd ratio. A file is a series of 64 KiB
// blocks, each a pure function of (seed, block index), so any chunking yields the same bytes.
import { createRng, type Rng, subSeed } from "./content.ts";

export const TEXT_BLOCK = 64 * 1024;
export const MIN_TEXT_RATIO = 1.5;
export const MAX_TEXT_RATIO = 30;

/** Calibrated compressed bytes per input byte under `zstd -3` for the three materials a
 *  block mixes (compressed size is close to additive in their byte fractions). */
const COST_NOISE = 0.773; // base64-alphabet noise: 6 bits/byte of entropy
const COST_WORDS = 0.341; // lines of words drawn from a 1024-word vocabulary
const COST_REPEAT = 0.02; // copies of earlier spans of the same block

const ALPHABET = new TextEncoder().encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const LETTERS = "etaoinshrdlucmfwypvbgkqjxz";
const VOCAB = 1024;

/** Byte fractions [noise, words, repeat] whose weighted cost is 1/ratio. */
export function textMix(ratio: number): [number, number, number] {
  if (!(ratio >= MIN_TEXT_RATIO && ratio <= MAX_TEXT_RATIO)) {
    throw new RangeError(`text ratio must be in [${MIN_TEXT_RATIO}, ${MAX_TEXT_RATIO}], got ${ratio}`);
  }
  const c = 1 / ratio;
  if (c >= COST_WORDS) {
    const noise = Math.min(1, (c - COST_WORDS) / (COST_NOISE - COST_WORDS));
    return [noise, 1 - noise, 0];
  }
  const words = (c - COST_REPEAT) / (COST_WORDS - COST_REPEAT);
  return [0, words, 1 - words];
}

/** VOCAB words of 2–9 letters plus a space, packed in 16-byte slots; lengths apart. */
function vocabulary(rng: Rng): { slots: Uint8Array; lengths: Uint8Array } {
  const slots = new Uint8Array(VOCAB * 16);
  const lengths = new Uint8Array(VOCAB);
  for (let i = 0; i < VOCAB; i++) {
    const len = rng.int(2, 9);
    for (let j = 0; j < len; j++) slots[i * 16 + j] = LETTERS.charCodeAt(Math.min(rng.int(0, 25), rng.int(0, 25))); // skew to common letters
    slots[i * 16 + len] = 0x20;
    lengths[i] = len + 1;
  }
  return { slots, lengths };
}

/** Streams text content for one seed; `fill` may be called at any offset, in any order. */
export class TextSource {
  private readonly words: { slots: Uint8Array; lengths: Uint8Array };
  private readonly mix: [number, number, number];
  private readonly block = new Uint8Array(TEXT_BLOCK);
  private blockIndex = -1;

  constructor(
    private readonly seed: number,
    ratio: number,
  ) {
    this.mix = textMix(ratio);
    this.words = vocabulary(createRng(subSeed(seed, 0xffff_ffff)));
  }

  /** Fills `out` with content bytes [offset, offset + out.length). */
  fill(offset: number, out: Uint8Array): void {
    for (let done = 0; done < out.length; ) {
      const pos = offset + done;
      const index = Math.floor(pos / TEXT_BLOCK);
      if (index !== this.blockIndex) this.makeBlock(index);
      const start = pos - index * TEXT_BLOCK;
      const take = Math.min(TEXT_BLOCK - start, out.length - done);
      out.set(this.block.subarray(start, start + take), done);
      done += take;
    }
  }

  private makeBlock(index: number): void {
    const b = this.block;
    const rng = createRng(subSeed(this.seed, index));
    const used = [0, 0, 0];
    let at = 0;
    while (at < TEXT_BLOCK) {
      // Error diffusion: the material furthest below its target share goes next.
      let kind = 0;
      let worst = -Infinity;
      for (let k = 0; k < 3; k++) {
        const deficit = (this.mix[k] as number) * (at + 1) - (used[k] as number);
        if ((this.mix[k] as number) > 0 && deficit > worst) {
          worst = deficit;
          kind = k;
        }
      }
      if (kind === 2 && at < 2048) kind = 1; // nothing to repeat yet
      const start = at;
      if (kind === 0) at = this.noise(rng, at);
      else if (kind === 1) at = this.line(rng, at);
      else {
        const len = Math.min(rng.int(128, 1024), TEXT_BLOCK - at);
        const from = rng.int(0, at - 1024);
        b.copyWithin(at, from, from + len);
        at += len;
      }
      used[kind] = (used[kind] as number) + (at - start);
    }
    this.blockIndex = index;
  }

  private noise(rng: Rng, at: number): number {
    const end = Math.min(TEXT_BLOCK, at + 64);
    for (let i = at; i < end; i += 4) {
      let r = rng.next();
      for (let j = i; j < Math.min(end, i + 4); j++, r >>>= 8) this.block[j] = ALPHABET[r & 63] as number;
    }
    return end;
  }

  private line(rng: Rng, at: number): number {
    const b = this.block;
    const { slots, lengths } = this.words;
    const target = Math.min(TEXT_BLOCK, at + rng.int(40, 100));
    while (at < target) {
      const r = rng.next();
      for (let half = 0; half < 2 && at < target; half++) {
        const w = (half === 0 ? r : r >>> 16) & (VOCAB - 1); // two words per draw
        const n = Math.min(lengths[w] as number, TEXT_BLOCK - at);
        for (let j = 0, from = w * 16; j < n; j++) b[at + j] = slots[from + j] as number;
        at += n;
      }
    }
    if (at < TEXT_BLOCK) b[at++] = 0x0a;
    return at;
  }
}
