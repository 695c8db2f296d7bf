// Native session parameters from the option table (sender) or from session init (receiver).
import type { Options } from "../config/options.ts";
import type { SessionInit } from "../control/messages.ts";
import type { SessionParams } from "../native/session.ts";

export function sessionParams(o: Options): SessionParams {
  return {
    threads: o.threads, blockSize: o.blocksize, ioEngine: o.ioengine, direct: !o.nodirect,
    checksum: !o.nochecksum, sparse: o.sparse, timeoutMs: o.timeoutMs, rateLimit: o.limit,
    ipMode: o.ipv4 ? 4 : o.ipv6 ? 6 : 0, verbose: o.verbose,
    profile: o.profile !== undefined, compressLevel: o.compress ? o.compressLevel : 0, preserve: false,
  };
}

export function receiverParams(init: SessionInit): SessionParams {
  return {
    threads: init.threads, blockSize: init.blockSize, ioEngine: init.ioEngine, direct: init.direct,
    checksum: init.checksum, sparse: init.sparse, timeoutMs: init.timeoutMs, rateLimit: 0, ipMode: init.ipMode,
    verbose: init.verbose, profile: init.profile, compressLevel: init.compressLevel, preserve: init.preserve,
  };
}
