// The data-sink role, on either side of a session: take each announced name (checked against
// the request in a pull, then placed by the destination rules), hand it to the native
// receiver — which creates, verifies and names every file through directory fds — report
// each verdict (FileResult), and answer the source's close (SessionDone → SessionDoneAck).
import { constants } from "node:os";
import { bundleResultBytes, cutBatches, resumeBytes, verdictBytes } from "../control/batch-bytes.ts";
import {
  decodeControl,
  encodeControl,
  MAX_BATCH,
  NOTICE_CODE,
  WINDOW_FILES,
  type BundleFailure,
  type BundleResultMsg,
  type ControlMsg,
  type FileDoneMsg,
  type FileEntry,
  type FileResultMsg,
  type ResumeDecisionMsg,
  type ResumeOfferMsg,
} from "../control/messages.ts";
import { EscpError, toEscpError } from "../errors/escp-error.ts";
import { isErrorCode } from "../errors/codes.ts";
import { codeForStatus, errnoText, statusName, type NativeEvent } from "../native/events.ts";
import { decodeWritten, type WrittenFile } from "../native/bundles.ts";
import { ESCP_DIGEST_LEN, ESCP_DIRS_BYTES, ESCP_DIRS_MAX } from "../native/symbols.ts";
import type { NativeSession } from "../native/session.ts";
import { log } from "../log/logger.ts";
import { destFailure, type Placement } from "./placement.ts";
import { rejected, safeJoin } from "../fs/dest-path.ts";
import { awaitsOffer, type RoleContext, type SinkPlan } from "./plan.ts";
import { Cadence, hex } from "./pump.ts";
import { faultBytes, faultPoint, faultsArmed, reportedBundleResults, reportedResultDigest } from "./fault-points.ts";
import { peerLost, reconnectNotice, sendOrPeerLost } from "./peer-lost.ts";
import { decodeSubtrees, rangeBlocks, rangeProblem, type RangeReport } from "./ranges.ts";
import type { RangeOutcome } from "../native/session.ts";

interface SinkFile {
  entry: FileEntry;
  shown: string; // where it lands, as users see it
  rel: string; // where it lands, relative to the destination root
  senderDigest?: Uint8Array;
  rejected?: EscpError; // unsafe name: its blocks are discarded, then this is the verdict
  completed?: boolean; // the source's FileDone arrived (a second one is a protocol error)
  sourceError?: EscpError; // the source gave up on it (its FileDone carried this)
  offered?: number; // resume: bytes its offer held, until the source decides
  resumed?: number; // resume: bytes taken from the earlier partial (not sent again)
  stream?: boolean; // registered as a stream (stdin's, or any file going to stdout): its FileDone gives its length
}

/** Bundles: an announced directory, for the files bundled into it: where it landed (rel),
 *  its name on the wire, and why it was refused when it was. */
interface BundleDir {
  rel: string;
  name: string;
  refused?: string;
}

/** -a: a hard link announced while the file it names is still arriving. */
interface Follower {
  entry: FileEntry;
  rel: string;
  shown: string;
}

const NO_DIGEST = new Uint8Array(0);
const { ELOOP, ENOTDIR, ESTALE, EPIPE, ECONNRESET } = constants.errno;
const STDOUT_FD = 1;

export class DataSink {
  private readonly files = new Map<number, SinkFile>();
  private readonly followers = new Map<number, Follower[]>(); // -a: leader fino → hard links waiting for it
  private waitingLinks = 0;
  private doneRequested = false;
  private resultQueue: FileResultMsg[] = [];
  /** Bundles: where each announced directory landed, for the names of the files bundled into
   *  it (within libescp's limits: a file in a directory past them fails there, named by fino). */
  private readonly dirs = new Map<number, BundleDir>();
  private dirBytes = 0;
  private offerQueue: ResumeOfferMsg[] = [];
  private okCount = 0;
  private failedCount = 0;
  private lastSentAt = Date.now();
  private announcedBytes = 0;
  private readonly unseenTop: Set<string>; // reported top-level names not announced yet
  private sourceProblems = 0; // non-fatal problems the source named
  private lastBytes = -1;
  private lastPending = -1;
  private lastProgressAt = Date.now();
  private streams = 0; // streams awaiting their end: their producer sets the pace
  private stdoutTaken = false;
  private readonly native: NativeSession;
  private up: boolean; // the streams are up: control messages may be sent

  constructor(
    private readonly plan: SinkPlan,
    private readonly place: Placement,
    private readonly ctx: RoleContext,
  ) {
    this.native = ctx.native;
    this.up = !ctx.listening;
    this.unseenTop = new Set(plan.expectTop ?? []);
  }

  private send(m: ControlMsg): void {
    sendOrPeerLost(this.native, encodeControl(m), this.ctx.peer);
    this.lastSentAt = Date.now();
  }

  /** Liveness both ways: a control keepalive whenever we have been quiet for timeout/3. */
  private tick(): void {
    if (!this.up) return;
    const now = Date.now();
    if (now - this.lastSentAt > this.plan.timeoutMs / 3) this.send({ type: "keepalive" });
    const st = this.native.stats();
    const b = st.bytesFile;
    if (faultsArmed && b > 0 && b < this.announcedBytes) faultPoint("receiver", "midblock");
    if (faultsArmed) faultBytes("receiver", b);
    const moved = b + st.bytesChecked; // re-checking an earlier partial is progress too
    // Files awaiting data or a verdict and nothing moving: a source that keeps the streams
    // alive (keepalives) but never finishes must not hold this side forever (the source's own
    // watch is the mirror of this).
    // A stream being re-established is bounded by libescp itself (--retries, the timeout).
    // A stream's producer (stdin on the other side) may pause for as long as it likes: libescp
    // keeps the data streams alive meanwhile, and ends the session if the source goes silent.
    if (moved !== this.lastBytes || this.files.size !== this.lastPending || this.files.size === 0 || st.reconnecting > 0 || this.streams > 0) {
      this.lastBytes = moved;
      this.lastPending = this.files.size;
      this.lastProgressAt = now;
    } else if (now - this.lastProgressAt > this.plan.timeoutMs * 2) {
      throw new EscpError(
        "E_TIMEOUT",
        `no progress from ${this.ctx.peer} for ${Math.round((now - this.lastProgressAt) / 1000)} s with ${this.files.size} ${this.files.size === 1 ? "file" : "files"} unfinished`,
      );
    }
  }

  private result(
    fino: number,
    err: EscpError | null,
    name: string,
    bytes: number,
    digest: Uint8Array,
    rel = "",
    resumed = 0,
    range?: { report: RangeReport; out: RangeOutcome },
  ): void {
    if (err) {
      this.failedCount++;
      this.ctx.reporter.failed(err);
    } else {
      this.okCount++;
      const shownDigest = range === undefined ? digest : (range.report.fileDigest ?? NO_DIGEST);
      this.ctx.reporter.ok({ name, bytes, resumed, digest: shownDigest, rel, ...(range ? { range: range.report } : {}) });
    }
    const rangeFields =
      range === undefined || err
        ? {}
        : { committed: range.out.committed, subtrees: range.out.packed, ...(range.out.committed ? { fileDigest: range.out.whole } : {}) };
    this.resultQueue.push({
      type: "fileResult",
      fino,
      code: err?.code ?? "",
      errno: typeof err?.errno === "number" ? err.errno : 0,
      message: err?.message ?? "",
      bytes,
      digest: err ? digest : reportedResultDigest(digest),
      path: err || !this.plan.wantPaths ? "" : rel,
      resumed: err ? 0 : resumed,
      ...rangeFields,
    });
  }

  /** Send this drain pass's ResumeOffers, in batches that fit a control message. */
  private flushOffers(): void {
    const q = this.offerQueue;
    if (q.length === 0) return;
    this.offerQueue = [];
    for (const items of cutBatches(q, MAX_BATCH, resumeBytes)) this.send({ type: "resumeOffers", items });
  }

  /** Resume: does this file get an offer (the source waits for one before sending it)? */
  private offers(e: FileEntry): boolean {
    return e.kind === "file" && awaitsOffer(this.plan.resume, e.size);
  }

  /** The offer for fino: what is held (an empty `held`: nothing, send it all), or a refusal
   * (code: the source sends none of it, and the verdict is this sink's error). */
  private offer(fino: number, o: { held?: Uint8Array; refused?: EscpError; notice?: string }): void {
    this.offerQueue.push({
      type: "resumeOffer",
      fino,
      code: o.refused?.code ?? "",
      message: o.refused?.message ?? "",
      held: o.held ?? NO_DIGEST,
      notice: o.notice ?? "",
    });
  }

  /** The bundles libescp wrote since the last pass: each file reported, each bundle answered. */
  private takeBundles(): boolean {
    const buf = this.native.rxBundleTake();
    if (buf.length === 0) return false;
    const results: BundleResultMsg[] = [];
    for (const g of decodeWritten(buf)) {
      const digests = this.plan.checksum ? new Uint8Array(g.files.length * ESCP_DIGEST_LEN) : new Uint8Array(0);
      const failures: BundleFailure[] = [];
      g.files.forEach((f, i) => {
        const d = this.dirs.get(f.dir);
        const rel = d === undefined ? `directory #${f.dir}/${f.leaf}` : d.rel === "" ? f.leaf : `${d.rel}/${f.leaf}`;
        const shown = d === undefined ? rel : this.place.show(rel);
        if (f.status !== 0) {
          const err = this.bundledError(f, shown, d === undefined ? `directory #${f.dir}/${f.leaf}` : `${d.name}/${f.leaf}`, d?.refused);
          failures.push({ index: i, code: err.code, errno: f.errno, message: err.message });
          this.failedCount++;
          this.ctx.reporter.failed(err);
          return;
        }
        if (this.plan.checksum) digests.set(reportedResultDigest(f.digest), i * ESCP_DIGEST_LEN);
        this.okCount++;
        this.ctx.reporter.ok({ name: shown, bytes: f.size, resumed: 0, digest: f.digest, rel });
      });
      results.push({ type: "bundleResult", bundle: g.bundle, count: g.files.length, digests, failures });
    }
    for (const items of cutBatches(reportedBundleResults(results), MAX_BATCH, bundleResultBytes)) this.send({ type: "bundleResults", items });
    return true;
  }

  /** A directory's name for the files bundled into it, as libescp bounds its own table. */
  private rememberDir(fino: number, d: BundleDir): void {
    const bytes = Buffer.byteLength(d.rel, "utf8") + 1;
    if (this.dirs.size >= ESCP_DIRS_MAX || this.dirBytes + bytes > ESCP_DIRS_BYTES) return;
    this.dirs.set(fino, d);
    this.dirBytes += bytes;
  }

  /** A bundled file libescp did not write, named as an announced one would be (name: its
   *  wire name; refused: why its directory was refused here, if it was). */
  private bundledError(f: WrittenFile, shown: string, name: string, refused?: string): EscpError {
    const status = statusName(f.status);
    if (status === "PATH" && f.what === "too many dirs") {
      return rejected(name, `more than ${ESCP_DIRS_MAX} directories (or ${ESCP_DIRS_BYTES >> 20} MiB of their names) in one session`);
    }
    if (status === "PATH" && f.what === "directory") {
      return rejected(
        name,
        refused === undefined ? "a component below the destination is a symlink or not a directory" : `its directory was refused (${refused})`,
      );
    }
    if (status === "PATH") {
      // the leaf is no single safe segment: say why, as for an announced name
      try {
        safeJoin("", name);
      } catch (e) {
        if (e instanceof EscpError) return e;
      }
      return rejected(name, "not a single name segment");
    }
    if (status === "DIGEST") return new EscpError("E_DIGEST_MISMATCH", `${shown}: BLAKE3 mismatch (receiver ${hex(f.digest)})`, { path: shown });
    const code = status === "WRITE" ? "E_WRITE" : codeForStatus(status);
    return new EscpError(code, `${shown}: ${f.errno ? `${errnoText(f.errno)} (${f.what})` : f.what}`, { path: shown, errno: f.errno });
  }

  /** Send this drain pass's FileResults: one message, or batches that fit a control message. */
  private flushResults(): void {
    const q = this.resultQueue;
    if (q.length === 0) return;
    this.resultQueue = [];
    if (q.length === 1) return this.send(q[0]!);
    for (const items of cutBatches(q, MAX_BATCH, verdictBytes)) this.send({ type: "fileResults", items });
  }

  /** The name an entry lands at, or why it may not be written. */
  private relFor(e: FileEntry): string | EscpError {
    const refused = this.plan.guard?.(e) ?? null;
    if (refused) {
      if (refused.code !== "E_REJECTED_PATH") throw refused; // the source makes no sense: stop
      return refused;
    }
    try {
      return this.place.relFor(e);
    } catch (err) {
      const x = toEscpError(err);
      if (x.code !== "E_REJECTED_PATH") throw x;
      return x;
    }
  }

  private onFileList(files: FileEntry[]): void {
    faultPoint("receiver", "filelist");
    for (const e of files) {
      if (this.unseenTop.size > 0) this.unseenTop.delete(e.name.split("/", 1)[0] as string);
      if (this.files.has(e.fino)) throw new EscpError("E_PROTOCOL", `file #${e.fino} announced twice`);
      if (e.kind !== "dir" && this.files.size + this.waitingLinks >= WINDOW_FILES) {
        throw new EscpError(
          "E_PROTOCOL",
          `sender announced file #${e.fino} with ${WINDOW_FILES} files already awaiting their verdict (the window is ${WINDOW_FILES})`,
        );
      }
      this.checkAsked(e);
      const rel = this.relFor(e);
      if (rel instanceof EscpError) {
        if (e.kind === "file") this.discard(e, rel);
        else this.result(e.fino, rel, e.name, 0, NO_DIGEST); // a refused directory: its files fail on their own
        if (e.kind === "dir" && this.plan.bundle) {
          // and so do those bundled into it
          this.rememberDir(e.fino, { rel: e.name, name: e.name, refused: rel.message });
          this.native.rxDirRefuse(e.fino);
        }
        continue;
      }
      const shown = this.place.show(rel);
      if (e.kind === "symlink" || e.kind === "hardlink") {
        this.onLink(e, rel, shown);
        continue;
      }
      if (e.kind === "dir") {
        if (this.plan.bundle) this.rememberDir(e.fino, { rel, name: e.name });
        const r = this.native.rxDirAdd(e.fino, rel, e);
        if (!r.ok) this.result(e.fino, destFailure(r, e.dst ?? e.name, shown), e.name, 0, NO_DIGEST);
        continue;
      }
      if (this.plan.stdout) {
        this.toStdout(e, shown);
        continue;
      }
      const r = this.addFile(e, rel);
      if (!r.ok) {
        this.discard(
          e,
          r.busy
            ? new EscpError("E_BUSY", `${shown}: another escp is writing it (its partial is locked)`, { path: shown })
            : destFailure(r, e.dst ?? e.name, shown),
        );
        continue;
      }
      this.files.set(e.fino, { entry: e, shown, rel, ...(e.stream ? { stream: true } : {}) });
      if (e.stream) this.streams++;
      this.announcedBytes += e.range?.length ?? e.size;
      if (this.offers(e) && !r.probing) this.offer(e.fino, {}); // no earlier partial: send it all
    }
  }

  /** `escp host:file -`: the one file the request named is written to standard output. */
  private toStdout(e: FileEntry, shown: string): void {
    if (this.stdoutTaken) throw new EscpError("E_PROTOCOL", `${this.ctx.peer} sent a second file (${JSON.stringify(e.name)}) for standard output`);
    this.stdoutTaken = true;
    this.native.rxStreamFd(e.fino, this.plan.streamFd ?? STDOUT_FD);
    this.files.set(e.fino, { entry: e, shown, rel: "", stream: true });
    if (e.stream) this.streams++; // a file read from disk keeps the stall watchdog: a server that skips a block must not hold us forever
    this.announcedBytes += e.size;
  }

  /** What the session did not ask for is a sender that makes no sense: links without -a,
   * extended attributes without --xattrs. */
  private checkAsked(e: FileEntry): void {
    const link = e.kind === "symlink" ? "a symbolic link" : e.kind === "hardlink" ? "a hard link" : undefined;
    const name = JSON.stringify(e.name);
    if (link !== undefined && !this.plan.archive) throw new EscpError("E_PROTOCOL", `${this.ctx.peer} sent ${link} (${name}) in a session without -a`);
    if (e.xattrs !== undefined && !this.plan.xattrs)
      throw new EscpError("E_PROTOCOL", `${this.ctx.peer} sent extended attributes of ${name} in a session without --xattrs`);
  }

  /** -a: a symbolic link is made at once; a hard link once the file it names is committed. */
  private onLink(e: FileEntry, rel: string, shown: string): void {
    if (e.kind === "symlink") return this.linkResult(e, rel, shown, this.native.rxSymlink(e.fino, rel, e.target ?? "", e));
    const to = e.linkTo ?? 0; // set on every hardlink (message-checks)
    if (!this.files.has(to)) return this.hardlink({ entry: e, rel, shown });
    const waiting = this.followers.get(to) ?? [];
    waiting.push({ entry: e, rel, shown });
    this.followers.set(to, waiting);
    this.waitingLinks++;
  }

  private hardlink(f: Follower): void {
    this.linkResult(f.entry, f.rel, f.shown, this.native.rxHardlink(f.entry.fino, f.rel, f.entry.linkTo ?? 0));
  }

  private linkResult(e: FileEntry, rel: string, shown: string, r: ReturnType<NativeSession["rxHardlink"]>): void {
    if (r.ok) return this.result(e.fino, null, shown, 0, NO_DIGEST, rel);
    const err =
      "notWritten" in r
        ? new EscpError("E_WRITE", `${shown}: hard link not made: the file it names (#${e.linkTo}) was not written`, { path: shown })
        : destFailure(r, e.dst ?? e.name, shown);
    this.result(e.fino, err, shown, 0, NO_DIGEST);
  }

  /** The leader of waiting hard links got its verdict: link them to it, or fail them with it. */
  private releaseFollowers(leader: number, shown: string, ok: boolean): void {
    const waiting = this.followers.get(leader);
    if (waiting === undefined) return;
    this.followers.delete(leader);
    this.waitingLinks -= waiting.length;
    for (const f of waiting) {
      if (ok) this.hardlink(f);
      else this.result(f.entry.fino, new EscpError("E_WRITE", `${f.shown}: hard link not made: ${shown} failed`, { path: f.shown }), f.shown, 0, NO_DIGEST);
    }
  }

  /** A file we will not write still has blocks on the wire: C consumes and drops them. */
  private discard(e: FileEntry, err: EscpError): void {
    this.addFile(e, null);
    this.files.set(e.fino, { entry: e, shown: e.name, rel: "", rejected: err, ...(e.stream ? { stream: true } : {}) });
    if (e.stream) this.streams++;
    if (this.offers(e)) this.offer(e.fino, { refused: err }); // so it is never sent
  }

  /** Register a file (or, --shard, a byte range of it, checked against this side's own
   * limits first: a sender breaking them ends the session) with libescp. */
  private addFile(e: FileEntry, rel: string | null): ReturnType<NativeSession["rxFileAdd"]> {
    if (e.range === undefined) return this.native.rxFileAdd(e.fino, rel, e.stream ? "stream" : e.size, e);
    const b = this.plan.resume?.blockSize ?? 0;
    const bad = this.plan.stdout ? "a byte range for standard output" : rangeProblem(e, b);
    if (bad !== null) throw new EscpError("E_PROTOCOL", `sender announced file #${e.fino} (${JSON.stringify(e.name)}) with ${bad}`);
    const { first, count } = rangeBlocks(e.range, b);
    return this.native.rxFileAddRange(e.fino, rel, e.size, e, first, count);
  }

  /** The probe read fino's earlier partial: offer what it holds, or say why nothing. */
  private onOffer(ev: NativeEvent): void {
    const f = this.files.get(ev.fino);
    if (!f || f.rejected) return;
    const held = ev.blocks > 0 ? this.native.rxOffer(ev.fino) : NO_DIGEST;
    if (held.length > 0) {
      f.offered = ev.bytes;
      return this.offer(ev.fino, { held });
    }
    let notice = "";
    if (ev.text !== "") {
      notice = `${f.shown}: earlier partial not resumed: ${ev.text}; sending all of it`;
      this.ctx.reporter.notice(notice);
    }
    this.offer(ev.fino, { notice });
  }

  private onDecision(d: ResumeDecisionMsg): void {
    const f = this.files.get(d.fino);
    if (!f || f.offered === undefined) throw new EscpError("E_PROTOCOL", `resume decision for file #${d.fino}, which was offered nothing`);
    this.native.rxDecide(d.fino, d.accept);
    if (d.accept) {
      f.resumed = f.offered;
      this.ctx.held?.(f.offered);
    }
    f.offered = undefined;
    if (d.notice !== "") this.ctx.reporter.notice(d.notice);
  }

  private onEvent(ev: NativeEvent): void {
    const f = this.files.get(ev.fino);
    if ((ev.kind === "fileDone" || ev.kind === "fileError") && f) {
      faultPoint("receiver", "verify");
      this.files.delete(ev.fino);
      if (f.entry.stream) this.streams--;
      this.releaseFollowers(ev.fino, f.shown, ev.kind === "fileDone" && !f.rejected);
      if (f.rejected) return this.result(ev.fino, f.rejected, f.shown, 0, NO_DIGEST);
      const resumed = f.resumed ?? 0; // verified and named in C; held blocks were not sent again
      if (ev.kind === "fileDone" && f.entry.range !== undefined) {
        const out = this.native.rxRangeTake(ev.fino) ?? { committed: false, whole: NO_DIGEST, packed: NO_DIGEST };
        const report: RangeReport = {
          ...f.entry.range,
          blockSize: this.plan.resume?.blockSize ?? 0,
          subtrees: decodeSubtrees(out.packed),
          committed: out.committed,
          fileDigest: out.committed ? out.whole : null,
        };
        return this.result(ev.fino, null, f.shown, ev.bytes + resumed, ev.digest, f.rel, resumed, { report, out });
      }
      if (ev.kind === "fileDone") return this.result(ev.fino, null, f.shown, ev.bytes + resumed, ev.digest, f.rel, resumed);
      return this.result(ev.fino, this.fileError(f, ev), f.shown, 0, ev.digest);
    }
    if (ev.kind === "fatal" || ev.kind === "streamDown") throw peerLost(ev, this.ctx.peer);
    if (ev.kind === "log") log.debug(`[C] ${ev.text}`);
    if (ev.kind === "reconnect") this.ctx.reporter.notice(reconnectNotice(ev, this.ctx.peer));
    if (ev.kind === "offer") this.onOffer(ev);
    if (ev.kind === "streamsUp") {
      this.up = true;
      this.lastSentAt = Date.now();
    }
  }

  private fileError(f: SinkFile, ev: NativeEvent): EscpError {
    if (ev.status === "ABORTED" && f.sourceError) return f.sourceError;
    if (ev.status === "DIGEST") {
      const want = f.senderDigest ?? NO_DIGEST;
      return new EscpError("E_DIGEST_MISMATCH", `${f.shown}: BLAKE3 mismatch (sender ${hex(want)}, receiver ${hex(ev.digest)})`, { path: f.shown });
    }
    // A reader that went away: EPIPE from a pipe; ECONNRESET when standard output is a socket
    // (Bun's and many supervisors' child stdout) whose reader closed with bytes unread.
    if (this.plan.stdout && (ev.sysErrno === EPIPE || ev.sysErrno === ECONNRESET)) {
      const what = this.plan.streamFd === undefined ? "standard output" : "the receiving stream";
      return new EscpError("E_BROKEN_PIPE", `${what}: broken pipe (the reader went away); the rest of the file was not written`, { errno: EPIPE });
    }
    const why = ev.sysErrno ? `${errnoText(ev.sysErrno)} (${ev.text})` : ev.text || "aborted";
    const code = ev.status === "ABORTED" ? "E_SOURCE_UNREADABLE" : ev.status === "PROTO" ? "E_PROTOCOL" : "E_WRITE";
    return new EscpError(code, `${f.shown}: ${why}`, { path: f.shown, errno: ev.sysErrno });
  }

  private onControl(buf: Uint8Array): void {
    const m = decodeControl(buf);
    if (m.type === "fileList") this.onFileList(m.files);
    else if (m.type === "fileDones") for (const d of m.items) this.onDone(d);
    else if (m.type === "fileDone") this.onDone(m);
    else if (m.type === "resumeDecisions") for (const d of m.items) this.onDecision(d);
    else if (m.type === "sessionDone") {
      faultPoint("receiver", "close");
      this.doneRequested = true;
    } else if (m.type === "error" && !m.fatal && m.code === NOTICE_CODE) {
      // skipped, not failed (2.4)
      this.ctx.reporter.notice(`${this.ctx.peerPrefix}${m.message}`);
    } else if (m.type === "error" && !m.fatal) {
      // a source that could not be read: named, counted
      // The host goes before the path the message names ("no match for host:/x/*.h5"), else in front.
      const pre = this.ctx.peerPrefix;
      const text = pre !== "" && m.path !== "" && m.message.includes(m.path) ? m.message.replace(m.path, () => `${pre}${m.path}`) : `${pre}${m.message}`;
      this.ctx.reporter.failed(new EscpError(isErrorCode(m.code) ? m.code : "E_REMOTE", text));
      this.failedCount++;
      this.sourceProblems++;
    } else if (m.type === "error") {
      throw new EscpError("E_REMOTE", `${this.ctx.peer}: ${m.message}`);
    } else if (m.type === "profileData") {
      if (!this.ctx.onProfile) throw new EscpError("E_PROTOCOL", `${this.ctx.peer}: unexpected profile data`);
      this.ctx.onProfile(m);
    }
  }

  private onDone(m: FileDoneMsg): void {
    const f = this.files.get(m.fino);
    if (!f) throw new EscpError("E_PROTOCOL", `completion for unknown file #${m.fino}`);
    if (f.completed) throw new EscpError("E_PROTOCOL", `second completion for file #${m.fino}`);
    if (m.blocks === 0 && m.code === "") throw new EscpError("E_PROTOCOL", `completion of file #${m.fino} with no blocks`);
    if (f.offered !== undefined) throw new EscpError("E_PROTOCOL", `completion of file #${m.fino} before deciding on its resume offer`);
    const want = f.entry.range?.length ?? f.entry.size;
    if (m.code === "" && !f.entry.stream && m.bytes !== want) {
      throw new EscpError("E_PROTOCOL", `completion of file #${m.fino} names ${m.bytes} bytes, not its announced ${want}`);
    }
    f.completed = true;
    if (!f.rejected) f.senderDigest = m.digest;
    if (m.code !== "" && !f.rejected) {
      f.sourceError = new EscpError(
        isErrorCode(m.code) ? m.code : "E_SOURCE_UNREADABLE",
        `${this.ctx.peerPrefix}${f.entry.name}: ${m.message || "the sender gave up on it"}`,
      );
    }
    if (f.stream) this.native.rxStreamExpect(m.fino, m.bytes, m.blocks, m.code !== "", m.digest);
    else this.native.rxFileExpect(m.fino, m.blocks, m.code !== "", m.digest);
  }

  /** -p on directories, after every file landed; a directory it could not be applied to is
   * failed by name (as scp -p does), not just logged. */
  private dirsFinish(): void {
    const { failed, more } = this.native.rxDirsFinish();
    for (const { fino, errno } of failed) {
      const why =
        errno === ESTALE
          ? "the directory was replaced by another during the transfer"
          : errno === ELOOP || errno === ENOTDIR
            ? "a symlink or a non-directory took its place during the transfer"
            : errnoText(errno);
      this.result(fino, new EscpError("E_WRITE", `cannot apply -p mode and times: ${why}`, { errno }), "", 0, NO_DIGEST);
    }
    if (more > 0) log.warn(`-p: the mode or times of ${more} more directories could not be applied`);
    this.flushResults();
  }

  /** A name the source reported but never announced, and no problem said why: not silently
   * missing from an exit-0 run. */
  private missingTops(): void {
    if (this.sourceProblems > 0) return; // a source that vanished was named already
    for (const name of this.unseenTop) {
      this.failedCount++;
      this.ctx.reporter.failed(new EscpError("E_PROTOCOL", `${this.ctx.peerPrefix}${name}: reported by ${this.ctx.peer} but never sent`));
    }
  }

  async run(channelExited: () => boolean = () => false): Promise<{ ok: number; failed: number }> {
    const cadence = new Cadence();
    for (;;) {
      const took = this.plan.bundle ? this.takeBundles() : false;
      const busy =
        this.native.drain(
          (m) => this.onControl(m),
          (ev) => this.onEvent(ev),
        ) || took;
      this.flushOffers();
      this.flushResults();
      if (this.doneRequested && this.files.size === 0) break;
      this.tick();
      if (channelExited()) throw new EscpError("E_TIMEOUT", `${this.ctx.peer} vanished (control channel closed)`);
      this.ctx.tick?.();
      await cadence.next(busy);
    }
    this.missingTops();
    if (this.plan.preserve) this.dirsFinish();
    log.record("session done", { filesOk: this.okCount, filesFailed: this.failedCount });
    for (const m of this.ctx.closingMessages?.() ?? []) this.send(m);
    this.send({ type: "sessionDoneAck", filesOk: this.okCount, filesFailed: this.failedCount });
    return { ok: this.okCount, failed: this.failedCount };
  }
}
