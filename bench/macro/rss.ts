// Peak RSS and CPU time of both sides of a transfer by polling /proc: the sender side is the
// measured command and its descendants, the receiver side every descendant of the sshd
// listener (session, shell, receiver) or of a receiver-side daemon.
//
// Memory: each process's VmHWM is its own high-water mark, so polling only loses growth in
// the last interval before an exit; the largest single process of each side is reported
// (that is the escp/peer process itself). (rusage maxrss of the spawned command is no use
// here: a forked child carries the parent's high-water mark across exec.)
//
// CPU: each process's utime + stime (/proc/<pid>/stat, all its threads, clock ticks) only
// grows, so the last value seen per process is kept and summed per group: `ssh` (sender-side
// processes named ssh: the ssh client), `sender` (the rest of the sender side), `sshd`
// (receiver-side processes whose name starts with sshd: the per-connection sessions) and
// `receiver` (the rest of the receiver side). CPU a process spends in the last interval
// before it exits is lost (the whole-run cgroup figure still has it). A process that lives
// less than one interval is not seen at all.
import { readFileSync } from "node:fs";
import type { CpuSplit } from "../lib/results.ts";
import { ppidOf } from "./proc.ts";

export type CpuGroup = keyof CpuSplit;
export const CPU_GROUPS: readonly CpuGroup[] = ["sender", "receiver", "ssh", "sshd"];

/** The CPU group of a process on `side` whose command name (/proc/<pid>/comm) is `comm`. */
export function cpuGroupOf(side: "sender" | "receiver", comm: string): CpuGroup {
  if (side === "sender") return comm === "ssh" ? "ssh" : "sender";
  return comm.startsWith("sshd") ? "sshd" : "receiver";
}

let clockTicksPerS: number | undefined;

/** `getconf CLK_TCK` (the unit of /proc/<pid>/stat times), asked once; 100 if it fails. */
export function clockTicks(): number {
  if (clockTicksPerS === undefined) {
    let n = Number.NaN;
    try {
      const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
      if (r.exitCode === 0) n = Number(r.stdout.toString().trim());
    } catch {
      // no getconf
    }
    clockTicksPerS = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicksPerS;
}

interface ProcStat {
  comm: string;
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** Start time since boot (ticks), with the pid a key that survives pid reuse. */
  start: string;
}

/** Parses /proc/<pid>/stat (null if the process is gone). */
export function readStat(pid: number): ProcStat | null {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const open = s.indexOf("(");
  const close = s.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime …
  const f = s.slice(close + 2).split(" ");
  const ppid = Number(f[1]);
  const ticks = Number(f[11]) + Number(f[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(ticks)) return null;
  return { comm: s.slice(open + 1, close), ppid, ticks, start: f[19] ?? "" };
}

function vmHwmBytes(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export class SidePoll {
  private sender = 0;
  private receiver = 0;
  /** Last CPU ticks seen and group, per process ("pid:starttime"). */
  private readonly cpu = new Map<string, { group: CpuGroup; ticks: number }>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private senderRoot = -1;

  constructor(
    private readonly listPids: () => number[],
    private readonly receiverRoot: number | null,
  ) {}

  /** Starts polling every `ms` for the command `senderRoot`. The first look is one interval
   *  later: between fork and exec a child still shows the benchmark's own memory. */
  start(senderRoot: number, ms = 50): void {
    this.senderRoot = senderRoot;
    clockTicks();
    this.timer = setInterval(() => this.tick(), ms);
  }

  /** Stops polling after one last look. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.tick();
  }

  private sideOf(pid: number, parents: Map<number, number | null>): "sender" | "receiver" | null {
    let p: number | null = pid;
    for (let depth = 0; p !== null && p > 1 && depth < 32; depth++) {
      if (p === this.senderRoot) return "sender";
      if (p === this.receiverRoot) return pid === p ? null : "receiver";
      let up = parents.get(p);
      if (up === undefined) {
        up = ppidOf(p);
        parents.set(p, up);
      }
      p = up;
    }
    return null;
  }

  tick(): void {
    if (this.senderRoot < 0) return;
    const parents = new Map<number, number | null>();
    for (const pid of this.listPids()) {
      const st = readStat(pid);
      if (st === null) continue;
      parents.set(pid, st.ppid);
      const side = this.sideOf(pid, parents);
      if (side === null) continue;
      // A process's group is the one of its last look (a fork shows its parent's name
      // until it execs; its ticks so far stay with it).
      this.cpu.set(`${pid}:${st.start}`, { group: cpuGroupOf(side, st.comm), ticks: st.ticks });
      const hwm = vmHwmBytes(pid);
      if (hwm === null) continue;
      if (side === "sender") this.sender = Math.max(this.sender, hwm);
      else this.receiver = Math.max(this.receiver, hwm);
    }
  }

  /** Peak bytes per side (null when nothing was seen on that side). */
  result(): { sender: number | null; receiver: number | null } {
    return { sender: this.sender > 0 ? this.sender : null, receiver: this.receiver > 0 ? this.receiver : null };
  }

  /** CPU seconds per group, from the last look at each process (null: none seen). */
  cpuSplit(): CpuSplit {
    const ticks: CpuSplit = { sender: null, receiver: null, ssh: null, sshd: null };
    for (const { group, ticks: t } of this.cpu.values()) ticks[group] = (ticks[group] ?? 0) + t;
    const hz = clockTicks();
    const out: CpuSplit = { ...ticks };
    for (const g of CPU_GROUPS) {
      const t = ticks[g];
      out[g] = t === null ? null : t / hz;
    }
    return out;
  }
}
