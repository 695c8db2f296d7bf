// The data-source role, on either side of a session: walk the sources, announce them
// (FileList), feed the native sender, send each file's FileDone with its digest, compare the
// sink's verdicts (FileResult) with its own digests, and close (SessionDone → SessionDoneAck).
import { statSync, type BigIntStats } from "node:fs";
import {
  encodeControl,
  decodeControl,
  MAX_BATCH,
  NOTICE_CODE,
  type BundleResultMsg,
  type ControlMsg,
  type FileDoneMsg,
  type FileResultMsg,
  type ResumeDecisionMsg,
  type ResumeOfferMsg,
} from "../control/messages.ts";
import { cutBatches, resumeBytes, verdictBytes } from "../control/batch-bytes.ts";
import { EscpError } from "../errors/escp-error.ts";
import { isErrorCode } from "../errors/codes.ts";
import { walk, type FoundEntry } from "../fs/discover.ts";
import { ReadAhead } from "../fs/read-ahead.ts";
import { codeForStatus, errnoText, statusName, type NativeEvent } from "../native/events.ts";
import { txOfferCheck, type NativeSession } from "../native/session.ts";
import { decodeSent, SmallFileBatch, type SentFile } from "../native/bundles.ts";
import { ESCP_DIGEST_LEN } from "../native/symbols.ts";
import { log } from "../log/logger.ts";
import { Announcer, SMALL_WINDOW, type SmallFile } from "./announcer.ts";
import { awaitsOffer, dirFailure, type RoleContext, type SourcePlan } from "./plan.ts";
import { peerLost, reconnectNotice, sendOrPeerLost } from "./peer-lost.ts";
import { Cadence, hex, isZero, sameBytes } from "./pump.ts";
import { corruptsSentDigests, faultBytes, faultPoint, faultsArmed, reportedDigest } from "./fault-points.ts";
import { blake3, decodeSubtrees, rangeBlocks, type RangeReport } from "./ranges.ts";

const STDIN_FD = 0;

/** A file between announcement and verdict (then it is forgotten: memory stays bounded). */
interface Tracked {
  entry: FoundEntry;
  link?: boolean; // -a: a symlink or hard link: no data, no digest, only the sink's verdict
  digest?: Uint8Array;
  awaitingOffer?: boolean; // resume: not queued until the sink's ResumeOffer says what it holds
  held?: number; // resume: bytes the sink holds from an earlier run (neither read nor sent)
}

/** How the file differs from what the walk announced (size, mtime, inode), or null. */
function changedSinceListed(e: FoundEntry): string | null {
  let st: BigIntStats;
  try {
    st = statSync(e.path, { bigint: true });
  } catch {
    return "removed since it was listed";
  }
  if (Number(st.size) !== e.size) return Number(st.size) > e.size ? "grew since it was listed" : "shrank since it was listed";
  if (st.mtimeNs !== BigInt(e.mtimeSec) * 1_000_000_000n + BigInt(e.mtimeNsec)) return "modified since it was listed";
  if (e.ino !== 0 && Number(st.ino) !== e.ino) return "replaced since it was listed";
  return null;
}

export class DataSource {
  private readonly files = new Map<number, Tracked>();
  private readonly dirs = new Map<number, FoundEntry>(); // only to name a refused directory
  private ackSeen = false;
  private outstanding = 0; // files announced without a verdict yet
  private announced = 0;
  private bytesOk = 0;
  private lastProgressAt = Date.now();
  private lastBytes = -1;
  private lastSentAt = Date.now();
  private doneQueue: FileDoneMsg[] = []; // FileDone of this drain pass, sent as one batch
  private decisionQueue: ResumeDecisionMsg[] = [];
  private offersAwaited = 0; // files waiting for their ResumeOffer
  private walked = false; // the announcer is done: no more files
  private txFinished = false;
  /** Bundles: every small file handed to libescp, by its number, until its verdict. */
  private readonly smallPaths = new Map<number, FoundEntry>();
  private smallSeq = 0;
  private readonly smallBatch = new SmallFileBatch();
  /** Bundles on the wire: their files (in record order) until the sink's BundleResult. */
  private readonly bundles = new Map<number, SentFile[]>();
  /** Verdicts that came before libescp handed over their bundle's list (its stream thread
   *  queues the list just after the send): matched when it comes, at most SMALL_WINDOW. */
  private readonly early = new Map<number, BundleResultMsg>();
  private bundleCount = 0; // bundles sent, and the files they carried (for the log)
  private bundledFiles = 0;
  private readonly native: NativeSession;
  private up: boolean; // the streams are up: control messages may be sent

  constructor(
    private readonly plan: SourcePlan,
    private readonly ctx: RoleContext,
  ) {
    this.native = ctx.native;
    this.up = !ctx.listening;
  }

  private send(m: ControlMsg): void {
    sendOrPeerLost(this.native, encodeControl(m), this.ctx.peer);
    this.lastSentAt = Date.now();
  }

  /** Send the queued FileDone messages: one message, or batches that fit a control message.
   * Resume decisions go first (the sink holds a file's blocks until it has its decision). */
  private flushDone(): void {
    const d = this.decisionQueue;
    if (d.length > 0) {
      this.decisionQueue = [];
      for (const items of cutBatches(d, MAX_BATCH, resumeBytes)) this.send({ type: "resumeDecisions", items });
    }
    const q = this.doneQueue;
    if (q.length === 0) return;
    this.doneQueue = [];
    if (q.length === 1) return this.send(q[0]!);
    for (const items of cutBatches(q, MAX_BATCH, verdictBytes)) this.send({ type: "fileDones", items });
  }

  /** A problem with a source (missing, unreadable): ours to report, and the peer's to hear
   * when it is the initiator (a pull). */
  private problem(err: EscpError): void {
    this.ctx.reporter.failed(err);
    if (this.ctx.problemsToPeer) this.send({ type: "error", code: err.code, message: err.message, fatal: false, fino: 0, path: err.path ?? "" });
  }

  /** Wire the walk to the sink and the native queue; step() is called every tick. */
  private announcer(): Announcer {
    const covered = this.plan.readAhead;
    const ra = covered === undefined ? undefined : new ReadAhead({ sent: () => Math.max(0, this.lastBytes), covered });
    return new Announcer(
      walk(this.plan.specs, ra ? { ...this.plan.walk, readAhead: ra } : this.plan.walk),
      {
        fileList: (files, last) => {
          this.send({ type: "fileList", files, last });
          faultPoint("sender", "filelist");
        },
        file: (fino, e) => {
          const waits = awaitsOffer(this.plan.resume, e.size);
          this.files.set(fino, { entry: e, ...(waits ? { awaitingOffer: true } : {}) });
          this.outstanding++;
          this.announced++;
          if (waits) this.offersAwaited++;
          else if (e.stream && this.plan.feed) this.plan.feed.start(this.native, fino);
          else if (e.stream) this.native.txStreamAdd(fino, STDIN_FD);
          else this.queueFile(fino, e);
        },
        dir: (fino, e) => void this.dirs.set(fino, e),
        link: (fino, e) => {
          this.files.set(fino, { entry: e, link: true });
          this.outstanding++;
          this.announced++;
        },
        small: (files) => this.queueSmall(files),
        problem: (err) => this.problem(err),
        notice: (text) => {
          this.ctx.reporter.notice(text);
          if (this.ctx.noticesToPeer) this.send({ type: "error", code: NOTICE_CODE, message: text, fatal: false, fino: 0, path: "" });
        },
        finished: () => {
          this.walked = true;
          this.maybeFinish();
        },
      },
      corruptsSentDigests ? 0 : (this.plan.bundleMax ?? 0),
    );
  }

  /** Hand bundled files to libescp in one call (their directories were announced already). */
  private queueSmall(files: SmallFile[]): void {
    for (const f of files) {
      const seq = ++this.smallSeq;
      this.smallPaths.set(seq, f.entry);
      this.smallBatch.add(seq, f.dir, f.entry.size, f.entry.ino, f.entry.path, f.leaf);
    }
    this.announced += files.length;
    const packed = this.smallBatch.take();
    if (packed !== null) this.native.txSmallAdd(packed.buf, packed.len);
  }

  /** Bundles libescp sent since the last pass: files it could not read fail now, the rest
   * await the sink's BundleResult. */
  private takeBundles(): boolean {
    const buf = this.native.txBundleTake();
    if (buf.length === 0) return false;
    for (const g of decodeSent(buf)) {
      const sent: SentFile[] = [];
      for (const f of g.files) {
        if (f.status === 0) sent.push(f);
        else
          this.smallFailed(
            f.seq,
            codeForStatus(statusName(f.status)),
            (e) => `${e.path}: ${f.errno ? `${errnoText(f.errno)} (${f.what})` : "changed while sent"}`,
          );
      }
      if (sent.length === 0) continue;
      this.bundles.set(g.bundle, sent);
      this.bundleCount++;
      this.bundledFiles += sent.length;
      const early = this.early.get(g.bundle);
      if (early !== undefined) {
        this.early.delete(g.bundle);
        this.onBundleResult(early);
      }
    }
    return true;
  }

  private smallFailed(seq: number, code: ReturnType<typeof codeForStatus>, message: (e: FoundEntry) => string): void {
    const e = this.smallPaths.get(seq);
    if (e === undefined) return;
    this.smallPaths.delete(seq);
    this.ctx.reporter.failed(new EscpError(code, message(e), { path: e.path }));
  }

  /** The sink's verdict on one bundle: its failures as it names them, the rest checked against our digests. */
  private onBundleResult(m: BundleResultMsg): void {
    const sent = this.bundles.get(m.bundle);
    if (sent === undefined) {
      // not handed over yet, or a lie: the close tells them apart
      if (this.early.has(m.bundle) || this.early.size >= SMALL_WINDOW)
        throw new EscpError("E_PROTOCOL", `${this.ctx.peer}: result for bundle #${m.bundle}, which awaits none`);
      this.early.set(m.bundle, m);
      return;
    }
    if (m.count !== sent.length)
      throw new EscpError("E_PROTOCOL", `${this.ctx.peer}: result for bundle #${m.bundle} names ${m.count} files, not its ${sent.length}`);
    if (this.plan.checksum && m.digests.length === 0) throw new EscpError("E_PROTOCOL", `${this.ctx.peer}: result for bundle #${m.bundle} has no digests`);
    this.bundles.delete(m.bundle);
    let k = 0;
    for (let i = 0; i < sent.length; i++) {
      const f = sent[i]!;
      const failure = m.failures[k]?.index === i ? m.failures[k++] : undefined;
      if (failure !== undefined) {
        this.smallFailed(f.seq, isErrorCode(failure.code) ? failure.code : "E_WRITE", (e) => `${this.ctx.peerPrefix}${e.name}: ${failure.message}`);
        continue;
      }
      const theirs = m.digests.subarray(i * ESCP_DIGEST_LEN, (i + 1) * ESCP_DIGEST_LEN);
      if (this.plan.checksum && (isZero(f.digest) || !sameBytes(f.digest, theirs))) {
        this.smallFailed(f.seq, "E_DIGEST_MISMATCH", (e) => `${e.path}: BLAKE3 mismatch (sent ${hex(f.digest)}, received ${hex(theirs)})`);
        continue;
      }
      const path = this.smallPaths.get(f.seq)?.path ?? "";
      this.smallPaths.delete(f.seq);
      this.bytesOk += f.size;
      this.ctx.reporter.ok({ name: path, bytes: f.size, resumed: 0, digest: f.digest, rel: "" });
    }
  }

  /** No more files once the walk is done and every awaited offer was answered. */
  private maybeFinish(): void {
    if (!this.walked || this.offersAwaited > 0 || this.txFinished) return;
    this.txFinished = true;
    this.native.txFinish();
  }

  /** The sink's ResumeOffer: queue the file whole, without the blocks the sink holds (once
   * its first and last held runs are checked against our file), or not at all (a refusal). */
  private onOffer(o: ResumeOfferMsg): void {
    const t = this.files.get(o.fino);
    if (!t?.awaitingOffer) throw new EscpError("E_PROTOCOL", `resume offer for file #${o.fino}, which awaits none`);
    t.awaitingOffer = false;
    this.offersAwaited--;
    const e = t.entry;
    if (o.notice !== "") this.ctx.reporter.notice(`${this.ctx.peerPrefix}${o.notice}`);
    const changed = o.code === "" ? changedSinceListed(e) : null;
    if (o.code !== "") {
      // the sink will not take it: send nothing; its verdict names why
      this.doneQueue.push({ type: "fileDone", fino: o.fino, blocks: 0, bytes: 0, code: o.code, errno: 0, message: o.message, digest: new Uint8Array(0) });
    } else if (changed !== null) {
      // a round trip passed since the walk: not what was announced any more
      if (o.held.length > 0) this.decisionQueue.push({ type: "resumeDecision", fino: o.fino, accept: false, notice: "" });
      this.fail(o.fino, new EscpError("E_SOURCE_CHANGED", `${e.path}: changed while sent (${changed})`, { path: e.path }));
      this.doneQueue.push({
        type: "fileDone",
        fino: o.fino,
        blocks: 0,
        bytes: 0,
        code: "E_SOURCE_CHANGED",
        errno: 0,
        message: `changed while sent (${changed})`,
        digest: new Uint8Array(0),
      });
    } else if (o.held.length === 0) {
      this.queueFile(o.fino, e);
    } else {
      const check = txOfferCheck(e.path, e.size, this.plan.resume?.blockSize ?? 0, o.held);
      if (check === "ok") {
        t.held = this.queueFile(o.fino, e, o.held);
        this.ctx.held?.(t.held);
        this.decisionQueue.push({ type: "resumeDecision", fino: o.fino, accept: true, notice: "" });
      } else {
        const why =
          check === "changed"
            ? "the source changed since the receiver's partial was written"
            : check.code === "E_PROTOCOL"
              ? "the receiver's offer is malformed"
              : `cannot check it against the receiver's partial (${errnoText(check.errno)})`;
        const notice = `${e.path}: not resumed: ${why}; sending all of it`;
        this.ctx.reporter.notice(notice);
        this.decisionQueue.push({ type: "resumeDecision", fino: o.fino, accept: false, notice });
        this.queueFile(o.fino, e);
      }
    }
    this.maybeFinish();
  }

  /** Queue a file (or its --shard range) for the native sender, with the sink's held runs;
   * returns the bytes held. */
  private queueFile(fino: number, e: FoundEntry, held?: Uint8Array): number {
    if (e.range !== undefined) {
      const { first, count } = rangeBlocks(e.range, this.plan.resume?.blockSize ?? 0);
      return this.native.txFileAddRange(fino, e.path, e.size, first, count, held ?? new Uint8Array(0));
    }
    if (held !== undefined) return this.native.txFileAddHeld(fino, e.path, e.size, held);
    this.native.txFileAdd(fino, e.path, e.size);
    return 0;
  }

  private onEvent(ev: NativeEvent): void {
    const t = this.files.get(ev.fino);
    if (ev.kind === "fileDone" && t) {
      t.digest = ev.digest;
      const bytes = ev.bytes + (t.held ?? 0); // the held blocks count towards the file's size
      this.doneQueue.push({ type: "fileDone", fino: ev.fino, blocks: ev.blocks, bytes, code: "", errno: 0, message: "", digest: reportedDigest(ev.digest) });
    } else if (ev.kind === "fileError" && t) {
      const code = codeForStatus(ev.status);
      const why = ev.sysErrno ? `${errnoText(ev.sysErrno)} (${ev.text})` : ev.text || `ESCP_E_${ev.status}`;
      this.fail(ev.fino, new EscpError(code, `${t.entry.path}: ${why}`, { path: t.entry.path, errno: ev.sysErrno }));
      this.doneQueue.push({
        type: "fileDone",
        fino: ev.fino,
        blocks: ev.blocks,
        bytes: ev.bytes,
        code,
        errno: ev.sysErrno,
        message: why,
        digest: new Uint8Array(0),
      });
    } else if (ev.kind === "fatal" || ev.kind === "streamDown") {
      throw peerLost(ev, this.ctx.peer);
    } else if (ev.kind === "log") {
      log.debug(`[C] ${ev.text}`);
    } else if (ev.kind === "reconnect") {
      this.ctx.reporter.notice(reconnectNotice(ev, this.ctx.peer));
    } else if (ev.kind === "streamsUp") {
      this.up = true;
    }
  }

  private fail(fino: number, err: EscpError): void {
    if (!this.files.delete(fino)) return;
    this.outstanding--;
    this.ctx.reporter.failed(err);
  }

  private onControl(buf: Uint8Array): void {
    const m = decodeControl(buf);
    if (m.type === "fileResults") for (const r of m.items) this.onResult(r);
    else if (m.type === "bundleResults") for (const r of m.items) this.onBundleResult(r);
    else if (m.type === "fileResult") this.onResult(m);
    else if (m.type === "resumeOffers") for (const o of m.items) this.onOffer(o);
    else if (m.type === "error") {
      throw new EscpError(isErrorCode(m.code) ? m.code : "E_REMOTE", `${this.ctx.peer}: ${m.message}`);
    } else if (m.type === "sessionDoneAck") {
      this.ackSeen = true;
    } else if (m.type === "profileData") {
      if (!this.ctx.onProfile) throw new EscpError("E_PROTOCOL", `${this.ctx.peer}: unexpected profile data`);
      this.ctx.onProfile(m);
    }
  }

  private onResult(m: FileResultMsg): void {
    faultPoint("sender", "verify");
    const t = this.files.get(m.fino);
    if (!t) return this.dirRefused(m.fino, m.code, m.message);
    if (m.code) {
      const code = isErrorCode(m.code) ? m.code : "E_WRITE";
      return this.fail(m.fino, new EscpError(code, `${this.ctx.peerPrefix}${t.entry.name}: ${m.message}`, { path: t.entry.path }));
    }
    const mine = t.digest ?? new Uint8Array(0);
    if (this.plan.checksum && !t.link && (isZero(mine) || hex(mine) !== hex(m.digest))) {
      return this.fail(
        m.fino,
        new EscpError("E_DIGEST_MISMATCH", `${t.entry.path}: BLAKE3 mismatch (sent ${hex(mine)}, received ${hex(m.digest)})`, { path: t.entry.path }),
      );
    }
    const r = t.entry.range;
    let range: RangeReport | undefined;
    if (r !== undefined) {
      // the sink's subtrees must be the ones our range digest was made from
      const subtrees = m.subtrees ?? new Uint8Array(0);
      if (this.plan.checksum && hex(blake3(subtrees)) !== hex(mine)) {
        return this.fail(
          m.fino,
          new EscpError("E_DIGEST_MISMATCH", `${t.entry.path}: the receiver's subtrees of range ${r.offset}+${r.length} do not match its digest`, {
            path: t.entry.path,
          }),
        );
      }
      const fileDigest = m.committed === true && m.fileDigest !== undefined && m.fileDigest.length === 32 ? m.fileDigest : null;
      range = { ...r, blockSize: this.plan.resume?.blockSize ?? 0, subtrees: decodeSubtrees(subtrees), committed: m.committed === true, fileDigest };
    }
    this.files.delete(m.fino);
    this.outstanding--;
    this.bytesOk += m.bytes;
    const digest = range === undefined ? mine : (range.fileDigest ?? new Uint8Array(0));
    this.ctx.reporter.ok({ name: t.entry.path, bytes: m.bytes, resumed: m.resumed, digest, rel: m.path, ...(range ? { range } : {}) });
  }

  /** The sink refused a directory (an unsafe path, or -p could not be applied): name it once. */
  private dirRefused(fino: number, code: string, message: string): void {
    const d = this.dirs.get(fino);
    if (!d || !code) return;
    this.dirs.delete(fino);
    this.ctx.reporter.failed(dirFailure(code, `${this.ctx.peerPrefix}${d.name}: ${message}`, d.path));
  }

  /** Drain rings until every file has a verdict, then close the session politely.
   * channelExited: the session's ssh/local channel is gone (the initiator vanished). */
  async run(channelExited: () => boolean = () => false): Promise<void> {
    const announcer = this.announcer();
    const cadence = new Cadence();
    let sentDone = false;
    await this.waitUp(channelExited);
    for (const p of this.plan.problems ?? []) this.problem(p);
    for (;;) {
      const added = announcer.step(this.outstanding, this.smallPaths.size);
      const took = this.plan.bundleMax ? this.takeBundles() : false;
      const busy =
        this.native.drain(
          (m) => this.onControl(m),
          (ev) => this.onEvent(ev),
        ) ||
        added > 0 ||
        took;
      this.flushDone();
      this.watch();
      if (announcer.done && this.outstanding === 0 && this.smallPaths.size === 0 && !sentDone) {
        const stray = this.early.keys().next();
        if (!stray.done)
          throw new EscpError("E_PROTOCOL", `${this.ctx.peer}: result for bundle #${stray.value}, which awaits none (never sent, or answered before)`);
        if (this.plan.bundleMax) log.record("bundles", { bundles: this.bundleCount, files: this.bundledFiles, max: this.plan.bundleMax });
        for (const m of this.ctx.closingMessages?.() ?? []) this.send(m);
        this.send({ type: "sessionDone", files: this.announced, bytes: this.bytesOk });
        sentDone = true;
        faultPoint("sender", "close");
      }
      if (sentDone && this.ackSeen) return;
      // Once SessionDone is out, a sink that acks and exits may close the session channel
      // before its ack is drained here: from then on the streams tell (ack, or stream down).
      if (channelExited() && !sentDone) throw new EscpError("E_TIMEOUT", `${this.ctx.peer} vanished (control channel closed)`);
      this.ctx.tick?.();
      await cadence.next(busy);
    }
  }

  /** A listening source waits for its streams before it announces anything. */
  private async waitUp(channelExited: () => boolean): Promise<void> {
    const cadence = new Cadence();
    while (!this.up) {
      const busy = this.native.drain(
        (m) => this.onControl(m),
        (ev) => this.onEvent(ev),
      );
      if (channelExited()) throw new EscpError("E_TIMEOUT", `${this.ctx.peer} vanished (control channel closed)`);
      await cadence.next(busy);
    }
    this.lastSentAt = this.lastProgressAt = Date.now();
  }

  private watch(): void {
    const failed = this.plan.feed?.failure;
    if (failed) {
      // the in-process producer threw: the stream cannot be completed, end the session
      try {
        this.send({ type: "error", code: failed.code, message: failed.message, fatal: true, fino: 0, path: "" });
      } catch {
        // the peer is gone already: closing the session says enough
      }
      throw failed;
    }
    const s = this.native.stats();
    const now = Date.now();
    if (now - this.lastSentAt > this.plan.timeoutMs / 3) this.send({ type: "keepalive" });
    if (faultsArmed && s.bytesFile > 0 && s.bytesFile < this.plan.totalBytes) faultPoint("sender", "midblock");
    if (faultsArmed) faultBytes("sender", s.bytesFile);
    // Waiting only for resume offers is not a stall here: the sink may be re-checking a large
    // partial (its own watchdog counts that work as progress and gives up if it stops).
    const waitingOnOffers = this.offersAwaited > 0 && this.offersAwaited === this.outstanding;
    // A stream being re-established is bounded by libescp itself (--retries, the timeout).
    // Standard input sets its own pace: libescp keeps the data streams alive while it waits.
    if (s.bytesFile !== this.lastBytes || waitingOnOffers || s.reconnecting > 0 || this.plan.stdin === true) {
      this.lastBytes = s.bytesFile;
      this.lastProgressAt = now;
    } else if (now - this.lastProgressAt > this.plan.timeoutMs * 2) {
      throw new EscpError("E_TIMEOUT", `no progress from ${this.ctx.peer} for ${Math.round((now - this.lastProgressAt) / 1000)} s`);
    }
  }
}
