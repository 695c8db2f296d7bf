// Tests for the logger: JSON lines to <logfile>.<role> with mode 0600, secrets dropped,
// terminal routing by level, verbose and role; the log file is opened safely or refused.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, closeSync, linkSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { setTermWriter, type TermWriter } from "../cli/progress.ts";
import { EscpError } from "../errors/escp-error.ts";
import { closeLogger, configureLogger, logger, redactFields, setLogSession } from "./logger.ts";
import { openLogFile } from "./open-logfile.ts";

const dir = mkdtempSync(join(tmpdir(), "escp-log-"));
const out: string[] = [];
const err: string[] = [];
const prev = setTermWriter({ stdoutIsTTY: false, stderrIsTTY: false, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) });

afterEach(() => {
  closeLogger();
  out.length = 0;
  err.length = 0;
});
afterAll(() => {
  setTermWriter(prev as TermWriter);
  rmSync(dir, { recursive: true, force: true });
});

describe("logger", () => {
  test("writes JSON lines to <logfile>.client with mode 0600", () => {
    const base = join(dir, "run");
    configureLogger({ verbose: false, quiet: true, logfile: base, role: "client", sessionId: "s1" });
    logger.info("hello", { files: 3, sessionKey: "deadbeef", secret: "x", key: "y" });
    logger.debug("hidden without -v");
    setLogSession("s2");
    logger.warn("careful");
    closeLogger();
    const path = `${base}.client`;
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const lines = readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: "info", role: "client", session: "s1", msg: "hello", fields: { files: 3 } });
    expect(JSON.stringify(lines[0])).not.toContain("deadbeef");
    expect(lines[1]).toMatchObject({ level: "warn", session: "s2", msg: "careful" });
    expect(typeof lines[0]?.ts).toBe("string");
  });

  test("server role writes <logfile>.server and never uses stdout", () => {
    const base = join(dir, "srv");
    configureLogger({ verbose: true, quiet: false, logfile: base, role: "server" });
    logger.info("info line");
    logger.debug("debug line");
    logger.error("bad thing");
    closeLogger();
    expect(readFileSync(`${base}.server`, "utf8").trim().split("\n")).toHaveLength(3);
    expect(out).toEqual([]);
    expect(err).toEqual(["escp server: debug: debug line\n", "escp server: error: bad thing\n"]);
  });

  test("terminal routing: warn/error always, info unless quiet, debug only with -v", () => {
    configureLogger({ verbose: false, quiet: true, role: "client" });
    logger.info("i");
    logger.debug("d");
    logger.warn("w");
    logger.error("e");
    expect(out).toEqual([]);
    expect(err).toEqual(["escp: warning: w\n", "escp: error: e\n"]);
    err.length = 0;
    configureLogger({ verbose: true, quiet: false, role: "client" });
    logger.info("i");
    logger.debug("d", { n: 1, password: "p" });
    expect(out).toEqual(["i\n"]);
    expect(err).toEqual(["debug: d (n=1)\n"]);
  });

  test("record writes an info line to the log file only, never to the terminal", () => {
    const base = join(dir, "rec");
    configureLogger({ verbose: false, quiet: false, logfile: base, role: "client" });
    logger.record("session start", { files: 2, key: "secret" });
    closeLogger();
    const lines = readFileSync(`${base}.client`, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([expect.objectContaining({ level: "info", msg: "session start", fields: { files: 2 } })]);
    expect(out).toEqual([]);
    expect(err).toEqual([]);
  });

  test("redactFields drops key and secret fields", () => {
    expect(redactFields({ key: 1, secret: 2, hostKeyHex: 3, n: 4n, ok: "y" })).toEqual({ n: "4", ok: "y" });
  });
});

describe("the log file is opened safely", () => {
  const safe = makeTmpDir("logger-safe");
  afterAll(() => removeTmpDir(safe));
  let n = 0;
  /** A fresh base path and a victim file holding known bytes. */
  function fixture(): { base: string; path: string; victim: string } {
    const base = join(safe, `case${++n}`);
    const victim = join(safe, `victim${n}`);
    writeFileSync(victim, "precious\n", { mode: 0o644 });
    return { base, path: `${base}.client`, victim };
  }
  const unchanged = (victim: string) => {
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(statSync(victim).mode & 0o777).toBe(0o644);
  };
  /** configureLogger's refusal: E_USAGE, one line naming the path and why; nothing logged. */
  function refused(base: string, why: RegExp): void {
    let caught: unknown;
    try {
      configureLogger({ verbose: false, quiet: true, logfile: base, role: "client" });
      logger.error("must not land anywhere");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(EscpError);
    const err = caught as EscpError;
    expect(err.code).toBe("E_USAGE");
    expect(err.message).toStartWith(`--logfile ${base}.client: refusing to log there: `);
    expect(err.message).toMatch(why);
    expect(err.message).not.toContain("\n");
  }

  test("a symlink at the path (to a file, or dangling) is refused; the target is untouched or not created", () => {
    const { base, path, victim } = fixture();
    symlinkSync(victim, path);
    refused(base, /it is a symbolic link$/);
    unchanged(victim);
    const dangling = fixture();
    symlinkSync(join(safe, "not-there"), dangling.path);
    refused(dangling.base, /symbolic link/);
    expect(() => lstatSync(join(safe, "not-there"))).toThrow();
  });

  test("a hard link to another file is refused; that file is untouched", () => {
    const { base, path, victim } = fixture();
    linkSync(victim, path);
    refused(base, /it has 2 hard links/);
    unchanged(victim);
  });

  test.skipIf(process.geteuid?.() !== 0)("a file of another owner is refused (chown 65534: needs root)", () => {
    const { base, path } = fixture();
    writeFileSync(path, "theirs\n", { mode: 0o600 });
    chownSync(path, 65534, 65534);
    refused(base, /it is owned by uid 65534, not by this user \(uid 0\)/);
    expect(readFileSync(path, "utf8")).toBe("theirs\n");
  });

  test("a group- or world-writable file of ours is refused", () => {
    const { base, path } = fixture();
    writeFileSync(path, "loose\n");
    chmodSync(path, 0o666);
    refused(base, /group- or world-writable \(mode 0666\)/);
    expect(readFileSync(path, "utf8")).toBe("loose\n");
  });

  test("a FIFO is refused without blocking (no reader); a device node likewise", () => {
    const { base, path } = fixture();
    expect(Bun.spawnSync(["mkfifo", "-m", "600", path]).exitCode).toBe(0);
    refused(base, /FIFO/);
    if (process.geteuid?.() !== 0) return;
    const dev = fixture();
    expect(Bun.spawnSync(["mknod", "-m", "600", dev.path, "c", "1", "3"]).exitCode).toBe(0); // /dev/null's numbers
    refused(dev.base, /it is a character device, not a regular file/);
  });

  test("an existing file of ours is appended to (and tightened to 0600)", () => {
    const { base, path } = fixture();
    writeFileSync(path, "earlier run\n", { mode: 0o640 });
    chmodSync(path, 0o640);
    configureLogger({ verbose: false, quiet: true, logfile: base, role: "client" });
    logger.info("later run");
    closeLogger();
    const lines = readFileSync(path, "utf8").split("\n");
    expect(lines[0]).toBe("earlier run");
    expect(JSON.parse(lines[1] ?? "")).toMatchObject({ msg: "later run" });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("a new file is created 0600 whatever the umask, close-on-exec", () => {
    for (const mask of [0o000, 0o022, 0o277]) {
      const { path } = fixture();
      const prevMask = process.umask(mask);
      let fd: number;
      try {
        fd = openLogFile(path);
      } finally {
        process.umask(prevMask);
      }
      try {
        expect(statSync(path).mode & 0o7777).toBe(0o600);
        const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1] ?? "0";
        expect(Number.parseInt(flags, 8) & 0o2000000).toBe(0o2000000); // O_CLOEXEC
      } finally {
        closeSync(fd);
      }
    }
  });
});
