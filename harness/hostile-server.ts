// A hostile `escp --server` for pulls (scp's CVE-2019-6111 class), the mirror of
// harness/hostile-sender.ts: built from escp's own codecs and a real native SENDER session
// that listens, it answers a real client's session init and then lies as its --mode says —
// names it was not asked for, unsafe names, nonsense completions, sizes its data does not
// have — alongside real file data, so a test can check what the client accepts.
//
// The client starts it through ssh like any server:
//   escp -D "bun harness/hostile-server.ts --mode M --data DIR --report FILE" host:path... dst
// (the client appends --server and maybe -v; both are ignored). DIR holds the data it sends
// (payload.bin, 100,000 bytes; over.bin, 65,546 bytes). FILE receives a JSON report when it
// exits (written whole, then renamed into place: its appearance means the server is done):
// the client's session init, every FileResult and error it sent, whether it acked.
import { renameSync, writeFileSync } from "node:fs";
import type { ControlChannel } from "../src/control/channel.ts";
import {
  decodeControl,
  decodeSessionInit,
  encodeControl,
  encodeSessionReply,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type ControlMsg,
  type FileDoneMsg,
  type FileEntry,
  type FileResultMsg,
  type SessionInit,
} from "../src/control/messages.ts";
import { serverStdioChannel } from "../src/control/stdio.ts";
import type { NativeEvent } from "../src/native/events.ts";
import { NativeSession } from "../src/native/session.ts";
import { SmallFileBatch } from "../src/native/bundles.ts";
import { bindAddress } from "../src/transfer/server.ts";
import { Cadence } from "../src/transfer/pump.ts";
import { encodeFileListUnchecked, entry } from "./hostile-sender.ts";

export const PAYLOAD = "payload.bin";
export const PAYLOAD_SIZE = 100_000; // two 64 KiB blocks
export const OVER = "over.bin";
export const OVER_SIZE = 64 * 1024 + 10; // real data for a file announced with 10 bytes
/** The server gives up on its own after this long (a client that never closes, a test gone). */
const DEADLINE_MS = 90_000;

export interface Reported {
  name: string;
  isDir: boolean;
}

/** What the server saw, as written to --report. */
export interface HostileServerReport {
  mode: string;
  sourcePaths: string[];
  recursive: boolean;
  /** Every FileResult the client sent, in order. */
  results: { fino: number; code: string; message: string }[];
  /** Every BundleResult the client sent: each failed record's index and code. */
  bundles: { bundle: number; count: number; failed: [number, string][] }[];
  /** Error messages the client sent. */
  errors: { code: string; message: string; fatal: boolean }[];
  acked: boolean;
  /** Stream-down / fatal events: the client went away. */
  lost: string[];
  /** How the scenario ended: "done" (it ran to its end, or the client acked), "client gone"
   *  (the client left without an ack), or a failure of the server itself. */
  end: string;
}

const dirEntry = (fino: number, name: string): FileEntry => entry(fino, name, 0, { kind: "dir", mode: 0o755 });

/** The pieces a scenario drives: a listening native sender with the streams up. */
export class Server {
  readonly results = new Map<number, FileResultMsg>();
  readonly report: HostileServerReport;
  /** finos whose automatic FileDone (sent when our native side finished the file) is held back. */
  readonly withhold = new Set<number>();
  readonly sentInfo = new Map<number, { blocks: number; bytes: number; digest: Uint8Array }>();
  private up = false;

  constructor(
    readonly native: NativeSession,
    readonly init: SessionInit,
    readonly dataDir: string,
    private readonly gone: () => boolean,
    mode: string,
  ) {
    this.report = { mode, sourcePaths: init.sourcePaths, recursive: init.recursive, results: [], bundles: [], errors: [], acked: false, lost: [], end: "" };
  }

  send(m: ControlMsg): void {
    this.native.ctlSend(encodeControl(m));
  }

  sendRaw(bytes: Uint8Array): void {
    this.native.ctlSend(bytes);
  }

  announce(files: FileEntry[]): void {
    this.send({ type: "fileList", files, last: false });
  }

  /** Queue `file` (in the data directory) as fino's data, whatever size was announced. */
  data(fino: number, file = PAYLOAD, size = file === OVER ? OVER_SIZE : PAYLOAD_SIZE): void {
    this.native.txFileAdd(fino, `${this.dataDir}/${file}`, size);
  }

  /** Queue the payload as small files bundled into directory `dir` under these leaves (the
   *  client must have asked for bundles). */
  bundled(dir: number, leaves: string[]): void {
    const batch = new SmallFileBatch();
    for (const leaf of leaves) batch.add(++this.smallSeq, dir, PAYLOAD_SIZE, 0, `${this.dataDir}/${PAYLOAD}`, leaf);
    const packed = batch.take();
    if (packed !== null) this.native.txSmallAdd(packed.buf, packed.len);
  }
  private smallSeq = 0;

  /** Announce a file of the payload's size and queue the payload for it. */
  good(fino: number, name: string): void {
    this.announce([entry(fino, name, PAYLOAD_SIZE)]);
    this.data(fino);
  }

  /** Pump until cond() holds (true) or the client is gone (false). */
  async until(cond: () => boolean): Promise<boolean> {
    const cadence = new Cadence();
    for (;;) {
      const gone = this.report.lost.length > 0 || this.gone();
      const busy = this.native.drain(
        (b) => this.onControl(b),
        (ev) => this.onEvent(ev),
      );
      if (cond()) return true;
      if (gone) return false;
      await cadence.next(busy);
    }
  }

  /** Wait for fino's verdict; true when it came. */
  verdict(fino: number): Promise<boolean> {
    return this.until(() => this.results.has(fino));
  }

  /** Orderly close: no more files, SessionDone, the ack. */
  async close(files: number): Promise<boolean> {
    this.native.txFinish();
    this.send({ type: "sessionDone", files, bytes: 0 });
    return this.until(() => this.report.acked);
  }

  /** Announce nothing more and wait until the client ends the session (it should stop us). */
  async waitGone(): Promise<boolean> {
    return !(await this.until(() => false));
  }

  async streamsUp(): Promise<boolean> {
    return this.until(() => this.up);
  }

  private onControl(buf: Uint8Array): void {
    const m = decodeControl(buf);
    const results = m.type === "fileResults" ? m.items : m.type === "fileResult" ? [m] : [];
    for (const r of results) {
      this.results.set(r.fino, r);
      this.report.results.push({ fino: r.fino, code: r.code, message: r.message });
    }
    if (m.type === "bundleResults") {
      for (const b of m.items) this.report.bundles.push({ bundle: b.bundle, count: b.count, failed: b.failures.map((f) => [f.index, f.code]) });
    }
    if (m.type === "error") this.report.errors.push({ code: m.code, message: m.message, fatal: m.fatal });
    if (m.type === "sessionDoneAck") this.report.acked = true;
  }

  private onEvent(ev: NativeEvent): void {
    if (ev.kind === "streamsUp") this.up = true;
    else if (ev.kind === "fileDone") {
      this.sentInfo.set(ev.fino, { blocks: ev.blocks, bytes: ev.bytes, digest: ev.digest });
      if (!this.withhold.has(ev.fino)) this.send(done(ev.fino, ev.blocks, ev.bytes, ev.digest));
    } else if (ev.kind === "streamDown" || ev.kind === "fatal") {
      this.report.lost.push(`stream ${ev.stream}: ${ev.status} ${ev.text}`);
    }
  }
}

export function done(fino: number, blocks: number, bytes: number, digest: Uint8Array, extra: Partial<FileDoneMsg> = {}): FileDoneMsg {
  return { type: "fileDone", fino, blocks, bytes, code: "", errno: 0, message: "", digest, ...extra };
}

export interface Scenario {
  /** The top-level names the reply reports for the client's session init. */
  reply(init: SessionInit): Reported[];
  /** What happens once the data streams are up. */
  run(s: Server): Promise<void>;
}

const base = (p: string): string => p.slice(p.lastIndexOf("/") + 1);
/** The names an honest server would report for literal requests. */
const honest = (init: SessionInit): Reported[] => init.sourcePaths.map((p) => ({ name: base(p), isDir: init.recursive }));

/** A verified file first, so the test can see the lie arrived after real data. */
async function goodFirst(s: Server, fino: number, name: string): Promise<void> {
  s.good(fino, name);
  await s.verdict(fino);
}

/** Every --mode. The request each expects is in hostile-server.e2e.test.ts. */
export const SCENARIOS: Record<string, Scenario> = {
  // ---- lies in the reply: the client must refuse before any data moves
  "unasked-dotfile": {
    reply: () => [
      { name: "a.txt", isDir: false },
      { name: ".bashrc", isDir: false },
    ],
    run: async (s) => void (await s.waitGone()),
  },
  "extra-name": { reply: (i) => [...honest(i), { name: "extra.txt", isDir: false }], run: async (s) => void (await s.waitGone()) },
  "dir-without-r": { reply: (i) => honest(i).map((r) => ({ ...r, isDir: true })), run: async (s) => void (await s.waitGone()) },
  duplicate: { reply: (i) => [...honest(i), ...honest(i)], run: async (s) => void (await s.waitGone()) },
  "reported-dotdot": { reply: () => [{ name: "..", isDir: true }], run: async (s) => void (await s.waitGone()) },
  "reported-path": { reply: () => [{ name: "../x", isDir: false }], run: async (s) => void (await s.waitGone()) },

  // ---- per-file refusals: unsafe names (E_REJECTED_PATH), the session goes on. Request: -r D/d
  "unsafe-names": {
    reply: () => [{ name: "d", isDir: true }],
    run: async (s) => {
      s.announce([dirEntry(1, "d")]);
      const names = ["../x", "/etc/passwd", "a/../../b", "d/../../b", "../decoy/planted", "d/../../decoy/planted2"];
      names.forEach((n, i) => s.good(10 + i, n));
      s.good(2, "d/good");
      await s.until(() => [2, ...names.map((_, i) => 10 + i)].every((f) => s.results.has(f)));
      await s.close(1 + names.length);
    },
  },

  // ---- bundles (2.6): leaves that are no single safe name are refused per file. Request: -r D/d
  "bundle-unsafe": {
    reply: () => [{ name: "d", isDir: true }],
    run: async (s) => {
      s.announce([dirEntry(1, "d")]);
      await goodFirst(s, 2, "d/good");
      s.bundled(1, ["..", ".", "../escaped", "x/../../escaped2", "/etc/passwd", "good2"]);
      await s.until(() => s.report.bundles.reduce((n, b) => n + b.count, 0) >= 6);
      await s.close(8);
    },
  },

  // ---- lies that end the session (E_PROTOCOL); what was verified before stays
  outside: {
    // request -r D/d: an entry under a name never reported
    reply: () => [{ name: "d", isDir: true }],
    run: async (s) => {
      s.announce([dirEntry(1, "d")]);
      await goodFirst(s, 2, "d/good");
      s.good(3, "e/x");
      await s.waitGone();
    },
  },
  "nested-without-r": {
    // request D/a.txt D/sub (no -r): sub reported as a file, then sub/x
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.good(2, "sub/x");
      await s.waitGone();
    },
  },
  "dir-entry-without-r": {
    // request D/a.txt D/sub (no -r): a directory entry
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.announce([dirEntry(2, "sub")]);
      await s.waitGone();
    },
  },
  "other-kind": {
    // request -r D/d: d reported a directory, then announced a file too
    reply: () => [{ name: "d", isDir: true }],
    run: async (s) => {
      s.announce([dirEntry(1, "d")]);
      await goodFirst(s, 2, "d/good");
      s.good(3, "d");
      await s.waitGone();
    },
  },
  "top-twice": {
    // request -r D/d: the directory d announced twice
    reply: () => [{ name: "d", isDir: true }],
    run: async (s) => {
      s.announce([dirEntry(1, "d")]);
      await goodFirst(s, 2, "d/good");
      s.announce([dirEntry(3, "d")]);
      await s.waitGone();
    },
  },
  "dst-field": {
    // request D/a.txt D/b.txt: b.txt carries a --filelist destination
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.announce([entry(2, "b.txt", PAYLOAD_SIZE, { dst: "../../escaped" })]);
      s.data(2);
      await s.waitGone();
    },
  },
  "nul-name": {
    // request D/a.txt D/b.txt: a name with a NUL byte, bypassing the codec
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.sendRaw(encodeFileListUnchecked([entry(2, "b.txt\0/../../x", PAYLOAD_SIZE)]));
      await s.waitGone();
    },
  },
  window: {
    // request -r D/d: 4,097 files announced with no data
    reply: () => [{ name: "d", isDir: true }],
    run: async (s) => {
      s.announce([dirEntry(1, "d")]);
      await goodFirst(s, 2, "d/good");
      for (let first = 3; first < 3 + 4097; first += 1000) {
        s.announce(Array.from({ length: Math.min(1000, 3 + 4097 - first) }, (_, k) => entry(first + k, `d/f${first + k}`, 1)));
      }
      await s.waitGone();
    },
  },
  "size-over": {
    // request D/a.txt D/b.txt: b.txt announced with 10 bytes, sent with 65,546
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.announce([entry(2, "b.txt", 10)]);
      s.data(2, OVER);
      await s.waitGone();
    },
  },
  "size-under": {
    // request D/a.txt D/b.txt: b.txt's 100,000 bytes sent, FileDone says one fewer
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.good(2, "b.txt");
      await s.until(() => s.sentInfo.has(2));
      const real = s.sentInfo.get(2);
      if (real) s.send(done(2, real.blocks, real.bytes - 1, real.digest));
      await s.waitGone();
    },
  },
  "wrong-digest": {
    // request D/a.txt D/b.txt: b.txt's FileDone carries a wrong BLAKE3 (per file)
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.good(2, "b.txt");
      await s.until(() => s.sentInfo.has(2));
      const real = s.sentInfo.get(2);
      if (real) {
        const bad = real.digest.slice();
        bad[7] = (bad[7] ?? 0) ^ 0x5a;
        s.send(done(2, real.blocks, real.bytes, bad));
      }
      await s.verdict(2);
      await s.close(2);
    },
  },
  "unknown-done": {
    // request D/a.txt: a FileDone for a file never announced
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.send(done(99, 1, 1, new Uint8Array(32)));
      await s.waitGone();
    },
  },
  "second-done": {
    // request D/a.txt D/b.txt: b.txt completed twice in one batch
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.good(2, "b.txt");
      await s.until(() => s.sentInfo.has(2));
      const real = s.sentInfo.get(2);
      if (real) {
        const d = done(2, real.blocks, real.bytes, real.digest);
        s.send({ type: "fileDones", items: [d, d] });
      }
      await s.waitGone();
    },
  },
  "zero-blocks": {
    // request D/a.txt D/b.txt: b.txt "completed" with no blocks and no error
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.announce([entry(2, "b.txt", PAYLOAD_SIZE)]);
      s.send(done(2, 0, PAYLOAD_SIZE, new Uint8Array(32)));
      await s.waitGone();
    },
  },
  withhold: {
    // request D/a.txt D/b.txt: b.txt's data sent, its FileDone never; the streams stay up
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.good(2, "b.txt");
      await s.waitGone();
    },
  },
  "withhold-keepalive": {
    // as withhold, with a control keepalive every second: alive, never done
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      s.withhold.add(2);
      s.good(2, "b.txt");
      let last = Date.now();
      await s.until(() => {
        if (Date.now() - last >= 1000) {
          s.send({ type: "keepalive" });
          last = Date.now();
        }
        return false;
      });
    },
  },
  "sink-messages": {
    // request D/a.txt D/b.txt: verdicts and an ack sent to the sink, then honest
    reply: (i) => honest(i),
    run: async (s) => {
      s.send({ type: "fileResult", fino: 1, code: "", errno: 0, message: "", bytes: PAYLOAD_SIZE, digest: new Uint8Array(32), path: "", resumed: 0 });
      s.send({ type: "sessionDoneAck", filesOk: 2, filesFailed: 0 });
      await goodFirst(s, 1, "a.txt");
      await goodFirst(s, 2, "b.txt");
      await s.close(2);
    },
  },
  "reported-not-sent": {
    // request D/a.txt D/b.txt: both reported, only a.txt announced and sent, then closed
    reply: (i) => honest(i),
    run: async (s) => {
      await goodFirst(s, 1, "a.txt");
      await s.close(1);
    },
  },
  "done-early": {
    // request D/a.txt D/b.txt: SessionDone first, both files after it
    reply: (i) => honest(i),
    run: async (s) => {
      s.withhold.add(1);
      s.good(1, "a.txt");
      s.send({ type: "sessionDone", files: 2, bytes: 0 });
      s.good(2, "b.txt");
      await s.until(() => s.sentInfo.has(1) && s.results.has(2));
      const real = s.sentInfo.get(1);
      if (real) s.send(done(1, real.blocks, real.bytes, real.digest));
      await s.until(() => s.report.acked);
    },
  },
};

function argValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

function writeReport(path: string | undefined, r: HostileServerReport): void {
  if (!path) return;
  writeFileSync(`${path}.tmp`, JSON.stringify(r, null, 1));
  renameSync(`${path}.tmp`, path);
}

async function main(argv: string[]): Promise<number> {
  const mode = argValue(argv, "--mode") ?? "";
  const data = argValue(argv, "--data") ?? ".";
  const reportPath = argValue(argv, "--report");
  const scenario = SCENARIOS[mode];
  const ch: ControlChannel = serverStdioChannel();
  let gone = false;
  void ch.exited.then(() => {
    gone = true;
  });
  const fallback: HostileServerReport = { mode, sourcePaths: [], recursive: false, results: [], bundles: [], errors: [], acked: false, lost: [], end: "" };
  const deadline = setTimeout(() => {
    writeReport(reportPath, { ...fallback, end: `deadline: ${DEADLINE_MS} ms` });
    process.exit(3);
  }, DEADLINE_MS);
  try {
    if (!scenario) throw new Error(`unknown --mode ${JSON.stringify(mode)}`);
    const init = decodeSessionInit(await ch.recv(30_000));
    const native = new NativeSession("sender", {
      threads: init.threads,
      blockSize: init.blockSize,
      ioEngine: "posix",
      direct: init.direct,
      checksum: init.checksum,
      sparse: false,
      timeoutMs: init.timeoutMs,
      rateLimit: 0,
      ipMode: init.ipMode,
      verbose: false,
      profile: false,
      compressLevel: init.compressLevel,
      preserve: false,
      bundle: init.bundleMax > 0,
    });
    const s = new Server(native, init, data, () => gone, mode);
    try {
      native.setKey(init.key, init.sessionId);
      const address = bindAddress(process.env);
      const port = native.listen(address, init.portStart, init.portRange);
      native.start();
      const sources = scenario.reply(init);
      await ch.send(
        encodeSessionReply({
          versionMajor: PROTOCOL_MAJOR,
          versionMinor: PROTOCOL_MINOR,
          port,
          address,
          sources,
          totalFiles: sources.length,
          totalBytes: sources.length * PAYLOAD_SIZE,
        }),
      );
      if (await s.streamsUp()) await scenario.run(s);
      // acked: an orderly end (the client may well be gone by now); else it left mid-session
      s.report.end = !s.report.acked && (s.report.lost.length > 0 || gone) ? "client gone" : "done";
    } catch (e) {
      s.report.end = `server failed: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      native.close();
      writeReport(reportPath, s.report);
    }
  } catch (e) {
    writeReport(reportPath, { ...fallback, end: `server failed: ${e instanceof Error ? e.message : String(e)}` });
  } finally {
    clearTimeout(deadline);
    await ch.close();
  }
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
