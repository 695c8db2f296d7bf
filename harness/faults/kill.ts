// Fault: kill one side at a named protocol state (ESCP_FAULT_KILL_AT, see
// src/transfer/fault-points.ts). Runs a --mgmt receiver the test owns, then the sender.
import { existsSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { ESCP_REMOTE_CMD, runEscp, type RunEscpResult } from "../escp-run.ts";

export type Side = "sender" | "receiver";
export const STATES = ["init", "filelist", "midblock", "verify", "close"] as const;
export type State = (typeof STATES)[number];

export interface KillRun {
  sender: RunEscpResult;
  receiverCode: number | null; // exit status, or 128+signal
  receiverStderr: string;
}

function socketAppears(sock: string): Promise<void> {
  return new Promise((resolve) => {
    const w = watch(dirname(sock), (_e, name) => {
      if (name === basename(sock) && existsSync(sock)) {
        w.close();
        resolve();
      }
    });
  });
}

/** Start a receiver on `sock` (cwd `cwd`), run the sender with `args`, kill `side` at `state`. */
export async function runWithKill(side: Side, state: State, sock: string, cwd: string, args: string[]): Promise<KillRun> {
  const env = { ...process.env, ESCP_FAULT_KILL_AT: `${side}:${state}` };
  const appeared = socketAppears(sock);
  const rx = Bun.spawn([...ESCP_REMOTE_CMD.split(" "), "--server", "--mgmt", sock], {
    cwd, stdout: "ignore", stderr: "pipe", env: side === "receiver" ? env : process.env,
  });
  try {
    await appeared;
    const sender = await runEscp(["--mgmt", sock, ...args], { env: side === "sender" ? env : process.env, timeoutMs: 60_000 });
    const exit = await rx.exited;
    const receiverCode = rx.signalCode ? 128 + 9 : exit;
    return { sender, receiverCode, receiverStderr: await new Response(rx.stderr).text() };
  } finally {
    rx.kill("SIGKILL");
  }
}
