// Control channel to a spawned child process over its stdin/stdout (stderr captured for
// diagnostics): the local-peer transport, and the process plumbing ssh.ts reuses.
import { EscpError } from "../errors/escp-error.ts";
import { streamChannel, TextTail, within, type ControlChannel } from "./channel.ts";

const EXIT_GRACE_MS = 3000;
const KILL_GRACE_MS = 2000;

export interface SpawnHooks {
  /** Error for a process that cannot be started at all (the argv[0] is missing, say). */
  spawnError(e: unknown): EscpError;
  /** Improve an EOF/write error once the exit status and stderr are known. */
  refine?(e: EscpError, exitCode: number | null, stderr: string): EscpError;
  /** Also pass the child's stderr through here as it arrives (-v). */
  echoStderr?(text: string): void;
}

export function spawnChannel(argv: string[], hooks: SpawnHooks): ControlChannel {
  let proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  try {
    proc = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    throw hooks.spawnError(e);
  }
  const stderr = new TextTail(proc.stderr, undefined, hooks.echoStderr);
  const exited = proc.exited.then(() => proc.exitCode);
  const refine = hooks.refine;
  return streamChannel({
    readable: proc.stdout,
    async write(line) {
      proc.stdin.write(line);
      await proc.stdin.flush();
    },
    stderrText: () => stderr.value,
    exited,
    async shutdown() {
      try {
        await proc.stdin.end();
      } catch {
        // already gone
      }
      if ((await within(exited, EXIT_GRACE_MS)) !== "timeout") return;
      proc.kill("SIGTERM");
      if ((await within(exited, KILL_GRACE_MS)) !== "timeout") return;
      proc.kill("SIGKILL");
      await exited;
    },
    refine:
      refine === undefined
        ? undefined
        : async (e) => {
            // The process has usually exited by the time its stdout ends; wait briefly for the status.
            const code = await within(exited, EXIT_GRACE_MS);
            await within(stderr.done, 500);
            return code === "timeout" ? e : refine(e, code, stderr.value);
          },
  });
}

/** Spawn a local escp peer, e.g. [process.execPath, "<repo>/src/cli/main.ts", "--server", ...]. */
export function openLocalChannel(argv: string[], echoStderr?: (text: string) => void): ControlChannel {
  return spawnChannel(argv, {
    ...(echoStderr ? { echoStderr } : {}),
    spawnError: (e) =>
      new EscpError("E_HANDSHAKE", `cannot start local peer ${argv[0] ?? "(empty argv)"}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }),
    refine: (e, code, stderr) => {
      if (code === null || code === 0) return e;
      const last = stderr
        .trim()
        .split("\n")
        .filter((l) => l.trim() !== "")
        .at(-1);
      return new EscpError("E_HANDSHAKE", `local peer exited with status ${code}${last ? `: ${last}` : ""}`, { cause: e });
    },
  });
}
