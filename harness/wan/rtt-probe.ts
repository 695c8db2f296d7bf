// Round-trip probe without ping (not installed here) and without a server: a TCP connect
// to a closed port is answered by the peer kernel's RST, so SYN out + RST back = one RTT.
// Run inside a namespace: bun harness/wan/rtt-probe.ts HOST [COUNT] [PORT]
// Prints one JSON line {"host","port","samplesMs":[...],"minMs","medianMs"}; exit 1 if a
// probe got anything but "connection refused" (e.g. a timeout: lost SYN, no route).
import { connect } from "node:net";

function probe(host: string, port: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(`${host}:${port} accepted: pick a closed port`));
    });
    sock.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === "ECONNREFUSED") resolve(performance.now() - t0);
      else reject(e);
    });
  });
}

export interface RttResult {
  host: string;
  port: number;
  samplesMs: number[];
  minMs: number;
  medianMs: number;
}

export async function measureRtt(host: string, count: number, port: number): Promise<RttResult> {
  const samplesMs: number[] = [];
  for (let i = 0; i < count; i++) {
    // A lost SYN (random loss) is retried by the kernel after 1 s; that sample is just slow.
    samplesMs.push(await probe(host, port, 5000));
  }
  const sorted = [...samplesMs].sort((p, q) => p - q);
  return { host, port, samplesMs, minMs: sorted[0] ?? NaN, medianMs: sorted[Math.floor(sorted.length / 2)] ?? NaN };
}

if (import.meta.main) {
  const [host, count, port] = process.argv.slice(2);
  if (!host) {
    console.error("usage: bun harness/wan/rtt-probe.ts HOST [COUNT=5] [PORT=9]");
    process.exit(2);
  }
  try {
    console.log(JSON.stringify(await measureRtt(host, Number(count ?? 5), Number(port ?? 9))));
  } catch (e) {
    console.error(`rtt-probe: ${(e as Error).message}`);
    process.exit(1);
  }
}
