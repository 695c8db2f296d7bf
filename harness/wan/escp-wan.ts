// One escp transfer across the emulated WAN: a --mgmt receiver in namespace b, bound to b's
// address through SSH_CONNECTION, and the sender in namespace a reaching it through the
// filesystem Unix socket (pathname sockets work across network namespaces).
import { existsSync, watch } from "node:fs";
import { join } from "node:path";
import { ESCP_MAIN } from "../escp-run.ts";
import type { ExecResult, Wan } from "./netns.ts";

export interface WanTransfer {
  sender: ExecResult;
  receiverCode: number;
  receiverStderr: string;
}

export interface WanTransferOptions {
  sockDir: string; // where the --mgmt socket is made (a private temp dir)
  name?: string; // socket file name, default escp.sock
  cwd?: string; // working directory of both sides
  timeoutMs?: number; // per side, default 600 s
}

/** Resolves when `dir/name` exists; close() stops watching. */
function whenExists(dir: string, name: string): { appeared: Promise<void>; close(): void } {
  let close = (): void => {};
  const appeared = new Promise<void>((resolve) => {
    const w = watch(dir, (_e, n) => {
      if (n === name && existsSync(join(dir, name))) {
        w.close();
        resolve();
      }
    });
    close = () => w.close();
    if (existsSync(join(dir, name))) resolve();
  });
  return { appeared, close: () => close() };
}

/** Runs `escp --mgmt SOCK ...args` in a against a fresh receiver in b; never throws on
 *  escp failures (the caller judges the exit codes), only on a receiver that never listens. */
export async function escpAcrossWan(wan: Wan, args: readonly string[], o: WanTransferOptions): Promise<WanTransfer> {
  const name = o.name ?? "escp.sock";
  const sock = join(o.sockDir, name);
  const timeoutMs = o.timeoutMs ?? 600_000;
  const cwd = o.cwd ?? process.cwd();
  const watcher = whenExists(o.sockDir, name);
  const rx = wan.spawn("b", [process.execPath, ESCP_MAIN, "--server", "--mgmt", sock], {
    cwd,
    env: { SSH_CONNECTION: `${wan.addr.a} 40000 ${wan.addr.b} 22` },
    timeoutMs,
  });
  const rxErr = new Response(rx.stderr).text();
  try {
    const early = await Promise.race([watcher.appeared.then(() => null), rx.exited]);
    if (early !== null) throw new Error(`escp receiver in ${wan.ns.b} exited ${early} before listening: ${await rxErr}`);
  } finally {
    watcher.close();
  }
  const sender = await wan.exec("a", [process.execPath, ESCP_MAIN, "--mgmt", sock, ...args], { cwd, timeoutMs });
  const receiverCode = await rx.exited;
  return { sender, receiverCode, receiverStderr: await rxErr };
}
