// Model-based test of the receiver's control protocol: fast-check command sequences (announce,
// data, FileDone valid/unknown/repeated, SessionDone, Keepalive, malformed, Error) drive a real
// `escp --server` through harness/hostile-sender.ts; replies and exit status must match the model.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { entry, HostileSender } from "../hostile-sender.ts";
import { envRuns, propRun } from "../arb/replay.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { b3sum, writeRandomFile } from "./e2e-helpers.ts";

const FILE = "harness/suites/control.model.test.ts";
const prop = propRun("control.model", FILE);
const RUNS = envRuns("ESCP_MODEL_RUNS", 100);
const SIZES = [0, 1, 65_536, 100_000]; // the hostile sender's block is 64 KiB
const tmp = makeTmpDir("control-model");
const payload = (size: number): string => join(tmp, `payload-${size}`);
beforeAll(() => Promise.all(SIZES.map((s, i) => writeRandomFile(payload(s), s, 90 + i))));
afterAll(() => removeTmpDir(tmp));

type Kind = "file" | "evil"; // evil: an unsafe name, refused per file with E_REJECTED_PATH
interface MFile {
  fino: number;
  kind: Kind;
  size: number;
  state: "announced" | "queued" | "done";
}
/** How the receiver must stop: exit status and the start of its one stderr line. */
interface Stop {
  exit: number;
  text: string;
}
interface Model {
  next: number;
  files: MFile[];
  dirs: number[];
  sessionDone: boolean;
  stop?: Stop;
}
interface Real {
  hs: HostileSender;
  dest: string;
}
type Cmd = fc.AsyncCommand<Model, Real>;
const tally = { completed: 0, stopped: 0, commands: 0, files: 0 };
afterAll(() =>
  console.log(`control.model: ${tally.completed} runs completed, ${tally.stopped} stopped as modelled; ${tally.commands} commands, ${tally.files} files`),
);

const PROTO = (text: string): Stop => ({ exit: 7, text });
/** The receiver still reads control messages: nothing fatal yet and no completed close. */
const live = (m: Model): boolean => !m.stop && !(m.sessionDone && m.files.every((f) => f.state === "done"));
const inState = (m: Model, ...s: MFile["state"][]): MFile[] => m.files.filter((f) => s.includes(f.state));
const pick = <T>(xs: T[], i: number): T => xs[i % xs.length] as T;

/** A command with a model guard; `apply` updates the model and acts on the real receiver. */
function cmd(name: string, guard: (m: Model) => boolean, apply: (m: Model, r: Real) => Promise<void> | void): Cmd {
  return {
    check: (m) => live(m) && guard(m),
    run: async (m, r) => {
      tally.commands++;
      await apply(m, r);
    },
    toString: () => name,
  };
}

/** Wait until our native side finished sending fino; the receiver must still be running. */
async function sentInfo(r: Real, fino: number): Promise<{ blocks: number; bytes: number; digest: Uint8Array }> {
  expect(await r.hs.until(() => r.hs.sentInfo.has(fino))).toBe(true);
  return r.hs.sentInfo.get(fino) as { blocks: number; bytes: number; digest: Uint8Array };
}

/** A FileDone as a genuine sender sends it (bytes: the file's size), or a bogus one (fatal cases). */
function fileDone(r: Real, fino: number, blocks: number, digest: Uint8Array, bytes = 0): void {
  r.hs.send({ type: "fileDone", fino, blocks, bytes, code: "", errno: 0, message: "", digest });
}

const item = fc.record({ kind: fc.constantFrom<Kind | "dir">("file", "file", "evil", "dir"), size: fc.constantFrom(...SIZES) });
type Item = { kind: Kind | "dir"; size: number };
const announceCmd = (items: Item[]): Cmd =>
  cmd(
    `announce(${items.map((i) => `${i.kind}:${i.size}`).join(",")})`,
    (m) => !m.sessionDone,
    (m, r) => {
      const entries = items.map(({ kind, size }) => {
        const fino = m.next++;
        if (kind === "dir") {
          m.dirs.push(fino);
          return entry(fino, `d${fino}`, 0, { kind: "dir", mode: 0o755 });
        }
        m.files.push({ fino, kind, size, state: "announced" });
        return entry(fino, kind === "evil" ? `../evil${fino}` : `f${fino}`, size);
      });
      r.hs.send({ type: "fileList", files: entries, last: false });
    },
  );
const dataCmd = (i: number): Cmd =>
  cmd(
    `data(#${i})`,
    (m) => inState(m, "announced").length > 0,
    (m, r) => {
      const f = pick(inState(m, "announced"), i);
      f.state = "queued";
      r.hs.withhold.add(f.fino); // FileDone is a command of its own
      r.hs.addData(f.fino, payload(f.size), f.size);
    },
  );
const doneCmd = (i: number): Cmd =>
  cmd(
    `fileDone(#${i})`,
    (m) => inState(m, "queued").length > 0,
    async (m, r) => {
      const f = pick(inState(m, "queued"), i);
      const info = await sentInfo(r, f.fino);
      expect(r.hs.ackSeen).toBe(false); // SessionDone with files pending: the receiver waits
      f.state = "done";
      fileDone(r, f.fino, info.blocks, info.digest, info.bytes);
    },
  );
const keepaliveCmd = (): Cmd =>
  cmd(
    "keepalive",
    () => true,
    (_m, r) => r.hs.send({ type: "keepalive" }),
  );
const doneAgainCmd = (i: number): Cmd =>
  cmd(
    `fileDoneAgain(#${i})`,
    (m) => inState(m, "done").length > 0,
    (m, r) => {
      const f = pick(inState(m, "done"), i);
      m.stop = PROTO(`completion for unknown file #${f.fino}`); // or "second completion": checked loosely below
      fileDone(r, f.fino, 1, new Uint8Array(32));
    },
  );
const zeroBlocksCmd = (i: number): Cmd =>
  cmd(
    `fileDoneZeroBlocks(#${i})`,
    (m) => inState(m, "announced", "queued").length > 0,
    (m, r) => {
      const f = pick(inState(m, "announced", "queued"), i);
      m.stop = PROTO(`completion of file #${f.fino} with no blocks`);
      fileDone(r, f.fino, 0, new Uint8Array(32));
    },
  );
const reannounceCmd = (i: number): Cmd =>
  cmd(
    `reannounce(#${i})`,
    (m) => !m.sessionDone && inState(m, "announced", "queued").length > 0,
    (m, r) => {
      const f = pick(inState(m, "announced", "queued"), i);
      m.stop = PROTO(`file #${f.fino} announced twice`);
      r.hs.send({ type: "fileList", files: [entry(f.fino, `again${f.fino}`, f.size)], last: false });
    },
  );
const sessionDoneCmd = (): Cmd =>
  cmd(
    "sessionDone",
    (m) => !m.sessionDone,
    (m, r) => {
      m.sessionDone = true;
      r.hs.send({ type: "sessionDone", files: m.files.length, bytes: 0 });
    },
  );
const announce = fc.array(item, { minLength: 1, maxLength: 3 }).map(announceCmd);
const data = fc.nat().map(dataCmd);
const done = fc.nat().map(doneCmd);
const keepalive = fc.constant(null).map(keepaliveCmd);
/** Each of these must stop the receiver with the modelled error. */
const fatal = fc.oneof(
  fc.nat().map(doneAgainCmd),
  fc.boolean().map((dir) =>
    cmd(
      `fileDoneUnknown(${dir ? "a directory" : "never announced"})`,
      (m) => !dir || m.dirs.length > 0,
      (m, r) => {
        const fino = dir ? pick(m.dirs, 0) : m.next + 1000;
        m.stop = PROTO(`completion for unknown file #${fino}`);
        fileDone(r, fino, 1, new Uint8Array(32));
      },
    ),
  ),
  fc.nat().map(zeroBlocksCmd),
  fc.nat().map(reannounceCmd),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((junk) =>
    cmd(
      `malformed(${junk.length} bytes)`,
      () => true,
      (m, r) => {
        m.stop = PROTO("malformed control message");
        r.hs.sendRaw(junk);
      },
    ),
  ),
  fc.constant(
    cmd(
      "senderError",
      () => true,
      (m, r) => {
        m.stop = { exit: 10, text: "sender: model says stop" };
        r.hs.send({ type: "error", code: "E_INTERNAL", message: "model says stop", fatal: true, fino: 0, path: "" });
      },
    ),
  ),
);
const sessionDone = fc.constant(null).map(sessionDoneCmd);
// The well-behaved steps weigh more than the fatal ones, so sequences get long enough to matter.
const commands = [announce, announce, announce, data, data, data, data, done, done, done, done, keepalive, fatal, sessionDone];

/** Every *.part (or anything else) left under dir, recursively. */
const partsUnder = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((n) => n.includes(".part"));

async function expectStopped(m: Model, stop: Stop, r: Real): Promise<void> {
  expect(await r.hs.until(() => false)).toBe(false); // pumps until the receiver is gone
  const { code, stderr } = await r.hs.close();
  // One line names the cause; any other is the warning about a refused (evil) name.
  const all = stderr.trim().split("\n");
  const lines = all.filter((l) => !/^escp server: warning: .*evil\d+/.test(l));
  expect({ code, lines }).toEqual({ code: stop.exit, lines: [expect.stringContaining("escp server: error: ")] });
  if (stop.text.startsWith("completion for unknown"))
    expect(lines[0]).toMatch(/^escp server: error: (completion for unknown file|second completion for file) #\d+/);
  else expect(lines[0]).toStartWith(`escp server: error: ${stop.text}`);
  for (const e of r.hs.errors) expect(e.code).toBe(stop.exit === 7 ? "E_PROTOCOL" : "E_REMOTE");
  const done = new Set(inState(m, "done").map((f) => f.fino));
  for (const res of r.hs.resultLog) expect(done.has(res.fino)).toBe(true); // a verdict only after FileDone
  expect(new Set(r.hs.resultLog.map((x) => x.fino)).size).toBe(r.hs.resultLog.length);
  expect(partsUnder(r.dest)).toEqual([]); // no partial file under any name
}

/** Finish what the sequence left open the way a genuine sender would; check every verdict. */
async function expectCompleted(m: Model, r: Real): Promise<void> {
  for (const f of inState(m, "announced")) {
    r.hs.withhold.add(f.fino);
    r.hs.addData(f.fino, payload(f.size), f.size);
  }
  for (const f of inState(m, "announced", "queued")) {
    const info = await sentInfo(r, f.fino);
    fileDone(r, f.fino, info.blocks, info.digest, info.bytes);
  }
  if (!m.sessionDone) r.hs.send({ type: "sessionDone", files: m.files.length, bytes: 0 });
  expect(await r.hs.until(() => r.hs.ackSeen)).toBe(true);
  const { code, stderr } = await r.hs.close();
  expect(code).toBe(0);
  for (const l of stderr
    .trim()
    .split("\n")
    .filter((x) => x !== ""))
    expect(l).toMatch(/^escp server: warning: .*evil\d+/);
  const evil = m.files.filter((f) => f.kind === "evil");
  expect(r.hs.ack).toMatchObject({ filesOk: m.files.length - evil.length, filesFailed: evil.length });
  const verdicts = r.hs.resultLog.map((x) => [x.fino, x.code]).sort((a, b) => Number(a[0]) - Number(b[0]));
  expect(verdicts).toEqual(m.files.map((f) => [f.fino, f.kind === "evil" ? "E_REJECTED_PATH" : ""])); // exactly one each
  const want = [...m.files.filter((f) => f.kind === "file").map((f) => `f${f.fino}`), ...m.dirs.map((d) => `d${d}`)];
  expect(readdirSync(r.dest).sort()).toEqual(want.sort());
  for (const f of m.files.filter((x) => x.kind === "file")) {
    const p = join(r.dest, `f${f.fino}`);
    expect(statSync(p).size).toBe(f.size);
    if (f.size > 0) expect(await b3sum(p)).toBe(await b3sum(payload(f.size)));
  }
}

let runNo = 0;
/** One sequence against a fresh receiver: run it on model and receiver, then check the end. */
async function runModel(cmds: Iterable<Cmd>): Promise<void> {
  const top = join(tmp, `run-${++runNo}`);
  const cwd = join(top, "cwd");
  const dest = join(top, "dest");
  mkdirSync(cwd, { recursive: true });
  mkdirSync(dest);
  const hs = await HostileSender.open({ cwd, destPath: dest });
  try {
    hs.connect();
    const model: Model = { next: 1, files: [], dirs: [], sessionDone: false };
    await fc.asyncModelRun(() => ({ model, real: { hs, dest } }), cmds);
    tally[model.stop ? "stopped" : "completed"]++;
    tally.files += model.files.length;
    if (model.stop) await expectStopped(model, model.stop, { hs, dest });
    else await expectCompleted(model, { hs, dest });
    expect(readdirSync(top).sort()).toEqual(["cwd", "dest"]); // nothing escaped the root
    expect(readdirSync(cwd)).toEqual([]);
  } finally {
    await hs.close();
    removeTmpDir(top);
  }
}

/** Shrunk counterexamples that once failed (add new ones here, named by what they broke). */
const PINNED: [string, () => Cmd[]][] = [
  ["FileDone with 0 blocks (was E_USAGE, exit 2)", () => [announceCmd([{ kind: "file", size: 0 }]), zeroBlocksCmd(0)]],
  [
    "a second FileDone (was a raw ESCP_E_UNKNOWN_FILE, or E_DUP → E_INTERNAL)",
    () => [announceCmd([{ kind: "file", size: 0 }]), dataCmd(0), doneCmd(0), doneAgainCmd(0)],
  ],
  ["a pending file announced again (was E_INTERNAL, exit 70)", () => [announceCmd([{ kind: "file", size: 1 }]), dataCmd(0), reannounceCmd(0)]],
  ["a refused file announced again (was E_INTERNAL, exit 70)", () => [announceCmd([{ kind: "evil", size: 1 }]), reannounceCmd(0)]],
  [
    "SessionDone first, then the files: the receiver waits for them",
    () => [
      announceCmd([
        { kind: "file", size: 100_000 },
        { kind: "dir", size: 0 },
        { kind: "evil", size: 65_536 },
      ]),
      sessionDoneCmd(),
      keepaliveCmd(),
      dataCmd(1),
      dataCmd(0),
      doneCmd(0),
      keepaliveCmd(),
      doneCmd(0),
    ],
  ],
];

describe("control protocol model (real receiver)", () => {
  for (const [name, seq] of PINNED) test(`pinned: ${name}`, () => runModel(seq()), 60_000);

  test(`arbitrary message orders match the model (${RUNS} runs)`, async () => {
    await prop.assert(fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: "large" }), runModel), RUNS);
  }, 240_000);
});
