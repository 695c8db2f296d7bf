// The --json event writer: every event it can print validates against docs/escp-json.schema.json
// (with the harness's validator, whose own rejections are checked here too), progress comes at
// most once per second with a rate and an ETA, and the schema's codes are exactly codes.ts's.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES } from "../errors/codes.ts";
import { escpJsonValidator, parseJsonLines, SchemaValidator, type Schema } from "../../harness/json-schema.ts";
import { JsonEvents, JSON_SCHEMA_VERSION, type JsonClock } from "./json-output.ts";
import { Progress, setJsonStdout, setTermWriter, term, type TermWriter } from "./progress.ts";

const validator = escpJsonValidator();

function fakeClock(): JsonClock & { ms: number } {
  const c = { ms: 5000, nowMs: () => c.ms, date: () => new Date(Date.UTC(2026, 11, 2, 3, 4, 5, 678)) };
  return c;
}

function collect(): { lines: string[]; events: JsonEvents; clock: ReturnType<typeof fakeClock> } {
  const lines: string[] = [];
  const clock = fakeClock();
  return { lines, clock, events: new JsonEvents((l) => lines.push(l), clock) };
}

const parsed = (lines: string[]): Record<string, unknown>[] => parseJsonLines(lines.map((l) => `${l}\n`).join(""), validator);

describe("JsonEvents", () => {
  test("a whole session: every line valid, in order, with the schema version", () => {
    const { lines, events, clock } = collect();
    events.start({
      direction: "push",
      sources: ["a", "b"],
      destination: "host:/x",
      total_files: 2,
      total_bytes: 3000,
      threads: 4,
      block_size: 1 << 20,
      checksum: true,
    });
    events.fileOk({ path: "a", rel: "a", bytes: 1000, resumed_bytes: 0, digest: "0f".repeat(32) });
    events.fileFailed({ code: "E_SOURCE_UNREADABLE", message: "b: Permission denied", path: "b" });
    events.notice("something to know");
    clock.ms += 2000;
    expect(events.progress(1000, 1)).toBe(true);
    events.summary({ files_ok: 1, files_failed: 1, bytes: 1000, resumed_bytes: 0, seconds: 2.0004, exit_status: 1, error: null });
    const ev = parsed(lines);
    expect(ev.map((e) => e.type)).toEqual(["start", "file", "file", "notice", "progress", "summary"]);
    for (const e of ev) expect(e.schema_version).toBe(JSON_SCHEMA_VERSION);
    expect(ev[0]).toMatchObject({ time: "2026-12-02T03:04:05.678Z", sources: ["a", "b"], total_bytes: 3000 });
    expect(ev[4]).toEqual({ type: "progress", schema_version: 1, bytes: 1000, total_bytes: 3000, files: 1, total_files: 2, rate: 500, eta: 4, elapsed: 2 });
    expect(ev[5]).toMatchObject({ seconds: 2, exit_status: 1, error: null });
  });

  test("progress: not before a second has passed since the start or the last one, eta null without totals", () => {
    const { lines, events, clock } = collect();
    events.start({
      direction: "pull",
      sources: ["h:x"],
      destination: ".",
      total_files: null,
      total_bytes: null,
      threads: 1,
      block_size: 65536,
      checksum: false,
    });
    for (let i = 0; i < 25; i++) {
      clock.ms += 100; // 2.5 s of ticks every 100 ms
      events.progress(i * 10, 0);
    }
    const ev = parsed(lines).filter((e) => e.type === "progress");
    expect(ev.map((e) => e.elapsed)).toEqual([1, 2]);
    for (const e of ev) expect(e.eta).toBeNull();
    expect(ev[0]).toMatchObject({ bytes: 90, rate: 90, total_bytes: null, total_files: null });
  });

  test("eta is 0 once everything is done, and a zero rate gives null", () => {
    const { lines, events, clock } = collect();
    events.start({ direction: "local", sources: ["a"], destination: "b", total_files: 1, total_bytes: 10, threads: 1, block_size: 65536, checksum: true });
    clock.ms += 1000;
    events.progress(0, 0);
    clock.ms += 1000;
    events.progress(10, 1);
    const ev = parsed(lines).filter((e) => e.type === "progress");
    expect(ev.map((e) => e.eta)).toEqual([null, 0]);
  });

  test("a fatal error: an error line, then the summary with the same code and exit status", () => {
    const { lines, events } = collect();
    events.error("E_SSH_UNREACHABLE", "ssh: connect to host nowhere: No route to host", 4);
    events.summary({
      files_ok: 0,
      files_failed: 0,
      bytes: 0,
      resumed_bytes: 0,
      seconds: 0.1,
      exit_status: 4,
      error: { code: "E_SSH_UNREACHABLE", message: "ssh: …" },
    });
    const ev = parsed(lines);
    expect(ev.map((e) => e.type)).toEqual(["error", "summary"]);
    expect(ev[1]?.exit_status).toBe(ev[0]?.exit_status);
  });

  test("names with newlines, quotes and non-ASCII stay one line each and round-trip", () => {
    const { lines, events } = collect();
    const name = 'we"ird\nname\\ ✓\u0001';
    events.fileOk({ path: name, rel: name, bytes: 0, resumed_bytes: 0, digest: null });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.includes("\n")).toBe(false);
    expect(parsed(lines)[0]?.rel).toBe(name);
  });
});

describe("the schema and its validator", () => {
  test("the schema's error codes are exactly src/errors/codes.ts's", () => {
    const schema = JSON.parse(readFileSync(join(import.meta.dir, "../../docs/escp-json.schema.json"), "utf8")) as { $defs: { code: { enum: string[] } } };
    expect([...schema.$defs.code.enum].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  test("the validator rejects what the schema forbids", () => {
    const ok = { type: "notice", schema_version: 1, message: "x" };
    expect(validator.errors(ok)).toEqual([]);
    const bad: unknown[] = [
      { ...ok, extra: 1 }, // undocumented field
      { type: "notice", schema_version: 1 }, // missing field
      { ...ok, schema_version: 2 },
      { ...ok, type: "bogus" },
      { type: "file", schema_version: 1, status: "ok", path: "a", rel: "a", bytes: -1, resumed_bytes: 0, digest: null },
      { type: "file", schema_version: 1, status: "ok", path: "a", rel: "a", bytes: 1.5, resumed_bytes: 0, digest: null },
      { type: "file", schema_version: 1, status: "ok", path: "a", rel: "a", bytes: 1, resumed_bytes: 0, digest: "ABC" },
      { type: "file", schema_version: 1, status: "failed", code: "E_NOPE", message: "m", path: null },
      { type: "summary", schema_version: 1, files_ok: 0, files_failed: 0, bytes: 0, resumed_bytes: 0, seconds: 0, exit_status: 0, error: { code: "E_USAGE" } },
      [ok],
      null,
    ];
    for (const b of bad) expect(validator.errors(b).length).toBeGreaterThan(0);
    expect(() => parseJsonLines('{"type":"notice"', validator)).toThrow(/does not end with a newline/);
    expect(() => parseJsonLines("not json\n", validator)).toThrow(/line 1 is not JSON/);
  });

  test("the validator refuses schema keywords it does not implement", () => {
    expect(() => new SchemaValidator({ anyOf: [] } as Schema)).toThrow(/outside the supported subset/);
    expect(() => new SchemaValidator({ properties: { a: { format: "date-time" } } } as Schema)).toThrow(/format/);
  });
});

describe("--json on the terminal writer", () => {
  let restore: TermWriter | undefined;
  afterEach(() => {
    setJsonStdout(false);
    if (restore) setTermWriter(restore);
    restore = undefined;
  });

  test("stdout holds only JSON lines: info text moves to stderr, no bar, no summary line", () => {
    const out: string[] = [];
    const err: string[] = [];
    restore = setTermWriter({ stdoutIsTTY: true, stderrIsTTY: false, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) });
    setJsonStdout(true);
    let ms = 0;
    const p = new Progress({ quiet: false, bits: false, nowMs: () => ms });
    p.start(100, 1);
    ms = 5000;
    p.update(50, 0);
    term.info("escp: verdict text");
    new JsonEvents().notice("hello");
    p.finish({ bytes: 100, files: 1, failed: 0, seconds: 1 });
    expect(err).toEqual(["escp: verdict text\n"]);
    expect(parsed(out.map((l) => l.replace(/\n$/, "")))).toEqual([{ type: "notice", schema_version: 1, message: "hello" }]);
  });
});
