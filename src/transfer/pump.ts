// The JS side's polling cadence over C-owned rings: fast while work flows, backing off to
// a few milliseconds when idle. C threads never wait on this loop (they own the data path).
export class Cadence {
  private delayMs = 0;
  constructor(private readonly maxMs = 8) {}

  /** Wait before the next poll; `busy` says whether the last poll found work. */
  async next(busy: boolean): Promise<void> {
    this.delayMs = busy ? 0 : Math.min(this.maxMs, this.delayMs === 0 ? 1 : this.delayMs * 2);
    if (this.delayMs === 0) await Promise.resolve();
    else await Bun.sleep(this.delayMs);
  }
}

export function hex(d: Uint8Array): string {
  return Buffer.from(d).toString("hex");
}

/** Byte-for-byte equality (digests), without building strings. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function isZero(d: Uint8Array): boolean {
  for (const b of d) if (b !== 0) return false;
  return true;
}
