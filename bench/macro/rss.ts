// Peak RSS of both sides of a transfer by polling /proc: the sender side is the measured
// command and its descendants, the receiver side every descendant of the sshd listener
// (session, shell, receiver) or of a receiver-side daemon. Each process's VmHWM is its own
// high-water mark, so polling only loses growth in the last interval before an exit; the
// largest single process of each side is reported (that is the escp/peer process itself).
// (rusage maxrss of the spawned command is no use here: a forked child carries the parent's
// high-water mark across exec.) A process that lives less than one interval is not seen.
import { readFileSync } from "node:fs";
import { ppidOf } from "./proc.ts";

function vmHwmBytes(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export class PeakRss {
  private sender = 0;
  private receiver = 0;
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
    this.timer = setInterval(() => this.tick(), ms);
  }

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
      const side = this.sideOf(pid, parents);
      if (side === null) continue;
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
}
