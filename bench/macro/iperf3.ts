// iperf3 as the network limit: a server started once per scenario (inside the CPU group, in
// namespace b for the WAN), one client run per repeat with -J; the rate is iperf3's own
// receiver-side total, and its bytes are what the CPU-per-GiB figure is divided by.
import { createServer } from "node:net";
import type { CpuMeter } from "./cpuacct.ts";
import type { RepeatPlan } from "./measure.ts";
import { startDaemon, type Daemon } from "./proc.ts";

export interface IperfServer {
  host: string;
  port: number;
  daemon: Daemon;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `iperf3 -s` bound to `host` (inside `prefix`, e.g. ip netns exec b). */
export async function startIperfServer(cpu: CpuMeter, prefix: string[], host: string, port: number): Promise<IperfServer> {
  const daemon = startDaemon(cpu.wrap([...prefix, "iperf3", "-s", "-B", host, "-p", String(port), "--forceflush"]));
  try {
    await daemon.waitFor("Server listening on", 15_000);
  } catch (e) {
    await daemon.stop();
    throw e;
  }
  return { host, port, daemon };
}

interface IperfJson {
  end?: { sum_received?: { bytes?: number; seconds?: number }; sum_sent?: { retransmits?: number } };
  error?: string;
}

/** A repeat plan for one client run of `seconds` with `streams` parallel streams. */
export function iperfPlan(server: IperfServer, prefix: string[], streams: number, seconds: number): RepeatPlan {
  return {
    argv: [...prefix, "iperf3", "-c", server.host, "-p", String(server.port), "-P", String(streams), "-t", String(seconds), "-l", "1M", "-J"],
    timeoutMs: (seconds + 60) * 1000,
    drop: false,
    syncDir: null,
    receiverRoot: null,
    bytes: 0,
    files: 0,
    async judge(res) {
      let j: IperfJson;
      try {
        j = JSON.parse(res.stdout) as IperfJson;
      } catch {
        return { verdict: { ok: false, error: `iperf3 printed no JSON: ${res.stderr.trim().slice(0, 200)}` } };
      }
      const bytes = j.end?.sum_received?.bytes ?? 0;
      const secs = j.end?.sum_received?.seconds ?? 0;
      if (j.error || bytes <= 0 || secs <= 0) return { verdict: { ok: false, error: `iperf3: ${j.error ?? "no bytes received"}` } };
      return { verdict: { ok: true }, toolGbps: bytes / secs / 1e9, bytes };
    },
  };
}
