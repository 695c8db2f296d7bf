// The local splicer of a relayed third-party copy (-3): T+1 TCP connections to each server,
// paired k↔k, bytes copied both ways by C threads that never decrypt (native/src/relay.c).
import type { Pointer } from "bun:ffi";
import { EscpError } from "../errors/escp-error.ts";
import { cstr, loadNative, type NativeLib } from "./lib.ts";
import { codeForStatus, statusName } from "./events.ts";
import * as C from "./symbols.ts";

export interface RelayStats {
  bytes12: number;
  bytes21: number;
  pairsUp: number;
  pairsDone: number;
  pairsFailed: number;
}

export class NativeRelay {
  private readonly lib: NativeLib;
  private handle: Pointer | null;
  private readonly statsBuf = new BigUint64Array(C.ESCP_R_COUNT);
  private readonly errBuf = new Uint8Array(256);

  constructor(timeoutMs: number) {
    this.lib = loadNative();
    const h = this.lib.escp_relay_new(timeoutMs);
    if (!h) throw new EscpError("E_INTERNAL", `escp_relay_new(${timeoutMs}) failed`);
    this.handle = h as Pointer;
  }

  private get h(): Pointer {
    if (this.handle === null) throw new EscpError("E_INTERNAL", "relay used after free");
    return this.handle;
  }

  /** Why the last call failed, in the library's words. */
  lastError(): string {
    const n = this.lib.escp_relay_last_error(this.h, this.errBuf, this.errBuf.length);
    if (n <= 0) return "";
    const end = this.errBuf.indexOf(0);
    return new TextDecoder().decode(this.errBuf.subarray(0, end < 0 ? n : end));
  }

  /** Open nconns connections to each side and pair them (blocks up to the timeout). */
  connect(addr1: string, port1: number, addr2: string, port2: number, nconns: number): void {
    const st = this.lib.escp_relay_connect(this.h, cstr(addr1), port1, cstr(addr2), port2, nconns);
    if (st !== C.ESCP_OK) {
      const code = codeForStatus(statusName(st));
      throw new EscpError(
        code === "E_TIMEOUT" || code === "E_INTERNAL" ? "E_CONNECT" : code,
        `relay ${addr1}:${port1} ⇄ ${addr2}:${port2}: ${this.lastError() || `ESCP_E_${statusName(st)}`}`,
      );
    }
  }

  start(): void {
    const st = this.lib.escp_relay_start(this.h);
    if (st !== C.ESCP_OK) throw new EscpError("E_INTERNAL", `relay start: ${this.lastError() || `ESCP_E_${statusName(st)}`}`);
  }

  stats(): RelayStats {
    this.lib.escp_relay_stats_read(this.h, this.statsBuf, C.ESCP_R_COUNT);
    const s = this.statsBuf;
    return {
      bytes12: Number(s[C.ESCP_R_BYTES_12]),
      bytes21: Number(s[C.ESCP_R_BYTES_21]),
      pairsUp: Number(s[C.ESCP_R_PAIRS_UP]),
      pairsDone: Number(s[C.ESCP_R_PAIRS_DONE]),
      pairsFailed: Number(s[C.ESCP_R_PAIRS_FAILED]),
    };
  }

  /** stop → join → free; safe to call more than once. */
  close(): void {
    if (this.handle === null) return;
    this.lib.escp_relay_stop(this.handle);
    this.lib.escp_relay_join(this.handle);
    this.lib.escp_relay_free(this.handle);
    this.handle = null;
  }
}
