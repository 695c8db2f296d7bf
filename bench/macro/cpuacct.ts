// CPU accounting for whole transfers: a fresh cgroup-v1 cpuacct group holds every process of
// a run (sender, ssh, sshd sessions, receivers, peers), so a run's CPU is the delta of its
// cpuacct.usage. The benchmark process enters the group only while it starts the sshd
// listeners (so their session children are born inside), then moves back to its parent
// group; measured commands join the group through a tiny `sh` wrapper before they exec, so
// the benchmark's own polling and the BLAKE3 verification are never counted.
// Without cgroups: per-run CPU is the rusage of the command itself (its reaped children
// included), which misses receivers under sshd; the results say `partial: true`.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { onExitCleanup } from "../../harness/tmp-dir.ts";

const ROOT = "/sys/fs/cgroup/cpuacct";
const PREFIX = "escp-bench-";

export interface CpuMeter {
  mode: "cgroup-v1-cpuacct" | "rusage";
  partial: boolean;
  note: string;
  /** argv that first joins the group, then execs `argv` (identity without a group). */
  wrap(argv: readonly string[]): string[];
  /** Nanoseconds of CPU used by the group so far (null without a group). */
  usageNs(): bigint | null;
  /** Pids in the group right now (null without a group). */
  pids(): number[] | null;
  /** Runs `fn` with this process inside the group, so what it spawns is born there. */
  inside<T>(fn: () => Promise<T>): Promise<T>;
  /** Moves leftovers to the parent and removes the group. */
  close(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readPids(file: string): number[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}

/** Moves every pid of `from` into `toProcs`, then removes the directory (best effort). */
function drainAndRemove(dir: string, toProcs: string): boolean {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      for (const pid of readPids(join(dir, "cgroup.procs"))) {
        try {
          writeFileSync(toProcs, `${pid}\n`);
        } catch {
          // exited meanwhile
        }
      }
      rmdirSync(dir);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return true;
      Bun.sleepSync(50);
    }
  }
  return false;
}

/** This process's cpuacct group directory (from /proc/self/cgroup), or null. */
function ownGroupDir(): string | null {
  try {
    for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n")) {
      const [, controllers, path] = line.split(":");
      if (controllers !== undefined && path !== undefined && controllers.split(",").includes("cpuacct")) return join(ROOT, path);
    }
  } catch {
    // no /proc
  }
  return null;
}

function fallback(why: string): CpuMeter {
  return {
    mode: "rusage",
    partial: true,
    note: `no cpuacct cgroup (${why}): CPU is the measured command's rusage only; receivers under sshd are not counted`,
    wrap: (argv) => [...argv],
    usageNs: () => null,
    pids: () => null,
    inside: (fn) => fn(),
    close: () => {},
  };
}

export function openCpuMeter(): CpuMeter {
  const parent = ownGroupDir();
  if (parent === null || !existsSync(join(parent, "cpuacct.usage"))) return fallback(`${ROOT} is not mounted (cgroup v1)`);
  // Groups left by a benchmark that was SIGKILLed (pid in the name is gone).
  try {
    for (const name of readdirSync(parent)) {
      const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
      if (m && !pidAlive(Number(m[1]))) drainAndRemove(join(parent, name), join(parent, "cgroup.procs"));
    }
  } catch {
    // not listable: nothing to reap
  }
  const dir = join(parent, `${PREFIX}${process.pid}-${Math.random().toString(16).slice(2, 8)}`);
  try {
    mkdirSync(dir);
    readFileSync(join(dir, "cpuacct.usage"), "utf8");
  } catch (e) {
    return fallback(`cannot create ${dir}: ${(e as Error).message}`);
  }
  const procs = join(dir, "cgroup.procs");
  const parentProcs = join(parent, "cgroup.procs");
  const unregister = onExitCleanup(() => {
    try {
      writeFileSync(parentProcs, `${process.pid}\n`);
    } catch {
      // already out
    }
    drainAndRemove(dir, parentProcs);
  });
  let closed = false;
  return {
    mode: "cgroup-v1-cpuacct",
    partial: false,
    note: `cgroup ${dir}: sender, ssh, sshd sessions and receivers of each run; not the benchmark process nor its verification`,
    wrap: (argv) => ["sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, ...argv],
    usageNs: () => BigInt(readFileSync(join(dir, "cpuacct.usage"), "utf8").trim()),
    pids: () => readPids(procs),
    async inside<T>(fn: () => Promise<T>): Promise<T> {
      writeFileSync(procs, `${process.pid}\n`);
      try {
        return await fn();
      } finally {
        writeFileSync(parentProcs, `${process.pid}\n`);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        writeFileSync(parentProcs, `${process.pid}\n`);
      } catch {
        // already out
      }
      drainAndRemove(dir, parentProcs);
      unregister();
    },
  };
}
