// Where a regression case sends its data: a local destination (locally spawned receiver), a
// loopback OpenSSH sshd (pushed to it, or pulled from it), or a namespaced WAN (50 ms RTT, 1 Gbit/s, 0.1 % loss) when the
// harness has the privilege to build one.
import { runEscp, ESCP_REMOTE_CMD } from "../escp-run.ts";
import { startSshd } from "../sshd.ts";
import type { Transport } from "./matrix.ts";
import { canWan, startWan } from "../wan/netns.ts";
import { escpAcrossWan } from "../wan/escp-wan.ts";
import { canMultiHost, startHosts } from "../multihost.ts";

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
      name,
      close: async () => undefined,
      run: (args, dst) => runEscp([...BASE, ...args, dst], { timeoutMs: 600_000 }),
    };
  }
  if (name === "sshd") {
    const fx = await startSshd();
    return {
      name,
      close: () => fx.stop(),
      run: (args, dst) => runEscp([...BASE, ...fx.sshArgs, "-D", ESCP_REMOTE_CMD, ...args, `${fx.user}@${fx.host}:${dst}`], { timeoutMs: 600_000 }),
    };
  }
  if (name === "sshd-pull") {
    const fx = await startSshd();
    return {
      name,
      close: () => fx.stop(),
      // the cases' args end with the source: fetch it from the host instead
      run: (args, dst) =>
        runEscp([...BASE, ...fx.sshArgs, "-D", ESCP_REMOTE_CMD, ...args.slice(0, -1), `${fx.user}@${fx.host}:${args.at(-1) ?? ""}`, dst], {
          timeoutMs: 600_000,
        }),
    };
  }
  if (name === "three-party" || name === "three-party-direct") {
    const can = canMultiHost();
    if (!can.ok) return can.why;
    const mh = await startHosts({ count: 2 });
    const direct = name === "three-party-direct" ? ["--direct"] : [];
    return {
      name,
      close: () => mh.stop(),
      // the cases' args end with the source: h1 sends it, h2 receives (one file system: distinct paths)
      run: (args, dst) =>
        runEscp([...BASE, "-F", mh.sshConfig, "-D", ESCP_REMOTE_CMD, ...direct, ...args.slice(0, -1), `h1:${args.at(-1) ?? ""}`, `h2:${dst}`], {
          timeoutMs: 600_000,
        }),
    };
  }
  const can = canWan();
  if (!can.ok) return can.why;
  const wan = await startWan({ delayMs: 25, rateMbit: 1000, lossPct: 0.1, seed: 1, queueKib: 16384 });
  let n = 0;
  return {
    name,
    close: async () => void (await wan.stop()),
    run: async (args, dst) => {
      const r = await escpAcrossWan(wan, [...BASE, ...args, `wan:${dst}`], { sockDir: work, name: `wan-${n++}.sock`, timeoutMs: 600_000 });
      return { code: r.sender.code, stderr: r.sender.stderr + r.receiverStderr };
    },
  };
}
