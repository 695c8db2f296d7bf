// host1's ReportForwarder (batching, timing by an injected clock, order, the end marker, a dead
// channel) and the initiator's applyReport, joined through the real codec.
import { describe, expect, test } from "bun:test";
import { decodeFileReports, MAX_REPORT_ITEMS, type FileResultMsg } from "../control/messages.ts";
import { EscpError } from "../errors/escp-error.ts";
import { applyReport, ReportForwarder, type ReportNames } from "./file-reports.ts";
import type { FileOutcome, Reporter } from "./reporter.ts";

class Recorder implements Reporter {
  readonly oks: FileOutcome[] = [];
  readonly fails: EscpError[] = [];
  readonly notices: string[] = [];
  ok(o: FileOutcome): void {
    this.oks.push(o);
  }
  failed(e: EscpError): void {
    this.fails.push(e);
  }
  notice(t: string): void {
    this.notices.push(t);
  }
}

function setup(): { fwd: ReportForwarder; inner: Recorder; lines: FileResultMsg[][]; clock: { now: number } } {
  const clock = { now: 0 };
  const lines: FileResultMsg[][] = [];
  const inner = new Recorder();
  const fwd = new ReportForwarder(
    inner,
    async (line) => void lines.push(decodeFileReports(line)),
    () => clock.now,
  );
  return { fwd, inner, lines, clock };
}

const digest = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const outcome = (i: number): FileOutcome => ({ name: `/src/f${i}`, bytes: 100 + i, resumed: i % 3, digest: digest(i % 256), rel: `d/f${i}` });

describe("ReportForwarder", () => {
  test("passes every outcome on, sends them once 250 ms passed, ends with the rest and an empty line", async () => {
    const { fwd, inner, lines, clock } = setup();
    fwd.ok(outcome(1));
    fwd.failed(new EscpError("E_SOURCE_UNREADABLE", "/src/x: Permission denied", { errno: 13 }));
    fwd.notice("a partial could not be used");
    expect(inner.oks).toHaveLength(1);
    expect(inner.fails).toHaveLength(1);
    expect(inner.notices).toEqual(["a partial could not be used"]);
    clock.now = 249;
    fwd.tick();
    await Promise.resolve();
    expect(lines).toEqual([]);
    clock.now = 250;
    fwd.tick();
    fwd.ok(outcome(2));
    await fwd.end();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toEqual([
      { type: "fileResult", fino: 0, code: "", errno: 0, message: "/src/f1", bytes: 101, digest: digest(1), path: "d/f1", resumed: 1 },
      {
        type: "fileResult",
        fino: 0,
        code: "E_SOURCE_UNREADABLE",
        errno: 13,
        message: "/src/x: Permission denied",
        bytes: 0,
        digest: new Uint8Array(0),
        path: "",
        resumed: 0,
      },
    ]);
    expect(lines[1]?.map((m) => m.message)).toEqual(["/src/f2"]);
    expect(lines[2]).toEqual([]);
    fwd.ok(outcome(3)); // after the end: told to the log, never sent
    await fwd.end();
    expect(lines).toHaveLength(3);
    expect(inner.oks).toHaveLength(3);
  });

  test("a full line goes at once, in order, cut at MAX_REPORT_ITEMS", async () => {
    const { fwd, lines } = setup();
    const n = MAX_REPORT_ITEMS * 2 + 5;
    for (let i = 0; i < n; i++) fwd.ok(outcome(i));
    await Promise.resolve();
    await Promise.resolve();
    expect(lines.length).toBeGreaterThanOrEqual(1); // sent without a tick or the end
    await fwd.end();
    expect(lines.map((l) => l.length)).toEqual([MAX_REPORT_ITEMS, MAX_REPORT_ITEMS, 5, 0]);
    expect(lines.flat().map((m) => m.message)).toEqual(Array.from({ length: n }, (_, i) => `/src/f${i}`));
  });

  test("a channel that fails drops the rest quietly; end() still resolves", async () => {
    let calls = 0;
    const fwd = new ReportForwarder(
      new Recorder(),
      async () => {
        calls++;
        throw new EscpError("E_HANDSHAKE", "control channel write failed: EPIPE");
      },
      () => 1000,
    );
    fwd.ok(outcome(1));
    fwd.tick();
    fwd.ok(outcome(2));
    await fwd.end();
    expect(calls).toBe(1);
  });
});

describe("applyReport", () => {
  const names: ReportNames = { source: (n) => `h1:${n}`, failurePrefix: (c) => (c.startsWith("E_SOURCE_") ? "h1: " : "h2: ") };

  test("a verified item becomes ok() with the source shown and host2's path", () => {
    const r = new Recorder();
    applyReport({ type: "fileResult", fino: 0, code: "", errno: 0, message: "/data/a b", bytes: 7, digest: digest(9), path: "x/a b", resumed: 2 }, r, names);
    expect(r.oks).toEqual([{ name: "h1:/data/a b", bytes: 7, resumed: 2, digest: digest(9), rel: "x/a b" }]);
  });

  test("failures keep their code (unknown ones become E_REMOTE) and are named for their host", () => {
    const r = new Recorder();
    const fail = (code: string, message: string, errno = 0): FileResultMsg => ({
      type: "fileResult",
      fino: 0,
      code,
      errno,
      message,
      bytes: 0,
      digest: new Uint8Array(0),
      path: "",
      resumed: 0,
    });
    applyReport(fail("E_SOURCE_MISSING", "/data/gone: No such file or directory", 2), r, names);
    applyReport(fail("E_WRITE", "/dst/a: No space left on device"), r, names);
    applyReport(fail("E_FROM_THE_FUTURE", "something new"), r, names);
    expect(r.fails.map((e) => [e.code, e.message, e.errno])).toEqual([
      ["E_SOURCE_MISSING", "h1: /data/gone: No such file or directory", 2],
      ["E_WRITE", "h2: /dst/a: No space left on device", undefined],
      ["E_REMOTE", "h2: something new", undefined],
    ]);
  });
});
