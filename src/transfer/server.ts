// `escp --server`: the side an initiator starts (over ssh, as a local child, or on a --mgmt
// socket). Reads SessionInit, checks it against this server's own options, dispatches on the
// data role it is asked to play (receiver → data sink, sender → data source; anything else is
// refused with a version error), listens for the data streams, replies, and runs the role.
import type { Options } from "../config/options.ts";
import type { ControlChannel } from "../control/channel.ts";
import { serverStdioChannel } from "../control/stdio.ts";
import { serveMgmt } from "../control/mgmt.ts";
import {
  decodeSessionGo,
  decodeSessionInit,
  encodeControl,
  encodeSessionGoReply,
  encodeSessionReply,
  encodeSessionSummary,
  MAX_SUMMARY_FAILURES,
  NOTICE_MINOR,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type SessionInit,
  type SessionReply,
} from "../control/messages.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { summarize } from "../fs/discover.ts";
import { ReadAhead } from "../fs/read-ahead.ts";
import { hardenProcess, NativeSession } from "../native/session.ts";
import { errnoText } from "../native/events.ts";
import { configureLogger, log } from "../log/logger.ts";
import { placeDestination } from "./placement.ts";
import { receiverParams, serverSourceParams, sourceBundleMax } from "./params.ts";
import { hex } from "./pump.ts";
import { faultPoint, faultReplyMinor } from "./fault-points.ts";
import { profileMessages, SpanCollector } from "./profile-collect.ts";
import { ReportForwarder } from "./file-reports.ts";
import { LogReporter } from "./reporter.ts";
import { DataSink } from "./sink.ts";
import { DataSource } from "./source.ts";
import { expandDestPath, expandSourcePaths } from "./server-paths.ts";
import { placeStreams } from "./numa.ts";
import { resumeOffers, walkMode, type RoleContext, type SinkPlan, type SourcePlan } from "./plan.ts";
import { checkReportedSources, makeEntryGuard } from "./request-guard.ts";

/** Address to bind: the one the SSH connection arrived on (SSH_CONNECTION's third field). */
export function bindAddress(env: Record<string, string | undefined>): string {
  const parts = (env.SSH_CONNECTION ?? "").trim().split(/\s+/);
  return parts.length >= 4 && parts[2] ? parts[2] : "127.0.0.1";
}

/** Address to connect to under --local-listen: the SSH client's (SSH_CONNECTION's first field). */
export function initiatorAddress(env: Record<string, string | undefined>): string {
  const parts = (env.SSH_CONNECTION ?? "").trim().split(/\s+/);
  return parts.length >= 4 && parts[0] ? parts[0] : "127.0.0.1";
}

function reply(extra: Partial<SessionReply> = {}): Uint8Array {
  return encodeSessionReply({
    versionMajor: PROTOCOL_MAJOR,
    versionMinor: faultReplyMinor() ?? PROTOCOL_MINOR,
    port: 0,
    address: "",
    sources: [],
    totalFiles: 0,
    totalBytes: 0,
    ...extra,
  });
}

/** What session init asks of this server, checked against the server's own options. */
function acceptInit(opts: Options, init: SessionInit): void {
  if (opts.restrict !== undefined && init.logfile !== "") {
    throw new EscpError("E_USAGE", "--logfile is not allowed by this server: it restricts where the session may write (--restrict)");
  }
  if (opts.restrict !== undefined && init.destPath.split("/").includes("..")) {
    // C refuses it too; say why
    throw new EscpError("E_DEST", `destination ${init.destPath}: ".." is not allowed by this server: it keeps every path beneath its --restrict directory`, {
      path: init.destPath,
    });
  }
  if (opts.restrict !== undefined && init.role === "sender") {
    throw new EscpError("E_USAGE", "this server only receives: it restricts the session to its --restrict directory (pull is not allowed)");
  }
}

function startLogging(opts: Options, init: SessionInit, hardened: boolean): void {
  configureLogger({
    verbose: opts.verbose || init.verbose,
    quiet: opts.quiet,
    role: "server",
    sessionId: hex(init.sessionId).slice(0, 8),
    ...(init.logfile ? { logfile: init.logfile } : {}),
  });
  if (!hardened) log.warn("cannot disable core dumps / ptrace for this process (prctl, setrlimit)");
  log.record("session init", {
    role: init.role,
    dest: init.destPath,
    sources: init.sourcePaths.length,
    threads: init.threads,
    blockSize: init.blockSize,
    ioEngine: init.ioEngine,
    checksum: init.checksum,
    direct: init.direct,
    sparse: init.sparse,
    preserve: init.preserve,
    ports: `${init.portStart}+${init.portRange}`,
    ...(opts.restrict === undefined ? {} : { restrict: opts.restrict }),
  });
}

/** A role ready to run once the streams are up, and what the reply must say about it. */
interface Prepared {
  native: NativeSession;
  /** Where the data is written (receiver) or read (sender): --numa auto's storage. */
  storage: string;
  reply: Partial<SessionReply>;
  run: (ctx: RoleContext, exited: () => boolean) => Promise<void>;
}

/** Receiver: the destination is opened (beneath --restrict) before anything is listened for. */
function prepareSink(opts: Options, init: SessionInit): Prepared {
  const native = new NativeSession("receiver", receiverParams(init));
  try {
    if (opts.restrict !== undefined) {
      const r = native.rxJail(opts.restrict);
      if (!r.ok) throw new EscpError("E_DEST", `--restrict ${opts.restrict}: ${errnoText(r.errno)}`, { path: opts.restrict });
    }
    const dest = { destPath: expandDestPath(init.destPath), sources: init.sources, recursive: init.recursive, filelist: init.filelist };
    const place = placeDestination(dest, native);
    // -3: the initiator passes what it asked host1 for; this side holds host1 to it too.
    const guard =
      init.sourcePaths.length > 0 ? makeEntryGuard(checkReportedSources(init.sourcePaths, init.sources, init.recursive), init.recursive) : undefined;
    const plan: SinkPlan = {
      dest,
      preserve: init.preserve,
      archive: init.archive,
      xattrs: init.xattrs,
      checksum: init.checksum,
      timeoutMs: init.timeoutMs,
      wantPaths: init.wantPaths,
      bundle: init.bundleMax > 0,
      ...(guard ? { guard, expectTop: init.sources.map((x) => x.name) } : {}),
      ...(resumeOffers(init.resume, init.checksum, init.versionMinor) ? { resume: { blockSize: init.blockSize } } : {}),
    };
    return { native, storage: dest.destPath, reply: {}, run: async (ctx, exited) => void (await new DataSink(plan, place, ctx).run(exited)) };
  } catch (e) {
    native.close();
    throw e;
  }
}

/** Sender (a pull): expand what was asked for, walk it once for the totals and names. */
function prepareSource(init: SessionInit): Prepared {
  const { specs, problems } = expandSourcePaths(init.sourcePaths);
  const mode = walkMode(init);
  const ra = init.ioEngine === "posix" ? new ReadAhead() : undefined;
  const sum = summarize(specs, ra ? { ...mode, readAhead: ra } : mode);
  const native = new NativeSession("sender", serverSourceParams(init));
  const plan: SourcePlan = {
    specs,
    walk: mode,
    checksum: init.checksum,
    timeoutMs: init.timeoutMs,
    totalBytes: sum.totalBytes,
    problems,
    bundleMax: sourceBundleMax(init),
    ...(ra ? { readAhead: ra.total } : {}),
    ...(resumeOffers(init.resume, init.checksum, init.versionMinor) ? { resume: { blockSize: init.blockSize } } : {}),
  };
  return {
    native,
    storage: specs[0]?.path ?? ".",
    reply: { sources: sum.topLevel, totalFiles: sum.fileCount, totalBytes: sum.totalBytes },
    run: (ctx, exited) => new DataSource(plan, { ...ctx, problemsToPeer: true, noticesToPeer: init.versionMinor >= NOTICE_MINOR }).run(exited),
  };
}

/** `escp --server`: returns the process exit status. */
export async function runServer(opts: Options): Promise<number> {
  const ch = opts.mgmt ? await serveMgmt(opts.mgmt) : serverStdioChannel();
  let exited = false;
  void ch.exited.then(() => {
    exited = true;
  });
  const hardened = hardenProcess(); // before the key arrives: no core dump or debugger reads it
  let init: SessionInit;
  let prepared: Prepared;
  try {
    const raw = await ch.recv(120_000);
    try {
      init = decodeSessionInit(raw);
    } finally {
      raw.fill(0); // the key's bytes: decodeSessionInit kept a copy in init.key
    }
    faultPoint(init.role, "init"); // the data role it was asked to play (a pull's server is the sender)
    try {
      acceptInit(opts, init);
      startLogging(opts, init, hardened);
      prepared = init.role === "receiver" ? prepareSink(opts, init) : prepareSource(init);
    } catch (e) {
      init.key.fill(0); // refused: nothing will use the key
      throw e;
    }
  } catch (e) {
    return refuse(ch, toEscpError(e));
  }
  return serve(ch, init, prepared, opts.numa, () => exited);
}

async function refuse(ch: ControlChannel, err: EscpError): Promise<number> {
  log.error(err.message);
  await ch.send(reply({ error: { code: err.code, message: err.message } })).catch(() => undefined);
  await ch.close();
  return err.exitCode;
}

/** -3 --direct, host1: after its reply it waits for SessionGo — connect to host2, or (the relay
 * fallback) listen answering challenges — and answers each with a SessionGoReply. The key is
 * kept until the streams are up, since a failed connect wipes the native copy. */
async function awaitGo(ch: ControlChannel, init: SessionInit, native: NativeSession, key: Uint8Array): Promise<boolean> {
  for (;;) {
    const go = decodeSessionGo(await ch.recv(init.timeoutMs * 4 + 120_000));
    if (go.connectPort === 0) {
      const addr = bindAddress(process.env);
      const port = native.listen(addr, init.portStart, init.portRange);
      native.start();
      await ch.send(encodeSessionGoReply({ port, address: addr }));
      return true;
    }
    try {
      native.connect(go.connectAddress, go.connectPort);
      native.start();
      await ch.send(encodeSessionGoReply({ port: 0, address: "" }));
      return false;
    } catch (e) {
      const err = toEscpError(e);
      log.debug(`direct connection failed: ${err.message}`);
      await ch.send(encodeSessionGoReply({ port: 0, address: "", error: { code: err.code, message: err.message } }));
      native.setKey(key, init.sessionId); // the failed connect wiped it: the relay fallback needs it
    }
  }
}

/** Bring the streams up as session init asked: listen (the default), connect to the initiator
 * (--local-listen), or await SessionGo (-3 --direct). Replies on the way. Returns whether this
 * side listens. */
async function bringUp(ch: ControlChannel, init: SessionInit, p: Prepared, key: Uint8Array, state: { replied: boolean }): Promise<boolean> {
  const native = p.native;
  const send = async (m: Partial<SessionReply>): Promise<void> => {
    state.replied = true;
    await ch.send(reply(m));
  };
  if (init.awaitGo) {
    await send(p.reply);
    return awaitGo(ch, init, native, key);
  }
  if (init.connectPort === 0) {
    const addr = bindAddress(process.env);
    const port = native.listen(addr, init.portStart, init.portRange);
    native.start();
    log.debug("listening for data streams", { address: addr, port });
    await send({ ...p.reply, port, address: addr });
    return true;
  }
  await send(p.reply); // --local-listen: say yes first, then connect to the initiator
  const addr = initiatorAddress(process.env);
  log.debug("connecting the data streams", { address: addr, port: init.connectPort });
  native.connect(addr, init.connectPort);
  native.start();
  return false;
}

/** Listen or connect, reply, run the role; every failure is told to the initiator once. */
async function serve(ch: ControlChannel, init: SessionInit, p: Prepared, numa: string, exited: () => boolean): Promise<number> {
  const native = p.native;
  // A dummy receiver names no file: its log says the bytes were discarded, never "committed".
  const verb = init.role !== "receiver" ? "verified" : init.ioEngine === "dummy" ? "discarded (--ioengine dummy, nothing written)" : "committed";
  const logged = new LogReporter(init.report ? MAX_SUMMARY_FAILURES : 0, verb);
  // -3 host1 with --manifest/--json on the initiator: each outcome also goes there as it comes.
  const forward = init.report && init.fileReports ? new ReportForwarder(logged, (line) => ch.send(line)) : undefined;
  const reporter = forward ?? logged;
  const key = init.key.slice(); // kept only while the streams come up (awaitGo may need it twice)
  init.key.fill(0);
  const state = { replied: false, up: false };
  try {
    native.setKey(key, init.sessionId);
    if (!init.awaitGo) key.fill(0); // C has its own copy (wiped once the streams are up)
    // This server's own --numa (its config file or ESCP_NUMA; session init carries none). The
    // data streams use the address the SSH connection came in on, whether it listens or connects.
    await placeStreams(native, numa, { localAddress: bindAddress(process.env), storagePath: p.storage });
    const listening = await bringUp(ch, init, p, key, state);
    state.up = true;
    key.fill(0);
    const spans = init.profile ? new SpanCollector(native, init.threads) : undefined;
    const ctx: RoleContext = {
      native,
      peer: init.role === "receiver" ? "sender" : "receiver",
      peerPrefix: "",
      reporter,
      listening,
      tick: () => {
        spans?.poll();
        forward?.tick();
      },
      closingMessages: () => (spans ? profileMessages(spans.finish()) : []),
    };
    await p.run(ctx, exited);
  } catch (e) {
    key.fill(0);
    const err = toEscpError(e);
    log.error(err.message);
    // Before the reply (e.g. every data port busy) the initiator waits for one: say why in it.
    if (!state.replied) await ch.send(reply({ error: { code: err.code, message: err.message } })).catch(() => undefined);
    try {
      native.ctlSend(encodeControl({ type: "error", code: err.code, message: err.message, fatal: true, fino: 0, path: "" }));
    } catch {
      // the control stream may already be gone; ssh stderr still carries the log line
    }
    native.close(); // threads joined, then every temporary of an unfinished file is removed
    if (state.up) await forward?.end(); // before that the initiator awaits a reply, not reports
    if (init.report) await ch.send(summary(logged, { code: err.code, message: err.message })).catch(() => undefined);
    await ch.close();
    return err.exitCode;
  }
  native.close();
  await forward?.end();
  if (init.report) await ch.send(summary(logged)).catch(() => undefined);
  await ch.close();
  return 0;
}

function summary(r: LogReporter, error?: { code: string; message: string }): Uint8Array {
  return encodeSessionSummary({
    filesOk: r.okCount,
    filesFailed: r.failedCount,
    bytes: r.bytes,
    failures: r.failures,
    moreFailures: r.failedCount - r.failures.length,
    ...(error ? { error } : {}),
    bytesResumed: r.resumed,
  });
}
