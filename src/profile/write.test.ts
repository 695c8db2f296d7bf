// Tests for writing a profile: the .html name beside the trace, atomic replacement, both files
// valid, and E_WRITE errors that name the path.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { EscpError } from "../errors/escp-error.ts";
import { mkProfile, mkSide } from "./test-profiles.fixture.ts";
import { htmlPathFor, writeProfile } from "./write.ts";

const dir = makeTmpDir("profile-write");
afterAll(() => removeTmpDir(dir));
const profile = mkProfile([mkSide("sender", { read: 0.9, send: 0.05 }), mkSide("receiver", { recv: 0.9 })]);

async function failure(path: string): Promise<EscpError> {
  try {
    await writeProfile(path, profile);
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw e;
  }
  throw new Error(`writeProfile(${path}) did not fail`);
}

describe("htmlPathFor", () => {
  test("replaces the extension, or appends one", () => {
    expect(htmlPathFor("x.json")).toBe("x.html");
    expect(htmlPathFor("x")).toBe("x.html");
    expect(htmlPathFor("/tmp/run.1/prof.trace.json")).toBe("/tmp/run.1/prof.trace.html");
    expect(htmlPathFor("dir.d/x")).toBe("dir.d/x.html");
    expect(htmlPathFor(".profile")).toBe(".profile.html");
    expect(htmlPathFor("x.html")).toBe("x.report.html");
  });
});

describe("writeProfile", () => {
  test("writes the trace and the report and returns the verdict", async () => {
    const path = join(dir, "run.json");
    const out = await writeProfile(path, profile);
    expect(out).toMatchObject({ tracePath: path, htmlPath: join(dir, "run.html") });
    expect(out.verdict.bound).toBe("disk-read");
    const trace = JSON.parse(readFileSync(path, "utf8"));
    expect(trace.metadata.verdict.text).toBe(out.verdict.text);
    expect(trace.traceEvents.length).toBeGreaterThan(0);
    expect(readFileSync(out.htmlPath, "utf8")).toContain(out.verdict.text);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("replaces existing files; a path without extension gets x.html", async () => {
    const path = join(dir, "again");
    writeFileSync(path, "old");
    const out = await writeProfile(path, profile);
    expect(out.htmlPath).toBe(join(dir, "again.html"));
    expect(readFileSync(path, "utf8")).toStartWith("{");
  });

  test("a missing directory is E_WRITE naming the path, and leaves nothing behind", async () => {
    const path = join(dir, "no-such-dir", "p.json");
    const e = await failure(path);
    expect(e.code).toBe("E_WRITE");
    expect(e.path).toBe(path);
    expect(e.message).toBe(`cannot write profile ${path}: No such file or directory`);
  });

  test("a parent that is a file is E_WRITE (Not a directory)", async () => {
    const file = join(dir, "plain");
    writeFileSync(file, "x");
    const e = await failure(join(file, "p.json"));
    expect(e.message).toContain("Not a directory");
  });

  test("a path that is a directory is E_WRITE and the temp files are removed", async () => {
    const sub = join(dir, "isdir");
    mkdirSync(join(sub, "p.json"), { recursive: true });
    const e = await failure(join(sub, "p.json"));
    expect(e.code).toBe("E_WRITE");
    expect(e.message).toStartWith(`cannot write profile ${join(sub, "p.json")}:`);
    expect(readdirSync(sub)).toEqual(["p.json"]);
  });

  // Root may write anywhere but sysfs, which refuses new files even to root.
  const root = process.getuid?.() === 0;
  test.skipIf(root && !existsSync("/sys/kernel"))("an unwritable directory is E_WRITE (Permission denied)", async () => {
    let target = "/sys/escp-profile-test.json";
    if (!root) {
      const ro = join(dir, "ro");
      mkdirSync(ro, { mode: 0o555 });
      target = join(ro, "p.json");
    }
    const e = await failure(target);
    expect(e.code).toBe("E_WRITE");
    expect(e.message).toMatch(new RegExp(`^cannot write profile ${target}: (Permission denied|Read-only file system|Operation not permitted)$`));
    expect(existsSync(htmlPathFor(target))).toBe(false);
  });

  test("an empty path is a usage error", async () => {
    expect((await failure("")).code).toBe("E_USAGE");
  });
});
