// escp as a Slurm array task on the one-node cluster (harness/slurm/local.ts), the way a
// plan's slurm.sbatch runs its shards (issue #17, docs/scale-out.md "Failures"): each task
// copies its file list (--filelist) and appends its --json output to out/shard-NNN.jsonl.
// Task 1's first run has its receiver SIGKILLed part way (ESCP_FAULT_KILL_BYTES), so escp
// fails and the task ends FAILED; `scontrol requeue JOB_1` runs it again (same index,
// SLURM_RESTART_COUNT=1, no fault), and that run resumes from the journal the first one left:
// its summary names resumed bytes (whole blocks, held by the receiver and not sent again) and
// the file equals its source by BLAKE3. Task 0 ran once. Skipped, with the reason, where the
// Slurm fixture cannot start.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN } from "../escp-run.ts";
import { parseJsonLines } from "../json-schema.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { b3sum, writeRandomFile } from "../suites/e2e-helpers.ts";
import { type Slurm, startSlurm } from "./local.ts";

const T = 120_000;
const B = 64 * 1024;
const SIZE = 8 * 1024 * 1024 + 777; // 129 blocks of 64 KiB
const KILL_AT = 3 * 1024 * 1024;

const started = await startSlurm();
const slurm: Slurm | undefined = "skip" in started ? undefined : started;
const why = "skip" in started ? started.skip : "";
if (!slurm) console.warn(`[slurm-escp] skipping escp under Slurm: ${why}`);

const tmp = makeTmpDir("slurm-escp");
afterAll(async () => {
  await slurm?.stop();
  removeTmpDir(tmp);
});

interface Summary {
  type: "summary";
  exit_status: number;
  files_ok: number;
  resumed_bytes: number;
}

function summaries(path: string): Summary[] {
  return (parseJsonLines(readFileSync(path, "utf8")) as { type: string }[]).filter((e): e is Summary => e.type === "summary");
}

/** The tasks' stdout/stderr files (Slurm's --output) and their --json lines, for failure messages. */
function taskOutputs(out: string): string {
  return readdirSync(out)
    .sort()
    .map((f) => `--- ${f}\n${readFileSync(join(out, f), "utf8").slice(-4000)}`)
    .join("\n");
}

describe.skipIf(!slurm)(slurm ? "escp in a Slurm job array" : `escp in a Slurm job array (skipped: ${why.split("\n")[0]})`, () => {
  test(
    "a shard task that failed part way, requeued, resumes from its journal and completes",
    async () => {
      const s = slurm as Slurm;
      const src = join(tmp, "src");
      const dst = join(tmp, "dst");
      const out = join(tmp, "out");
      for (const d of [src, dst, out]) mkdirSync(d);
      const lists: string[] = [];
      for (const i of [0, 1]) {
        await writeRandomFile(join(src, `f${i}.bin`), SIZE, 1700 + i);
        const list = join(tmp, `shard-00${i}.list`);
        writeFileSync(list, `- ${JSON.stringify([join(src, `f${i}.bin`), `f${i}.bin`])}\n`);
        lists.push(list);
      }
      // The task body: shard i's list to DEST, --json appended per attempt; task 1's first
      // attempt only gets the fault (its receiver SIGKILLed after KILL_AT bytes; journal
      // records committed every block, paced so the kill lands part way).
      const task = join(tmp, "task.sh");
      writeFileSync(
        task,
        [
          "#!/bin/bash",
          "set -u",
          'i="$SLURM_ARRAY_TASK_ID"; r="$(printenv SLURM_RESTART_COUNT || true)"; [ -n "$r" ] || r=0',
          `fault=(); if [ "$i" = 1 ] && [ "$r" = 0 ]; then fault=(ESCP_FAULT_KILL_BYTES=receiver:${KILL_AT}); fi`,
          `env "\${fault[@]}" ESCP_JOURNAL_BYTES=${B} ${process.execPath} ${ESCP_MAIN} -q --json --escp_port 0 --timeout 20 \\`,
          `  --blocksize 64K -t 2 -l 8M --filelist "${tmp}/shard-00$i.list" "${dst}" >> "${out}/shard-00$i.jsonl"`,
          "",
        ].join("\n"),
      );
      chmodSync(task, 0o755);
      const id = await s.sbatch(["--array=0-1", "--requeue", "--chdir", tmp, "--output", join(out, "slurm-%A_%a.out"), "--export=ALL", task]);
      const first = await s.waitJob(id, ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"], 90_000);
      expect(first.map((j) => `${j.id} ${j.state}`).sort(), taskOutputs(out)).toEqual([`${id}_0 COMPLETED`, `${id}_1 FAILED`]);
      expect(existsSync(join(dst, "f1.bin"))).toBe(false); // nothing unverified under its name
      expect(existsSync(join(dst, ".f1.bin.escp-part"))).toBe(true);
      expect(existsSync(join(dst, ".f1.bin.escp-journal"))).toBe(true);
      const failed = summaries(join(out, "shard-001.jsonl"));
      expect(failed.length).toBeLessThanOrEqual(1); // the initiator reports, if it saw the end

      await s.requeue(`${id}_1`);
      const done = await s.waitJob(id, ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"], 90_000);
      expect(done.map((j) => `${j.id} ${j.state} restarts=${j.restarts}`).sort(), taskOutputs(out)).toEqual([
        `${id}_0 COMPLETED restarts=0`,
        `${id}_1 COMPLETED restarts=1`,
      ]);

      const runs0 = summaries(join(out, "shard-000.jsonl"));
      expect(runs0.map((r) => [r.exit_status, r.files_ok, r.resumed_bytes])).toEqual([[0, 1, 0]]);
      const runs1 = summaries(join(out, "shard-001.jsonl"));
      const last = runs1.at(-1);
      expect(runs1.length).toBe(failed.length + 1);
      expect(last?.exit_status).toBe(0);
      expect(last?.files_ok).toBe(1);
      const resumed = Number(last?.resumed_bytes);
      console.log(`[slurm-escp] requeued shard resumed ${resumed} of ${SIZE} bytes`);
      expect(resumed).toBeGreaterThan(0);
      expect(resumed % B).toBe(0); // whole blocks
      expect(resumed).toBeLessThan(SIZE - (SIZE % B)); // never the last block
      // What is sent again is bounded: at most the blocks in flight when the receiver died (the
      // journal committed every block) — the bound resume.e2e derives for a local copy.
      const window = (4 + 1 + 2 * 2 + 1) * B;
      expect(resumed).toBeGreaterThanOrEqual(Math.floor(KILL_AT / B) * B - window);
      for (const i of [0, 1]) expect(await b3sum(join(dst, `f${i}.bin`))).toBe(await b3sum(join(src, `f${i}.bin`)));
      expect(existsSync(join(dst, ".f1.bin.escp-part"))).toBe(false);
      expect(existsSync(join(dst, ".f1.bin.escp-journal"))).toBe(false);
    },
    T,
  );
});
