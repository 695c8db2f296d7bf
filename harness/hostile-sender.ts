// A hostile sender built from escp's own codecs: spawns a real local receiver, runs session
// init, connects a native sender session and then sends whatever the test crafts (evil names,
// bogus completions, raw garbage) alongside real file data, recording the receiver's answers.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import * as flatbuffers from "flatbuffers";
import type { ControlChannel } from "../src/control/channel.ts";
import { openLocalChannel } from "../src/control/local.ts";
import {
  decodeControl,
  decodeSessionReply,
  encodeControl,
  encodeSessionInit,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type ControlMsg,
  type FileEntry,
  type SessionInit,
} from "../src/control/messages.ts";
import { Envelope } from "../src/control/schema/generated/escp/control/envelope.ts";
import { FileEntry as FbFileEntry } from "../src/control/schema/generated/escp/control/file-entry.ts";
import { FileKind } from "../src/control/schema/generated/escp/control/file-kind.ts";
import { FileList } from "../src/control/schema/generated/escp/control/file-list.ts";
import { Msg } from "../src/control/schema/generated/escp/control/msg.ts";
import type { NativeEvent } from "../src/native/events.ts";
import { NativeSession } from "../src/native/session.ts";
import { Cadence } from "../src/transfer/pump.ts";
import { ESCP_MAIN } from "./escp-run.ts";

export type FileResult = Extract<ControlMsg, { type: "fileResult" }>;
export type ErrorMsg = Extract<ControlMsg, { type: "error" }>;

export interface HostileOptions {
  /** Working directory of the receiver process (its "login directory"). */
  cwd: string;
  /** Destination root: an existing directory; names in FileList are relative to it. */
  destPath: string;
  threads?: number;
  timeoutMs?: number;
  /** What SessionInit says was named on the command line (default: none, with filelist
   * true: names relative to destPath, which must exist). */
  sources?: SessionInit["sources"];
  filelist?: boolean;
  /** SessionInit.archive (-a): the receiver takes symbolic links and hard links. */
  archive?: boolean;
  /** SessionInit.resume (0 off, 2: resume offers; byte ranges need it). */
  resume?: SessionInit["resume"];
  /** Extra environment for the receiver process only (e.g. ESCP_TMPFILE=0). */
  env?: Record<string, string>;
}

const BLOCK = 64 * 1024;

/** A FileEntry for a regular file (or directory) with plain metadata. */
export function entry(fino: number, name: string, size: number, extra: Partial<FileEntry> = {}): FileEntry {
  return { fino, kind: "file", name, size, mode: 0o644, mtimeSec: 1_700_000_000, mtimeNsec: 0, atimeSec: 1_700_000_000, atimeNsec: 0, ino: 0, ...extra };
}

export class HostileSender {
  readonly results = new Map<number, FileResult>();
  readonly errors: ErrorMsg[] = [];
  /** Stream-down / fatal events our native session saw (the receiver went away). */
  readonly lost: string[] = [];
  /** finos whose completion (fileDone) we hold back instead of sending. */
  readonly withhold = new Set<number>();
  readonly sent = new Set<number>(); // finos whose data our native side finished sending
  /** What our native side reported for each sent file: what a genuine fileDone carries. */
  readonly sentInfo = new Map<number, { blocks: number; bytes: number; digest: Uint8Array }>();
  /** Every fileResult in arrival order (results keeps only the last one per fino). */
  readonly resultLog: FileResult[] = [];
  ackSeen = false;
  ack: Extract<ControlMsg, { type: "sessionDoneAck" }> | undefined;
  exitCode: number | null | undefined = undefined; // undefined while the receiver runs
  native: NativeSession | undefined;
  /** The session key, ours to keep: tests may forge frames with it (its receiver's copy is
   *  wiped once the streams are up). */
  readonly key: Uint8Array;
  private closed = false;

  private constructor(
    readonly channel: ControlChannel,
    readonly init: SessionInit,
    readonly port: number,
    readonly cwd: string,
  ) {
    this.key = init.key.slice();
    void channel.exited.then((c) => {
      this.exitCode = c;
    });
  }

  /** Spawn `escp --server` in opts.cwd and complete session init; data streams not yet up. */
  static async open(opts: HostileOptions): Promise<HostileSender> {
    const init: SessionInit = {
      versionMajor: PROTOCOL_MAJOR,
      versionMinor: PROTOCOL_MINOR,
      sessionId: new Uint8Array(randomBytes(16)),
      key: new Uint8Array(randomBytes(32)),
      role: "receiver",
      threads: opts.threads ?? 2,
      blockSize: BLOCK,
      ioEngine: "posix",
      checksum: true,
      direct: true,
      sparse: false,
      preserve: false,
      compress: false,
      verbose: false,
      timeoutMs: opts.timeoutMs ?? 20_000,
      portStart: 0,
      portRange: 1,
      ipMode: 4,
      rateLimit: 0,
      logfile: "",
      destPath: opts.destPath,
      recursive: true,
      filelist: opts.filelist ?? true,
      sources: opts.sources ?? [],
      compressLevel: 0,
      profile: false,
      sourcePaths: [],
      connectPort: 0,
      helloOnAccept: false,
      awaitGo: false,
      report: false,
      resume: opts.resume ?? 0,
      wantPaths: false,
      retries: 0,
      fileReports: false,
      archive: opts.archive ?? false,
      xattrs: false,
      bundleMax: 0,
    };
    // openLocalChannel spawns synchronously and inherits our cwd: switch just around it.
    const here = process.cwd();
    process.chdir(opts.cwd);
    let channel: ControlChannel;
    try {
      const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
      // env(1) execs the receiver: the pid stays the same (see receiverPid).
      channel = openLocalChannel([...(env.length > 0 ? ["env", ...env] : []), process.execPath, ESCP_MAIN, "--server"]);
    } finally {
      process.chdir(here);
    }
    try {
      await channel.send(encodeSessionInit(init));
      const reply = decodeSessionReply(await channel.recv(init.timeoutMs));
      if (reply.error) throw new Error(`receiver refused session init: ${reply.error.code} ${reply.error.message}`);
      return new HostileSender(channel, init, reply.port, opts.cwd);
    } catch (e) {
      await channel.close();
      throw e;
    }
  }

  /** Open and authenticate the data streams as a genuine sender would. */
  connect(): void {
    const n = new NativeSession("sender", {
      threads: this.init.threads,
      blockSize: this.init.blockSize,
      ioEngine: "posix",
      direct: true,
      checksum: true,
      sparse: false,
      timeoutMs: this.init.timeoutMs,
      rateLimit: 0,
      ipMode: 4,
      verbose: false,
      profile: false,
      compressLevel: 0,
      preserve: false,
    });
    this.native = n;
    n.setKey(this.key.slice(), this.init.sessionId);
    n.connect("127.0.0.1", this.port);
    n.start();
  }

  private get n(): NativeSession {
    if (!this.native) throw new Error("HostileSender: connect() first");
    return this.native;
  }

  send(m: ControlMsg): void {
    this.n.ctlSend(encodeControl(m));
  }

  /** Bytes that bypass the codec entirely (the native layer still seals them in a CTL frame). */
  sendRaw(bytes: Uint8Array): void {
    this.n.ctlSend(bytes);
  }

  announce(files: FileEntry[], last = true): void {
    this.send({ type: "fileList", files, last });
  }

  /** The receiver's pid while it runs (a child of this process working in opts.cwd), else
   * undefined. */
  receiverPid(): number | undefined {
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (readlinkSync(`/proc/${name}/cwd`) !== this.cwd) continue;
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === process.pid) return Number(name);
      } catch {
        // exited meanwhile, or not ours to inspect
      }
    }
    return undefined;
  }

  /** Queue real data for fino from a local file; call finish() after the last one. */
  addData(fino: number, path: string, size: number): void {
    this.n.txFileAdd(fino, path, size);
  }

  finish(): void {
    this.n.txFinish();
  }

  /** Pump both rings (answering our own finished files with fileDone) until cond() holds;
   * stops early, returning false, once the receiver has exited or the streams went down. */
  async until(cond: () => boolean): Promise<boolean> {
    const cadence = new Cadence();
    for (;;) {
      const gone = this.exitCode !== undefined || this.lost.length > 0;
      // Drain first, even when the receiver is gone: its last words may be queued for us.
      const busy = this.native
        ? this.n.drain(
            (b) => this.onControl(b),
            (ev) => this.onEvent(ev),
          )
        : false;
      if (cond()) return true;
      if (gone) return false;
      await cadence.next(busy);
    }
  }

  private onControl(buf: Uint8Array): void {
    const m = decodeControl(buf);
    const results = m.type === "fileResults" ? m.items : m.type === "fileResult" ? [m] : [];
    for (const r of results) {
      this.results.set(r.fino, r);
      this.resultLog.push(r);
    }
    if (m.type === "error") this.errors.push(m);
    else if (m.type === "sessionDoneAck") {
      this.ackSeen = true;
      this.ack = m;
    }
  }

  private onEvent(ev: NativeEvent): void {
    if (ev.kind === "fileDone") {
      this.sent.add(ev.fino);
      this.sentInfo.set(ev.fino, { blocks: ev.blocks, bytes: ev.bytes, digest: ev.digest });
      if (this.withhold.has(ev.fino)) return;
      try {
        this.send({ type: "fileDone", fino: ev.fino, blocks: ev.blocks, bytes: ev.bytes, code: "", errno: 0, message: "", digest: ev.digest });
      } catch (e) {
        this.lost.push(`fileDone #${ev.fino} not sent: ${e instanceof Error ? e.message : String(e)}`);
      }
    } else if (ev.kind === "streamDown" || ev.kind === "fatal") {
      this.lost.push(`stream ${ev.stream}: status ${ev.status} ${ev.text}`);
    }
  }

  /** Orderly close: sessionDone, wait for the ack (or the receiver's exit). */
  async sessionDone(files: number): Promise<boolean> {
    this.send({ type: "sessionDone", files, bytes: 0 });
    return this.until(() => this.ackSeen);
  }

  /** Release everything (idempotent); returns the receiver's exit status and stderr. */
  async close(): Promise<{ code: number | null; stderr: string }> {
    if (!this.closed) {
      this.closed = true;
      this.native?.close();
      await this.channel.close();
    }
    return { code: await this.channel.exited, stderr: this.channel.stderrText() };
  }
}

/** FileList bytes built straight from the schema, skipping the checks encodeControl makes,
 * so a test can send what a genuine sender never would: sizes[i], when given, replaces
 * files[i].size with any uint64 (past the limit, say). */
export function encodeFileListUnchecked(files: FileEntry[], sizes: readonly bigint[] = []): Uint8Array {
  const b = new flatbuffers.Builder(256);
  const offsets = files.map((f, i) => {
    const name = b.createString(f.name);
    FbFileEntry.startFileEntry(b);
    FbFileEntry.addFino(b, BigInt(f.fino));
    FbFileEntry.addKind(b, f.kind === "file" ? FileKind.File : FileKind.Dir);
    FbFileEntry.addName(b, name);
    FbFileEntry.addSize(b, sizes[i] ?? BigInt(f.size));
    FbFileEntry.addMode(b, f.mode);
    FbFileEntry.addMtimeSec(b, BigInt(f.mtimeSec));
    FbFileEntry.addAtimeSec(b, BigInt(f.atimeSec));
    return FbFileEntry.endFileEntry(b);
  });
  const list = FileList.createFileList(b, FileList.createFilesVector(b, offsets), true);
  b.finish(Envelope.createEnvelope(b, Msg.FileList, list), "ESC1");
  return b.asUint8Array();
}
