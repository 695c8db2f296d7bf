// Tests for the logger: JSON lines to <logfile>.<role> with mode 0600, secrets dropped,
// terminal routing by level, verbose and role.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTermWriter, type TermWriter } from "../cli/progress.ts";
import { closeLogger, configureLogger, logger, redactFields, setLogSession } from "./logger.ts";

const dir = mkdtempSync(join(tmpdir(), "escp-log-"));
const out: string[] = [];
const err: string[] = [];
const prev = setTermWriter({ stdoutIsTTY: false, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) });

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
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
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
    const lines = readFileSync(`${base}.client`, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([expect.objectContaining({ level: "info", msg: "session start", fields: { files: 2 } })]);
    expect(out).toEqual([]);
    expect(err).toEqual([]);
  });

  test("redactFields drops key and secret fields", () => {
    expect(redactFields({ key: 1, secret: 2, hostKeyHex: 3, n: 4n, ok: "y" })).toEqual({ n: "4", ok: "y" });
  });
});
