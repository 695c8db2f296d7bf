// A one-node Slurm cluster for tests (issue #17: plans run as job arrays): its own munged,
// slurmctld and slurmd, all in one scratch directory, on ports nobody else uses, so it never
// touches a system Slurm or munge and two of them can run side by side.
//
//   <dir>/slurm.conf            SLURM_CONF for every client command (env() sets it)
//   <dir>/munge/                its own key (mungekey) — the socket lives in <dir>/run/
//   <dir>/state, spool, log/    slurmctld state, slurmd spool, the daemons' logs
//   <dir>/pids.json             the daemons' pids (what `stop DIR` kills)
//
// Every process of a cluster — the daemons, slurmstepd, the scripts of jobs submitted with
// env() — carries ESCP_SLURM_CLUSTER=<dir> in its environment (the daemons get it from us,
// jobs through sbatch's --export=ALL), which is how stop() and reapStaleSlurm() find what to
// kill. (Not SLURM_CONF: a shell that ran `export SLURM_CONF=…` must never match.)
// Teardown: stop(), and also at process exit/SIGINT/SIGTERM/SIGHUP (onExitCleanup); a
// SIGKILLed run's cluster (dir escp-slurm-<pid>-*, pid dead) is reaped by the next start.
//
// CLI for manual use (the cluster outlives the command):
//   bun harness/slurm/local.ts start DIR   → prints `export SLURM_CONF=DIR/slurm.conf`
//   bun harness/slurm/local.ts stop DIR    → cancels jobs, stops the daemons, removes DIR
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "../tmp-dir.ts";

/** Binaries the fixture runs, and the Debian package holding each. */
const BINARIES: ReadonlyArray<readonly [string, string]> = [
  ["slurmctld", "slurmctld"],
  ["slurmd", "slurmd"],
  ["sbatch", "slurm-client"],
  ["squeue", "slurm-client"],
  ["scontrol", "slurm-client"],
  ["scancel", "slurm-client"],
  ["sinfo", "slurm-client"],
  ["munged", "munge"],
  ["mungekey", "munge"],
];
const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 15_000;
const TMP_RE = /^escp-slurm-(\d+)-/;
const LOG_TAIL_LINES = 20;

export interface SlurmJob {
  /** "123" for a plain job, "123_4" for array task 4 (what scontrol/scancel accept). */
  id: string;
  /** The array's job id ("123"), or the job id itself. */
  jobId: string;
  /** Task index; undefined for a plain job; a range ("2-3%2") for tasks not yet split off. */
  task?: string;
  state: string;
  /** How many times Slurm requeued it (scontrol's Restarts). */
  restarts: number;
  exitCode: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Slurm {
  dir: string;
  /** Path of slurm.conf (SLURM_CONF). */
  conf: string;
  /** process.env plus SLURM_CONF and the cluster marker: pass it to anything that talks to
   *  this cluster (jobs submitted with it are found and killed by stop()). */
  env: Record<string, string>;
  node: string;
  partition: string;
  /** Milliseconds from startSlurm() to the node reported idle. */
  startMs: number;
  /** Runs a Slurm client command (squeue, scontrol …) against this cluster. */
  run(argv: readonly string[], opts?: { cwd?: string }): Promise<RunResult>;
  /** `sbatch --parsable ARGS`; resolves the job id; throws with sbatch's stderr. */
  sbatch(args: readonly string[], opts?: { cwd?: string }): Promise<string>;
  /** What scontrol knows about a job (all its array tasks) or one task ("123_4"). */
  jobs(id: string): Promise<SlurmJob[]>;
  /** Polls until every record of `id` is in one of `states`; resolves them. Throws at the
   *  deadline (ms from now) with the last records and the daemons' log tails. */
  waitJob(id: string, states: readonly string[], timeoutMs: number): Promise<SlurmJob[]>;
  /** `scontrol requeue ID` (e.g. "123_4": that array task only). */
  requeue(id: string): Promise<void>;
  /** Pids of every live process of this cluster (daemons, slurmstepd, jobs' scripts). */
  processes(): number[];
  /** The last lines of the daemons' logs (for failure messages). */
  logTail(lines?: number): string;
  /** Cancels every job, stops the daemons (munged last), kills what is left, removes the
   *  scratch directory. Throws, after doing all it can, if something would not die. */
  stop(): Promise<void>;
}

export interface SlurmOptions {
  /** Use this directory (created; removed by stop()) instead of a fresh temp dir. */
  dir?: string;
  /** Keep the daemons running when this process exits (the CLI's `start`). */
  detach?: boolean;
  /** CPUs of the node (default 4: more task slots than cores is fine for tests). */
  cpus?: number;
  /** Lines appended to slurm.conf (later lines override earlier ones). */
  extraConf?: readonly string[];
}

interface Pids {
  munged?: number;
  slurmctld?: number;
  slurmd?: number;
}

// ---- checks ------------------------------------------------------------------------------

/** Why a Slurm cluster cannot start here (missing binaries → the apt packages; not root), or
 *  undefined when it can be tried. */
export function slurmMissing(): string | undefined {
  if (process.platform !== "linux") return "the Slurm fixture needs Linux";
  const missing = BINARIES.filter(([bin]) => !Bun.which(bin) && !existsSync(`/usr/sbin/${bin}`));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
    return `the Slurm fixture needs ${missing.map(([b]) => b).join(", ")}: apt-get install --no-install-recommends ${pkgs.join(" ")} (npm run setup installs them)`;
  }
  if (process.getuid?.() !== 0) return "the Slurm fixture runs its daemons as root (SlurmUser=root): run the tests as root";
  return undefined;
}

function which(bin: string): string {
  return Bun.which(bin) ?? `/usr/sbin/${bin}`;
}

// ---- processes ---------------------------------------------------------------------------

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /s.test(stat); // a zombie has finished
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

const MARKER = "ESCP_SLURM_CLUSTER";

/** Live pids whose environment holds ESCP_SLURM_CLUSTER=<dir> (never this process). */
export function clusterProcesses(dir: string): number[] {
  const marker = `${MARKER}=${dir}`;
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "latin1").split("\0").includes(marker) && alive(Number(name))) pids.push(Number(name));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

async function waitGone(pids: readonly number[], deadlineMs: number): Promise<number[]> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await Bun.sleep(20); // poll the condition "all exited"
  }
}

function waitGoneSync(pids: readonly number[], deadlineMs: number): number[] {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    Bun.sleepSync(20); // poll the condition "all exited"
  }
}

/** Kills everything of the cluster in `dir` at once (exit path, reaping): SIGKILL the
 *  daemons and every process carrying its SLURM_CONF, then removes the directory. */
function killClusterSync(dir: string, pids: Pids, removeDir: boolean): void {
  const all = new Set([...Object.values(pids).filter((p): p is number => typeof p === "number"), ...clusterProcesses(dir)]);
  for (const p of all) signal(p, "SIGKILL");
  waitGoneSync([...all], STOP_DEADLINE_MS);
  for (const p of clusterProcesses(dir)) signal(p, "SIGKILL"); // forked meanwhile
  if (removeDir && process.env.ESCP_KEEP_TMP !== "1") rmSync(dir, { recursive: true, force: true });
}

function readPids(dir: string): Pids {
  try {
    return JSON.parse(readFileSync(join(dir, "pids.json"), "utf8")) as Pids;
  } catch {
    return {};
  }
}

/** Kills the clusters of SIGKILLed test runs (temp dirs escp-slurm-<pid>-*, pid gone) and
 *  removes their directories. Returns the directories reaped. */
export function reapStaleSlurm(): string[] {
  const reaped: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    const m = TMP_RE.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const dir = join(tmpdir(), name);
    killClusterSync(dir, readPids(dir), true);
    reaped.push(dir);
  }
  return reaped;
}

async function runCmd(
  argv: readonly string[],
  env: Record<string, string>,
  cwd?: string,
  timeoutMs = 60_000,
  onSpawn?: (proc: Bun.Subprocess) => void,
): Promise<RunResult> {
  const proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env, ...(cwd ? { cwd } : {}) });
  onSpawn?.(proc);
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts a daemon in its own session, stdout+stderr appended to `log`. */
function daemon(argv: readonly string[], env: Record<string, string>, log: string, detach: boolean): Bun.Subprocess {
  const fd = openSync(log, "a");
  try {
    const proc = Bun.spawn([...argv], { stdin: "ignore", stdout: fd, stderr: fd, env, detached: true });
    if (detach) proc.unref();
    return proc;
  } finally {
    closeSync(fd);
  }
}

/** A TCP port free on every address right now (slurmctld and slurmd bind 0.0.0.0). */
async function freePort(): Promise<number> {
  return await new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "0.0.0.0", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function tail(path: string, lines: number): string {
  try {
    const all = readFileSync(path, "utf8").trimEnd().split("\n");
    return all.slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---- parsing -----------------------------------------------------------------------------

/** Parses `scontrol show job -o` output (one job or array task per line). */
export function parseJobs(text: string): SlurmJob[] {
  const jobs: SlurmJob[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("JobId=")) continue;
    const field = (k: string): string | undefined => new RegExp(`(?:^| )${k}=(\\S*)`).exec(line)?.[1];
    const own = field("JobId") ?? "";
    const arrayJob = field("ArrayJobId");
    const task = field("ArrayTaskId");
    jobs.push({
      id: arrayJob && task !== undefined ? `${arrayJob}_${task}` : own,
      jobId: arrayJob ?? own,
      ...(task !== undefined ? { task } : {}),
      state: field("JobState") ?? "UNKNOWN",
      restarts: Number(field("Restarts") ?? 0),
      exitCode: field("ExitCode") ?? "",
    });
  }
  return jobs;
}

// ---- the fixture -------------------------------------------------------------------------

function confText(o: { dir: string; ctlHost: string; node: string; cpus: number; ctlPort: number; slurmdPort: number; socket: string }): string {
  const d = o.dir;
  return [
    `# escp one-node Slurm (harness/slurm/local.ts); removed by stop()`,
    "ClusterName=escp",
    `SlurmctldHost=${o.ctlHost}(127.0.0.1)`,
    `SlurmctldPort=${o.ctlPort}`,
    `SlurmdPort=${o.slurmdPort}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    // A requeued job may start again only after its old credential expired (cred_expire + 1 s):
    // 5 s keeps a requeue test short (the default, 120 s, would not).
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${o.socket},cred_expire=5`,
    "MpiDefault=none",
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core",
    "SchedulerType=sched/builtin",
    "SchedulerParameters=sched_interval=1",
    "ReturnToService=2",
    // Take the node's CPUs from this file, not the hardware: a 2-core CI box still gets
    // `cpus` task slots (array throttles above 2 really run concurrently).
    "SlurmdParameters=config_overrides",
    "JobRequeue=1",
    "KillWait=2",
    "MinJobAge=600",
    "MailProg=/bin/true",
    `StateSaveLocation=${d}/state`,
    `SlurmdSpoolDir=${d}/spool`,
    `SlurmctldPidFile=${d}/run/slurmctld.pid`,
    `SlurmdPidFile=${d}/run/slurmd.pid`,
    `SlurmctldLogFile=${d}/log/slurmctld.log`,
    `SlurmdLogFile=${d}/log/slurmd.log`,
    "SlurmctldDebug=info",
    "SlurmdDebug=info",
    `NodeName=${o.node} NodeHostname=${o.ctlHost} NodeAddr=127.0.0.1 CPUs=${o.cpus} RealMemory=1000 State=UNKNOWN`,
    `PartitionName=escp Nodes=${o.node} Default=YES MaxTime=INFINITE State=UP`,
    "",
  ].join("\n");
}

const START_ATTEMPTS = 3;

/** process.env without what an outer Slurm job (a CI runner that is itself a Slurm job) would
 *  leak into this cluster's commands: SLURM_*, SBATCH_*, SALLOC_*, SRUN_* (sbatch reads some
 *  of them as options). */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(SLURM|SBATCH|SALLOC|SRUN)_/.test(k)) env[k] = v;
  }
  return env;
}

/** Starts the cluster; resolves once the node is idle, or { skip } with the precise reason
 *  (missing packages, not root, a daemon that failed: its last log lines). Leaves nothing
 *  behind when it skips. A daemon that lost its port to another process between the free-port
 *  probe and its bind is retried on new ports (up to 3 attempts). */
export async function startSlurm(opts: SlurmOptions = {}): Promise<Slurm | { skip: string }> {
  const missing = slurmMissing();
  if (missing) return { skip: missing };
  const t0 = Date.now();
  for (let attempt = 1; ; attempt++) {
    const r = await startOnce(opts, t0);
    if (!("skip" in r) || attempt >= START_ATTEMPTS || !/Address already in use/.test(r.skip)) return r;
  }
}

async function startOnce(opts: SlurmOptions, t0: number): Promise<Slurm | { skip: string }> {
  if (!opts.detach) reapStaleSlurm();
  const dir = opts.dir ? resolve(opts.dir) : makeTmpDir(`slurm-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  // munged wants every directory above its socket searchable by all, and its key 0600/0400.
  chmodSync(dir, 0o755);
  for (const sub of ["state", "spool", "log", "run", "munge"]) mkdirSync(join(dir, sub), { recursive: true });
  chmodSync(join(dir, "run"), 0o755);
  chmodSync(join(dir, "munge"), 0o700);
  const conf = join(dir, "slurm.conf");
  const socket = join(dir, "run", "munge.socket");
  const tag = dir
    .replace(/^.*-/, "")
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "");
  const node = `escp${tag}`.slice(0, 20);
  const ctlHost = hostname().split(".")[0] ?? "localhost";
  const env: Record<string, string> = { ...cleanEnv(), SLURM_CONF: conf, [MARKER]: dir };
  const pids: Pids = {};
  const procs: Bun.Subprocess[] = [];
  const savePids = (): void => writeFileSync(join(dir, "pids.json"), `${JSON.stringify(pids)}\n`);
  const logs = ["munged.log", "slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"].map((f) => join(dir, "log", f));
  const logTail = (lines = LOG_TAIL_LINES): string =>
    logs
      .filter(existsSync)
      .map((f) => `--- ${f}\n${tail(f, lines)}`)
      .join("\n");
  const unregister = opts.detach ? () => {} : onExitCleanup(() => killClusterSync(dir, pids, false)); // the dir has its own registration
  const fail = (why: string): { skip: string } => {
    const text = `${why}\n${logTail()}`;
    killClusterSync(dir, pids, !opts.dir);
    if (opts.dir) rmSync(dir, { recursive: true, force: true });
    else removeTmpDir(dir);
    unregister();
    return { skip: text };
  };

  try {
    const key = await runCmd([which("mungekey"), "--create", "--force", "--keyfile", join(dir, "munge", "munge.key")], env);
    if (key.code !== 0) return fail(`mungekey failed (${key.code}): ${key.stderr.trim()}`);
    const munged = daemon(
      [
        which("munged"),
        "--foreground",
        "--force",
        `--socket=${socket}`,
        `--key-file=${join(dir, "munge", "munge.key")}`,
        `--pid-file=${join(dir, "run", "munged.pid")}`,
        `--log-file=${join(dir, "log", "munged.log")}`,
        `--seed-file=${join(dir, "munge", "seed")}`,
      ],
      env,
      join(dir, "log", "munged.out"),
      !!opts.detach,
    );
    procs.push(munged);
    pids.munged = munged.pid;
    savePids();
    for (const deadline = Date.now() + START_DEADLINE_MS; !existsSync(socket); ) {
      if (!alive(munged.pid))
        return fail(`munged exited (status ${munged.exitCode ?? "?"}) before creating ${socket}; ${tail(join(dir, "log", "munged.out"), 5)}`);
      if (Date.now() > deadline) return fail(`munged did not create ${socket} within ${START_DEADLINE_MS} ms`);
      await Bun.sleep(10); // poll the condition "socket exists"
    }

    const [ctlPort, slurmdPort] = [await freePort(), await freePort()];
    const cpus = opts.cpus ?? 4;
    writeFileSync(conf, confText({ dir, ctlHost, node, cpus, ctlPort, slurmdPort, socket }) + (opts.extraConf ?? []).map((l) => `${l}\n`).join(""));
    const ctl = daemon([which("slurmctld"), "-D", "-i", "-f", conf], env, join(dir, "log", "slurmctld.out"), !!opts.detach);
    procs.push(ctl);
    pids.slurmctld = ctl.pid;
    const slurmd = daemon([which("slurmd"), "-D", "-N", node, "-f", conf], env, join(dir, "log", "slurmd.out"), !!opts.detach);
    procs.push(slurmd);
    pids.slurmd = slurmd.pid;
    savePids();

    // A daemon that dies makes sinfo wait out its message timeout (10 s): race them.
    const died = Promise.race([ctl.exited.then(() => "slurmctld" as const), slurmd.exited.then(() => "slurmd" as const)]);
    let last = "";
    for (const deadline = Date.now() + START_DEADLINE_MS; ; ) {
      let sinfoProc: Bun.Subprocess | undefined;
      const sinfo = runCmd(["sinfo", "-h", "-n", node, "-o", "%T"], env, undefined, 10_000, (p) => {
        sinfoProc = p;
      });
      const r = await Promise.race([sinfo, died]);
      if (typeof r === "string") {
        const p = r === "slurmctld" ? ctl : slurmd;
        sinfoProc?.kill("SIGKILL");
        await sinfo;
        return fail(`${r} exited (status ${p.exitCode ?? p.signalCode ?? "?"}) before the node became idle`);
      }
      last = (r.stdout + r.stderr).trim();
      if (r.code === 0 && last === "idle") break;
      if (r.code === 0 && /^(inval|drain|down)/.test(last)) return fail(`node ${node} is ${last}, not idle (see slurmctld.log)`);
      if (Date.now() > deadline) return fail(`node ${node} not idle within ${START_DEADLINE_MS} ms (sinfo: ${last || "nothing"})`);
      await Bun.sleep(50); // poll the condition "node idle"
    }
  } catch (e) {
    return fail(`starting Slurm failed: ${(e as Error).message}`);
  }
  const startMs = Date.now() - t0;

  const run = (argv: readonly string[], o: { cwd?: string } = {}): Promise<RunResult> => runCmd(argv, env, o.cwd);
  const jobs = async (id: string): Promise<SlurmJob[]> => {
    const r = await run(["scontrol", "show", "job", "-o", id]);
    if (r.code !== 0) throw new Error(`scontrol show job ${id} failed (${r.code}): ${r.stderr.trim()}`);
    return parseJobs(r.stdout);
  };
  let stopped: Promise<void> | undefined;
  const slurm: Slurm = {
    dir,
    conf,
    env,
    node,
    partition: "escp",
    startMs,
    run,
    async sbatch(args, o = {}) {
      const r = await run(["sbatch", "--parsable", ...args], o);
      const id = r.stdout.trim().split(";")[0] ?? "";
      if (r.code !== 0 || !/^\d+$/.test(id)) throw new Error(`sbatch ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
      return id;
    },
    jobs,
    async waitJob(id, states, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let seen: SlurmJob[] = [];
      for (;;) {
        seen = await jobs(id);
        if (seen.length > 0 && seen.every((j) => states.includes(j.state))) return seen;
        if (Date.now() > deadline) {
          const now = seen.map((j) => `${j.id}=${j.state}`).join(" ") || "no records";
          throw new Error(`job ${id} not all ${states.join("|")} within ${timeoutMs} ms: ${now}\n${logTail()}`);
        }
        await Bun.sleep(100); // poll the condition "every task in a wanted state"
      }
    },
    async requeue(id) {
      const r = await run(["scontrol", "requeue", id]);
      if (r.code !== 0) throw new Error(`scontrol requeue ${id} failed (${r.code}): ${r.stderr.trim()}`);
    },
    processes: () => [...new Set([...Object.values(pids).filter((p): p is number => typeof p === "number" && alive(p)), ...clusterProcesses(dir)])],
    logTail,
    stop() {
      stopped ??= (async () => {
        await stopCluster(dir, pids, env);
        unregister();
        if (opts.dir) rmSync(dir, { recursive: true, force: true });
        else removeTmpDir(dir);
      })();
      return stopped;
    },
  };
  return slurm;
}

/** Cancels every job, SIGTERMs slurmd and slurmctld, then munged (SIGKILL after the
 *  deadline), then SIGKILLs whatever still carries the cluster's SLURM_CONF. Throws if
 *  something survived. Leaves the directory. */
async function stopCluster(dir: string, pids: Pids, env: Record<string, string>): Promise<void> {
  if (pids.slurmctld && alive(pids.slurmctld)) {
    const q = await runCmd(["squeue", "-h", "-o", "%A"], env, undefined, 10_000);
    const ids = [...new Set(q.stdout.split("\n").map((s) => s.trim()))].filter(Boolean);
    if (ids.length > 0) {
      await runCmd(["scancel", "--quiet", ...ids], env, undefined, 10_000);
      const deadline = Date.now() + STOP_DEADLINE_MS;
      for (;;) {
        const r = await runCmd(["squeue", "-h", "-o", "%A"], env, undefined, 10_000);
        if (r.code !== 0 || r.stdout.trim() === "" || Date.now() > deadline) break;
        await Bun.sleep(50); // poll the condition "queue empty"
      }
    }
  }
  const stopGroup = async (group: number[]): Promise<void> => {
    for (const p of group) signal(p, "SIGTERM");
    const left = await waitGone(group, STOP_DEADLINE_MS);
    for (const p of left) signal(p, "SIGKILL");
    await waitGone(left, STOP_DEADLINE_MS);
  };
  await stopGroup([pids.slurmd, pids.slurmctld].filter((p): p is number => typeof p === "number"));
  // What is left of the jobs (a slurmstepd outlives slurmd under proctrack/linuxproc and
  // ignores SIGTERM; the queue could not be emptied): SIGKILL.
  const orphans = clusterProcesses(dir).filter((p) => p !== pids.munged);
  for (const p of orphans) signal(p, "SIGKILL");
  await waitGone(orphans, STOP_DEADLINE_MS);
  if (pids.munged) await stopGroup([pids.munged]);
  const left = clusterProcesses(dir);
  for (const p of left) signal(p, "SIGKILL");
  const still = await waitGone(left, STOP_DEADLINE_MS);
  if (still.length > 0) throw new Error(`Slurm fixture stop: processes still alive: ${still.join(" ")}`);
}

// ---- CLI ---------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const [cmd, dirArg] = argv;
  if ((cmd !== "start" && cmd !== "stop") || !dirArg) {
    console.error("usage: bun harness/slurm/local.ts start|stop DIR");
    return 2;
  }
  const dir = resolve(dirArg);
  if (cmd === "start") {
    if (existsSync(join(dir, "pids.json"))) {
      console.error(`slurm: ${dir} already holds a cluster (stop it first)`);
      return 1;
    }
    const s = await startSlurm({ dir, detach: true });
    if ("skip" in s) {
      console.error(`slurm: cannot start: ${s.skip}`);
      return 1;
    }
    console.error(`slurm: node ${s.node} idle after ${s.startMs} ms; partition ${s.partition}`);
    console.log(`export SLURM_CONF=${s.conf}`);
    return 0;
  }
  if (!existsSync(join(dir, "slurm.conf"))) {
    console.error(`slurm: no cluster in ${dir} (no slurm.conf)`);
    return 1;
  }
  const env = { ...cleanEnv(), SLURM_CONF: join(dir, "slurm.conf"), [MARKER]: dir };
  const t0 = Date.now();
  await stopCluster(dir, readPids(dir), env);
  rmSync(dir, { recursive: true, force: true });
  console.error(`slurm: stopped in ${Date.now() - t0} ms; ${dir} removed`);
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
