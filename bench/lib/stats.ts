// Small statistics for benchmark repeats: median and relative spread.

/** Median of the finite numbers in `xs` (null if there are none). */
export function median(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** (max − min) / median of the finite numbers in `xs`; null with fewer than two. */
export function relSpread(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  const m = median(v);
  if (v.length < 2 || m === null || m === 0) return null;
  return (Math.max(...v) - Math.min(...v)) / m;
}

/** Rounds to `digits` significant decimals for JSON (keeps files small and diffable). */
export function round(x: number | null, digits = 4): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
