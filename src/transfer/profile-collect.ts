// --profile plumbing on both sides: drain the native span rings while the transfer runs, ship
// the server's record to the initiator in ProfileData parts, and assemble the Profile that
// src/profile/ turns into a Chrome trace, an HTML report and a verdict.
import { hostname } from "node:os";
import type { ControlMsg } from "../control/messages.ts";
import { MAX_PROFILE_SPANS } from "../control/message-checks.ts";
import { EscpError } from "../errors/escp-error.ts";
import type { NativeSession } from "../native/session.ts";

const SPAN = 24;
/** Spans kept per side (24 MiB); beyond that they are counted as dropped, totals stay exact. */
const MAX_SPANS_KEPT = 1_000_000;

/** Raw material of one side: span bytes, exact totals, clock window. */
export interface SideRecord {
  host: string;
  streams: number; // data streams T
  startNs: number;
  endNs: number;
  dropped: number;
  totals: Uint8Array; // (T + 1) x stages x {ns, bytes, count} u64 LE
  spans: Uint8Array;
}

export class SpanCollector {
  private readonly parts: Uint8Array[] = [];
  private kept = 0;
  private overflow = 0;
  readonly startNs: number;

  constructor(
    private readonly native: NativeSession,
    private readonly streams: number,
  ) {
    this.startNs = native.clockNs();
  }

  /** Move whatever the C rings hold into JS memory (call every tick: rings are bounded). */
  poll(): void {
    const b = this.native.profDrain();
    const n = b.length / SPAN;
    if (n === 0) return;
    if (this.kept + n > MAX_SPANS_KEPT) {
      this.overflow += n;
      return;
    }
    this.parts.push(b);
    this.kept += n;
  }

  /** Final drain and totals; call before the native session is closed. */
  finish(): SideRecord {
    this.poll();
    const { totals, dropped } = this.native.profTotals();
    return {
      host: hostname(),
      streams: this.streams,
      startNs: this.startNs,
      endNs: this.native.clockNs(),
      dropped: dropped + this.overflow,
      totals,
      spans: Buffer.concat(this.parts),
    };
  }
}

/** The server's record as ProfileData control messages (each under the control frame cap). */
export function profileMessages(r: SideRecord): ControlMsg[] {
  const per = MAX_PROFILE_SPANS * SPAN;
  const out: ControlMsg[] = [];
  for (let off = 0; off === 0 || off < r.spans.length; off += per) {
    const spans = r.spans.subarray(off, off + per);
    const last = off + per >= r.spans.length;
    out.push({ type: "profileData", host: r.host, streams: r.streams, startNs: r.startNs, endNs: r.endNs, dropped: r.dropped, totals: r.totals, spans, last });
  }
  return out;
}

/** The initiator's side: reassemble the server's parts. */
export class RemoteProfile {
  private readonly parts: Uint8Array[] = [];
  private head?: Omit<SideRecord, "spans">;
  complete = false;

  add(m: Extract<ControlMsg, { type: "profileData" }>): void {
    if (this.complete) throw new EscpError("E_PROTOCOL", "profile data after its last part");
    this.head = { host: m.host, streams: m.streams, startNs: m.startNs, endNs: m.endNs, dropped: m.dropped, totals: m.totals };
    if (this.parts.reduce((a, p) => a + p.length, 0) + m.spans.length <= MAX_SPANS_KEPT * SPAN) this.parts.push(m.spans);
    this.complete = m.last;
  }

  record(): SideRecord | undefined {
    return this.head && this.complete ? { ...this.head, spans: Buffer.concat(this.parts) } : undefined;
  }
}
