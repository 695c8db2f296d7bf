// Turns a native stream-down or fatal event into the one-line session error users see:
// which stream, whether the peer vanished, stalled, or sent something unauthenticated.
import { EscpError } from "../errors/escp-error.ts";
import type { NativeEvent } from "../native/events.ts";
import type { NativeSession } from "../native/session.ts";
import * as C from "../native/symbols.ts";

/** What a rejected frame means, in words (the data never reaches a file). */
const TAMPER: Record<number, string> = {
  [C.ESCP_E_AUTH]: "a frame failed authentication (tampered with or corrupted in transit)",
  [C.ESCP_E_REPLAY]: "a frame arrived out of sequence (replayed, reordered or dropped)",
  [C.ESCP_E_PROTO]: "protocol error: a malformed frame",
};

export function peerLost(native: NativeSession, ev: NativeEvent, where: string): EscpError {
  const stream = ev.stream === 0 ? "control stream" : `data stream ${ev.stream}`;
  const detail = ev.text ? `: ${ev.text}` : "";
  if (ev.status === C.ESCP_E_CLOSED) {
    return new EscpError("E_TIMEOUT", `${where}: peer closed the ${stream} unexpectedly (it exited or was killed)`, { stream: ev.stream });
  }
  if (ev.status === C.ESCP_E_TIMEOUT) {
    return new EscpError("E_TIMEOUT", `${where}: peer stalled on the ${stream}${detail}`, { stream: ev.stream });
  }
  if (ev.status === C.ESCP_E_PROTO && ev.fino !== 0) { // a DATA frame that broke a file's announced shape
    return new EscpError("E_PROTOCOL", `${where}: ${stream}: protocol error: file #${ev.fino}: ${ev.text}`, { stream: ev.stream });
  }
  const why = TAMPER[ev.status];
  if (why) return new EscpError("E_PROTOCOL", `${where}: ${stream}: ${why}${detail ? ` (${ev.text})` : ""}`, { stream: ev.stream });
  const base = native.error(ev.status, `${where}: ${stream}${detail}`);
  return new EscpError(base.code, base.message, { stream: ev.stream });
}
