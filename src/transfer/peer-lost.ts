// Turns a native stream-down or fatal event into the one-line session error users see:
// which stream, whether the peer vanished, stalled, or sent something unauthenticated.
import { EscpError } from "../errors/escp-error.ts";
import { codeForStatus, type NativeEvent, type NativeStatus } from "../native/events.ts";
import { PEER_CLOSED_CONTROL, type NativeSession } from "../native/session.ts";

/** What a rejected frame means, in words (the data never reaches a file). */
const TAMPER: Partial<Record<NativeStatus, string>> = {
  AUTH: "a frame failed authentication (tampered with or corrupted in transit)",
  REPLAY: "a frame arrived out of sequence (replayed, reordered or dropped)",
  PROTO: "protocol error: a malformed frame",
};

export function peerLost(ev: NativeEvent, where: string): EscpError {
  const stream = ev.stream === 0 ? "control stream" : `data stream ${ev.stream}`;
  // blocks: reconnect attempts (--retries) that failed before the stream was given up
  const tried = ev.blocks > 0 ? `; ${ev.blocks} reconnect ${ev.blocks === 1 ? "attempt" : "attempts"} failed` : "";
  const detail = ev.text ? `: ${ev.text}${tried}` : tried;
  if (ev.status === "CLOSED") {
    return new EscpError("E_TIMEOUT", `${where}: peer closed the ${stream} unexpectedly (it exited or was killed${tried})`, { stream: ev.stream });
  }
  if (ev.status === "TIMEOUT") {
    return new EscpError("E_TIMEOUT", `${where}: peer stalled on the ${stream}${detail}`, { stream: ev.stream });
  }
  if (ev.status === "PROTO" && ev.fino !== 0) {
    // a DATA frame that broke a file's announced shape
    return new EscpError("E_PROTOCOL", `${where}: ${stream}: protocol error: file #${ev.fino}: ${ev.text}`, { stream: ev.stream });
  }
  const why = TAMPER[ev.status];
  if (why) return new EscpError("E_PROTOCOL", `${where}: ${stream}: ${why}${detail ? ` (${ev.text})` : ""}`, { stream: ev.stream });
  return new EscpError(codeForStatus(ev.status), `${where}: ${stream}${detail || `: ESCP_E_${ev.status}`}`, { stream: ev.stream });
}

/** The one-line notice for a data stream that broke and was re-established (--retries). */
export function reconnectNotice(ev: NativeEvent, where: string): string {
  const after = ev.blocks > 1 ? ` after ${ev.blocks} attempts` : "";
  return `${where}: data stream ${ev.stream} broke (${ev.text || "connection lost"}); re-established${after}`;
}

/** Send on the session's control stream; a peer that is gone is named like a reader names it:
 * `<where>: peer closed the control stream unexpectedly …` (exit 9). */
export function sendOrPeerLost(native: NativeSession, msg: Uint8Array, where: string): void {
  try {
    native.ctlSend(msg);
  } catch (e) {
    if (e instanceof EscpError && e.message === PEER_CLOSED_CONTROL) throw new EscpError("E_TIMEOUT", `${where}: ${PEER_CLOSED_CONTROL}`, { stream: 0 });
    throw e;
  }
}
