// Native session parameters for each place a data role runs: the initiator's from the option
// table, a server's from session init (whose values the initiator took from the same table).
import type { Options } from "../config/options.ts";
import type { SessionInit } from "../control/messages.ts";
import type { SessionParams } from "../native/session.ts";
import { bundleLimit, nativeResumeLevel, reconnects, sendsHoles } from "./plan.ts";

/** A server as the data source: bundles as the initiator asked, unless it is -3 (host2's
 * version is not known here; the initiator asks for none then). */
export function sourceBundleMax(init: SessionInit): number {
  return bundleLimit(init.bundleMax, init.versionMinor, init.blockSize, init.ioEngine);
}

function fromOptions(o: Options): Omit<SessionParams, "ioEngine" | "rateLimit" | "preserve"> {
  return {
    threads: o.threads,
    blockSize: o.blocksize,
    direct: !o.nodirect,
    checksum: !o.nochecksum,
    sparse: o.sparse,
    timeoutMs: o.timeoutMs,
    ipMode: o.ipv4 ? 4 : o.ipv6 ? 6 : 0,
    verbose: o.verbose,
    profile: o.profile !== undefined,
    compressLevel: o.compress ? o.compressLevel : 0,
    retries: o.retries,
  };
}

function fromInit(init: SessionInit): Omit<SessionParams, "rateLimit" | "preserve"> {
  return {
    threads: init.threads,
    blockSize: init.blockSize,
    ioEngine: init.ioEngine,
    direct: init.direct,
    checksum: init.checksum,
    sparse: init.sparse,
    timeoutMs: init.timeoutMs,
    ipMode: init.ipMode,
    verbose: init.verbose,
    profile: init.profile,
    compressLevel: init.compressLevel,
    retries: reconnects(init.versionMinor) ? init.retries : 0, // a 2.2 initiator's streams send no ACKs
  };
}

/** -a keeps owner and group where the receiver may set them: as root (rsync -a does the same). */
function keepsOwner(archive: boolean): boolean {
  return archive && process.getuid?.() === 0;
}

/** The initiator as the data source (a push): it paces its own sockets (-l). */
export function sessionParams(o: Options): SessionParams {
  return { ...fromOptions(o), ioEngine: o.ioengine, rateLimit: o.limit, preserve: false };
}

/** The initiator as the data sink (a pull): the RX half of --ioengine, -p here. */
export function sinkParams(o: Options): SessionParams {
  return { ...fromOptions(o), ioEngine: o.ioengineRx, rateLimit: 0, preserve: o.preserve, owner: keepsOwner(o.archive), bundle: o.bundleMax > 0 };
}

/** A server as the data sink (a push). */
export function receiverParams(init: SessionInit): SessionParams {
  return {
    ...fromInit(init),
    rateLimit: 0,
    preserve: init.preserve,
    owner: keepsOwner(init.archive),
    resume: nativeResumeLevel(init.resume, init.checksum, init.versionMinor),
    bundle: init.bundleMax > 0,
  };
}

/** A server as the data source (a pull): it paces (-l) since it sends. */
export function serverSourceParams(init: SessionInit): SessionParams {
  return {
    ...fromInit(init),
    rateLimit: init.rateLimit,
    preserve: false,
    helloOnAccept: init.helloOnAccept || init.awaitGo, // awaitGo: the relay fallback listens answering
    holes: sendsHoles(init.versionMinor) && !init.awaitGo, // -3: host2's version is not known here
    bundle: sourceBundleMax(init) > 0,
  };
}
