// Pull (`escp host:path... local`) through the loopback sshd fixture: scp's naming for files and
// -r trees, several sources, remote globs and home-relative paths expanded by the server without
// a shell, per-source problems, and every flag of the push table doing the same in this direction
// (the remote is the data source, this side the sink). Every copy is checked byte for byte with
// b3sum, and no `.escp-*` temporary is left anywhere under the destination.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { BASE, b3sum, compareTrees, expectOk, expectSameFile, expectSameTree, gate, makeAwkwardTree, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const MiB = 1 << 20;
const PAST = new Date("2003-04-05T06:07:08Z");
const PAST_SEC = PAST.getTime() / 1000;

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-pull");
const R = join(tmp, "remote"); // what the "remote" host serves (same file system, other side of ssh)
// The fixture logs in as root (HOME=/root): a unique directory there for ~/x and relative x.
const homeName = `escp-pull-${process.pid}-${randomBytes(4).toString("hex")}`;
const HOME_DIR = join("/root", homeName);
const unregisterHome = onExitCleanup(() => rmSync(HOME_DIR, { recursive: true, force: true }));

const remoteFlags = (): string[] => [...fx.sshArgs, "-D", ESCP_REMOTE_CMD];
/** `user@host:path` for the fixture. */
const H = (path: string): string => `${fx.user}@${fx.host}:${path}`;
/** What the client calls the host in its messages. */
const HOST = (): string => fx.host;

beforeAll(async () => {
  fx = await startSshd();
  mkdirSync(R);
  await writeRandomFile(join(R, "one.bin"), MiB + 3, 1);
  await writeRandomFile(join(R, "two.bin"), 70_001, 2);
  writeFileSync(join(R, "text.txt"), "the same line of text, many times over\n".repeat(40_000));
  mkdirSync(join(R, "tree"));
  await makeAwkwardTree(join(R, "tree"), 40, 5);
  // run*/*.h5: three matches in two directories; notes.txt, other/ and a hidden file must not match
  for (const [rel, size, seed] of [
    ["runs/run1/a.h5", 5000, 3],
    ["runs/run1/b.h5", 64 * 1024 + 1, 4],
    ["runs/run2/c.h5", 1, 5],
    ["runs/run2/notes.txt", 10, 6],
    ["runs/other/d.h5", 10, 7],
    ["runs/run3/.hidden.h5", 10, 8],
  ] as const) {
    mkdirSync(join(R, rel, ".."), { recursive: true });
    await writeRandomFile(join(R, rel), size, seed);
  }
  // -p: distinct modes and an old mtime on every file and directory
  const meta = join(R, "meta");
  mkdirSync(join(meta, "d1", "d2"), { recursive: true });
  writeFileSync(join(meta, "f750"), "seven five zero\n");
  writeFileSync(join(meta, "d1", "f604"), "six oh four\n");
  writeFileSync(join(meta, "d1", "d2", "f666"), "six six six\n");
  for (const [rel, mode] of [
    ["f750", 0o750],
    ["d1/f604", 0o604],
    ["d1/d2/f666", 0o666],
    ["d1/d2", 0o750],
    ["d1", 0o710],
    ["", 0o751],
  ] as const) {
    chmodSync(join(meta, rel), mode);
  }
  for (const rel of ["f750", "d1/f604", "d1/d2/f666", "d1/d2", "d1", ""]) utimesSync(join(meta, rel), PAST, PAST);
  // --sparse: 32 MiB with three islands and a tail
  const holes = join(R, "holes.bin");
  writeFileSync(holes, "");
  truncateSync(holes, 32 * MiB);
  const fh = await open(holes, "r+");
  try {
    const island = Buffer.alloc(50_001, 0x5a);
    for (const off of [777_777, 9 * MiB + 1, 20 * MiB]) await fh.write(island, 0, island.length, off);
    await fh.write(Buffer.from("tail"), 0, 4, 32 * MiB - 4);
  } finally {
    await fh.close();
  }
  // home-relative sources
  mkdirSync(join(HOME_DIR, "d", "e"), { recursive: true });
  await writeRandomFile(join(HOME_DIR, "h.bin"), 200_000, 9);
  await writeRandomFile(join(HOME_DIR, "d", "x"), 3000, 10);
  await writeRandomFile(join(HOME_DIR, "d", "e", "y"), 0, 11);
}, 60_000);

afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
  rmSync(HOME_DIR, { recursive: true, force: true });
  unregisterHome();
});

// The tests of each describe.concurrent block overlap, three at a time: most of a pull's wall
// time is two Bun starts and an ssh login, not CPU.
const three = gate(3);
const LONG = 240_000; // a test's timer starts before it waits for its turn
/** A concurrent test whose body waits for one of the three slots. */
const ptest = (name: string, body: () => Promise<void>): void => test(name, () => three(body), LONG);

let caseNo = 0;
/** A fresh, empty local directory for one test's results, with a decoy sibling that must stay empty. */
function caseDir(tag: string): { top: string; dst: string } {
  const top = join(tmp, `case-${++caseNo}-${tag}`);
  const dst = join(top, "dst");
  mkdirSync(dst, { recursive: true });
  mkdirSync(join(top, "decoy"));
  return { top, dst };
}

/** Every name under dir, recursively ('/'-separated, sorted). */
function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).sort();
}

/** The destination holds no escp temporary; nothing appeared beside it but what the test expects. */
function clean(top: string, beside: string[] = ["decoy", "dst"]): void {
  expect(listing(top).filter((n) => n.split("/").some((p) => p.startsWith(".escp-")))).toEqual([]);
  expect(readdirSync(top).sort()).toEqual([...beside].sort());
  expect(readdirSync(join(top, "decoy"))).toEqual([]);
}

/** stderr as lines (empty lines dropped). */
const lines = (s: string): string[] => s.split("\n").filter((l) => l.trim() !== "");

describe.concurrent("pull: scp naming", () => {
  ptest("a file into an existing directory; the summary says Received", async () => {
    const { top, dst } = caseDir("into-dir");
    const r = await expectOk(["--escp_port", "0", "--timeout", "20", ...remoteFlags(), H(join(R, "one.bin")), dst]);
    expect(r.stdout).toMatch(/^Received:  +1\.0 MB in 1 file at +[\d.]+ [ KMGTPE]B\/s in \d\d:\d\d\.\d\d\n$/);
    expect(r.stderr).toBe("");
    expect(readdirSync(dst)).toEqual(["one.bin"]);
    await expectSameFile(join(R, "one.bin"), join(dst, "one.bin"));
    clean(top);
  });

  ptest("a file to a new name, and over an existing file", async () => {
    const { top, dst } = caseDir("rename");
    await expectOk([...BASE, ...remoteFlags(), H(join(R, "one.bin")), join(dst, "new.bin")]);
    await expectSameFile(join(R, "one.bin"), join(dst, "new.bin"));
    writeFileSync(join(dst, "existing"), "old contents\n");
    await expectOk([...BASE, ...remoteFlags(), H(join(R, "two.bin")), join(dst, "existing")]);
    await expectSameFile(join(R, "two.bin"), join(dst, "existing"));
    expect(listing(dst)).toEqual(["existing", "new.bin"]);
    clean(top);
  });

  ptest("-r to a new path: the directory becomes that path", async () => {
    const { top, dst } = caseDir("r-new");
    await expectOk([...BASE, ...remoteFlags(), "-r", H(join(R, "tree")), join(dst, "copy")]);
    expect(readdirSync(dst)).toEqual(["copy"]);
    await expectSameTree(join(R, "tree"), join(dst, "copy"));
    clean(top);
  });

  ptest("-r into an existing directory lands inside it, and again inside the copy (nested)", async () => {
    const { top, dst } = caseDir("r-existing");
    await expectOk([...BASE, ...remoteFlags(), "-r", H(join(R, "tree")), dst]);
    expect(readdirSync(dst)).toEqual(["tree"]);
    await expectSameTree(join(R, "tree"), join(dst, "tree"));
    await expectOk([...BASE, ...remoteFlags(), "-r", H(join(R, "tree")), join(dst, "tree")]);
    expect(statSync(join(dst, "tree", "tree")).isDirectory()).toBe(true);
    await expectSameTree(join(R, "tree"), join(dst, "tree", "tree"));
    clean(top);
  });

  ptest("several sources on one host, files and a directory", async () => {
    const { top, dst } = caseDir("several");
    await expectOk([...BASE, ...remoteFlags(), "-r", H(join(R, "one.bin")), H(join(R, "two.bin")), H(join(R, "runs", "run2")), dst]);
    expect(readdirSync(dst).sort()).toEqual(["one.bin", "run2", "two.bin"]);
    await expectSameFile(join(R, "one.bin"), join(dst, "one.bin"));
    await expectSameFile(join(R, "two.bin"), join(dst, "two.bin"));
    await expectSameTree(join(R, "runs", "run2"), join(dst, "run2"));
    clean(top);
  });
});

describe.concurrent("pull: remote globs and home-relative paths (expanded by the server, no shell)", () => {
  ptest("run*/*.h5 matches three files in two directories; hidden files and other directories do not match", async () => {
    const { top, dst } = caseDir("glob");
    await expectOk([...BASE, ...remoteFlags(), H(join(R, "runs", "run*", "*.h5")), dst]);
    expect(listing(dst)).toEqual(["a.h5", "b.h5", "c.h5"]);
    for (const [name, dir] of [
      ["a.h5", "run1"],
      ["b.h5", "run1"],
      ["c.h5", "run2"],
    ]) {
      await expectSameFile(join(R, "runs", dir!, name!), join(dst, name!));
    }
    clean(top);
  });

  ptest("a pattern that matches nothing is named (exit 1); the other sources arrive", async () => {
    const { top, dst } = caseDir("glob-none");
    const none = join(R, "runs", "run*", "*.zip");
    const r = await runEscp([...BASE, ...remoteFlags(), H(none), H(join(R, "runs", "run1", "*.h5")), dst]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`escp: no match for ${HOST()}:${none}`]);
    expect(listing(dst)).toEqual(["a.h5", "b.h5"]);
    await expectSameFile(join(R, "runs", "run1", "a.h5"), join(dst, "a.h5"));
    await expectSameFile(join(R, "runs", "run1", "b.h5"), join(dst, "b.h5"));
    clean(top);
  });

  ptest("host:~/x, host:x (relative to the login directory) and scp://host/~/x", async () => {
    const { top, dst } = caseDir("home");
    await expectOk([...BASE, ...remoteFlags(), H(`~/${homeName}/h.bin`), join(dst, "tilde.bin")]);
    await expectOk([...BASE, ...remoteFlags(), H(`${homeName}/h.bin`), join(dst, "relative.bin")]);
    const noPort = fx.sshArgs.filter((_, i, a) => a[i] !== "-P" && a[i - 1] !== "-P");
    await expectOk([...BASE, ...noPort, "-D", ESCP_REMOTE_CMD, `scp://${fx.user}@${fx.host}:${fx.port}/~/${homeName}/h.bin`, join(dst, "uri.bin")]);
    await expectOk([...BASE, ...remoteFlags(), "-r", H(`~/${homeName}/d`), join(dst, "tree")]);
    for (const f of ["tilde.bin", "relative.bin", "uri.bin"]) await expectSameFile(join(HOME_DIR, "h.bin"), join(dst, f));
    await expectSameTree(join(HOME_DIR, "d"), join(dst, "tree"));
    expect(listing(dst)).toEqual(["relative.bin", "tilde.bin", "tree", "tree/e", "tree/e/y", "tree/x", "uri.bin"]);
    clean(top);
  });
});

describe.concurrent("pull: per-source problems", () => {
  ptest("a missing remote file next to a good one: named, exit 1, the good one arrives", async () => {
    const { top, dst } = caseDir("missing");
    const missing = join(R, "no-such-file");
    const r = await runEscp([...BASE, ...remoteFlags(), H(missing), H(join(R, "two.bin")), dst]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`escp: ${HOST()}:${missing}: No such file or directory`]);
    expect(readdirSync(dst)).toEqual(["two.bin"]);
    await expectSameFile(join(R, "two.bin"), join(dst, "two.bin"));
    clean(top);
  });

  ptest("-r: a dangling link in the remote tree is the server's notice, printed here; exit 0", async () => {
    const { top, dst } = caseDir("dangling");
    const tree = join(top, "remote-tree");
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, "ok.txt"), "fine\n");
    symlinkSync(join(top, "nowhere"), join(tree, "dangling"));
    const r = await runEscp([...BASE, "-r", ...remoteFlags(), H(tree), dst]);
    expect(r.code).toBe(0);
    expect(lines(r.stderr)).toEqual([`escp: ${HOST()}:${join(tree, "dangling")}: dangling symbolic link, skipped`]);
    await expectSameFile(join(tree, "ok.txt"), join(dst, "remote-tree", "ok.txt"));
    clean(top, ["decoy", "dst", "remote-tree"]);
  });

  ptest("a directory without -r: named, exit 1, nothing of it created; the file beside it arrives", async () => {
    const { top, dst } = caseDir("dir-no-r");
    const r = await runEscp(["--escp_port", "0", "--timeout", "20", ...remoteFlags(), H(join(R, "tree")), H(join(R, "two.bin")), dst]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`escp: ${HOST()}:${join(R, "tree")}: is a directory (use -r)`]);
    expect(r.stdout).toMatch(/^Received: .* in 1 file at .*, 1 failed\n$/);
    expect(readdirSync(dst)).toEqual(["two.bin"]);
    clean(top);
  });
});

/** Every line of a --logfile output, parsed. */
function jsonLines(path: string): Record<string, unknown>[] {
  const text = readFileSync(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function fieldsOf(log: Record<string, unknown>[], msg: string): Record<string, unknown> {
  const line = log.find((l) => l.msg === msg);
  if (!line) throw new Error(`no log line ${JSON.stringify(msg)} in ${JSON.stringify(log)}`);
  return line.fields as Record<string, unknown>;
}

describe.concurrent("pull: every flag as for push", () => {
  ptest("-p keeps modes and mtimes of files and directories; without it, fresh mtimes", async () => {
    const { top, dst } = caseDir("preserve");
    await expectOk([...BASE, ...remoteFlags(), "-p", "-r", H(join(R, "meta")), join(dst, "p")]);
    expect(await compareTrees(join(R, "meta"), join(dst, "p"), { modes: true, mtimes: true })).toEqual([]);
    for (const [rel, mode] of [
      ["", 0o751],
      ["d1", 0o710],
      ["d1/d2", 0o750],
      ["f750", 0o750],
      ["d1/f604", 0o604],
      ["d1/d2/f666", 0o666],
    ] as const) {
      const st = statSync(join(dst, "p", rel));
      expect({ rel, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) }).toEqual({ rel, mode, mtime: PAST_SEC });
    }
    await expectOk([...BASE, ...remoteFlags(), "-r", H(join(R, "meta")), join(dst, "nop")]);
    expect(await compareTrees(join(R, "meta"), join(dst, "nop"))).toEqual([]);
    for (const rel of ["f750", "d1/f604", "d1", "d1/d2"]) expect(Math.floor(statSync(join(dst, "nop", rel)).mtimeMs / 1000)).toBeGreaterThan(PAST_SEC);
    clean(top);
  });

  ptest("-C over compressible text and random data", async () => {
    const { top, dst } = caseDir("compress");
    await expectOk([...BASE, ...remoteFlags(), "-C", H(join(R, "text.txt")), H(join(R, "one.bin")), dst]);
    await expectSameFile(join(R, "text.txt"), join(dst, "text.txt"));
    await expectSameFile(join(R, "one.bin"), join(dst, "one.bin"));
    clean(top);
  });

  ptest("--nochecksum", async () => {
    const { top, dst } = caseDir("nochecksum");
    await expectOk([...BASE, ...remoteFlags(), "--nochecksum", "-r", H(join(R, "tree")), dst]);
    await expectSameTree(join(R, "tree"), join(dst, "tree"));
    clean(top);
  });

  ptest("--sparse: identical bytes, holes kept", async () => {
    const { top, dst } = caseDir("sparse");
    expect(statSync(join(R, "holes.bin")).blocks * 512).toBeLessThan(MiB); // precondition
    await expectOk([...BASE, ...remoteFlags(), "--sparse", H(join(R, "holes.bin")), dst]);
    await expectSameFile(join(R, "holes.bin"), join(dst, "holes.bin"));
    const st = statSync(join(dst, "holes.bin"));
    expect(st.size).toBe(32 * MiB);
    expect(st.blocks * 512).toBeLessThan(st.size / 4);
    clean(top);
  });

  ptest("--blocksize 64K -t 1 and -t 8 reach the remote sender (its --logfile says so)", async () => {
    const { top, dst } = caseDir("shape");
    const logs = join(top, "logs");
    mkdirSync(logs);
    for (const [flags, threads, block] of [
      [["--blocksize", "64K", "-t", "1"], 1, 64 * 1024],
      [["-t", "8"], 8, MiB],
    ] as const) {
      const log = join(logs, `t${threads}`);
      const out = join(dst, `t${threads}`);
      await expectOk([...BASE, ...remoteFlags(), ...flags, "--logfile", log, "-r", H(join(R, "tree")), out]);
      await expectSameTree(join(R, "tree"), out);
      expect(fieldsOf(jsonLines(`${log}.server`), "session init")).toMatchObject({ role: "sender", threads, blockSize: block });
    }
    clean(top, ["decoy", "dst", "logs"]);
  });

  ptest("--ioengine: dummy and posix::dummy write no file (the local sink is dummy); dummy::posix writes the announced sizes", async () => {
    const { top, dst } = caseDir("ioengine");
    for (const engine of ["dummy", "posix::dummy"]) {
      const out = join(dst, engine.replace("::", "-"));
      const r = await expectOk(["--escp_port", "0", "--timeout", "20", ...remoteFlags(), "--ioengine", engine, "-r", H(join(R, "runs")), out]);
      expect(r.stdout).toMatch(/^Received: .* in 6 files at /);
      // directories are made, files are not
      expect(listing(out)).toEqual(["other", "run1", "run2", "run3"]);
    }
    const out = join(dst, "dummy-posix");
    await expectOk([...BASE, ...remoteFlags(), "--ioengine", "dummy::posix", "-r", H(join(R, "runs")), out]);
    const want = listing(join(R, "runs"));
    expect(listing(out)).toEqual(want);
    for (const rel of want) expect(statSync(join(out, rel)).size).toBe(statSync(join(R, "runs", rel)).size);
    clean(top);
  });

  ptest("-l: the limited pull (the remote sender paces its sockets) completes byte for byte", async () => {
    const { top, dst } = caseDir("limit");
    await expectOk([...BASE, ...remoteFlags(), "-l", "20M", H(join(R, "one.bin")), H(join(R, "holes.bin")), dst]);
    await expectSameFile(join(R, "one.bin"), join(dst, "one.bin"));
    await expectSameFile(join(R, "holes.bin"), join(dst, "holes.bin"));
    clean(top);
  });

  ptest("--profile: the trace and the report hold both sides, the remote one as the sender", async () => {
    const { top, dst } = caseDir("profile");
    const prof = join(top, "prof.json");
    await expectOk([...BASE, ...remoteFlags(), "--profile", prof, "-r", H(join(R, "tree")), H(join(R, "one.bin")), dst]);
    await expectSameTree(join(R, "tree"), join(dst, "tree"));
    const t = JSON.parse(readFileSync(prof, "utf8")) as {
      traceEvents: { ph: string; pid: number; name: string; args?: { name?: string } }[];
      metadata: { sides: { side: string; host: string }[] };
    };
    const names = (pid: number): Set<string> => new Set(t.traceEvents.filter((e) => e.ph === "X" && e.pid === pid).map((e) => e.name));
    const procName = (pid: number): string | undefined => t.traceEvents.find((e) => e.ph === "M" && e.name === "process_name" && e.pid === pid)?.args?.name;
    const host = hostname();
    expect(procName(1)).toBe(`escp sender (${host})`); // the remote side's spans, sent over the control stream
    expect(procName(2)).toBe(`escp receiver (${host})`);
    for (const stage of ["disk read", "hash", "seal", "send"]) expect(names(1).has(stage)).toBe(true);
    for (const stage of ["recv", "open", "disk write"]) expect(names(2).has(stage)).toBe(true);
    expect(t.metadata.sides.map((s) => `${s.side} ${s.host}`)).toEqual([`sender ${host}`, `receiver ${host}`]);
    const html = readFileSync(join(top, "prof.html"), "utf8");
    expect(html).toContain(`sender ${host}, receiver ${host}`);
    clean(top, ["decoy", "dst", "prof.html", "prof.json"]);
  });

  ptest("--logfile: PATH.client here, PATH.server written by the remote side, JSON lines, 0600", async () => {
    const { top, dst } = caseDir("logfile");
    const base = join(top, "run-log");
    await expectOk([...BASE, ...remoteFlags(), "--logfile", base, H(join(R, "one.bin")), dst]);
    await expectSameFile(join(R, "one.bin"), join(dst, "one.bin"));
    for (const side of ["client", "server"]) {
      expect(statSync(`${base}.${side}`).mode & 0o777).toBe(0o600);
      for (const l of jsonLines(`${base}.${side}`)) expect(l).toMatchObject({ role: side, level: "info" });
    }
    const client = jsonLines(`${base}.client`);
    expect(fieldsOf(client, "session start")).toMatchObject({ source: `${fx.host}:${join(R, "one.bin")}`, dest: dst });
    expect(client.filter((l) => l.msg === "session done").map((l) => l.fields)).toContainEqual(
      expect.objectContaining({ files: 1, bytes: MiB + 3, failed: 0 }),
    );
    const server = jsonLines(`${base}.server`);
    expect(fieldsOf(server, "session init")).toMatchObject({ role: "sender", sources: 1, dest: "" });
    clean(top, ["decoy", "dst", "run-log.client", "run-log.server"]);
  });

  ptest("-q prints nothing; -v shows debug lines from both sides; --bits states the rate in bit/s", async () => {
    const { top, dst } = caseDir("verbosity");
    const q = await expectOk([...BASE, ...remoteFlags(), H(join(R, "one.bin")), join(dst, "q.bin")]);
    expect(q.stdout).toBe("");
    expect(q.stderr).toBe("");
    const v = await expectOk(["-v", "--escp_port", "0", "--timeout", "20", ...remoteFlags(), H(join(R, "one.bin")), join(dst, "v.bin")]);
    expect(v.stderr).toMatch(/^escp server: debug: listening for data streams \(address=127\.0\.0\.1 port=\d+\)$/m);
    expect(v.stderr).toMatch(new RegExp(`^escp server: debug: .*${join(R, "one.bin").replace(/[.]/g, "\\.")} \\(bytes=${MiB + 3}\\)$`, "m"));
    expect(v.stderr).toContain(`debug: verified ${join(dst, "v.bin")} (bytes=${MiB + 3})\n`);
    expect(v.stdout).toMatch(/^Received:  +1\.0 MB in 1 file at /m);
    const b = await expectOk(["--bits", "--escp_port", "0", "--timeout", "20", ...remoteFlags(), H(join(R, "one.bin")), join(dst, "b.bin")]);
    expect(b.stdout).toMatch(/^Received:  +1\.0 MB in 1 file at +[\d.]+ [ KMGTPE]bit\/s in \d\d:\d\d\.\d\d\n$/);
    for (const f of ["q.bin", "v.bin", "b.bin"]) expect(await b3sum(join(dst, f))).toBe(await b3sum(join(R, "one.bin")));
    clean(top);
  });
});

test("pull leaves nothing in the remote tree or the home directory", () => {
  expect(existsSync(R)).toBe(true);
  const stray = [...listing(R), ...listing(HOME_DIR)].filter((n) => n.split("/").some((p) => p.startsWith(".escp-")));
  expect(stray).toEqual([]);
  expect(listing(HOME_DIR)).toEqual(["d", "d/e", "d/e/y", "d/x", "h.bin"]);
});
