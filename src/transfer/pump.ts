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

export function isZero(d: Uint8Array): boolean {
  for (const b of d) if (b !== 0) return false;
  return true;
}
