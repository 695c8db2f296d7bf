// Push transfer, sender side: discover sources, start the receiver, announce files over the
// control stream, feed the native sender, compare end-to-end digests, report and summarise.
import { randomBytes } from "node:crypto";
import type { RunConfig } from "../config/load.ts";
import { accessSync, constants } from "node:fs";
import { dirname, resolve } from "node:path";
import { describeSysError, EscpError, toEscpError } from "../errors/escp-error.ts";
import { isErrorCode } from "../errors/codes.ts";
import { summarize, walk, type FoundEntry, type SourceSpec, type Summary } from "../fs/discover.ts";
import { encodeControl, decodeControl, MAX_BATCH, PROTOCOL_MAJOR, PROTOCOL_MINOR, type ControlMsg, type FileDoneMsg, type FileResultMsg, type SessionInit } from "../control/messages.ts";
import { Announcer } from "./announcer.ts";
import { cutBatches, verdictBytes } from "../control/batch-bytes.ts";
import { hardenProcess, NativeSession } from "../native/session.ts";
import { errnoText, type NativeEvent } from "../native/events.ts";
import { peerLost } from "./peer-lost.ts";
import * as C from "../native/symbols.ts";
import { Progress, term } from "../cli/progress.ts";
import { log } from "../log/logger.ts";
import { openSession, type OpenedSession } from "./open-channel.ts";
import { Cadence, hex, isZero } from "./pump.ts";
import { Tally } from "./summary.ts";
import { sessionParams } from "./params.ts";
import { RemoteProfile, SpanCollector, type SideRecord } from "./profile-collect.ts";
import { dataPortOverride, faultPoint, faultsArmed, keyDigestHook, reportedDigest } from "./fault-points.ts";

/** A file between announcement and verdict (then it is forgotten: memory stays bounded). */
interface Tracked {
  entry: FoundEntry;
  digest?: Uint8Array;
}

function buildInit(cfg: RunConfig, sum: Summary): SessionInit {
  const o = cfg.opts;
  return {
    versionMajor: PROTOCOL_MAJOR, versionMinor: PROTOCOL_MINOR,
    sessionId: new Uint8Array(randomBytes(16)), key: new Uint8Array(randomBytes(32)),
    role: "receiver", threads: o.threads, blockSize: o.blocksize, ioEngine: o.ioengineRx ?? o.ioengine,
    checksum: !o.nochecksum, direct: !o.nodirect, sparse: o.sparse, preserve: o.preserve,
    compress: o.compress, verbose: o.verbose, timeoutMs: o.timeoutMs, portStart: o.escpPort,
    portRange: o.escpPortrange, ipMode: o.ipv4 ? 4 : o.ipv6 ? 6 : 0, rateLimit: o.limit,
    logfile: o.logfile ?? "", destPath: cfg.dest?.path ?? "", recursive: o.recursive,
    filelist: cfg.filelistEntries.length > 0,
    sources: sum.topLevel, compressLevel: o.compress ? o.compressLevel : 0, profile: o.profile !== undefined,
  };
}

class Sender {
  private readonly files = new Map<number, Tracked>();
  private readonly dirs = new Map<number, FoundEntry>(); // only to name a refused directory
  private readonly tally = new Tally();
  private ackSeen = false;
  private outstanding = 0; // files announced without a verdict yet
  private announced = 0;
  private lastProgressAt = Date.now();
  private lastBytes = -1;
  readonly spans?: SpanCollector;
  readonly remoteProfile = new RemoteProfile();

  constructor(
    private readonly cfg: RunConfig,
    private readonly native: NativeSession,
    private readonly opened: OpenedSession,
    private readonly progress: Progress,
    private readonly totalBytes: number,
  ) {
    if (cfg.opts.profile !== undefined) this.spans = new SpanCollector(native, cfg.opts.threads);
  }

  private lastSentAt = Date.now();
  private doneQueue: FileDoneMsg[] = []; // FileDone of this drain pass, sent as one batch

  private send(m: ControlMsg): void {
    this.native.ctlSend(encodeControl(m));
    this.lastSentAt = Date.now();
  }

  /** Send the queued FileDone messages: one message, or batches of up to MAX_BATCH that fit a control message. */
  private flushDone(): void {
    const q = this.doneQueue;
    if (q.length === 0) return;
    this.doneQueue = [];
    if (q.length === 1) return this.send(q[0]!);
    for (const items of cutBatches(q, MAX_BATCH, verdictBytes)) this.send({ type: "fileDones", items });
  }

  /** Wire the walk to the receiver and the native queue; step() is called every tick. */
  announcer(specs: SourceSpec[]): Announcer {
    return new Announcer(walk(specs, this.cfg.opts.recursive), {
      fileList: (files, last) => {
        this.send({ type: "fileList", files, last });
        faultPoint("sender", "filelist");
      },
      file: (fino, e) => {
        this.files.set(fino, { entry: e });
        this.outstanding++;
        this.announced++;
        this.native.txFileAdd(fino, e.path, e.size);
      },
      dir: (fino, e) => void this.dirs.set(fino, e),
      problem: (err) => {
        this.tally.failed(err);
        term.error(`escp: ${err.message}`);
      },
      finished: () => this.native.txFinish(),
    });
  }

  private onEvent(ev: NativeEvent): void {
    const t = this.files.get(ev.fino);
    if (ev.type === C.ESCP_EV_FILE_DONE && t) {
      t.digest = ev.digest;
      this.doneQueue.push({ type: "fileDone", fino: ev.fino, blocks: ev.blocks, bytes: ev.bytes, code: "", errno: 0, message: "", digest: reportedDigest(ev.digest) });
    } else if (ev.type === C.ESCP_EV_FILE_ERROR && t) {
      const err = this.native.error(ev.status, `${t.entry.path}`);
      const why = ev.sysErrno ? `${errnoText(ev.sysErrno)} (${ev.text})` : ev.text || err.message;
      this.fail(ev.fino, new EscpError(err.code, `${t.entry.path}: ${why}`, { path: t.entry.path, errno: ev.sysErrno }));
      this.doneQueue.push({ type: "fileDone", fino: ev.fino, blocks: ev.blocks, bytes: ev.bytes, code: err.code, errno: ev.sysErrno, message: why, digest: new Uint8Array(0) });
    } else if (ev.type === C.ESCP_EV_FATAL || ev.type === C.ESCP_EV_STREAM_DOWN) {
      throw peerLost(this.native, ev, this.opened.where);
    } else if (ev.type === C.ESCP_EV_LOG) {
      log.debug(`[C] ${ev.text}`);
    }
  }

  private fail(fino: number, err: EscpError): void {
    if (!this.files.delete(fino)) return;
    this.outstanding--;
    this.tally.failed(err);
    term.error(`escp: ${err.message}`);
  }

  private onControl(buf: Uint8Array): void {
    const m = decodeControl(buf);
    if (m.type === "fileResults") for (const r of m.items) this.onResult(r);
    else if (m.type === "fileResult") this.onResult(m);
    else if (m.type === "error") {
      throw new EscpError(isErrorCode(m.code) ? m.code : "E_REMOTE", `${this.opened.where}: ${m.message}`);
    } else if (m.type === "sessionDoneAck") {
      this.ackSeen = true;
    } else if (m.type === "profileData") {
      this.remoteProfile.add(m);
    }
  }

  private onResult(m: FileResultMsg): void {
    faultPoint("sender", "verify");
    const t = this.files.get(m.fino);
    if (!t) return this.dirRefused(m.fino, m.code, m.message);
    if (m.code) {
      const code = isErrorCode(m.code) ? m.code : "E_WRITE";
      const where = this.cfg.dest?.host ? `${this.cfg.dest.host}:` : "";
      return this.fail(m.fino, new EscpError(code, `${where}${t.entry.name}: ${m.message}`, { path: t.entry.path }));
    }
    const mine = t.digest ?? new Uint8Array(0);
    if (!this.cfg.opts.nochecksum && (isZero(mine) || hex(mine) !== hex(m.digest))) {
      return this.fail(m.fino, new EscpError("E_DIGEST_MISMATCH", `${t.entry.path}: BLAKE3 mismatch (sent ${hex(mine)}, received ${hex(m.digest)})`, { path: t.entry.path }));
    }
    this.files.delete(m.fino);
    this.outstanding--;
    this.tally.ok(m.bytes);
    log.debug(`verified ${t.entry.path}`, { bytes: m.bytes });
  }

  /** The receiver refused a directory (e.g. an unsafe path): name it once, count it failed. */
  private dirRefused(fino: number, code: string, message: string): void {
    const d = this.dirs.get(fino);
    if (!d || !code) return;
    this.dirs.delete(fino);
    const where = this.cfg.dest?.host ? `${this.cfg.dest.host}:` : "";
    const err = new EscpError(isErrorCode(code) ? code : "E_WRITE", `${where}${d.name}: ${message}`, { path: d.path });
    this.tally.failed(err);
    term.error(`escp: ${err.message}`);
  }

  /** Drain rings until every file has a verdict, then close the session politely. */
  async run(announcer: Announcer): Promise<Tally> {
    const cadence = new Cadence();
    let sentDone = false;
    for (;;) {
      const added = announcer.step(this.outstanding);
      const busy = this.native.drain((m) => this.onControl(m), (ev) => this.onEvent(ev)) || added > 0;
      this.flushDone();
      this.watch();
      if (announcer.done && this.outstanding === 0 && !sentDone) {
        this.send({ type: "sessionDone", files: this.announced, bytes: this.tally.bytes });
        sentDone = true;
        faultPoint("sender", "close");
      }
      if (sentDone && this.ackSeen) return this.tally;
      this.spans?.poll();
      await cadence.next(busy);
    }
  }

  private watch(): void {
    const s = this.native.stats();
    this.progress.update(s.bytesFile, this.tally.files);
    const now = Date.now();
    if (now - this.lastSentAt > this.cfg.opts.timeoutMs / 3) this.send({ type: "keepalive" });
    if (faultsArmed && s.bytesFile > 0 && s.bytesFile < this.totalBytes) faultPoint("sender", "midblock");
    if (s.bytesFile !== this.lastBytes) {
      this.lastBytes = s.bytesFile;
      this.lastProgressAt = now;
    } else if (now - this.lastProgressAt > this.cfg.opts.timeoutMs * 2) {
      throw new EscpError("E_TIMEOUT", `no progress from ${this.opened.where} for ${Math.round((now - this.lastProgressAt) / 1000)} s`);
    }
  }
}

/** Sources as the walker takes them: the positional paths or the --filelist entries. */
function sourceSpecs(cfg: RunConfig): SourceSpec[] {
  if (cfg.filelistEntries.length === 0) return cfg.sources.map((path) => ({ path }));
  return cfg.filelistEntries.map((e) => ({ path: e.src, ...(e.dst ? { dst: e.dst } : {}) }));
}

/** Nothing sendable: name every problem and exit without starting a session. */
function nothingToSend(specs: SourceSpec[], recursive: boolean): number {
  const problems: EscpError[] = [];
  for (const item of walk(specs, recursive)) if (item.kind === "problem") problems.push(item.error);
  for (const p of problems) term.error(`escp: ${p.message}`);
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

/** Run a push transfer; returns the process exit status. */
export async function runSender(cfg: RunConfig): Promise<number> {
  const o = cfg.opts;
  const specs = sourceSpecs(cfg);
  const sum = summarize(specs, o.recursive); // totals first, entries streamed later
  if (sum.entryCount === 0) return nothingToSend(specs, o.recursive);
  const dest = cfg.dest;
  if (!dest) throw new EscpError("E_USAGE", "missing destination");
  if (o.profile !== undefined) checkProfilePath(o.profile);
  const progress = new Progress({ quiet: o.quiet, bits: o.bits });
  const t0 = performance.now();
  // Before the key exists: no core dump or same-user debugger can read it out of memory.
  if (!hardenProcess()) log.warn("cannot disable core dumps / ptrace for this process (prctl, setrlimit)");
  const init = buildInit(cfg, sum);
  keyDigestHook(init.key);
  log.record("session start", {
    dest: `${dest.host === undefined ? "" : `${dest.host}:`}${dest.path}`, files: sum.fileCount, bytes: sum.totalBytes,
    threads: o.threads, blockSize: o.blocksize, sparse: o.sparse, preserve: o.preserve, limit: o.limit,
  });
  const opened = await openSession(o, dest, init).catch((e: unknown) => {
    init.key.fill(0);
    throw e;
  });
  log.debug(`${opened.where} listening`, { address: opened.dataAddress, port: opened.reply.port });
  let native: NativeSession | undefined;
  let tally: Tally;
  let mine: SideRecord | undefined;
  let theirs: SideRecord | undefined;
  try {
    native = new NativeSession("sender", sessionParams(o));
    native.setKey(init.key, init.sessionId);
    init.key.fill(0); // the receiver has it, C has its own copy (wiped once the streams are up)
    const via = dataPortOverride(); // test-only: a fault proxy in front of the data port
    native.connect(via?.address ?? opened.dataAddress, via?.port ?? opened.reply.port);
    native.start();
    progress.start(sum.totalBytes, sum.fileCount);
    const s = new Sender(cfg, native, opened, progress, sum.totalBytes);
    tally = await s.run(s.announcer(specs));
    mine = s.spans?.finish();
    theirs = s.remoteProfile.record();
  } catch (e) {
    init.key.fill(0);
    native?.close();
    await opened.channel.close();
    throw toEscpError(e);
  }
  native.close();
  await opened.channel.close();
  const seconds = (performance.now() - t0) / 1000;
  log.record("session done", { files: tally.files, bytes: tally.bytes, failed: tally.failedCount, seconds });
  progress.finish({ bytes: tally.bytes, files: tally.files, failed: tally.failedCount, seconds });
  if (o.profile !== undefined && mine) {
    const { writeTransferProfile } = await import("./profile-write.ts"); // loaded only for --profile
    await writeTransferProfile(o, { sender: mine, ...(theirs ? { receiver: theirs } : {}) }, { bytes: tally.bytes, files: tally.files, wallS: seconds });
  }
  return tally.exitCode();
}
