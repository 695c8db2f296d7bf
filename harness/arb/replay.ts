// Seeds and replay for the fast-check suites: one printed seed per file (ESCP_SEED replays it,
// ESCP_PROP_PATH jumps to fast-check's shrunk path) and failures that say how to replay them.
import fc from "fast-check";

export interface PropRun {
  seed: number;
  path: string | undefined;
  /** Asserts `prop` over `numRuns` cases; a failure's message carries the replay command. */
  assert<Ts extends [unknown, ...unknown[]]>(prop: fc.IAsyncPropertyWithHooks<Ts>, numRuns: number): Promise<void>;
}

/** Reads ESCP_SEED (default: a fresh random seed) and prints `<tag>: seed S` with the replay line. */
export function propRun(tag: string, testFile: string): PropRun {
  const seed = process.env.ESCP_SEED ? Number(process.env.ESCP_SEED) : Math.floor(Math.random() * 0x7fffffff);
  const path = process.env.ESCP_PROP_PATH || undefined;
  console.log(`${tag}: seed ${seed} (replay: ESCP_SEED=${seed} bun test ${testFile})`);
  return {
    seed,
    path,
    async assert(prop, numRuns) {
      const details = await fc.check(prop, { seed, numRuns, ...(path ? { path } : {}) });
      if (!details.failed) return;
      const replay = `ESCP_SEED=${seed} ESCP_PROP_PATH=${details.counterexamplePath ?? ""} bun test ${testFile}`;
      const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      const msg = `${fc.defaultReportMessage(details) ?? "property failed"}\nfailure: ${why}\n${tag}: replay with: ${replay}`;
      console.error(msg);
      throw new Error(msg);
    },
  };
}

/** A positive integer from the environment, else `fallback`. */
export function envRuns(name: string, fallback: number): number {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}
