// Runs harness/wan/build/delayline as a child and speaks its line protocol on stdout:
// "ready ..." once both TUN devices exist, "stats a>b k=v ..." / "stats b>a ..." / "end"
// on SIGUSR1 and at exit, then "exit reason=...". Readiness is that line, never a sleep.
import { buildDelayline } from "./build.ts";

export interface DelaylineParams {
  tunA: string;
  tunB: string;
  delayMs: number; // one way, both directions
  rateMbit: number; // 0 = unlimited
  lossPct: number; // a->b (the data direction when the sender sits in namespace a)
  lossBackPct?: number; // b->a, default 0
  seed: number;
  queueKib?: number; // tail-drop bound on bytes waiting for the serialiser
  maxSeconds?: number; // hard bound on the delay line's life
  mtu?: number;
}

/** Counters of one direction, as printed by the delay line. */
export interface LaneStats {
  read: number;
  read_bytes: number;
  sent: number;
  sent_bytes: number;
  drop_loss: number;
  drop_queue: number;
  drop_full: number;
  drop_big: number;
  write_err: number;
  read_err: number;
  in_flight: number;
}

export interface WanStats {
  ab: LaneStats;
  ba: LaneStats;
}

export interface DelaylineExit {
  stats: WanStats | undefined;
  reason: string; // signal | deadline | stdin | error | killed
  stderr: string;
}

export interface Delayline {
  pid: number;
  readyLine: string;
  /** Current counters (SIGUSR1 snapshot). */
  stats(): Promise<WanStats>;
  /** SIGTERM, then the final counters; idempotent. */
  stop(): Promise<DelaylineExit>;
  /** Synchronous last resort for exit handlers. */
  killSync(): void;
}

function parseLane(line: string): LaneStats {
  const v = (k: keyof LaneStats): number => Number(new RegExp(`\\b${k}=(\\d+)`).exec(line)?.[1] ?? NaN);
  return {
    read: v("read"),
    read_bytes: v("read_bytes"),
    sent: v("sent"),
    sent_bytes: v("sent_bytes"),
    drop_loss: v("drop_loss"),
    drop_queue: v("drop_queue"),
    drop_full: v("drop_full"),
    drop_big: v("drop_big"),
    write_err: v("write_err"),
    read_err: v("read_err"),
    in_flight: v("in_flight"),
  };
}

/** One-line human summary of a direction's counters. */
export function formatLane(name: string, s: LaneStats): string {
  return `${name}: ${s.sent}/${s.read} pkts delivered (${s.sent_bytes} B), dropped loss ${s.drop_loss} queue ${s.drop_queue} full ${s.drop_full} big ${s.drop_big}, write errors ${s.write_err}`;
}

export function delaylineArgs(bin: string, p: DelaylineParams): string[] {
  const ppm = (pct: number): string => String(Math.round(pct * 10_000));
  return [
    bin,
    "-w",
    "-a",
    p.tunA,
    "-b",
    p.tunB,
    "-d",
    String(Math.round(p.delayMs * 1000)),
    "-r",
    String(Math.round(p.rateMbit * 1000)),
    "-l",
    ppm(p.lossPct),
    "-L",
    ppm(p.lossBackPct ?? 0),
    "-s",
    String(p.seed),
    "-q",
    String(p.queueKib ?? 4096),
    "-t",
    String(p.maxSeconds ?? 900),
    "-m",
    String(p.mtu ?? 1500),
  ];
}

/** Builds (if needed) and starts the delay line; resolves once it printed "ready". */
export async function startDelayline(p: DelaylineParams): Promise<Delayline> {
  const bin = await buildDelayline();
  // stdin is a pipe we never write: if this process dies, the delay line sees EOF (-w) and exits.
  const proc = Bun.spawn(delaylineArgs(bin, p), { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  let ab: LaneStats | undefined;
  let ba: LaneStats | undefined;
  let reason = "";
  let onReady: ((line: string) => void) | undefined;
  const endWaiters: (() => void)[] = [];
  const ready = new Promise<string>((res) => {
    onReady = res;
  });
  const reader = (async () => {
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("ready ")) onReady?.(line);
        else if (line.startsWith("stats a>b ")) ab = parseLane(line);
        else if (line.startsWith("stats b>a ")) ba = parseLane(line);
        else if (line === "end") endWaiters.splice(0).forEach((w) => w());
        else if (line.startsWith("exit reason=")) reason = line.slice("exit reason=".length);
      }
    }
    endWaiters.splice(0).forEach((w) => w());
  })();
  const exited = proc.exited.then(async (code) => {
    await Promise.all([reader, stderrDone]);
    return code;
  });
  const first = await Promise.race([ready, exited.then(() => null)]);
  if (first === null) {
    throw new Error(`delay line exited before ready (code ${proc.exitCode}): ${stderr.trim()}`);
  }
  let stopping: Promise<DelaylineExit> | undefined;
  const dl: Delayline = {
    pid: proc.pid,
    readyLine: first,
    async stats() {
      const next = new Promise<void>((res) => endWaiters.push(res));
      proc.kill("SIGUSR1");
      await Promise.race([next, exited]);
      if (!ab || !ba) throw new Error(`delay line gave no counters: ${stderr.trim()}`);
      return { ab, ba };
    },
    stop() {
      stopping ??= (async () => {
        proc.kill("SIGTERM");
        const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(killer);
        const stats = ab && ba ? { ab, ba } : undefined;
        return { stats, reason: reason || "killed", stderr };
      })();
      return stopping;
    },
    killSync() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    },
  };
  return dl;
}
