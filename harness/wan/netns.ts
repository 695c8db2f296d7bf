// Emulated WAN between two network namespaces: namespace a holds TUN device A, namespace
// b holds TUN device B, and harness/wan/delayline (in the root namespace, owning both TUN
// fds) carries packets between them with delay, rate and loss. Traffic never leaves the
// two namespaces: each sees only lo and its point-to-point TUN link.
// Teardown: stop(), and also at process exit/SIGINT/SIGTERM/SIGHUP; namespaces left by a
// SIGKILLed run (name carries the dead pid) are reaped by the next startWan().
import { openSync, closeSync } from "node:fs";
import { constants } from "node:os";
import { onExitCleanup } from "../tmp-dir.ts";
import { formatLane, startDelayline, type DelaylineExit, type WanStats } from "./delayline.ts";

export type Side = "a" | "b";

export interface WanOptions {
  delayMs: number; // one way, applied both ways (RTT = 2 * delayMs)
  rateMbit: number; // per direction, 0 = unlimited
  lossPct: number; // random loss a->b, in percent
  lossBackPct?: number; // random loss b->a, in percent (default 0)
  seed: number; // loss pattern seed
  queueKib?: number; // delay line's tail-drop queue (default 4096 KiB)
  maxSeconds?: number; // the delay line exits by itself after this (default 900)
}

export interface ExecResult {
  code: number; // 128+N when killed by signal N
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number; // default 300 s; the process group gets SIGKILL after it
}

export interface Wan {
  ns: { a: string; b: string };
  addr: { a: string; b: string };
  tun: { a: string; b: string };
  readyLine: string;
  /** argv prefixed to run inside a namespace. */
  argv(side: Side, cmd: readonly string[]): string[];
  /** Runs a command inside a namespace to completion. */
  exec(side: Side, cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a command inside a namespace (own process group, killed by stop()). */
  spawn(side: Side, cmd: readonly string[], opts?: ExecOptions): Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Delay line counters right now. */
  stats(): Promise<WanStats>;
  /** Kills what was spawned, stops the delay line (final counters), deletes both namespaces. */
  stop(): Promise<DelaylineExit>;
}

const NS_RE = /^escp-wan-(\d+)-[0-9a-f]+-[ab]$/;

function ipSync(args: string[]): { code: number; err: string } {
  const r = Bun.spawnSync(["ip", ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  return { code: r.exitCode ?? 1, err: r.stderr.toString().trim() };
}

async function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const proc = Bun.spawn([...argv], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
    env: { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  const killGroup = (): void => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const unregister = onExitCleanup(killGroup);
  const timer = setTimeout(killGroup, opts.timeoutMs ?? 300_000);
  try {
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const sig = proc.signalCode;
    const code = sig ? 128 + (typeof sig === "number" ? sig : (constants.signals[sig] ?? 0)) : (proc.exitCode ?? -1);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    unregister();
  }
}

async function ip(args: string[]): Promise<void> {
  const r = await run(["ip", ...args], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Deletes escp-wan-<pid>-* namespaces whose creating process is gone. Returns their names. */
export function reapStaleNamespaces(): string[] {
  const r = Bun.spawnSync(["ip", "netns", "list"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const reaped: string[] = [];
  for (const line of r.stdout.toString().split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const m = NS_RE.exec(name);
    if (m && !pidAlive(Number(m[1])) && ipSync(["netns", "delete", name]).code === 0) reaped.push(name);
  }
  return reaped;
}

/** Whether this process may build the emulator: ip, gcc, /dev/net/tun, netns add/delete. */
export function canWan(): { ok: boolean; why: string } {
  if (process.platform !== "linux") return { ok: false, why: "WAN emulation needs Linux network namespaces" };
  for (const tool of ["ip", "gcc"]) {
    if (!Bun.which(tool)) return { ok: false, why: `WAN emulation needs \`${tool}\` on PATH` };
  }
  try {
    closeSync(openSync("/dev/net/tun", "r+"));
  } catch (e) {
    return { ok: false, why: `WAN emulation needs /dev/net/tun (open failed: ${(e as Error).message})` };
  }
  const probe = `escp-wan-${process.pid}-${Math.random().toString(16).slice(2, 10)}-a`;
  const add = ipSync(["netns", "add", probe]);
  if (add.code !== 0) return { ok: false, why: `WAN emulation needs CAP_SYS_ADMIN/CAP_NET_ADMIN (root): \`ip netns add\` failed: ${add.err}` };
  const del = ipSync(["netns", "delete", probe]);
  if (del.code !== 0) return { ok: false, why: `\`ip netns delete ${probe}\` failed: ${del.err}` };
  const dev = `ewp${Math.random().toString(16).slice(2, 10)}`; // a TUN device needs CAP_NET_ADMIN
  const tun = ipSync(["tuntap", "add", "dev", dev, "mode", "tun"]);
  if (tun.code !== 0) return { ok: false, why: `WAN emulation needs CAP_NET_ADMIN: \`ip tuntap add\` failed: ${tun.err}` };
  ipSync(["tuntap", "del", "dev", dev, "mode", "tun"]);
  return { ok: true, why: "" };
}

/** Builds the emulated WAN; resolves once packets can flow. Throws (after cleaning up) on failure. */
export async function startWan(o: WanOptions): Promise<Wan> {
  reapStaleNamespaces();
  const tag = [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const ns = { a: `escp-wan-${process.pid}-${tag}-a`, b: `escp-wan-${process.pid}-${tag}-b` };
  const tun = { a: `ew${tag}a`, b: `ew${tag}b` }; // 11 chars < IFNAMSIZ
  const [x, y] = crypto.getRandomValues(new Uint8Array(2));
  const net = `10.${64 + ((x ?? 0) % 128)}.${y ?? 0}`; // only ever configured inside our namespaces
  const addr = { a: `${net}.1`, b: `${net}.2` };
  const children = new Set<Bun.Subprocess>();
  const created: string[] = [];
  let dl: Awaited<ReturnType<typeof startDelayline>> | undefined;

  const killChildren = (): void => {
    for (const c of children) {
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    children.clear();
  };
  const teardownSync = (): void => {
    killChildren();
    dl?.killSync();
    for (const n of created.splice(0)) ipSync(["netns", "delete", n]);
  };
  const unregister = onExitCleanup(teardownSync);

  try {
    // The delay line creates both TUN devices in the root namespace and keeps their fds;
    // the devices are then moved into the namespaces (the fds stay valid across the move).
    dl = await startDelayline({
      tunA: tun.a,
      tunB: tun.b,
      delayMs: o.delayMs,
      rateMbit: o.rateMbit,
      lossPct: o.lossPct,
      seed: o.seed,
      ...(o.lossBackPct !== undefined ? { lossBackPct: o.lossBackPct } : {}),
      ...(o.queueKib !== undefined ? { queueKib: o.queueKib } : {}),
      ...(o.maxSeconds !== undefined ? { maxSeconds: o.maxSeconds } : {}),
    });
    const inNs = async (side: Side, cmd: string[], must: boolean): Promise<void> => {
      const r = await run(["ip", "netns", "exec", ns[side], ...cmd], { timeoutMs: 30_000 });
      if (must && r.code !== 0) throw new Error(`${cmd.join(" ")} in ${ns[side]} failed: ${r.stderr.trim()}`);
    };
    for (const side of ["a", "b"] as const) {
      await ip(["netns", "add", ns[side]]);
      created.push(ns[side]);
      // A whole BDP (rate * RTT) must fit in the TCP windows; the ns defaults cap send at 4 MiB.
      // (net.core.[rw]mem_max are read-only outside the root namespace: escp autotunes.)
      await inNs(side, ["sysctl", "-q", "-w", "net.ipv4.tcp_rmem=4096 131072 67108864", "net.ipv4.tcp_wmem=4096 16384 67108864"], true);
      // Best effort, before the device arrives: no IPv6 autoconfiguration chatter on the link.
      await inNs(side, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"], false);
    }
    for (const side of ["a", "b"] as const) {
      const other = side === "a" ? "b" : "a";
      await ip(["link", "set", "dev", tun[side], "netns", ns[side]]);
      await ip(["-n", ns[side], "link", "set", "dev", "lo", "up"]);
      await ip(["-n", ns[side], "addr", "add", addr[side], "peer", `${addr[other]}/32`, "dev", tun[side]]);
    }
    for (const side of ["a", "b"] as const) await ip(["-n", ns[side], "link", "set", "dev", tun[side], "up"]);
  } catch (e) {
    teardownSync();
    unregister();
    throw e;
  }
  const line = dl;

  const wan: Wan = {
    ns,
    addr,
    tun,
    readyLine: line.readyLine,
    argv: (side, cmd) => ["ip", "netns", "exec", ns[side], ...cmd],
    exec: (side, cmd, opts) => run(wan.argv(side, cmd), opts),
    spawn(side, cmd, opts = {}) {
      const proc = Bun.spawn(wan.argv(side, cmd), {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        detached: true,
        env: { ...process.env, ...opts.env },
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
      });
      children.add(proc);
      const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 300_000);
      void proc.exited.then(() => {
        clearTimeout(timer);
        children.delete(proc);
      });
      return proc;
    },
    stats: () => line.stats(),
    async stop() {
      killChildren();
      const exit = await line.stop();
      const failed: string[] = [];
      for (const n of created.splice(0)) {
        const r = await run(["ip", "netns", "delete", n], { timeoutMs: 30_000 });
        if (r.code !== 0) failed.push(`${n}: ${r.stderr.trim()}`);
      }
      unregister();
      if (failed.length) throw new Error(`ip netns delete failed: ${failed.join("; ")}`);
      return exit;
    },
  };
  return wan;
}

/** Both directions' counters as two readable lines. */
export function formatStats(s: WanStats): string {
  return `${formatLane("a>b", s.ab)}\n${formatLane("b>a", s.ba)}`;
}
