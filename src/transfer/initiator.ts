// The initiator: the `escp` the user runs. Decides the direction (push or local copy: this side
// is the data source; pull: the data sink), starts the server (ssh, built-in ssh, a local child
// or --mgmt), runs session init, connects the data streams to the server's listener, runs its
// own data role, and owns the progress bar, the summary and the exit status.
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { dirname, resolve } from "node:path";
import type { RunConfig } from "../config/load.ts";
import type { Options } from "../config/options.ts";
import { encodeControl, PROTOCOL_MAJOR, PROTOCOL_MINOR, RANGE_MINOR, STREAM_MINOR, type SessionInit } from "../control/messages.ts";
import { describeSysError, EscpError, toEscpError } from "../errors/escp-error.ts";
import { summarize, walk, type SourceSpec, type WalkMode } from "../fs/discover.ts";
import { ReadAhead } from "../fs/read-ahead.ts";
import { hardenProcess, NativeSession } from "../native/session.ts";
import { log } from "../log/logger.ts";
import { dropChannel, openSession, startChannel, type OpenedSession } from "./open-channel.ts";
import { sessionParams, sinkParams } from "./params.ts";
import { placeDestination, stdoutPlacement } from "./placement.ts";
import { setDataStdout } from "../cli/progress.ts";
import { bundleLimit, nativeResumeLevel, reconnects, resumeOffers, sendsHoles, walkMode, type RoleContext, type SinkPlan, type SourcePlan } from "./plan.ts";
import { RemoteProfile, SpanCollector, type SideRecord } from "./profile-collect.ts";
import { showEndpoint, type RunOutput, type RunStart } from "./run-output.ts";
import { DataSink } from "./sink.ts";
import { DataSource } from "./source.ts";
import { checkReportedSources, makeEntryGuard } from "./request-guard.ts";
import { dataPortOverride, keyDigestHook } from "./fault-points.ts";
import { checkNumaSetting, localAddressTo, placeStreams } from "./numa.ts";
import { runThirdParty } from "./third-party.ts";

/** Session init fields every direction shares: keys, the data plane's shape, limits. */
function baseInit(o: Options): Omit<SessionInit, "role" | "ioEngine" | "destPath" | "sources" | "sourcePaths" | "filelist" | "preserve" | "sparse"> {
  const key = new Uint8Array(randomBytes(32));
  keyDigestHook(key); // test-only: the key's SHA-256 (never the key) for the leak scanner
  return {
    versionMajor: PROTOCOL_MAJOR,
    versionMinor: PROTOCOL_MINOR,
    sessionId: new Uint8Array(randomBytes(16)),
    key,
    threads: o.threads,
    blockSize: o.blocksize,
    checksum: !o.nochecksum,
    direct: !o.nodirect,
    compress: o.compress,
    verbose: o.verbose,
    timeoutMs: o.timeoutMs,
    portStart: o.escpPort,
    portRange: o.escpPortrange,
    ipMode: o.ipv4 ? 4 : o.ipv6 ? 6 : 0,
    rateLimit: o.limit,
    logfile: o.logfile ?? "",
    recursive: o.recursive,
    compressLevel: o.compress ? o.compressLevel : 0,
    profile: o.profile !== undefined,
    connectPort: 0,
    helloOnAccept: false,
    awaitGo: false,
    report: false,
    resume: o.resume ? 2 : 1,
    wantPaths: o.manifest !== undefined || o.json,
    retries: o.retries,
    fileReports: false,
    archive: o.archive,
    xattrs: o.xattrs,
    bundleMax: o.bundleMax,
  };
}

/** --local-listen: this side's native session listens before session init, which then tells
 * the server the port to connect to. Returns the port, or 0 (the server listens). */
function listenHere(o: Options, native: NativeSession): number {
  if (!o.localListen) return 0;
  return native.listen("", o.escpPort, o.escpPortrange);
}

/** Sources as the walker takes them: the positional paths or the --filelist entries. */
function sourceSpecs(cfg: RunConfig): SourceSpec[] {
  if (cfg.stdin) return [{ path: "-", stdin: true }];
  if (cfg.filelistEntries.length === 0) return cfg.sources.map((path) => ({ path }));
  return cfg.filelistEntries.map((e) => ({ path: e.src, ...(e.dst ? { dst: e.dst } : {}), ...(e.range ? { range: e.range } : {}) }));
}

/** Nothing sendable: name every problem and exit without starting a session. */
function nothingToSend(specs: SourceSpec[], mode: WalkMode, out: RunOutput): number {
  const problems: EscpError[] = [];
  for (const item of walk(specs, mode)) {
    if (item.kind === "problem") problems.push(item.error);
    if (item.kind === "notice") out.reporter.notice(item.text);
  }
  for (const p of problems) out.reporter.failed(p);
  if (problems.length > 0) return Math.max(...problems.map((p) => p.exitCode));
  throw new EscpError("E_NOTHING", "nothing to transfer");
}

/** --profile FILE must be writable before any data moves (its report is written at the end). */
function checkProfilePath(path: string): void {
  const dir = dirname(resolve(path));
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new EscpError("E_USAGE", `--profile ${path}: cannot write in ${dir}: ${describeSysError(e)}`, { path });
  }
}

/** What the initiator needs of its own data role, whichever it is. */
interface LocalRole {
  native: NativeSession;
  /** Where the data is read (push) or written (pull): --numa auto's storage. */
  storage: string;
  /** A source is standard input: no hole detection (a stream is read, never probed). */
  stdin?: boolean;
  run(ctx: RoleContext, exited: () => boolean): Promise<void>;
}

/** The common part of every direction: connect, run the local role with progress and profile,
 * close, summarise. Returns the exit status. */
async function drive(o: Options, opened: OpenedSession, role: LocalRole, start: RunStart, out: RunOutput, signal?: AbortSignal): Promise<number> {
  const listening = o.localListen;
  const pull = start.direction === "pull";
  const t0 = performance.now();
  const reporter = out.reporter;
  const theirs = new RemoteProfile();
  let held = 0; // bytes the sink holds from an earlier run: never sent, yet part of the total
  let mine: SideRecord | undefined;
  const native = role.native;
  try {
    if (!reconnects(opened.reply.versionMinor)) native.noRetries(); // a 2.2 peer sends no ACKs
    if (native.role === "sender" && !role.stdin && sendsHoles(opened.reply.versionMinor)) native.sendHoles();
    const via = dataPortOverride(); // test-only: a fault proxy in front of the data port
    const peerAddress = via?.address ?? opened.dataAddress;
    if (!listening) {
      if (opened.reply.port === 0) throw new EscpError("E_PROTOCOL", `${opened.where}: reported no data port`);
      native.connect(peerAddress, via?.port ?? opened.reply.port);
    }
    // Listening, the server's connections arrive on the interface that routes back to it.
    await placeStreams(native, o.numa, async () => ({ localAddress: await localAddressTo(peerAddress), storagePath: role.storage }));
    interrupted(signal);
    native.start(); // listening: the threads start once the server's streams are up
    out.start(start);
    const spans = o.profile !== undefined ? new SpanCollector(native, o.threads) : undefined;
    await role.run(
      {
        native,
        peer: opened.where,
        peerPrefix: opened.hostPrefix,
        reporter,
        onProfile: (m) => theirs.add(m),
        listening,
        held: (bytes) => void (held += bytes),
        tick: () => {
          interrupted(signal); // a library call's AbortSignal: the role stops, the session closes below
          out.tick(native.stats().bytesFile + held, reporter.tally.files);
          spans?.poll();
        },
      },
      () => false,
    ); // the server's channel may close as soon as it said its last word: the streams tell
    mine = spans?.finish();
  } catch (e) {
    const err = toEscpError(e);
    if (err.code === "E_INTERRUPTED") farewell(native, err); // the peer hears why (as on SIGINT)
    native.close();
    await opened.channel.close();
    throw err;
  }
  const { bytesWire: wire, reconnects: redials } = native.stats(); // data-stream bytes incl. framing, both ways
  native.close();
  await opened.channel.close();
  const seconds = (performance.now() - t0) / 1000;
  const tally = reporter.tally;
  log.record("session done", { files: tally.files, bytes: tally.bytes, resumed: tally.resumed, failed: tally.failedCount, seconds, wire, reconnects: redials });
  out.summaryLine({ bytes: tally.bytes, files: tally.files, failed: tally.failedCount, seconds, verb: pull ? "Received" : "Sent", resumed: tally.resumed });
  if (o.profile !== undefined && mine) {
    const { writeTransferProfile } = await import("./profile-write.ts"); // loaded only for --profile
    const other = theirs.record();
    const sides = pull ? { sender: other ?? mine, ...(other ? { receiver: mine } : {}) } : { sender: mine, ...(other ? { receiver: other } : {}) };
    await writeTransferProfile(o, sides, { bytes: tally.bytes, files: tally.files, wallS: seconds });
  }
  return tally.exitCode();
}

/** An aborted library call (RunIo.signal): E_INTERRUPTED, as a signal is for the CLI. */
function interrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new EscpError("E_INTERRUPTED", "interrupted (aborted)");
}

/** The last word to the peer before the session is stopped: a fatal error naming why. */
function farewell(native: NativeSession, err: EscpError): void {
  try {
    native.ctlSend(encodeControl({ type: "error", code: err.code, message: err.message, fatal: true, fino: 0, path: "" }));
  } catch {
    // streams not up, or the control stream already broken: the stop must do
  }
}

/** Push (or a local copy): this side walks the sources and sends them. */
async function runPush(cfg: RunConfig, out: RunOutput): Promise<number> {
  const o = cfg.opts;
  const specs = sourceSpecs(cfg);
  const mode = walkMode(o);
  const dest = cfg.dest;
  if (!dest) throw new EscpError("E_USAGE", "missing destination");
  if (o.profile !== undefined) checkProfilePath(o.profile);
  out.openManifest();
  const starting = startChannel(o, dest); // ssh logs in while the sources are walked
  const ra = o.ioengine === "posix" ? new ReadAhead() : undefined; // and small files are read ahead
  let sum;
  try {
    sum = summarize(specs, ra ? { ...mode, readAhead: ra } : mode); // totals first, entries streamed later
  } catch (e) {
    await dropChannel(starting);
    throw e;
  }
  if (sum.entryCount === 0) {
    await dropChannel(starting);
    return nothingToSend(specs, mode, out);
  }
  const init: SessionInit = {
    ...baseInit(o),
    role: "receiver",
    ioEngine: o.ioengineRx ?? o.ioengine,
    destPath: dest.path,
    sources: sum.topLevel,
    sourcePaths: [],
    filelist: cfg.filelistEntries.length > 0,
    preserve: o.preserve,
    sparse: o.sparse,
  };
  if (sum.stream) init.retries = 0; // standard input cannot be read twice: a dropped stream ends the session
  log.record("session start", {
    dest: `${dest.host === undefined ? "" : `${dest.host}:`}${dest.path}`,
    files: sum.fileCount,
    bytes: sum.totalBytes,
    threads: o.threads,
    blockSize: o.blocksize,
    sparse: o.sparse,
    preserve: o.preserve,
    limit: o.limit,
  });
  const native = new NativeSession("sender", sessionParams(o));
  if (sum.stream) native.noRetries();
  let opened: OpenedSession;
  try {
    native.setKey(init.key, init.sessionId);
    init.connectPort = listenHere(o, native);
    opened = await openSession(o, dest, init, starting);
    if (cfg.filelistEntries.some((e) => e.range !== undefined) && opened.reply.versionMinor < RANGE_MINOR) {
      await opened.channel.close();
      throw new EscpError(
        "E_VERSION",
        `--shard: ${opened.where} runs escp protocol ${opened.reply.versionMajor}.${opened.reply.versionMinor}, which cannot take byte ranges (2.${RANGE_MINOR} or later needed: update escp there)`,
      );
    }
    if (sum.stream && opened.reply.versionMinor < STREAM_MINOR) {
      await opened.channel.close();
      throw new EscpError(
        "E_VERSION",
        `-: ${opened.where} runs escp protocol ${opened.reply.versionMajor}.${opened.reply.versionMinor}, which cannot take a stream from standard input (2.${STREAM_MINOR} or later needed: update escp there)`,
      );
    }
  } catch (e) {
    native.close();
    await dropChannel(starting); // when it failed before openSession took it
    throw e;
  } finally {
    init.key.fill(0); // C has its own copy, wiped once the streams are up
  }
  log.debug(o.localListen ? `${opened.where} connects to port ${init.connectPort}` : `${opened.where} listening`, {
    address: opened.dataAddress,
    port: opened.reply.port,
  });
  // Bundles answer with digests but no destination names: --manifest/--json send files one by one.
  const bundleMax = init.wantPaths ? 0 : bundleLimit(o.bundleMax, opened.reply.versionMinor, o.blocksize, o.ioengine);
  const plan: SourcePlan = {
    specs,
    walk: mode,
    checksum: !o.nochecksum,
    timeoutMs: o.timeoutMs,
    totalBytes: sum.totalBytes,
    bundleMax,
    stdin: sum.stream,
    ...(sum.stream && cfg.io?.feed ? { feed: cfg.io.feed } : {}),
    ...(ra ? { readAhead: ra.total } : {}),
    ...(resumeOffers(init.resume, init.checksum, opened.reply.versionMinor) ? { resume: { blockSize: o.blocksize } } : {}),
  };
  if (bundleMax > 0) native.useBundles();
  const start: RunStart = {
    direction: dest.host === undefined && o.mgmt === undefined ? "local" : "push",
    sources: specs.map((x) => x.path),
    destination: showEndpoint(dest, dest.path),
    files: sum.fileCount,
    bytes: sum.stream ? null : sum.totalBytes,
    stream: sum.stream,
  };
  const storage = sum.stream ? "." : (specs[0]?.path ?? ".");
  return drive(o, opened, { native, storage, stdin: sum.stream, run: (ctx, exited) => new DataSource(plan, ctx).run(exited) }, start, out, cfg.io?.signal);
}

/** Pull: the server walks and sends; this side checks every name against the request. */
async function runPull(cfg: RunConfig, out: RunOutput): Promise<number> {
  const o = cfg.opts;
  // `escp FILE -` (a local file to standard output) is a pull from a local child.
  const remote = cfg.remote ?? (cfg.stdout ? { host: "", paths: cfg.sources.map((p) => resolve(p)) } : undefined);
  const dest = cfg.dest;
  if (!remote || !dest) throw new EscpError("E_USAGE", "missing source or destination");
  const streamFd = cfg.stdout ? cfg.io?.stdoutFd : undefined; // the library's receive(): its pipe
  if (cfg.stdout && streamFd === undefined) setDataStdout(true); // the bar and the summary go to stderr from now on
  if (cfg.filelistEntries.length > 0) throw new EscpError("E_USAGE", `${o.shard !== undefined ? "--shard" : "--filelist"}: only local sources can be listed`);
  if (o.profile !== undefined) checkProfilePath(o.profile);
  out.openManifest();
  const init: SessionInit = {
    ...baseInit(o),
    role: "sender",
    ioEngine: o.ioengine,
    destPath: "",
    sources: [],
    sourcePaths: remote.paths,
    filelist: false,
    preserve: false,
    sparse: false,
  };
  if (cfg.stdout) init.resume = 0; // standard output keeps no partial: nothing to resume from
  const where = {
    ...(remote.host !== "" ? { host: remote.host } : {}),
    path: "",
    ...(remote.user ? { user: remote.user } : {}),
    ...(remote.port ? { port: remote.port } : {}),
  };
  log.record("session start", { source: `${remote.host}:${remote.paths.join(" ")}`, dest: dest.path, threads: o.threads, blockSize: o.blocksize });
  let native: NativeSession | undefined = new NativeSession("receiver", sinkParams(o));
  let opened: OpenedSession;
  try {
    native.setKey(init.key, init.sessionId);
    init.connectPort = listenHere(o, native);
    opened = await openSession(o, where, init);
  } catch (e) {
    native.close();
    throw e;
  } finally {
    init.key.fill(0);
  }
  try {
    const accepted = fromServer(opened.where, () => checkReportedSources(remote.paths, opened.reply.sources, o.recursive));
    if (cfg.stdout && (opened.reply.sources.length !== 1 || opened.reply.sources[0]?.isDir === true)) {
      const n = opened.reply.sources.length;
      throw new EscpError("E_USAGE", `-: standard output takes exactly one file; ${remote.paths[0] ?? ""} names ${n === 1 ? "a directory" : `${n} entries`}`);
    }
    const entryGuard = makeEntryGuard(accepted, o.recursive);
    const plan: SinkPlan = {
      dest: { destPath: dest.path, sources: opened.reply.sources, recursive: o.recursive },
      preserve: o.preserve,
      archive: o.archive,
      xattrs: o.xattrs,
      checksum: !o.nochecksum,
      timeoutMs: o.timeoutMs,
      expectTop: opened.reply.sources.map((x) => x.name),
      bundle: init.bundleMax > 0,
      ...(cfg.stdout ? { stdout: true, ...(streamFd !== undefined ? { streamFd } : {}) } : {}),
      ...(resumeOffers(init.resume, init.checksum, opened.reply.versionMinor) ? { resume: { blockSize: o.blocksize } } : {}),
      guard: (e) => {
        const err = entryGuard(e);
        return err === null || err.code === "E_REJECTED_PATH" ? err : new EscpError(err.code, `${opened.where}: ${err.message}`);
      },
    };
    native.setResume(nativeResumeLevel(init.resume, init.checksum, opened.reply.versionMinor));
    const place = cfg.stdout ? stdoutPlacement() : placeDestination(plan.dest, native);
    const sink = native;
    native = undefined; // drive() owns it from here
    const run = async (ctx: RoleContext, exited: () => boolean): Promise<void> => {
      try {
        await new DataSink(plan, place, ctx).run(exited);
      } catch (e) {
        // a control message that makes no sense came from the server: name it
        const err = toEscpError(e);
        if (err.code !== "E_PROTOCOL" || err.message.startsWith(`${opened.where}: `)) throw err;
        throw new EscpError(err.code, `${opened.where}: ${err.message}`, { cause: err });
      }
    };
    const start: RunStart = {
      direction: "pull",
      sources: remote.paths.map((p) => (remote.host === "" ? p : showEndpoint(remote, p))),
      destination: cfg.stdout ? "standard output" : dest.path,
      files: opened.reply.totalFiles,
      bytes: opened.reply.totalBytes,
      stream: cfg.stdout === true,
    };
    return await drive(o, opened, { native: sink, storage: cfg.stdout ? "." : dest.path, run }, start, out, cfg.io?.signal);
  } catch (e) {
    native?.close();
    await opened.channel.close();
    throw e;
  }
}

/** A check of what the server said; a lie is named with the server's name. */
function fromServer<T>(where: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    const err = toEscpError(e);
    throw new EscpError(err.code, `${where}: ${err.message}`, { cause: err });
  }
}

/** Run a transfer as the user asked; returns the process exit status. `out` shows it (and
 * prints the JSON summary and commits the manifest when main.ts ends it). */
export async function runInitiator(cfg: RunConfig, out: RunOutput): Promise<number> {
  // Before the session key exists: no core dump or same-user debugger can read it out of memory.
  if (!hardenProcess()) log.warn("cannot disable core dumps / ptrace for this process (prctl, setrlimit)");
  const o = cfg.opts;
  checkNumaSetting(o.numa); // a node this machine lacks: exit 2 now, not once ssh is up
  if (cfg.remote && cfg.dest?.host !== undefined) {
    if (o.localListen) throw new EscpError("E_USAGE", "--local-listen: not with -3 (both remote hosts take part; use --direct or the relay)");
    if (o.profile !== undefined) throw new EscpError("E_USAGE", "--profile: not with -3 yet (this host moves no file data)");
    const b = baseInit(o);
    return runThirdParty(cfg, { sessionId: b.sessionId, key: b.key, versionMajor: b.versionMajor, versionMinor: b.versionMinor }, out);
  }
  if (o.thirdParty) throw new EscpError("E_USAGE", "-3: give a remote source (host1:path) and a remote destination (host2:path)");
  if (o.direct) throw new EscpError("E_USAGE", "--direct: only with -3 (a copy between two remote hosts)");
  return cfg.remote || cfg.stdout ? runPull(cfg, out) : runPush(cfg, out);
}
