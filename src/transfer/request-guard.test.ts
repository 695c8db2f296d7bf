// Tests for what a pull's client accepts from a hostile server (the CVE-2019-6111 class: names
// not asked for, "..", absolute names, nesting or directories without -r, duplicates, NUL, dst)
// and that everything an honest server sends (globs, several requests, -r trees) gets through.
import { describe, expect, test } from "bun:test";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { EscpError } from "../errors/escp-error.ts";
import { expandSources } from "../fs/remote-path.ts";
import { checkReportedSources, makeEntryGuard, requestShape, type ReportedSource } from "./request-guard.ts";

function errOf(fn: () => unknown): EscpError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw e;
  }
  throw new Error("expected an EscpError");
}

const file = (name: string): ReportedSource => ({ name, isDir: false });
const dir = (name: string): ReportedSource => ({ name, isDir: true });

/** "CODE message" of the refusal, or "" when accepted. */
function refusal(requests: string[], reported: ReportedSource[], recursive: boolean): string {
  try {
    checkReportedSources(requests, reported, recursive);
    return "";
  } catch (e) {
    if (!(e instanceof EscpError)) throw e;
    return `${e.code} ${e.message}`;
  }
}

describe("requestShape", () => {
  test("literal, glob and server-named requests", () => {
    expect(requestShape("/data/f.h5")).toEqual({ kind: "literal", name: "f.h5" });
    expect(requestShape("~/d/")).toEqual({ kind: "literal", name: "d" });
    expect(requestShape("run*/data.h5")).toEqual({ kind: "literal", name: "data.h5" });
    expect(requestShape("b\\*c")).toEqual({ kind: "literal", name: "b*c" });
    expect(requestShape("\\~")).toEqual({ kind: "literal", name: "~" });
    expect(requestShape("/")).toEqual({ kind: "literal", name: "/" });
    expect(requestShape("/data/run*/*.h5")).toMatchObject({ kind: "glob", text: "*.h5" });
    for (const r of ["", ".", "..", "~", "~/", "~alice", "~alice/", "x/.", "x/.."]) expect(requestShape(r)).toEqual({ kind: "server-named" });
  });
});

describe("checkReportedSources: a hostile server", () => {
  test("a hidden file for *.txt or * (leading-dot rule), an extra top-level name", () => {
    expect(refusal(["*.txt"], [file("a.txt"), file(".bashrc")], false)).toBe('E_PROTOCOL server sent a name it was not asked for: ".bashrc"');
    expect(refusal(["*"], [file(".bashrc")], false)).toBe('E_PROTOCOL server sent a name it was not asked for: ".bashrc"');
    expect(refusal(["/tmp/f"], [file("f"), file("authorized_keys")], false)).toBe('E_PROTOCOL server sent a name it was not asked for: "authorized_keys"');
    expect(refusal(["a", "b"], [file("a"), file("c")], false)).toBe('E_PROTOCOL server sent a name it was not asked for: "c"');
  });
  test("names that are not one safe segment: .., absolute, nested, '.', '', NUL, over 255 bytes", () => {
    const cases: [string, string][] = [
      ["..", '".." segment'],
      ["../x", "not a single path segment"],
      ["/etc/passwd", "not a single path segment"],
      ["a/../../b", "not a single path segment"],
      [".", '"." segment'],
      ["", "empty path segment"],
      ["f\0.txt", "contains a NUL byte"],
      ["x".repeat(256), "a segment is over 255 bytes"],
    ];
    for (const [name, why] of cases) {
      expect(refusal(["*"], [file(name)], true)).toBe(`E_PROTOCOL server sent a name it was not asked for: ${JSON.stringify(name)} (${why})`);
    }
  });
  test("a directory where a file was asked (no -r), duplicates", () => {
    expect(refusal(["f"], [dir("f")], false)).toBe('E_PROTOCOL server sent a directory it was not asked for: "f" (no -r)');
    expect(refusal(["*.h5"], [file("a.h5"), file("a.h5")], false)).toBe('E_PROTOCOL server sent the name "a.h5" twice');
  });
  test("server-named requests (host:, ~, .) take one non-hidden directory each", () => {
    expect(refusal([""], [dir(".ssh")], true)).toBe('E_PROTOCOL server sent a name it was not asked for: ".ssh"');
    expect(refusal(["~"], [file("u")], true)).toBe('E_PROTOCOL server sent a name it was not asked for: "u"');
    expect(refusal(["~"], [dir("u"), dir("bin")], true)).toBe('E_PROTOCOL server sent a name it was not asked for: "bin"');
    expect(refusal(["/"], [dir("bin")], true)).toBe('E_PROTOCOL server sent a name it was not asked for: "bin"');
  });
  test("a lie is E_PROTOCOL: exit 7", () => {
    const e = errOf(() => checkReportedSources(["x"], [file("y")], false));
    expect(e.code).toBe("E_PROTOCOL");
    expect(e.exitCode).toBe(7);
    expect(e.path).toBe("y");
  });
});

describe("checkReportedSources: an honest server", () => {
  test("globs, several requests, literal names, -r trees", () => {
    const acc = checkReportedSources(
      ["/data/run*/*.h5", "~/notes.txt", "b\\*c", "-r-dir"],
      [file("a.h5"), file("c.h5"), file("notes.txt"), file("b*c"), dir("-r-dir")],
      true,
    );
    expect([...acc]).toEqual([
      ["a.h5", { isDir: false }],
      ["c.h5", { isDir: false }],
      ["notes.txt", { isDir: false }],
      ["b*c", { isDir: false }],
      ["-r-dir", { isDir: true }],
    ]);
  });
  test("a leading dot asked for explicitly; brackets; nothing reported is fine", () => {
    expect(refusal([".*"], [file(".bashrc")], false)).toBe("");
    expect(refusal(["[ab].txt"], [file("a.txt"), file("b.txt")], false)).toBe("");
    expect(refusal(["*.zip"], [], false)).toBe("");
  });
  test("server-named requests: the login directory, ~, ~user, .", () => {
    expect(refusal(["", "~alice", "."], [dir("u"), dir("alice"), dir("work")], true)).toBe("");
  });
});

describe("makeEntryGuard", () => {
  const acc = checkReportedSources(["*.txt", "/data/tree", "~/f"], [file("a.txt"), dir("tree"), file("f")], true);
  const rec = makeEntryGuard(acc, true);
  const flat = makeEntryGuard(checkReportedSources(["*.txt"], [file("a.txt")], false), false);
  const why = (guard: ReturnType<typeof makeEntryGuard>, e: Parameters<ReturnType<typeof makeEntryGuard>>[0]) => {
    const err = guard(e);
    return err === null ? "" : `${err.code} ${err.message}`;
  };

  test("a -r tree and top-level files pass", () => {
    expect(why(rec, { name: "tree", kind: "dir" })).toBe("");
    expect(why(rec, { name: "tree/sub", kind: "dir" })).toBe("");
    expect(why(rec, { name: "tree/sub/.hidden", kind: "file" })).toBe("");
    expect(why(rec, { name: "a.txt", kind: "file" })).toBe("");
    expect(why(rec, { name: "f", kind: "file" })).toBe("");
    expect(why(flat, { name: "a.txt", kind: "file" })).toBe("");
  });
  test("unsafe names are this file's E_REJECTED_PATH", () => {
    expect(why(rec, { name: "../x", kind: "file" })).toBe('E_REJECTED_PATH refusing unsafe name "../x": ".." segment');
    expect(why(rec, { name: "/etc/passwd", kind: "file" })).toBe('E_REJECTED_PATH refusing unsafe name "/etc/passwd": absolute path');
    expect(why(rec, { name: "tree/../../b", kind: "file" })).toBe('E_REJECTED_PATH refusing unsafe name "tree/../../b": ".." segment');
    expect(why(rec, { name: "tree/x\0y", kind: "file" })).toBe('E_REJECTED_PATH refusing unsafe name "tree/x\\u0000y": contains a NUL byte');
    expect(why(rec, { name: "tree//x", kind: "file" })).toBe('E_REJECTED_PATH refusing unsafe name "tree//x": empty path segment');
  });
  test("names not asked for, and what an honest server never does, are E_PROTOCOL", () => {
    expect(why(rec, { name: ".bashrc", kind: "file" })).toBe('E_PROTOCOL server sent a name it was not asked for: ".bashrc"');
    expect(why(rec, { name: "other/x", kind: "file" })).toBe('E_PROTOCOL server sent a name it was not asked for: "other/x"');
    expect(why(rec, { name: "a.txt", kind: "file", dst: "/home/u/.bashrc" })).toBe('E_PROTOCOL server sent a destination name for "a.txt": a pull takes none');
    expect(why(rec, { name: "a.txt", kind: "file", dst: "" })).toBe('E_PROTOCOL server sent a destination name for "a.txt": a pull takes none');
    expect(why(rec, { name: "a.txt/x", kind: "file" })).toBe('E_PROTOCOL server sent "a.txt/x" below "a.txt", which it reported as a file');
    expect(why(rec, { name: "tree", kind: "file" })).toBe('E_PROTOCOL server sent "tree" as a file, but reported a directory');
    expect(why(rec, { name: "f", kind: "dir" })).toBe('E_PROTOCOL server sent "f" as a dir, but reported a file');
  });
  test("without -r: nothing nested, no directory", () => {
    expect(why(flat, { name: "a.txt/x", kind: "file" })).toBe('E_PROTOCOL server sent "a.txt/x", a nested name, without -r');
    expect(why(flat, { name: "a.txt", kind: "dir" })).toBe('E_PROTOCOL server sent "a.txt", a directory, without -r');
  });
  test("a top-level entry announced twice", () => {
    const g = makeEntryGuard(acc, true);
    expect(why(g, { name: "a.txt", kind: "file" })).toBe("");
    expect(why(g, { name: "a.txt", kind: "file" })).toBe('E_PROTOCOL server sent "a.txt" twice');
  });
});

describe("the server's expansion and the client's check agree", () => {
  test("every name expandSources reports for a request is accepted for that request", () => {
    const root = makeTmpDir("request-guard");
    for (const d of ["home", "home/run1", "home/run2", "home/.cfg", "home/sp ace", "data"]) mkdirSync(`${root}/${d}`);
    for (const f of ["home/a.txt", "home/.hid.txt", "home/b*c", "home/[x", "home/run1/a.h5", "home/run2/b.h5", "data/é.bin", "data/~x"]) {
      writeFileSync(`${root}/${f}`, f);
    }
    const ctx = { home: `${root}/home`, homeOf: () => undefined, cwd: `${root}/home` };
    const requests = ["", ".", "~", "*.txt", ".*.txt", "b\\*c", "[x", "run*/*.h5", `${root}/data/*`, "~/sp ace", "run1/..", ".cfg"];
    for (const req of requests) {
      const reported = expandSources([req], ctx).sources.map((s) => ({ name: s.name, isDir: statSync(s.path).isDirectory() }));
      expect({ req, n: reported.length > 0 }).toEqual({ req, n: true });
      expect({ req, why: refusal([req], reported, true) }).toEqual({ req, why: "" });
    }
    removeTmpDir(root);
  });
});
