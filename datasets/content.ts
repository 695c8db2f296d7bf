// Deterministic pseudo-random content: the byte at offset N of a file depends only on
// (seed, N), so chunks can be made in any size or order; plus a seeded integer stream.

export const CHUNK_BYTES = 1 << 20; // 1 MiB: the streaming unit, never whole-file buffers

/** lowbias32 (Chris Wellons' hash-prospector): a fast bijective 32-bit mixer. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Two 32-bit keys from a seed (any safe integer; negative and fractional parts are folded). */
function keysOf(seed: number): [number, number] {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
  const k0 = mix32(lo ^ 0x9e3779b9);
  const k1 = mix32((hi + Math.imul(k0, 0x85ebca6b)) >>> 0);
  return [k0, k1];
}

/** Content word at word index `index` (4 bytes each, little-endian in the file). Counter
 *  mode: two keyed mixing rounds over the index, so words are independent of each other. */
function fillWords(k0: number, k1: number, firstIndex: number, out: Uint32Array): void {
  let lo = firstIndex >>> 0;
  let hiKey = mix32((Math.floor(firstIndex / 0x1_0000_0000) ^ k1) >>> 0);
  for (let i = 0; i < out.length; i++) {
    out[i] = mix32((mix32((lo + k0) >>> 0) ^ hiKey) >>> 0);
    lo = (lo + 1) >>> 0;
    if (lo === 0) hiKey = mix32((Math.floor((firstIndex + i + 1) / 0x1_0000_0000) ^ k1) >>> 0);
  }
}

let scratch = new Uint32Array(CHUNK_BYTES / 4 + 2);

/** Fills `out` with the content bytes [offset, offset + out.length) of stream `seed`. */
export function fillContent(seed: number, offset: number, out: Uint8Array): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad offset ${offset}`);
  const [k0, k1] = keysOf(seed);
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  for (let done = 0; done < out.length; ) {
    const pos = offset + done;
    const skip = pos % 4;
    const take = Math.min(out.length - done, CHUNK_BYTES);
    const words = Math.ceil((skip + take) / 4);
    if (scratch.length < words) scratch = new Uint32Array(words);
    const view = scratch.subarray(0, words);
    fillWords(k0, k1, (pos - skip) / 4, view);
    if (!littleEndian) for (let i = 0; i < words; i++) view[i] = byteSwap(view[i] as number);
    out.set(new Uint8Array(view.buffer, view.byteOffset + skip, take), done);
    done += take;
  }
}

function byteSwap(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/** A fresh buffer with content bytes [offset, offset + length) of stream `seed`. */
export function contentBytes(seed: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  fillContent(seed, offset, out);
  return out;
}

/** Yields the first `sizeBytes` bytes of stream `seed` in chunks of `chunkBytes`. The yielded
 *  view reuses one buffer: it is valid until the next iteration (copy it to keep it). */
export function* contentChunks(seed: number, sizeBytes: number, chunkBytes = CHUNK_BYTES): Generator<Uint8Array> {
  if (!(chunkBytes > 0)) throw new RangeError(`bad chunk size ${chunkBytes}`);
  const buf = new Uint8Array(Math.min(chunkBytes, Math.max(sizeBytes, 1)));
  for (let offset = 0; offset < sizeBytes; offset += chunkBytes) {
    const view = buf.subarray(0, Math.min(chunkBytes, sizeBytes - offset));
    fillContent(seed, offset, view);
    yield view;
  }
}

/** A stable 32-bit seed from a name (FNV-1a), for specs that name their files. */
export function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name)) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

/** A stable 53-bit seed from a name: FNV-1a for the low 32 bits and a second, differently
 *  keyed FNV-1a pass for the high 21, so 65,536 names in one dataset do not collide. */
export function seed53Of(name: string): number {
  let hi = 0x2c9277b5;
  for (const byte of new TextEncoder().encode(name)) hi = Math.imul(hi ^ byte, 0x01000193);
  return (mix32(hi >>> 0) % 0x20_0000) * 0x1_0000_0000 + seedOf(name);
}

/** A seed for sub-stream `index` of `seed` (e.g. one 64 KiB block of a text file). */
export function subSeed(seed: number, index: number): number {
  const lo = (seed >>> 0) ^ mix32((index >>> 0) ^ 0x5bd1e995);
  const hi = ((Math.floor(seed / 0x1_0000_0000) ^ mix32(Math.floor(index / 0x1_0000_0000) + 0x27d4eb2f)) >>> 0) % 0x20_0000;
  return hi * 0x1_0000_0000 + (lo >>> 0);
}

/** A seeded integer stream (mulberry32) for choosing names and sizes in specs. */
export interface Rng {
  /** Uniform integer in [0, 2^32). */
  next(): number;
  /** Uniform integer in [min, max] (inclusive; max - min < 2^32). */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

export function createRng(seed: number): Rng {
  let state = keysOf(seed)[0];
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const int = (min: number, max: number): number => min + Math.floor((next() / 0x1_0000_0000) * (max - min + 1));
  return {
    next,
    int,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError("pick from an empty list");
      return items[int(0, items.length - 1)] as T;
    },
  };
}
