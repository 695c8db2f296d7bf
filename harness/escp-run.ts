// Runs the escp CLI (src/cli/main.ts under this Bun) as a child in its own process group,
// always bounded by a timeout that kills the whole group and says so in the result.
import { constants } from "node:os";
import { join, resolve } from "node:path";
import { onExitCleanup } from "./tmp-dir.ts";

export const REPO_ROOT = resolve(import.meta.dir, "..");
export const ESCP_MAIN = join(REPO_ROOT, "src/cli/main.ts");
/** Pass with `-D` so the "remote" side runs this checkout, not whatever `escp` is on PATH. */
export const ESCP_REMOTE_CMD = `${process.execPath} ${ESCP_MAIN}`;

export interface RunEscpOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Command prefix, e.g. ["setpriv", "--bounding-set=-dac_override", "--"]. */
  wrap?: readonly string[];
  /** Wall-clock bound for the whole run; the process group gets SIGKILL after it. */
  timeoutMs?: number;
  /** Called with the child's pid (also its process group id) right after it is spawned. */
  onSpawn?: (pid: number) => void;
  /** Standard input (default: none). A stream is fed as the child reads it. */
  stdin?: Blob | ReadableStream<Uint8Array> | Uint8Array;
  /** Standard output handed to this function as it arrives, instead of collected as text
   * (the result's stdout is then ""). Return false to close the pipe's read end early. */
  onStdout?: (chunk: Uint8Array) => boolean | undefined;
}

export interface RunEscpResult {
  /** Exit status; 128+N when killed by signal N (137 after a timeout kill). */
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Group already gone.
  }
}

/** Feeds stdout to onStdout until it says stop (then the read end is closed: the child's
 * next write gets EPIPE), draining to EOF otherwise. */
async function consume(out: ReadableStream<Uint8Array>, onStdout: (chunk: Uint8Array) => boolean | undefined): Promise<string> {
  const reader = out.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return "";
    if (onStdout(value) === false) {
      await reader.cancel();
      return "";
    }
  }
}

/** Spawns `bun src/cli/main.ts ...args` (stdin closed unless given) and collects its output. */
export async function runEscp(args: readonly string[], opts: RunEscpOptions = {}): Promise<RunEscpResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const proc = Bun.spawn([...(opts.wrap ?? []), process.execPath, ESCP_MAIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdin: opts.stdin instanceof Uint8Array ? new Blob([opts.stdin]) : (opts.stdin ?? "ignore"),
    stdout: "pipe",
    stderr: "pipe",
    detached: true, // own process group: a timeout also reaps ssh and receiver children
  });
  const unregister = onExitCleanup(() => killGroup(proc.pid));
  opts.onSpawn?.(proc.pid);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid);
  }, timeoutMs);
  try {
    // Once main.ts exits, stragglers in its group (e.g. a receiver) would hold the pipes open.
    const exited = proc.exited.then((status) => {
      killGroup(proc.pid);
      return status;
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      opts.onStdout ? consume(proc.stdout, opts.onStdout) : new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      exited,
    ]);
    const signal = proc.signalCode;
    const code = signal ? 128 + (typeof signal === "number" ? signal : (constants.signals[signal] ?? 0)) : exitCode;
    const note = timedOut ? `\n[runEscp] timed out after ${timeoutMs} ms; killed the process group` : "";
    return { code, stdout, stderr: stderr + note, timedOut };
  } finally {
    clearTimeout(timer);
    unregister();
  }
}
