// Runs a --mgmt receiver and a sender as two processes the test owns, each with its own
// fault environment, so a fault on one side can be judged by what the other side does.
// A side frozen with SIGSTOP is SIGKILLed once the other side has exited on its own.
import { existsSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { constants } from "node:os";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";

export type Side = "sender" | "receiver";

export interface PairRun {
  senderCode: number; // exit status, or 128+signal
  senderStderr: string;
  receiverCode: number;
  receiverStderr: string;
  senderStdout: Uint8Array; // read while it runs (a pull to `-` writes the file there)
}

export interface PairOptions {
  sock: string; // --mgmt socket path
  cwd: string; // receiver's working directory
  args: string[]; // sender flags, sources and destination
  senderEnv?: Record<string, string>;
  receiverEnv?: Record<string, string>;
  frozen?: Side; // this side stops itself; kill it after the other exits
  deadlineMs?: number; // whole-run safety net (kills both, reported in stderr)
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

function status(p: Bun.Subprocess): number {
  const sig = p.signalCode;
  if (sig) return 128 + (typeof sig === "number" ? sig : (constants.signals[sig] ?? 0));
  return p.exitCode ?? -1;
}

export async function runPair(o: PairOptions): Promise<PairRun> {
  const appeared = socketAppears(o.sock);
  const cmd = ESCP_REMOTE_CMD.split(" ");
  const rx = Bun.spawn([...cmd, "--server", "--mgmt", o.sock], {
    cwd: o.cwd,
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, ...o.receiverEnv },
  });
  let tx: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
  const deadline = setTimeout(() => {
    rx.kill("SIGKILL");
    tx?.kill("SIGKILL");
  }, o.deadlineMs ?? 60_000);
  try {
    await appeared;
    tx = Bun.spawn([...cmd, "--mgmt", o.sock, ...o.args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...o.senderEnv } });
    const sender = tx;
    const stdout = new Response(sender.stdout).arrayBuffer();
    if (o.frozen === "sender") void rx.exited.then(() => sender.kill("SIGKILL"));
    if (o.frozen === "receiver") void sender.exited.then(() => rx.kill("SIGKILL"));
    await Promise.all([rx.exited, sender.exited]);
    return {
      senderCode: status(sender),
      senderStderr: await new Response(sender.stderr).text(),
      senderStdout: new Uint8Array(await stdout),
      receiverCode: status(rx),
      receiverStderr: await new Response(rx.stderr).text(),
    };
  } finally {
    clearTimeout(deadline);
    rx.kill("SIGKILL");
    tx?.kill("SIGKILL");
  }
}
