// A third-party copy (`escp -3 h1:src h2:dst`, or `h1:src h2:dst`): one session whose data
// source is host1 and whose data sink is host2. The initiator starts both servers with the same
// session key (each over its own ssh channel), checks host1's names against the request, and
// either splices the two servers' streams here without decrypting them (the default relay:
// both listen, host1 answering challenges) or has host1 connect straight to host2 (--direct,
// falling back to the relay when that fails). host1 reports every file's fate at the end (and,
// with --manifest or --json, each one as it is decided: FileReports, file-reports.ts).
import type { RunConfig } from "../config/load.ts";
import type { Options } from "../config/options.ts";
import type { RemoteSources } from "../cli/args.ts";
import type { Endpoint } from "../cli/args.ts";
import { decodeFileReports, decodeSessionGoReply, decodeSessionSummary, encodeSessionGo, type SessionInit, type SessionSummary } from "../control/messages.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { isErrorCode } from "../errors/codes.ts";
import { NativeRelay } from "../native/relay.ts";
import { log } from "../log/logger.ts";
import { applyReport, type ReportNames } from "./file-reports.ts";
import { openSession, type OpenedSession } from "./open-channel.ts";
import { checkReportedSources } from "./request-guard.ts";
import { showEndpoint, type RunOutput } from "./run-output.ts";

/** How host1's data reaches host2, once both servers run. */
interface Route {
  relay?: NativeRelay;
  /** Bytes moved so far (the relay's counter; unknown with --direct). */
  bytes(): number;
}

function endpoint(r: RemoteSources | Endpoint): Endpoint {
  return { host: r.host ?? "", path: "", ...(r.user ? { user: r.user } : {}), ...(r.port ? { port: r.port } : {}) };
}

/** A server's answer that carries an error becomes that error, named for the server. */
function replyError(where: string, e: { code: string; message: string }): EscpError {
  return new EscpError(isErrorCode(e.code) ? e.code : "E_REMOTE", `${where}: ${e.message}`);
}

/** The relay: T+1 connections to each listening server, spliced here. */
function relayBetween(o: Options, one: { address: string; port: number }, two: OpenedSession): Route {
  const relay = new NativeRelay(o.timeoutMs);
  try {
    relay.connect(one.address, one.port, two.dataAddress, two.reply.port, o.threads + 1);
    relay.start();
  } catch (e) {
    relay.close();
    throw e;
  }
  return { relay, bytes: () => relay.stats().bytes12 };
}

/** Ask host1 (which awaits a SessionGo) to listen, answering challenges, and relay to host2.
 * host1 listens only now, so its listen window starts when host2 is up (a short --timeout
 * cannot run out during host2's ssh login). */
async function relayVia(o: Options, h1: OpenedSession, h2: OpenedSession): Promise<Route> {
  await h1.channel.send(encodeSessionGo({ connectAddress: "", connectPort: 0 }));
  const l = decodeSessionGoReply(await h1.channel.recv(o.timeoutMs * 2 + 30_000));
  if (l.error) throw replyError(h1.where, l.error);
  const address = l.address !== "" && l.address !== "0.0.0.0" && l.address !== "::" ? l.address : h1.dataAddress;
  return relayBetween(o, { address, port: l.port }, h2);
}

/** --direct: ask host1 to connect to host2; on failure (with a notice) listen for the relay. */
async function directOrRelay(
  o: Options,
  h1: OpenedSession,
  h2: OpenedSession,
  restartH2: () => Promise<OpenedSession>,
  out: RunOutput,
): Promise<{ route: Route; h2: OpenedSession }> {
  await h1.channel.send(encodeSessionGo({ connectAddress: h2.dataAddress, connectPort: h2.reply.port }));
  const r = decodeSessionGoReply(await h1.channel.recv(o.timeoutMs * 2 + 30_000));
  if (r.error === undefined) return { route: { bytes: () => 0 }, h2 };
  out.reporter.notice(`warning: ${h1.where} cannot connect to ${h2.where} directly (${r.error.message}); relaying through this host`);
  await h2.channel.close(); // its listener may have timed out meanwhile: start it afresh
  const fresh = await restartH2();
  return { route: await relayVia(o, h1, fresh), h2: fresh };
}

/** How host1's reports are shown: source names as `h1:path`, failures named for their host. */
function reportNames(src: Endpoint, h1: OpenedSession, h2: OpenedSession): ReportNames {
  return {
    source: (name) => showEndpoint(src, name),
    failurePrefix: (code) => (code.startsWith("E_SOURCE_") ? h1.hostPrefix : h2.hostPrefix),
  };
}

/** Wait for host1's SessionSummary, drawing progress from the route meanwhile; with `names`
 * (file_reports asked for) FileReports lines come first, each item told to `out` as it comes,
 * until an empty one. host1 reports within its own timeout once host2 has ended (done or
 * failed); when no report comes (host1 cut off from this host), give up instead of waiting on a
 * dead ssh connection. host1's channel lost mid-session is a vanished peer, not an ssh start
 * failure. */
async function awaitSummary(o: Options, h1: OpenedSession, h2: OpenedSession, route: Route, out: RunOutput, names?: ReportNames): Promise<SessionSummary> {
  const next = (): Promise<{ b: Uint8Array } | { e: unknown }> =>
    h1.channel.recv(24 * 3600_000).then(
      (b) => ({ b }),
      (e: unknown) => ({ e }),
    ); // liveness is the servers' job
  let line = next();
  let reporting = names !== undefined;
  let h2Ended = false;
  void h2.channel.exited.then(() => {
    h2Ended = true;
  });
  const graceMs = 2 * o.timeoutMs + 5000;
  let deadline = Number.POSITIVE_INFINITY;
  const tally = out.reporter.tally;
  for (;;) {
    const r = await Promise.race([line, Bun.sleep(200).then(() => null)]);
    if (r !== null && "b" in r && reporting && names) {
      const items = decodeFileReports(r.b);
      for (const m of items) applyReport(m, out.reporter, names);
      if (items.length === 0) reporting = false;
      line = next();
    } else if (r !== null) {
      if ("b" in r) return decodeSessionSummary(r.b);
      const why = toEscpError(r.e).message;
      throw new EscpError("E_TIMEOUT", `${h1.where}: the escp server ended without reporting the transfer (${why})`);
    }
    out.tick(route.relay ? route.bytes() : tally.bytes, tally.files);
    if (h2Ended && deadline === Number.POSITIVE_INFINITY) deadline = Date.now() + graceMs;
    if (Date.now() > deadline) {
      throw new EscpError(
        "E_TIMEOUT",
        `${h1.where}: no report ${Math.round(graceMs / 1000)} s after ${h2.where} ended (${h1.where} unreachable from this host?)`,
      );
    }
  }
}

function baseFields(o: Options): Omit<SessionInit, "sessionId" | "key" | "versionMajor" | "versionMinor"> {
  return {
    role: "sender",
    threads: o.threads,
    blockSize: o.blocksize,
    ioEngine: o.ioengine,
    checksum: !o.nochecksum,
    direct: !o.nodirect,
    sparse: o.sparse,
    preserve: o.preserve,
    compress: o.compress,
    verbose: o.verbose,
    timeoutMs: o.timeoutMs,
    portStart: o.escpPort,
    portRange: o.escpPortrange,
    ipMode: o.ipv4 ? 4 : o.ipv6 ? 6 : 0,
    rateLimit: o.limit,
    logfile: o.logfile ?? "",
    destPath: "",
    recursive: o.recursive,
    filelist: false,
    sources: [],
    compressLevel: o.compress ? o.compressLevel : 0,
    profile: false,
    sourcePaths: [],
    connectPort: 0,
    helloOnAccept: false,
    awaitGo: false,
    report: false,
    resume: o.resume ? 2 : 1,
    wantPaths: false,
    retries: 0 /* -3: not re-established (the relay does not redial; docs/reliability.md#reconnect) */,
    fileReports: false,
    archive: o.archive,
    xattrs: o.xattrs,
    bundleMax: 0 /* -3: host1 cannot know host2's version when it starts */,
  };
}

/** Print host1's report: one line per failure, named for the host it happened on (a source
 * problem on host1; host2's verdicts, which host1 relays, on host2) unless FileReports told
 * them already (`names`), the summary; returns the exit status. */
function report(s: SessionSummary, h1: OpenedSession, out: RunOutput, names: ReportNames, reported: boolean, seconds: number): number {
  const tally = out.reporter.tally;
  if (!reported) {
    for (const f of s.failures) {
      const code = isErrorCode(f.code) ? f.code : "E_REMOTE";
      out.reporter.failed(new EscpError(code, `${names.failurePrefix(f.code)}${f.message}`));
    }
  }
  out.setCounts({ filesOk: s.filesOk, filesFailed: s.filesFailed, bytes: s.bytes, resumed: s.bytesResumed });
  out.summaryLine({ bytes: s.bytes, files: s.filesOk, failed: s.filesFailed, seconds, resumed: s.bytesResumed });
  if (s.error) throw replyError(h1.where, s.error);
  // Failures host1 counted but did not name (over MAX_SUMMARY_FAILURES) still fail the run.
  const unheard = s.filesFailed - tally.failedCount;
  if (unheard > 0) out.reporter.failed(new EscpError("E_WRITE", `${unheard} more files failed (see the servers' logs)`));
  return tally.exitCode();
}

/** Run `-3 h1:src h2:dst`; returns the exit status. `init` carries the key and session id. */
export async function runThirdParty(
  cfg: RunConfig,
  keyed: Pick<SessionInit, "sessionId" | "key" | "versionMajor" | "versionMinor">,
  out: RunOutput,
): Promise<number> {
  const o = cfg.opts;
  const src = cfg.remote;
  const dst = cfg.dest;
  if (!src || !dst || dst.host === undefined) throw new EscpError("E_USAGE", "-3: give a remote source and a remote destination");
  out.openManifest();
  const base = { ...baseFields(o), ...keyed };
  // Each file's outcome as it comes (host1 → FileReports), with where host2 put it (want_paths).
  const perFile = o.manifest !== undefined || o.json;
  // host1 always awaits a SessionGo: it connects (--direct) or listens (the relay) once host2 is up.
  const init1: SessionInit = {
    ...base,
    role: "sender",
    sourcePaths: src.paths,
    helloOnAccept: true,
    awaitGo: true,
    report: true,
    fileReports: perFile,
  };
  const t0 = performance.now();
  const h1 = await openSession(o, endpoint(src), init1);
  let h2: OpenedSession | undefined;
  let route: Route | undefined;
  try {
    const accepted = checkReportedSources(src.paths, h1.reply.sources, o.recursive);
    log.debug(`${h1.where} will send ${accepted.size} top-level names`);
    const init2: SessionInit = {
      ...base,
      role: "receiver",
      ioEngine: o.ioengineRx,
      destPath: dst.path,
      sources: h1.reply.sources,
      sourcePaths: src.paths,
      wantPaths: perFile,
    };
    const startH2 = (): Promise<OpenedSession> => openSession(o, endpoint(dst), init2);
    h2 = await startH2();
    if (o.direct) ({ route, h2 } = await directOrRelay(o, h1, h2, startH2, out));
    else route = await relayVia(o, h1, h2);
    keyed.key.fill(0); // both servers have it; the relay never needs it
    out.start({
      direction: "third-party",
      sources: src.paths.map((p) => showEndpoint(src, p)),
      destination: showEndpoint(dst, dst.path),
      files: h1.reply.totalFiles,
      bytes: h1.reply.totalBytes,
    });
    const names = reportNames(endpoint(src), h1, h2);
    const summary = await awaitSummary(o, h1, h2, route, out, perFile ? names : undefined);
    return report(summary, h1, out, names, perFile, (performance.now() - t0) / 1000);
  } catch (e) {
    throw toEscpError(e);
  } finally {
    keyed.key.fill(0);
    route?.relay?.close();
    await h1.channel.close();
    await h2?.channel.close();
  }
}
