// The one-line diagnosis of a profile: which stage on which side bounded the transfer.
//
// Input: per side, each stage's share of stream time (shares.ts): the stage's ns summed over
// the data streams / (T × the side's active time); idle is a stage like any other. Stages are
// grouped — sender: read | cpu (hash+compress+seal) | send | meta | idle; receiver: recv |
// cpu (open+decompress+hash) | write | meta | idle. "work" = the groups other than send/recv
// and idle. Each stream thread runs its stages in series and TCP buffers decouple the sides,
// so the bottleneck is the side that is busy while the other waits:
//  1. Receiver first. It is the bottleneck when it rarely waits for data: recv share
//     < RX_RECV_LOW (0.30 — recv also holds the copy out of the socket, 5–20 % when data is
//     always there), its work exceeds its waiting (recv + idle) and is at least MIN_SIGNAL, and
//     the sender is blocked in send at least as much as the receiver waits in recv (else the
//     receiver is merely slow-ish and the sender is slower). Its largest work group names the
//     verdict: write → disk-write, cpu → cpu (the CPU stages listed), meta → file metadata
//     (bound "disk-write", stage meta).
//  2. Otherwise the sender. Its largest group (plurality) names the verdict when it is at least
//     MIN_SIGNAL: send → network (the receiver was waiting in recv, so the wire is the limit),
//     read → disk-read, cpu → cpu, meta → file metadata (bound "disk-read"), idle → waiting for
//     the file list (bound "unknown": source enumeration or the control channel, not data).
//     If no sender group reaches MIN_SIGNAL but the receiver waits in recv >= RX_RECV_NETWORK
//     (0.50), the network: the sender handed everything to large (BDP-sized) socket buffers
//     at once and the wire drained them slowly.
//  3. Only one side present → that side alone, with the same groups; a blocked send (or recv)
//     then means "the network or the other side".
//  4. Nothing at least MIN_SIGNAL (0.20) → "unknown". Near ties (the runner-up group within
//     CLOSE = 0.10 of the winner) are named in the text: "…; next: disk read 40 %".
import { STAGE, stageInfo, type StageId } from "./stages.ts";
import { stageShares, type StageShare } from "./shares.ts";
import type { Profile, SideName, SideProfile, Verdict } from "./types.ts";

export type { Verdict } from "./types.ts";
export { stageShares, type StageShare } from "./shares.ts";

export const RX_RECV_LOW = 0.3;
export const MIN_SIGNAL = 0.2;
export const CLOSE = 0.1;
/** A receiver waiting in recv this much, with an idle sender, means the network. */
export const RX_RECV_NETWORK = 0.5;

type GroupKey = "read" | "write" | "cpu" | "net" | "meta" | "idle";
interface Group {
  key: GroupKey;
  stages: StageId[];
  share: number;
}

const GROUPS: Record<SideName, ReadonlyArray<{ key: GroupKey; stages: StageId[] }>> = {
  sender: [
    { key: "read", stages: [STAGE.read] },
    { key: "cpu", stages: [STAGE.hash, STAGE.compress, STAGE.seal] },
    { key: "net", stages: [STAGE.send] },
    { key: "meta", stages: [STAGE.meta] },
    { key: "idle", stages: [STAGE.idle] },
  ],
  receiver: [
    { key: "net", stages: [STAGE.recv] },
    { key: "cpu", stages: [STAGE.open, STAGE.decompress, STAGE.hash] },
    { key: "write", stages: [STAGE.write] },
    { key: "meta", stages: [STAGE.meta] },
    { key: "idle", stages: [STAGE.idle] },
  ],
};

interface SideView {
  name: SideName;
  shares: StageShare[];
  /** Largest first. */
  groups: Group[];
}

function view(side: SideProfile): SideView {
  const shares = stageShares(side);
  const groups = GROUPS[side.side].map((g) => ({
    key: g.key,
    stages: g.stages,
    share: g.stages.reduce<number>((sum, s) => sum + (shares[s]?.share ?? 0), 0),
  }));
  groups.sort((a, b) => b.share - a.share);
  return { name: side.side, shares, groups };
}

const pct = (share: number): string => `${Math.round(share * 100)} %`;
const groupShare = (v: SideView, key: GroupKey): number => v.groups.find((g) => g.key === key)?.share ?? 0;
const netStage = (v: SideView): StageId => (v.name === "sender" ? STAGE.send : STAGE.recv);

function groupLabel(v: SideView, g: Group): string {
  if (g.key === "cpu") return "CPU";
  if (g.key === "net") return v.name === "sender" ? "send" : "recv";
  return g.key === "meta" ? "file metadata" : stageInfo(g.stages[0] ?? STAGE.idle).label;
}

/** " (next: disk read 40 %)" when the runner-up is close to the winner, else "". */
function runnerUp(v: SideView, winner: Group): string {
  const next = v.groups.find((g) => g !== winner);
  if (!next || next.share < MIN_SIGNAL || winner.share - next.share > CLOSE) return "";
  return `; next: ${groupLabel(v, next)} ${pct(next.share)}`;
}

function cpuVerdict(v: SideView, g: Group): Verdict {
  const parts = g.stages.map((s) => ({ s, share: v.shares[s]?.share ?? 0 })).sort((a, b) => b.share - a.share || a.s - b.s);
  const list = parts.map((p) => `${stageInfo(p.s).label} ${pct(p.share)}`).join(" + ");
  const top = parts[0]?.s ?? null;
  return { bound: "cpu", side: v.name, stage: top, share: g.share, text: `bound by CPU on the ${v.name}: ${list} of stream time` };
}

/** The verdict named by one side's work group (not net). */
function workVerdict(v: SideView, g: Group): Verdict {
  const side = v.name;
  const next = runnerUp(v, g);
  const base = { side, share: g.share };
  switch (g.key) {
    case "cpu": {
      const c = cpuVerdict(v, g);
      return { ...c, text: c.text + next };
    }
    case "read":
      return {
        ...base,
        bound: "disk-read",
        stage: STAGE.read,
        text: `bound by disk read on the ${side}: ${pct(g.share)} of stream time waiting on pread${next}`,
      };
    case "write":
      return { ...base, bound: "disk-write", stage: STAGE.write, text: `bound by disk write on the ${side}: ${pct(g.share)} of stream time in pwrite${next}` };
    case "meta":
      return {
        ...base,
        bound: side === "sender" ? "disk-read" : "disk-write",
        stage: STAGE.meta,
        text: `bound by file metadata on the ${side}: ${pct(g.share)} of stream time in open/close/stat/truncate${next}`,
      };
    case "idle":
      return {
        ...base,
        bound: "unknown",
        stage: STAGE.idle,
        text:
          side === "sender"
            ? `bound by the file list: sender streams idle ${pct(g.share)} of stream time waiting for work (source enumeration / control channel)${next}`
            : `receiver streams idle ${pct(g.share)} of stream time waiting for work${next}`,
      };
    case "net":
      return {
        ...base,
        bound: "network",
        stage: netStage(v),
        text: `bound by the network: ${side}s ${side === "sender" ? "blocked in send" : "waiting in recv"} ${pct(g.share)} of stream time${next}`,
      };
  }
}

function unknown(text: string): Verdict {
  return { bound: "unknown", side: null, stage: null, share: 0, text };
}

function receiverIsBottleneck(rx: SideView, tx: SideView | undefined): boolean {
  const recv = groupShare(rx, "net");
  const wait = recv + groupShare(rx, "idle");
  const work = rx.groups.filter((g) => g.key !== "net" && g.key !== "idle").reduce((s, g) => s + g.share, 0);
  const senderBlocked = tx ? groupShare(tx, "net") : 1;
  return recv < RX_RECV_LOW && work >= MIN_SIGNAL && work > wait && senderBlocked >= recv;
}

function fromSender(tx: SideView, rx: SideView | undefined): Verdict {
  const top = tx.groups[0];
  const rxWait = rx ? groupShare(rx, "net") : 0;
  if ((!top || top.share < MIN_SIGNAL) && rxWait >= RX_RECV_NETWORK) {
    // The sender had little to do (its data sat in large socket buffers) while the receiver
    // waited for it: the path in between is the limit.
    const text = `bound by the network: receivers waiting in recv ${pct(rxWait)} of stream time while the sender's data was already queued in its socket buffers`;
    return { bound: "network", side: null, stage: STAGE.recv, share: rxWait, text };
  }
  if (!top || top.share < MIN_SIGNAL) return weak(tx);
  if (top.key !== "net") return workVerdict(tx, top);
  const next = runnerUp(tx, top);
  const send = `senders blocked in send ${pct(top.share)} of stream time`;
  const text = rx
    ? `bound by the network: ${send}, receivers waiting in recv ${pct(groupShare(rx, "net"))}${next}`
    : `bound by the network or the receiver: ${send} (no receiver profile)${next}`;
  return { bound: "network", side: null, stage: STAGE.send, share: top.share, text };
}

function fromReceiverAlone(rx: SideView): Verdict {
  const top = rx.groups[0];
  if (!top || top.share < MIN_SIGNAL) return weak(rx);
  if (receiverIsBottleneck(rx, undefined)) {
    const work = rx.groups.find((g) => g.key !== "net" && g.key !== "idle");
    if (work) return workVerdict(rx, work);
  }
  if (top.key !== "net") return workVerdict(rx, top);
  const text = `bound by the network or the sender: receivers waiting in recv ${pct(top.share)} of stream time (no sender profile)${runnerUp(rx, top)}`;
  return { bound: "network", side: null, stage: STAGE.recv, share: top.share, text };
}

function weak(v: SideView): Verdict {
  const top = v.groups[0];
  const largest = top && top.share > 0 ? ` (largest on the ${v.name}: ${groupLabel(v, top)} ${pct(top.share)})` : "";
  return unknown(`no clear bottleneck: no stage takes ${pct(MIN_SIGNAL)} of stream time${largest}`);
}

export function verdict(p: Profile): Verdict {
  const txSide = p.sides.find((s) => s.side === "sender");
  const rxSide = p.sides.find((s) => s.side === "receiver");
  const tx = txSide ? view(txSide) : undefined;
  const rx = rxSide ? view(rxSide) : undefined;
  const anything = [tx, rx].some((v) => v?.groups.some((g) => g.share > 0));
  if (!anything) return unknown("no clear bottleneck: no stage timings were recorded");
  if (rx && receiverIsBottleneck(rx, tx)) {
    const work = rx.groups.find((g) => g.key !== "net" && g.key !== "idle");
    if (work) return workVerdict(rx, work);
  }
  if (tx) return fromSender(tx, rx);
  return rx ? fromReceiverAlone(rx) : unknown("no clear bottleneck: no stage timings were recorded");
}
