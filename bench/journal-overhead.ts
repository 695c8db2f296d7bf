// `bun bench/journal-overhead.ts FILE [--repeat N]`: the resume journal's cost on an
// uninterrupted copy (issue #12's ≤ 3 % target). Local escp copies of FILE (e.g. the cached
// 4 GiB big-random dataset under /var/tmp/escp-bench), in four receiver modes interleaved
// per round — the default journal (no flush per group), a flush per 64 MiB group
// (ESCP_JOURNAL_SYNC=1), the same with 1 GiB groups, no journal (ESCP_JOURNAL=0) — with
// caches dropped before and a `sync` inside every timing.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN } from "../harness/escp-run.ts";
import { parseCli, positiveNumber, usageExit } from "../harness/cli-args.ts";
import { makeTmpDir, removeTmpDir } from "../harness/tmp-dir.ts";

const PROG = "journal-overhead";
const cli = parseCli(PROG, process.argv.slice(2), {
  usage: "usage: bun bench/journal-overhead.ts FILE [--repeat N]",
  positionals: true,
  options: { repeat: { type: "string", help: "rounds of the four modes (default 3)" } },
});
if (cli.positionals.length !== 1) usageExit(PROG, "needs exactly one FILE");
const file = cli.positionals[0] as string;
const repeat = positiveNumber(PROG, "--repeat", cli.values.repeat, 3);
const MODES: Record<string, Record<string, string>> = {
  default: {},
  "ESCP_JOURNAL_SYNC=1": { ESCP_JOURNAL_SYNC: "1" },
  "1 GiB groups, ESCP_JOURNAL_SYNC=1": { ESCP_JOURNAL_SYNC: "1", ESCP_JOURNAL_BYTES: String(1 << 30), ESCP_JOURNAL_MS: "60000" },
  off: { ESCP_JOURNAL: "0" },
};
const work = makeTmpDir("bench-journal");
const times: Record<string, number[]> = {};
try {
  for (let r = 0; r < repeat; r++) {
    for (const [mode, env] of Object.entries(MODES)) {
      const out = join(work, "out");
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
      Bun.spawnSync(["sync"]);
      writeFileSync("/proc/sys/vm/drop_caches", "3\n"); // root: every run reads a cold source
      const t0 = performance.now();
      const p = Bun.spawnSync([process.execPath, ESCP_MAIN, "-q", file, `${out}/`], { env: { ...process.env, ...env } });
      Bun.spawnSync(["sync"]);
      const s = (performance.now() - t0) / 1000;
      if (p.exitCode !== 0) throw new Error(`${mode}: escp exited ${p.exitCode}: ${p.stderr.toString()}`);
      (times[mode] ??= []).push(s);
      console.log(`round ${r + 1} ${mode}: ${s.toFixed(2)} s`);
    }
  }
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
  const off = median(times.off ?? []);
  for (const mode of Object.keys(MODES)) {
    const m = median(times[mode] ?? []);
    console.log(`median ${mode}: ${m.toFixed(2)} s (${((m / off - 1) * 100).toFixed(1)} % over no journal)`);
  }
} finally {
  removeTmpDir(work);
}
