// RunOutput: what the initiator shows of one run — JSON lines (each valid against
// docs/escp-json.schema.json), manifest lines checked by the real b3sum, the error event of a
// failed run, the manifest committed at the end (and a commit that fails turning exit 0 into 1),
// peer-supplied names that must not reach the manifest, and --json on a bad command line.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { escpJsonValidator, parseJsonLines } from "../../harness/json-schema.ts";
import { b3sum } from "../../harness/b3sum.ts";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { setJsonStdout, setTermWriter, type TermWriter } from "../cli/progress.ts";
import { loadConfig } from "../config/load.ts";
import { EscpError } from "../errors/escp-error.ts";
import { failuresError, jsonUsageFailure, listableRel, RunOutput, showEndpoint } from "./run-output.ts";

const tmp = makeTmpDir("run-output-unit");
afterAll(() => removeTmpDir(tmp));
const validator = escpJsonValidator();

let restore: TermWriter | undefined;
function capture(): { out: string[]; err: string[] } {
  const c = { out: [] as string[], err: [] as string[] };
  restore = setTermWriter({ stdout: (t) => void c.out.push(t), stderr: (t) => void c.err.push(t), stdoutIsTTY: false, stderrIsTTY: false });
  return c;
}
afterEach(() => {
  if (restore) setTermWriter(restore);
  restore = undefined;
  setJsonStdout(false);
});

const opts = (...flags: string[]) => loadConfig([...flags, "src", "dst"], {}).opts;
const events = (out: string[]) => parseJsonLines(out.join(""), validator);

describe("RunOutput", () => {
  test("--json and --manifest: start, files, summary; the manifest passes b3sum -c and lists exactly the verified files", async () => {
    const dest = join(tmp, "dest1");
    mkdirSync(join(dest, "sub dir"), { recursive: true });
    writeFileSync(join(dest, "a.txt"), "alpha\n");
    writeFileSync(join(dest, "sub dir", "b c.bin"), "beta gamma\n");
    const manifest = join(tmp, "one.b3");
    const c = capture();
    const run = new RunOutput(opts("--json", "--manifest", manifest));
    run.openManifest();
    expect(existsSync(manifest)).toBe(false); // only its temporary until the end
    run.start({ direction: "push", sources: ["src"], destination: "h:dst", files: 3, bytes: 17 });
    for (const rel of ["a.txt", "sub dir/b c.bin"]) {
      const hex = await b3sum(join(dest, rel));
      run.reporter.ok({ name: `src/${rel}`, bytes: 6, resumed: rel === "a.txt" ? 2 : 0, digest: Buffer.from(hex, "hex"), rel });
    }
    run.reporter.failed(new EscpError("E_SOURCE_UNREADABLE", "src/c: Permission denied", { path: "src/c" }));
    run.tick(12, 2);
    expect(run.end(1)).toBe(1);
    const ev = events(c.out);
    expect(ev.map((e) => `${e.type}${e.status ? `:${e.status}` : ""}`)).toEqual(["start", "file:ok", "file:ok", "file:failed", "error", "summary"]);
    expect(ev[1]).toMatchObject({ path: "src/a.txt", rel: "a.txt", resumed_bytes: 2 });
    expect(ev[3]).toMatchObject({ code: "E_SOURCE_UNREADABLE", path: "src/c" });
    expect(ev[4]).toMatchObject({ code: "E_SOURCE_UNREADABLE", exit_status: 1 });
    expect(ev[5]).toMatchObject({ files_ok: 2, files_failed: 1, bytes: 12, resumed_bytes: 2, exit_status: 1, error: { code: "E_SOURCE_UNREADABLE" } });
    expect(c.err.join("")).toBe("escp: src/c: Permission denied\n"); // failures on stderr, never stdout
    const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: dest, stdout: "pipe", stderr: "pipe" });
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
    expect(check.stdout.toString()).toBe("a.txt: OK\nsub dir/b c.bin: OK\n");
    expect(readdirSync(tmp).filter((n) => n.includes(".escp-"))).toEqual([]);
    expect(run.end(0)).toBe(0); // a second end (a signal racing the normal exit) prints nothing more
    expect(events(c.out)).toHaveLength(6);
  });

  test("names a peer gave that are not relative paths below the destination stay out of the manifest", () => {
    const manifest = join(tmp, "hostile.b3");
    const c = capture();
    const run = new RunOutput(opts("--json", "--manifest", manifest));
    run.openManifest();
    for (const rel of ["../etc/passwd", "/etc/passwd", "a//b", "./a", "a/..", "", "fine/name"]) {
      run.reporter.ok({ name: "x", bytes: 1, resumed: 0, digest: new Uint8Array(32).fill(1), rel });
    }
    expect(run.end(0)).toBe(0);
    expect(readFileSync(manifest, "utf8")).toBe(`${"01".repeat(32)}  fine/name\n`);
    expect(
      events(c.out)
        .filter((e) => e.type === "file")
        .map((e) => e.rel),
    ).toEqual(["", "", "", "", "", "", "fine/name"]);
    expect(c.err.join("")).toContain("is not listed"); // said once, on stderr
  });

  test("without checksums' digests (all zero) a file gets digest null in JSON", () => {
    const c = capture();
    const run = new RunOutput(opts("--json"));
    run.reporter.ok({ name: "x", bytes: 1, resumed: 0, digest: new Uint8Array(32), rel: "x" });
    run.end(0);
    expect(events(c.out)[0]).toMatchObject({ type: "file", digest: null });
  });

  test("a manifest that cannot be committed turns exit 0 into E_WRITE's 1, with the error event", () => {
    const manifest = join(tmp, "lost.b3");
    const c = capture();
    const run = new RunOutput(opts("--json", "--manifest", manifest));
    run.openManifest();
    const t = readdirSync(tmp).find((n) => n.startsWith(".lost.b3.escp-"));
    expect(t).toBeDefined();
    unlinkSync(join(tmp, t as string)); // its temporary is gone: the rename cannot happen
    expect(run.end(0)).toBe(1);
    const ev = events(c.out);
    expect(ev.map((e) => e.type)).toEqual(["error", "summary"]);
    expect(ev[0]).toMatchObject({ code: "E_WRITE", exit_status: 1 });
    expect(String(ev[0]?.message)).toContain(`--manifest ${manifest}`);
    expect(existsSync(manifest)).toBe(false);
  });

  test("a fatal error is the error event; without --json nothing reaches stdout", () => {
    let c = capture();
    let run = new RunOutput(opts("--json"));
    expect(run.end(9, new EscpError("E_TIMEOUT", "h: stalled"))).toBe(9);
    expect(events(c.out).map((e) => [e.type, e.code ?? (e.error as { code: string }).code])).toEqual([
      ["error", "E_TIMEOUT"],
      ["summary", "E_TIMEOUT"],
    ]);
    setTermWriter(restore as TermWriter);
    c = capture();
    run = new RunOutput(opts("-q"));
    run.reporter.failed(new EscpError("E_WRITE", "d/x: No space left on device"));
    expect(run.end(1)).toBe(1);
    expect(c.out).toEqual([]);
  });
});

describe("helpers", () => {
  test("failuresError: the most severe failure's code, the count and the first message", () => {
    expect(failuresError([])).toBeUndefined();
    const one = new EscpError("E_WRITE", "a: full");
    expect(failuresError([one])).toBe(one);
    const e = failuresError([one, new EscpError("E_DEST", "dst: gone"), new EscpError("E_WRITE", "b: full")]);
    expect([e?.code, e?.message]).toEqual(["E_DEST", "3 failures; the first: a: full"]);
  });

  test("listableRel and showEndpoint", () => {
    expect(["a", "a/b c", "ü/.hidden", "a..b"].every(listableRel)).toBe(true);
    expect(["", "/a", "a/", "a//b", ".", "..", "a/../b", "a\0b"].some(listableRel)).toBe(false);
    expect(showEndpoint({}, "/x")).toBe("/x");
    expect(showEndpoint({ host: "h1" }, "/x")).toBe("h1:/x");
    expect(showEndpoint({ host: "::1", user: "u" }, "y")).toBe("u@[::1]:y");
  });

  test("jsonUsageFailure: --json before `--` gets an error and a summary line; otherwise nothing", () => {
    const c = capture();
    const err = new EscpError("E_USAGE", "--bogus: unknown option");
    jsonUsageFailure(["--bogus", "--", "--json"], err);
    jsonUsageFailure(["--server", "--json", "--bogus"], err);
    expect(c.out).toEqual([]);
    jsonUsageFailure(["--json", "--bogus"], err);
    const ev = events(c.out);
    expect(ev.map((e) => e.type)).toEqual(["error", "summary"]);
    expect(ev[1]).toMatchObject({ exit_status: 2, error: { code: "E_USAGE" } });
  });
});
