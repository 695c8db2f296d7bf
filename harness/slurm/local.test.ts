// The one-node Slurm fixture (harness/slurm/local.ts) that plan tests (issue #17) run job
// arrays on: a throttled array runs every task once (never more than %M at a time), `scontrol
// requeue JOB_TASK` re-runs exactly that task index with SLURM_RESTART_COUNT=1, and stop()
// leaves no process of the cluster and no scratch directory. Start/stop times are logged,
// never asserted. Skipped, with the reason printed, where Slurm or munge is not installed or
// the daemons do not come up (their last log lines).
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { clusterProcesses, parseJobs, reapStaleSlurm, type Slurm, startSlurm } from "./local.ts";

const T = 120_000;
const started = await startSlurm();
const slurm: Slurm | undefined = "skip" in started ? undefined : started;
const why = "skip" in started ? started.skip : "";
if (!slurm) console.warn(`[slurm] skipping the Slurm fixture tests: ${why}`);
else console.log(`[slurm] node ${slurm.node} idle ${slurm.startMs} ms after start`);

let stoppedCleanly = false;
afterAll(async () => {
  if (slurm && !stoppedCleanly) await slurm.stop();
});

function need(): Slurm {
  if (!slurm) throw new Error("Slurm not started");
  return slurm;
}

/** Polls a condition (a file appearing) with a deadline. */
async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${need().logTail()}`);
    await Bun.sleep(50); // poll the condition
  }
}

function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/bash\nset -eu\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

test("parseJobs reads scontrol's one-line records, array tasks and pending ranges", () => {
  const text = [
    "JobId=12 ArrayJobId=10 ArrayTaskId=2 ArrayTaskThrottle=2 JobName=x JobState=RUNNING Reason=None Restarts=1 ExitCode=0:0",
    "JobId=10 ArrayJobId=10 ArrayTaskId=3-5%2 JobState=PENDING Restarts=0 ExitCode=0:0",
    "JobId=7 JobName=plain JobState=COMPLETED Restarts=0 ExitCode=0:0",
    "",
  ].join("\n");
  expect(parseJobs(text)).toEqual([
    { id: "10_2", jobId: "10", task: "2", state: "RUNNING", restarts: 1, exitCode: "0:0" },
    { id: "10_3-5%2", jobId: "10", task: "3-5%2", state: "PENDING", restarts: 0, exitCode: "0:0" },
    { id: "7", jobId: "7", state: "COMPLETED", restarts: 0, exitCode: "0:0" },
  ]);
});

describe.skipIf(!slurm)(slurm ? "startSlurm failures" : `startSlurm failures (skipped: ${why.split("\n")[0]})`, () => {
  test(
    "a daemon that will not start: { skip } names it with its log lines, and nothing is left",
    async () => {
      const r = await startSlurm({ extraConf: ["NoSuchSlurmParameter=1"] });
      expect("skip" in r).toBe(true);
      const skip = "skip" in r ? r.skip : "";
      expect(skip).toMatch(/^(slurmctld|slurmd) exited \(status \d+\) before the node became idle\n/);
      expect(skip).toContain("NoSuchSlurmParameter");
      const dir = /^--- (\/.*)\/log\/slurm(?:ctld|d)\.(?:log|out)$/m.exec(skip)?.[1] ?? "";
      expect(dir.startsWith(join(tmpdir(), "escp-slurm-"))).toBe(true);
      expect(clusterProcesses(dir)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
    },
    T,
  );
  test(
    "a controller port another process holds: retried, then { skip } says so, and nothing is left",
    async () => {
      const srv = createServer();
      await new Promise<void>((res) => srv.listen(0, "0.0.0.0", () => res()));
      try {
        const port = (srv.address() as AddressInfo).port;
        const r = await startSlurm({ extraConf: [`SlurmctldPort=${port}`] });
        const skip = "skip" in r ? r.skip : "";
        expect(skip).toMatch(/^slurmctld exited \(status 1\) before the node became idle\n/);
        expect(skip).toContain("Address already in use");
        const dir = /^--- (\/.*)\/log\/slurmctld\.log$/m.exec(skip)?.[1] ?? "";
        expect(clusterProcesses(dir)).toEqual([]);
        expect(existsSync(dir)).toBe(false);
      } finally {
        srv.close();
      }
    },
    T,
  );
});

describe.skipIf(!slurm)(slurm ? "one-node Slurm" : `one-node Slurm (skipped: ${why.split("\n")[0]})`, () => {
  test(
    "a job array --array=0-3%2 runs each task once, at most two at a time",
    async () => {
      const s = need();
      const out = makeTmpDir("slurm-array");
      try {
        mkdirSync(join(out, "running"));
        // Each task marks itself running, records how many were running (itself included),
        // then unmarks: with %2 no task can ever see more than two markers.
        const job = script(
          out,
          "task.sh",
          [
            'i="$SLURM_ARRAY_TASK_ID"',
            `touch "${out}/running/$i"`,
            `n=$(ls "${out}/running" | wc -l)`,
            `printf 'task %s of %s on %s saw %s\\n' "$i" "$SLURM_ARRAY_JOB_ID" "$SLURMD_NODENAME" "$n" > "${out}/out-$i.tmp"`,
            `mv "${out}/out-$i.tmp" "${out}/out-$i"`,
            `rm "${out}/running/$i"`,
          ].join("\n"),
        );
        const id = await s.sbatch(["--array=0-3%2", "--chdir", out, "--output", join(out, "slurm-%A_%a.log"), "--export=ALL", job]);
        const info = await s.run(["scontrol", "show", "job", "-o", id]);
        expect(info.stdout).toContain("ArrayTaskThrottle=2");
        const done = await s.waitJob(id, ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"], 90_000);
        expect(done.map((j) => `${j.id} ${j.state} ${j.exitCode}`).sort()).toEqual([0, 1, 2, 3].map((i) => `${id}_${i} COMPLETED 0:0`));
        for (const i of [0, 1, 2, 3]) {
          const line = readFileSync(join(out, `out-${i}`), "utf8");
          const m = /^task (\d) of (\d+) on (\S+) saw (\d+)\n$/.exec(line);
          expect(m?.slice(1, 4)).toEqual([String(i), id, s.node]);
          expect(Number(m?.[4])).toBeGreaterThanOrEqual(1);
          expect(Number(m?.[4])).toBeLessThanOrEqual(2);
        }
        expect(readdirSync(join(out, "running"))).toEqual([]);
      } finally {
        removeTmpDir(out);
      }
    },
    T,
  );

  test(
    "scontrol requeue JOB_TASK re-runs that task index, SLURM_RESTART_COUNT=1, the others once",
    async () => {
      const s = need();
      const out = makeTmpDir("slurm-requeue");
      try {
        const fifo = join(out, "hold");
        const mk = Bun.spawnSync(["mkfifo", fifo]);
        expect(mk.exitCode).toBe(0);
        // Task 1's first run blocks opening the FIFO (nobody ever writes it) until the test
        // requeues it; its second run, and task 0, finish at once.
        const job = script(
          out,
          "task.sh",
          [
            'i="$SLURM_ARRAY_TASK_ID"; r="$(printenv SLURM_RESTART_COUNT || true)"; [ -n "$r" ] || r=0',
            `echo "$i $r $SLURM_ARRAY_JOB_ID" >> "${out}/runs-$i"`,
            `if [ "$i" = 1 ] && [ "$r" = 0 ]; then touch "${out}/blocked-$i"; read -r _ < "${fifo}"; fi`,
            `echo ok > "${out}/done-$i"`,
          ].join("\n"),
        );
        const id = await s.sbatch(["--array=0-1", "--requeue", "--chdir", out, "--output", join(out, "slurm-%A_%a.log"), "--export=ALL", job]);
        await until("task 1 to block on its first run", () => existsSync(join(out, "blocked-1")), 60_000);
        await s.waitJob(`${id}_0`, ["COMPLETED"], 60_000);
        await s.waitJob(`${id}_1`, ["RUNNING"], 60_000);
        const t0 = Date.now();
        await s.requeue(`${id}_1`);
        const done = await s.waitJob(id, ["COMPLETED", "FAILED", "CANCELLED"], 90_000);
        console.log(`[slurm] requeued task ran again and completed ${Date.now() - t0} ms after scontrol requeue`);
        expect(done.map((j) => `${j.id} ${j.state} restarts=${j.restarts}`).sort()).toEqual([`${id}_0 COMPLETED restarts=0`, `${id}_1 COMPLETED restarts=1`]);
        expect(readFileSync(join(out, "runs-0"), "utf8")).toBe(`0 0 ${id}\n`);
        expect(readFileSync(join(out, "runs-1"), "utf8")).toBe(`1 0 ${id}\n1 1 ${id}\n`);
        expect(readFileSync(join(out, "done-1"), "utf8")).toBe("ok\n");
      } finally {
        removeTmpDir(out);
      }
    },
    T,
  );

  const children = new Set<Bun.Subprocess>();
  /** A child process that starts its own cluster, prints its dir, then waits for a signal. */
  async function childCluster(): Promise<{ proc: Bun.Subprocess<"ignore", "pipe", "pipe">; dir: string; pids: number[] }> {
    const code = [
      `import { startSlurm } from ${JSON.stringify(join(import.meta.dir, "local.ts"))};`,
      "const s = await startSlurm();",
      'if ("skip" in s) { console.error(s.skip); process.exit(3); }',
      "console.log(JSON.stringify({ dir: s.dir, pids: s.processes() }));",
      "setInterval(() => {}, 1 << 30);",
    ].join("\n");
    const proc = Bun.spawn([process.execPath, "-e", code], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    children.add(proc);
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`child cluster did not start: ${await new Response(proc.stderr).text()}`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const { dir, pids } = JSON.parse(text) as { dir: string; pids: number[] };
    return { proc, dir, pids };
  }

  test(
    "a run that is SIGTERMed stops its cluster at exit; a SIGKILLed run's cluster is reaped by the next start",
    async () => {
      try {
        await childrenCase();
      } finally {
        // On failure: a child still running cleans up on SIGTERM; what a dead one left is reaped.
        for (const c of children) c.kill("SIGTERM");
        await Promise.all([...children].map((c) => c.exited));
        reapStaleSlurm();
      }
    },
    T,
  );

  async function childrenCase(): Promise<void> {
    const term = await childCluster();
    expect(term.pids.length).toBeGreaterThanOrEqual(3); // munged, slurmctld (+ slurmscriptd), slurmd
    term.proc.kill("SIGTERM");
    await term.proc.exited;
    expect(term.pids.filter(running)).toEqual([]);
    expect(clusterProcesses(term.dir)).toEqual([]);
    expect(existsSync(term.dir)).toBe(false);

    const killed = await childCluster();
    killed.proc.kill("SIGKILL");
    await killed.proc.exited;
    expect(killed.pids.filter(running)).toEqual(killed.pids); // nobody cleaned up: the daemons live on
    expect(reapStaleSlurm()).toContain(killed.dir);
    expect(killed.pids.filter(running)).toEqual([]);
    expect(clusterProcesses(killed.dir)).toEqual([]);
    expect(existsSync(killed.dir)).toBe(false);
    // This file's own cluster was not touched (its process is alive).
    expect(need().processes().length).toBeGreaterThanOrEqual(3);
    expect((await need().run(["sinfo", "-h", "-o", "%T"])).stdout.trim()).toBe("idle");
  }

  test(
    "the CLI: start DIR prints SLURM_CONF and leaves the daemons running; stop DIR ends them and removes DIR",
    async () => {
      const parent = makeTmpDir("slurm-cli");
      const dir = join(parent, "cluster");
      try {
        const cli = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
          const p = Bun.spawn([process.execPath, join(import.meta.dir, "local.ts"), ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
          const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
          return { code, stdout, stderr };
        };
        const start = await cli("start", dir);
        expect(start.code, start.stderr).toBe(0);
        expect(start.stdout).toBe(`export SLURM_CONF=${join(dir, "slurm.conf")}\n`);
        expect(start.stderr).toMatch(/^slurm: node escp\S+ idle after \d+ ms; partition escp$/m);
        const pids = clusterProcesses(dir);
        expect(pids.length).toBeGreaterThanOrEqual(3); // the command exited, the cluster did not
        const env = { ...process.env, SLURM_CONF: join(dir, "slurm.conf") };
        const sinfo = Bun.spawnSync(["sinfo", "-h", "-o", "%T"], { env, stdout: "pipe", stderr: "pipe" });
        expect(sinfo.stdout.toString().trim()).toBe("idle");
        expect((await cli("start", dir)).code).toBe(1); // one cluster per directory
        const stop = await cli("stop", dir);
        expect(stop.code, stop.stderr).toBe(0);
        expect(stop.stderr).toMatch(/^slurm: stopped in \d+ ms; .* removed$/m);
        expect(pids.filter(running)).toEqual([]);
        expect(existsSync(dir)).toBe(false);
        expect((await cli("stop", dir)).code).toBe(1);
      } finally {
        // On failure: whatever the CLI left in `dir` (its daemons carry the marker).
        for (const p of clusterProcesses(dir)) {
          try {
            process.kill(p, "SIGKILL");
          } catch {
            // gone meanwhile
          }
        }
        removeTmpDir(parent);
      }
    },
    T,
  );

  test(
    "stop() cancels what runs and leaves no process of the cluster and no scratch dir",
    async () => {
      const s = need();
      const out = makeTmpDir("slurm-stop");
      try {
        // A job still running at stop(): it must go too.
        const fifo = join(out, "hold");
        expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
        const job = script(out, "task.sh", `touch "${out}/started"; read -r _ < "${fifo}"`);
        await s.sbatch(["--chdir", out, "--output", join(out, "slurm-%j.log"), "--export=ALL", job]);
        await until("the job to start", () => existsSync(join(out, "started")), 60_000);
        const before = s.processes();
        expect(before.length).toBeGreaterThanOrEqual(4); // munged, slurmctld, slurmd, slurmstepd, the job …
        const t0 = Date.now();
        await s.stop();
        stoppedCleanly = true;
        console.log(`[slurm] stop() took ${Date.now() - t0} ms`);
        expect(clusterProcesses(s.dir)).toEqual([]);
        expect(before.filter(running)).toEqual([]);
        expect(existsSync(s.dir)).toBe(false);
      } finally {
        removeTmpDir(out);
      }
    },
    T,
  );
});

/** Whether pid is a live (non-zombie) process. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
