// Where a regression case sends its data: a local destination (locally spawned receiver), a
// loopback OpenSSH sshd, or a namespaced WAN (when the harness can build one).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runEscp, ESCP_REMOTE_CMD } from "../escp-run.ts";
import { startSshd } from "../sshd.ts";
import type { Transport } from "./matrix.ts";

export interface TransportHandle {
  name: Transport;
  run(args: string[], dstDir: string): Promise<{ code: number; stderr: string }>;
  close(): Promise<void>;
}

const BASE = ["-q", "--escp_port", "0", "--timeout", "30"];

/** A handle, or the reason this transport is not available here. */
export async function openTransport(name: Transport, work: string): Promise<TransportHandle | string> {
  if (name === "local") {
    return {
      name, close: async () => undefined,
      run: (args, dst) => runEscp([...BASE, ...args, dst], { timeoutMs: 600_000 }),
    };
  }
  if (name === "sshd") {
    const fx = await startSshd();
    return {
      name, close: () => fx.stop(),
      run: (args, dst) => runEscp([...BASE, ...fx.sshArgs, "-D", ESCP_REMOTE_CMD, ...args, `${fx.user}@${fx.host}:${dst}`], { timeoutMs: 600_000 }),
    };
  }
  const wanModule = join(import.meta.dir, "..", "wan", "netns.ts");
  if (!existsSync(wanModule)) return "WAN emulation harness not present";
  const wan = (await import(wanModule)) as WanModule;
  const can = wan.canWan();
  if (!can.ok) return can.why;
  return wan.regressTransport(work);
}

interface WanModule {
  canWan(): { ok: boolean; why: string };
  regressTransport(work: string): Promise<TransportHandle | string>;
}
