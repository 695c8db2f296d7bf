// Spawning measured commands: own process group (a timeout or an exit of the benchmark
// kills the whole group), output collected, wall time from spawn to exit, CPU rusage kept.
import { readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { onExitCleanup } from "../../harness/tmp-dir.ts";

export interface ProcResult {
  code: number;
  stdout: string;
  stderr: string;
  wallS: number;
  timedOut: boolean;
  /** User + system CPU of the command (and its reaped children), seconds. */
  cpuS: number | null;
  pid: number;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs: number;
  /** Called right after the spawn with the child's pid (e.g. to start polling it). */
  onSpawn?: (pid: number) => void;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Runs argv to completion (stdin closed); never throws for a failing command. */
export async function runProc(argv: readonly string[], o: SpawnOptions): Promise<ProcResult> {
  const t0 = performance.now();
  const proc = Bun.spawn([...argv], {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
  });
  o.onSpawn?.(proc.pid);
  const unregister = onExitCleanup(() => killGroup(proc.pid));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid);
  }, o.timeoutMs);
  try {
    const exited = proc.exited.then((status) => {
      const wallS = (performance.now() - t0) / 1000;
      killGroup(proc.pid); // stragglers of the group would hold the pipes open
      return { status, wallS };
    });
    const [stdout, stderr, ex] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), exited]);
    const sig = proc.signalCode;
    const code = sig ? 128 + (typeof sig === "number" ? sig : (constants.signals[sig] ?? 0)) : ex.status;
    const ru = proc.resourceUsage();
    return {
      code,
      stdout,
      stderr: timedOut ? `${stderr}\n[bench] timed out after ${o.timeoutMs} ms; process group killed` : stderr,
      wallS: ex.wallS,
      timedOut,
      cpuS: ru ? Number(ru.cpuTime.total) / 1e6 : null,
      pid: proc.pid,
    };
  } finally {
    clearTimeout(timer);
    unregister();
  }
}

/** A long-running helper (sshd, iperf3 -s): started, its output drained in the background
 *  (kept for error messages), stopped with stop(); also killed at benchmark exit. */
export interface Daemon {
  pid: number;
  /** Resolves when `text` shows up in its output, rejects if it exits first or on timeout. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

export function startDaemon(argv: readonly string[], o: { cwd?: string; env?: Record<string, string | undefined> } = {}): Daemon {
  const proc = Bun.spawn([...argv], { cwd: o.cwd, env: { ...process.env, ...o.env }, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  const unregister = onExitCleanup(() => killGroup(proc.pid));
  let log = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  const drain = async (s: ReadableStream<Uint8Array>): Promise<void> => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      log = (log + dec.decode(chunk, { stream: true })).slice(-65536);
      for (const w of waiters.splice(0)) {
        if (log.includes(w.text)) w.resolve();
        else waiters.push(w);
      }
    }
  };
  void drain(proc.stdout).catch(() => {});
  void drain(proc.stderr).catch(() => {});
  return {
    pid: proc.pid,
    waitFor(text, timeoutMs) {
      if (log.includes(text)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${argv.join(" ")}: no "${text}" within ${timeoutMs} ms; output: ${log.trim()}`)), timeoutMs);
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        void proc.exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${argv.join(" ")} exited ${code} before "${text}": ${log.trim()}`));
        });
      });
    },
    output: () => log,
    async stop() {
      try {
        process.kill(-proc.pid, "SIGTERM");
      } catch {
        // gone
      }
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
      if (!done) killGroup(proc.pid);
      await proc.exited;
      killGroup(proc.pid);
      unregister();
    },
  };
}

/** Parent pid of `pid` (null if gone). */
export function ppidOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

/** Every live pid on the machine. */
export function allPids(): number[] {
  return readdirSync("/proc")
    .filter((n) => /^[0-9]+$/.test(n))
    .map(Number);
}

/** Direct children of `pid` whose command name is `comm` (any name when omitted). */
export function childrenOf(pid: number, comm?: string): number[] {
  const out: number[] = [];
  for (const p of allPids()) {
    if (ppidOf(p) !== pid) continue;
    if (comm !== undefined) {
      try {
        if (readFileSync(`/proc/${p}/comm`, "utf8").trim() !== comm) continue;
      } catch {
        continue;
      }
    }
    out.push(p);
  }
  return out;
}
