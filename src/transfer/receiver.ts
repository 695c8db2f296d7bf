// Push transfer, receiver side (`escp --server`): session init over the control channel,
// listen for the data streams, place files safely under the destination, verify, commit.
import type { Options } from "../config/options.ts";
import type { ControlChannel } from "../control/channel.ts";
import { serverStdioChannel } from "../control/stdio.ts";
import { serveMgmt } from "../control/mgmt.ts";
import {
  decodeControl, decodeSessionInit, encodeControl, encodeSessionReply,
  MAX_BATCH, PROTOCOL_MAJOR, PROTOCOL_MINOR, type FileDoneMsg, type FileEntry, type FileResultMsg, type SessionInit,
} from "../control/messages.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { hardenProcess, NativeSession } from "../native/session.ts";
import { errnoText, type NativeEvent } from "../native/events.ts";
import * as C from "../native/symbols.ts";
import { configureLogger, log } from "../log/logger.ts";
import { placeDestination, type Placement } from "./placement.ts";
import { applyDirMeta, commitFile, removeQuietly, tempPathFor } from "../fs/commit.ts";
import { receiverParams } from "./params.ts";
import { Cadence, hex, isZero } from "./pump.ts";
import { faultPoint, faultsArmed } from "./fault-points.ts";
import { peerLost } from "./peer-lost.ts";
import { profileMessages, SpanCollector } from "./profile-collect.ts";

interface RxFile {
  entry: FileEntry;
  final: string;
  tmp: string;
  senderDigest?: Uint8Array;
  rejected?: EscpError; // unsafe name: its blocks are sunk to /dev/null, then this is the verdict
  completed?: boolean; // the sender's FileDone arrived (a second one is a protocol error)
  nativeCommit?: boolean; // C checks the digest and renames (FILE_DONE = committed)
}

/** Address to bind: the one the SSH connection arrived on (SSH_CONNECTION's third field). */
export function bindAddress(env: Record<string, string | undefined>): string {
  const parts = (env.SSH_CONNECTION ?? "").trim().split(/\s+/);
  return parts.length >= 4 && parts[2] ? parts[2] : "127.0.0.1";
}

class Receiver {
  private readonly files = new Map<number, RxFile>();
  private readonly dirs: [string, FileEntry][] = [];
  private readonly umask = process.umask();
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
    this.resultQueue.push({ type: "fileResult", fino, code: err?.code ?? "", errno: typeof err?.errno === "number" ? err.errno : 0, message: err?.message ?? "", bytes, digest });
  }

  /** Send this drain pass's FileResults: one message, or batches of up to MAX_BATCH. */
  private flushResults(): void {
    const q = this.resultQueue;
    if (q.length === 0) return;
    this.resultQueue = [];
    if (q.length === 1) return this.send(q[0]!);
    for (let i = 0; i < q.length; i += MAX_BATCH) this.send({ type: "fileResults", items: q.slice(i, i + MAX_BATCH) });
  }

  private onFileList(files: FileEntry[]): void {
    faultPoint("receiver", "filelist");
    const sid = hex(this.init.sessionId);
    for (const e of files) {
      if (this.files.has(e.fino)) throw new EscpError("E_PROTOCOL", `file #${e.fino} announced twice`);
      let final: string;
      try {
        final = this.place.pathFor(e);
      } catch (err) {
        const x = toEscpError(err);
        if (e.kind === "file") this.rejectFile(e, x);
        else this.result(e.fino, x, 0, new Uint8Array(0)); // a refused directory: its files fail on their own
        continue;
      }
      if (e.kind === "dir") {
        this.dirs.push([final, e]);
        continue;
      }
      // Without -p the whole commit (digest check + rename) happens in C, off this thread.
      const nativeCommit = !this.init.preserve && this.init.ioEngine !== "dummy";
      const f: RxFile = { entry: e, final, tmp: tempPathFor(final, sid, e.fino), nativeCommit };
      this.files.set(e.fino, f); // the temp name is new to this session; C opens it O_TRUNC|O_NOFOLLOW
      // Created with its final permission bits (umask applied by open; owner rw kept so a
      // retried open cannot lock us out) so commit is usually one rename (see commitFile).
      this.native.rxFileAdd(e.fino, f.tmp, e.size, (e.mode & 0o777) | 0o600, nativeCommit && (e.mode & 0o600) === 0o600 ? final : undefined);
      if ((e.mode & 0o600) !== 0o600) f.nativeCommit = false; // needs a chmod first: commitFile
      this.announcedBytes += e.size;
    }
  }

  /** A file we refuse to write still has blocks on the wire: register a sink for them. */
  private rejectFile(e: FileEntry, err: EscpError): void {
    this.files.set(e.fino, { entry: e, final: "", tmp: "/dev/null", rejected: err });
    this.native.rxFileAdd(e.fino, "/dev/null", e.size);
  }

  private onEvent(ev: NativeEvent): void {
    const f = this.files.get(ev.fino);
    if (ev.type === C.ESCP_EV_FILE_DONE && f) return this.finish(ev, f);
    if (ev.type === C.ESCP_EV_FILE_ERROR && f) {
      this.files.delete(ev.fino);
      if (f.rejected) return this.result(ev.fino, f.rejected, 0, new Uint8Array(0));
      removeQuietly(f.tmp);
      if (ev.status === C.ESCP_E_DIGEST && f.nativeCommit) return this.result(ev.fino, this.mismatch(f, ev.digest), 0, ev.digest);
      const why = ev.sysErrno ? `${errnoText(ev.sysErrno)} (${ev.text})` : ev.text || "aborted";
      const code = ev.status === C.ESCP_E_ABORTED ? "E_SOURCE_UNREADABLE" : "E_WRITE";
      return this.result(ev.fino, new EscpError(code, `${f.final}: ${why}`, { path: f.final, errno: ev.sysErrno }), 0, new Uint8Array(0));
    }
    if (ev.type === C.ESCP_EV_FATAL || ev.type === C.ESCP_EV_STREAM_DOWN) throw peerLost(this.native, ev, "sender");
    if (ev.type === C.ESCP_EV_LOG) log.debug(`[C] ${ev.text}`);
  }

  private mismatch(f: RxFile, got: Uint8Array): EscpError {
    const want = f.senderDigest ?? new Uint8Array(0);
    return new EscpError("E_DIGEST_MISMATCH", `${f.final}: BLAKE3 mismatch (sender ${hex(want)}, receiver ${hex(got)})`, { path: f.final });
  }

  private finish(ev: NativeEvent, f: RxFile): void {
    faultPoint("receiver", "verify");
    this.files.delete(ev.fino);
    if (f.rejected) return this.result(ev.fino, f.rejected, 0, new Uint8Array(0));
    if (f.nativeCommit) { // verified and renamed in C
      log.debug(`committed ${f.final}`, { bytes: ev.bytes });
      return this.result(ev.fino, null, ev.bytes, ev.digest);
    }
    const want = f.senderDigest ?? new Uint8Array(0);
    if (this.init.checksum && (isZero(ev.digest) || hex(want) !== hex(ev.digest))) {
      removeQuietly(f.tmp);
      return this.result(ev.fino, this.mismatch(f, ev.digest), 0, ev.digest);
    }
    try {
      if (this.init.ioEngine !== "dummy") commitFile(f.tmp, f.final, f.entry, this.init.preserve, this.umask);
    } catch (err) {
      return this.result(ev.fino, toEscpError(err), 0, ev.digest);
    }
    log.debug(`committed ${f.final}`, { bytes: ev.bytes });
    this.result(ev.fino, null, ev.bytes, ev.digest);
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
    f.completed = true;
    if (!f.rejected) f.senderDigest = m.digest;
    this.native.rxFileExpect(m.fino, m.blocks, m.code !== "", m.digest);
  }

  /** Session failed: no partial file may survive under any name. */
  discardPending(): void {
    for (const f of this.files.values()) if (!f.rejected) removeQuietly(f.tmp);
    this.files.clear();
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
    if (this.init.preserve) for (const [p, e] of [...this.dirs].reverse()) applyDirMeta(p, e);
    log.record("session done", { filesOk: this.ok, filesFailed: this.failed });
    if (this.spans) for (const m of profileMessages(this.spans.finish())) this.send(m);
    this.send({ type: "sessionDoneAck", filesOk: this.ok, filesFailed: this.failed });
  }
}

async function replyError(ch: ControlChannel, err: EscpError): Promise<void> {
  await ch.send(encodeSessionReply({ versionMajor: PROTOCOL_MAJOR, versionMinor: PROTOCOL_MINOR, port: 0, address: "", error: { code: err.code, message: err.message } }));
}

/** `escp --server`: returns the process exit status. */
export async function runReceiver(opts: Options): Promise<number> {
  const ch = opts.mgmt ? await serveMgmt(opts.mgmt) : serverStdioChannel();
  let exited = false;
  void ch.exited.then(() => { exited = true; });
  let init: SessionInit;
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
    configureLogger({
      verbose: opts.verbose || init.verbose, quiet: opts.quiet, role: "server", sessionId: hex(init.sessionId).slice(0, 8),
      ...(init.logfile ? { logfile: init.logfile } : {}),
    });
    if (!hardened) log.warn("cannot disable core dumps / ptrace for this process (prctl, setrlimit)");
    log.record("session init", {
      dest: init.destPath, threads: init.threads, blockSize: init.blockSize, ioEngine: init.ioEngine, checksum: init.checksum,
      direct: init.direct, sparse: init.sparse, preserve: init.preserve, ports: `${init.portStart}+${init.portRange}`,
    });
    place = placeDestination(init);
  } catch (e) {
    const err = toEscpError(e);
    await replyError(ch, err).catch(() => undefined);
    await ch.close();
    return err.exitCode;
  }
  let native: NativeSession | undefined;
  let rx: Receiver | undefined;
  let replied = false;
  try {
    native = new NativeSession("receiver", receiverParams(init));
    native.setKey(init.key, init.sessionId);
    init.key.fill(0); // C has its own copy (wiped once the streams are up); nothing else reads it
    const addr = bindAddress(process.env);
    const port = native.listen(addr, init.portStart, init.portRange);
    native.start();
    log.debug("listening for data streams", { address: addr, port });
    replied = true;
    await ch.send(encodeSessionReply({ versionMajor: PROTOCOL_MAJOR, versionMinor: PROTOCOL_MINOR, port, address: addr }));
    rx = new Receiver(init, native, place);
    await rx.run(() => exited);
  } catch (e) {
    init.key.fill(0);
    const err = toEscpError(e);
    log.error(err.message);
    // Before the reply (e.g. every data port busy) the sender waits for one: say why in it.
    if (!replied) await replyError(ch, err).catch(() => undefined);
    try {
      native?.ctlSend(encodeControl({ type: "error", code: err.code, message: err.message, fatal: true, fino: 0, path: "" }));
    } catch {
      // the control stream may already be gone; ssh stderr still carries the log line
    }
    native?.close(); // threads joined: nothing writes the temporaries any more
    rx?.discardPending();
    await ch.close();
    return err.exitCode;
  }
  native.close();
  await ch.close();
  return 0;
}
