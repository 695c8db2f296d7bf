// Push transfer, receiver side (`escp --server`): session init over the control channel,
// listen for the data streams, hand each announced name to the native destination (which
// creates, verifies and names every file through directory fds), and report the verdicts.
import { constants } from "node:os";
import type { Options } from "../config/options.ts";
import type { ControlChannel } from "../control/channel.ts";
import { serverStdioChannel } from "../control/stdio.ts";
import { serveMgmt } from "../control/mgmt.ts";
import { cutBatches, verdictBytes } from "../control/batch-bytes.ts";
import {
  decodeControl, decodeSessionInit, encodeControl, encodeSessionReply, MAX_BATCH, PROTOCOL_MAJOR, PROTOCOL_MINOR,
  WINDOW_FILES, type FileDoneMsg, type FileEntry, type FileResultMsg, type SessionInit,
} from "../control/messages.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { hardenProcess, NativeSession } from "../native/session.ts";
import { errnoText, type NativeEvent } from "../native/events.ts";
import * as C from "../native/symbols.ts";
import { configureLogger, log } from "../log/logger.ts";
import { destFailure, placeDestination, type Placement } from "./placement.ts";
import { receiverParams } from "./params.ts";
import { Cadence, hex } from "./pump.ts";
import { faultPoint, faultsArmed, reportedResultDigest } from "./fault-points.ts";
import { peerLost } from "./peer-lost.ts";
import { profileMessages, SpanCollector } from "./profile-collect.ts";

interface RxFile {
  entry: FileEntry;
  shown: string; // where it lands, as users see it
  senderDigest?: Uint8Array;
  rejected?: EscpError; // unsafe name: its blocks are discarded, then this is the verdict
  completed?: boolean; // the sender's FileDone arrived (a second one is a protocol error)
}

const NO_DIGEST = new Uint8Array(0);
const { ELOOP, ENOTDIR, ESTALE } = constants.errno;

/** Address to bind: the one the SSH connection arrived on (SSH_CONNECTION's third field). */
export function bindAddress(env: Record<string, string | undefined>): string {
  const parts = (env.SSH_CONNECTION ?? "").trim().split(/\s+/);
  return parts.length >= 4 && parts[2] ? parts[2] : "127.0.0.1";
}

class Receiver {
  private readonly files = new Map<number, RxFile>();
  private doneRequested = false;
  private resultQueue: FileResultMsg[] = [];
  private readonly spans?: SpanCollector;
  private ok = 0;
  private failed = 0;

  constructor(
    private readonly init: SessionInit,
    private readonly native: NativeSession,
    private readonly place: Placement,
  ) {
    if (init.profile) this.spans = new SpanCollector(native, init.threads);
  }

  private lastSentAt = Date.now();
  private announcedBytes = 0;

  private send(m: Parameters<typeof encodeControl>[0]): void {
    this.native.ctlSend(encodeControl(m));
    this.lastSentAt = Date.now();
  }

  /** Liveness both ways: a control keepalive whenever we have been quiet for timeout/3. */
  private tick(): void {
    if (Date.now() - this.lastSentAt > this.init.timeoutMs / 3) this.send({ type: "keepalive" });
    if (faultsArmed) {
      const b = this.native.stats().bytesFile;
      if (b > 0 && b < this.announcedBytes) faultPoint("receiver", "midblock");
    }
  }

  private result(fino: number, err: EscpError | null, bytes: number, digest: Uint8Array): void {
    if (err) {
      this.failed++;
      log.warn(err.message);
    } else this.ok++;
    this.resultQueue.push({
      type: "fileResult", fino, code: err?.code ?? "", errno: typeof err?.errno === "number" ? err.errno : 0,
      message: err?.message ?? "", bytes, digest: err ? digest : reportedResultDigest(digest),
    });
  }

  /** Send this drain pass's FileResults: one message, or batches of up to MAX_BATCH that fit a control message. */
  private flushResults(): void {
    const q = this.resultQueue;
    if (q.length === 0) return;
    this.resultQueue = [];
    if (q.length === 1) return this.send(q[0]!);
    for (const items of cutBatches(q, MAX_BATCH, verdictBytes)) this.send({ type: "fileResults", items });
  }

  private onFileList(files: FileEntry[]): void {
    faultPoint("receiver", "filelist");
    for (const e of files) {
      if (this.files.has(e.fino)) throw new EscpError("E_PROTOCOL", `file #${e.fino} announced twice`);
      if (e.kind === "file" && this.files.size >= WINDOW_FILES) {
        throw new EscpError("E_PROTOCOL", `sender announced file #${e.fino} with ${WINDOW_FILES} files already awaiting their verdict (the window is ${WINDOW_FILES})`);
      }
      let rel: string;
      try {
        rel = this.place.relFor(e);
      } catch (err) {
        const x = toEscpError(err);
        if (x.code !== "E_REJECTED_PATH") throw x;
        if (e.kind === "file") this.discard(e, x);
        else this.result(e.fino, x, 0, NO_DIGEST); // a refused directory: its files fail on their own
        continue;
      }
      const shown = this.place.show(rel);
      if (e.kind === "dir") {
        const r = this.native.rxDirAdd(e.fino, rel, e);
        if (!r.ok) this.result(e.fino, destFailure(r, e.dst ?? e.name, shown), 0, NO_DIGEST);
        continue;
      }
      const r = this.native.rxFileAdd(e.fino, rel, e.size, e);
      if (!r.ok) {
        this.discard(e, destFailure(r, e.dst ?? e.name, shown));
        continue;
      }
      this.files.set(e.fino, { entry: e, shown });
      this.announcedBytes += e.size;
    }
  }

  /** A file we will not write still has blocks on the wire: C consumes and drops them. */
  private discard(e: FileEntry, err: EscpError): void {
    this.native.rxFileAdd(e.fino, null, e.size, e);
    this.files.set(e.fino, { entry: e, shown: e.name, rejected: err });
  }

  private onEvent(ev: NativeEvent): void {
    const f = this.files.get(ev.fino);
    if ((ev.type === C.ESCP_EV_FILE_DONE || ev.type === C.ESCP_EV_FILE_ERROR) && f) {
      faultPoint("receiver", "verify");
      this.files.delete(ev.fino);
      if (f.rejected) return this.result(ev.fino, f.rejected, 0, NO_DIGEST);
      if (ev.type === C.ESCP_EV_FILE_DONE) { // verified and named in C
        log.debug(`committed ${f.shown}`, { bytes: ev.bytes });
        return this.result(ev.fino, null, ev.bytes, ev.digest);
      }
      return this.result(ev.fino, this.fileError(f, ev), 0, ev.digest);
    }
    if (ev.type === C.ESCP_EV_FATAL || ev.type === C.ESCP_EV_STREAM_DOWN) throw peerLost(this.native, ev, "sender");
    if (ev.type === C.ESCP_EV_LOG) log.debug(`[C] ${ev.text}`);
  }

  private fileError(f: RxFile, ev: NativeEvent): EscpError {
    if (ev.status === C.ESCP_E_DIGEST) {
      const want = f.senderDigest ?? NO_DIGEST;
      return new EscpError("E_DIGEST_MISMATCH", `${f.shown}: BLAKE3 mismatch (sender ${hex(want)}, receiver ${hex(ev.digest)})`, { path: f.shown });
    }
    const why = ev.sysErrno ? `${errnoText(ev.sysErrno)} (${ev.text})` : ev.text || "aborted";
    const code = ev.status === C.ESCP_E_ABORTED ? "E_SOURCE_UNREADABLE" : ev.status === C.ESCP_E_PROTO ? "E_PROTOCOL" : "E_WRITE";
    return new EscpError(code, `${f.shown}: ${why}`, { path: f.shown, errno: ev.sysErrno });
  }

  private onControl(buf: Uint8Array): void {
    const m = decodeControl(buf);
    if (m.type === "fileList") this.onFileList(m.files);
    else if (m.type === "fileDones") for (const d of m.items) this.onDone(d);
    else if (m.type === "fileDone") this.onDone(m);
    else if (m.type === "sessionDone") {
      faultPoint("receiver", "close");
      this.doneRequested = true;
    }
    else if (m.type === "error") throw new EscpError("E_REMOTE", `sender: ${m.message}`);
  }

  private onDone(m: FileDoneMsg): void {
    const f = this.files.get(m.fino);
    if (!f) throw new EscpError("E_PROTOCOL", `completion for unknown file #${m.fino}`);
    if (f.completed) throw new EscpError("E_PROTOCOL", `second completion for file #${m.fino}`);
    if (m.blocks === 0 && m.code === "") throw new EscpError("E_PROTOCOL", `completion of file #${m.fino} with no blocks`);
    if (m.code === "" && m.bytes !== f.entry.size) {
      throw new EscpError("E_PROTOCOL", `completion of file #${m.fino} names ${m.bytes} bytes, not its announced ${f.entry.size}`);
    }
    f.completed = true;
    if (!f.rejected) f.senderDigest = m.digest;
    this.native.rxFileExpect(m.fino, m.blocks, m.code !== "", m.digest);
  }

  /** -p on directories, after every file landed; a directory it could not be applied to is
   * failed by name (as scp -p does), not just logged. */
  private dirsFinish(): void {
    const { failed, more } = this.native.rxDirsFinish();
    for (const { fino, errno } of failed) {
      const why = errno === ESTALE ? "the directory was replaced by another during the transfer"
        : errno === ELOOP || errno === ENOTDIR ? "a symlink or a non-directory took its place during the transfer" : errnoText(errno);
      this.result(fino, new EscpError("E_WRITE", `cannot apply -p mode and times: ${why}`, { errno }), 0, NO_DIGEST);
    }
    if (more > 0) log.warn(`-p: the mode or times of ${more} more directories could not be applied`);
    this.flushResults();
  }

  async run(channelExited: () => boolean): Promise<void> {
    const cadence = new Cadence();
    for (;;) {
      const busy = this.native.drain((m) => this.onControl(m), (ev) => this.onEvent(ev));
      this.flushResults();
      if (this.doneRequested && this.files.size === 0) break;
      this.tick();
      if (channelExited()) throw new EscpError("E_TIMEOUT", "sender vanished (control channel closed)");
      this.spans?.poll();
      await cadence.next(busy);
    }
    if (this.init.preserve) this.dirsFinish();
    log.record("session done", { filesOk: this.ok, filesFailed: this.failed });
    if (this.spans) for (const m of profileMessages(this.spans.finish())) this.send(m);
    this.send({ type: "sessionDoneAck", filesOk: this.ok, filesFailed: this.failed });
  }
}

async function replyError(ch: ControlChannel, err: EscpError): Promise<void> {
  await ch.send(encodeSessionReply({ versionMajor: PROTOCOL_MAJOR, versionMinor: PROTOCOL_MINOR, port: 0, address: "", error: { code: err.code, message: err.message } }));
}

/** What session init asks of this server, checked against the server's own options. */
function acceptInit(opts: Options, init: SessionInit): void {
  if (init.role !== "receiver") {
    throw new EscpError("E_VERSION", `the sender asked this escp to act as ${init.role}; protocol ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR} here only receives`);
  }
  if (opts.restrict !== undefined && init.logfile !== "") {
    throw new EscpError("E_USAGE", "--logfile is not allowed by this server: it restricts where the session may write (--restrict)");
  }
  if (opts.restrict !== undefined && init.destPath.split("/").includes("..")) { // C refuses it too; say why
    throw new EscpError("E_DEST", `destination ${init.destPath}: ".." is not allowed by this server: it keeps every path beneath its --restrict directory`, { path: init.destPath });
  }
}

/** Decode and check session init, start logging, open the destination (beneath --restrict). */
function openSession(opts: Options, init: SessionInit, hardened: boolean): { native: NativeSession; place: Placement } {
  try {
    acceptInit(opts, init);
    configureLogger({
      verbose: opts.verbose || init.verbose, quiet: opts.quiet, role: "server", sessionId: hex(init.sessionId).slice(0, 8),
      ...(init.logfile ? { logfile: init.logfile } : {}),
    });
  } catch (e) {
    init.key.fill(0); // refused: nothing will use the key
    throw e;
  }
  if (!hardened) log.warn("cannot disable core dumps / ptrace for this process (prctl, setrlimit)");
  log.record("session init", {
    dest: init.destPath, threads: init.threads, blockSize: init.blockSize, ioEngine: init.ioEngine, checksum: init.checksum,
    direct: init.direct, sparse: init.sparse, preserve: init.preserve, ports: `${init.portStart}+${init.portRange}`,
    ...(opts.restrict === undefined ? {} : { restrict: opts.restrict }),
  });
  const native = new NativeSession("receiver", receiverParams(init));
  try {
    if (opts.restrict !== undefined) {
      const r = native.rxJail(opts.restrict);
      if (!r.ok) throw new EscpError("E_DEST", `--restrict ${opts.restrict}: ${errnoText(r.errno)}`, { path: opts.restrict });
    }
    return { native, place: placeDestination(init, native) };
  } catch (e) {
    native.close();
    init.key.fill(0);
    throw e;
  }
}

/** `escp --server`: returns the process exit status. */
export async function runReceiver(opts: Options): Promise<number> {
  const ch = opts.mgmt ? await serveMgmt(opts.mgmt) : serverStdioChannel();
  let exited = false;
  void ch.exited.then(() => { exited = true; });
  let init: SessionInit;
  let native: NativeSession;
  let place: Placement;
  // Before the key arrives: no core dump or same-user debugger can read it out of memory.
  const hardened = hardenProcess();
  try {
    const raw = await ch.recv(120_000);
    try {
      init = decodeSessionInit(raw);
    } finally {
      raw.fill(0); // the key's bytes: decodeSessionInit kept a copy in init.key
    }
    faultPoint("receiver", "init");
    ({ native, place } = openSession(opts, init, hardened));
  } catch (e) {
    const err = toEscpError(e);
    log.error(err.message);
    await replyError(ch, err).catch(() => undefined);
    await ch.close();
    return err.exitCode;
  }
  let replied = false;
  try {
    native.setKey(init.key, init.sessionId);
    init.key.fill(0); // C has its own copy (wiped once the streams are up); nothing else reads it
    const addr = bindAddress(process.env);
    const port = native.listen(addr, init.portStart, init.portRange);
    native.start();
    log.debug("listening for data streams", { address: addr, port });
    replied = true;
    await ch.send(encodeSessionReply({ versionMajor: PROTOCOL_MAJOR, versionMinor: PROTOCOL_MINOR, port, address: addr }));
    await new Receiver(init, native, place).run(() => exited);
  } catch (e) {
    init.key.fill(0);
    const err = toEscpError(e);
    log.error(err.message);
    // Before the reply (e.g. every data port busy) the sender waits for one: say why in it.
    if (!replied) await replyError(ch, err).catch(() => undefined);
    try {
      native.ctlSend(encodeControl({ type: "error", code: err.code, message: err.message, fatal: true, fino: 0, path: "" }));
    } catch {
      // the control stream may already be gone; ssh stderr still carries the log line
    }
    native.close(); // threads joined, then every temporary of an unfinished file is removed
    await ch.close();
    return err.exitCode;
  }
  native.close();
  await ch.close();
  return 0;
}
