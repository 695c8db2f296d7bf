// Synthetic profiles for the profile tests: each stream runs `blocks` cycles of the given stage
// mix (shares of the side's active time), with seeded jitter; totals are summed from the spans.
import { STAGE, type StageId } from "./stages.ts";
import { sideTotals } from "./shares.ts";
import type { Profile, SideName, SideProfile, Span } from "./types.ts";

export type Mix = Partial<Record<keyof typeof STAGE, number>>;

export interface SideOptions {
  streams?: number;
  blocks?: number;
  activeNs?: number;
  /** ± fraction applied to each span's duration (seeded). */
  jitter?: number;
  seed?: number;
  host?: string;
  startNs?: number;
  blockBytes?: number;
}

/** mulberry32: a tiny seeded PRNG so noisy fixtures are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NO_BYTES = new Set<StageId>([STAGE.idle, STAGE.meta]);

export function mkSide(side: SideName, mix: Mix, o: SideOptions = {}): SideProfile {
  const streams = o.streams ?? 4;
  const blocks = o.blocks ?? 50;
  const activeNs = o.activeNs ?? 2e9;
  const startNs = o.startNs ?? 1_000_000_000_000;
  const blockBytes = o.blockBytes ?? 1 << 20;
  const rand = prng(o.seed ?? 1);
  const jitter = o.jitter ?? 0;
  const stages = Object.entries(mix) as Array<[keyof typeof STAGE, number]>;
  const spans: Span[] = [];
  for (let stream = 1; stream <= streams; stream++) {
    let t = startNs;
    for (let b = 0; b < blocks; b++) {
      for (const [name, share] of stages) {
        const durNs = Math.round(((share * activeNs) / blocks) * (1 + jitter * (rand() * 2 - 1)));
        if (durNs <= 0) continue;
        const stage = STAGE[name];
        spans.push({ t0Ns: t, durNs, bytes: NO_BYTES.has(stage) ? 0 : blockBytes, stream, stage });
        t += durNs;
      }
    }
  }
  const p: SideProfile = { side, host: o.host ?? `${side}-host`, streams, startNs, endNs: startNs + activeNs, spans, dropped: 0, totals: [] };
  p.totals = sideTotals(p);
  return p;
}

export function mkProfile(sides: SideProfile[], command = "escp -v big.bin host:/tmp/"): Profile {
  return { version: 1, tool: "escp", startedAt: "2025-01-02T03:04:05.000Z", command, bytes: 4 * 50 * (1 << 20), files: 1, wallS: 2, sides };
}
