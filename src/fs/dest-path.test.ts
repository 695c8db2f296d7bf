// Tests for scp destination naming (every case) and every safeJoin rejection.
import { describe, expect, test } from "bun:test";
import { EscpError } from "../errors/escp-error.ts";
import { destPathFor, resolveDestRoot, safeJoin, type PathKind } from "./dest-path.ts";

const fsTree: Record<string, PathKind> = { "/": "dir", "/tmp": "dir", "/tmp/f": "file", "/home/u": "dir" };
const statKind = (p: string): PathKind => fsTree[p.replace(/(.)\/+$/, "$1")] ?? "missing";

function errOf(fn: () => unknown): EscpError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw e;
  }
  throw new Error("expected an EscpError");
}

const file = (name: string) => ({ name, isDir: false });
const dir = (name: string) => ({ name, isDir: true });

describe("resolveDestRoot", () => {
  test("single file → existing dir: dir/basename", () => {
    expect(resolveDestRoot({ destPath: "/tmp", sources: [file("a")], recursive: false }, statKind)).toEqual({ singleFileTarget: "/tmp/a" });
    expect(resolveDestRoot({ destPath: "/tmp/", sources: [file("a")], recursive: false }, statKind)).toEqual({ singleFileTarget: "/tmp/a" });
  });
  test("single file → existing file: that path", () => {
    expect(resolveDestRoot({ destPath: "/tmp/f", sources: [file("a")], recursive: false }, statKind)).toEqual({ singleFileTarget: "/tmp/f" });
  });
  test("single file → missing path in an existing dir: that path", () => {
    expect(resolveDestRoot({ destPath: "/tmp/new", sources: [file("a")], recursive: true }, statKind)).toEqual({ singleFileTarget: "/tmp/new" });
    expect(resolveDestRoot({ destPath: "rel", sources: [file("a")], recursive: false }, statKind)).toEqual({ singleFileTarget: "rel" });
  });
  test("single file → missing parent: E_DEST", () => {
    const e = errOf(() => resolveDestRoot({ destPath: "/no/such/x", sources: [file("a")], recursive: false }, statKind));
    expect(e.code).toBe("E_DEST");
    expect(e.message).toBe("destination /no/such/x: directory /no/such does not exist");
  });
  test("single file → missing path with trailing slash: E_DEST", () => {
    const e = errOf(() => resolveDestRoot({ destPath: "/tmp/new/", sources: [file("a")], recursive: false }, statKind));
    expect(e.message).toBe("destination /tmp/new/ is not a directory");
  });
  test("empty dest = login dir", () => {
    expect(resolveDestRoot({ destPath: "", sources: [file("a")], recursive: false }, statKind)).toEqual({ singleFileTarget: "a" });
    expect(resolveDestRoot({ destPath: "", sources: [file("a"), file("b")], recursive: false }, statKind)).toEqual({ root: "", stripTopLevel: false });
    expect(resolveDestRoot({ destPath: "", sources: [dir("d")], recursive: true }, statKind)).toEqual({ root: "", stripTopLevel: false });
  });
  test("several sources → existing dir", () => {
    expect(resolveDestRoot({ destPath: "/tmp", sources: [file("a"), dir("d")], recursive: true }, statKind)).toEqual({ root: "/tmp", stripTopLevel: false });
  });
  test("several sources → file or missing: E_DEST", () => {
    for (const destPath of ["/tmp/f", "/tmp/new"]) {
      const e = errOf(() => resolveDestRoot({ destPath, sources: [file("a"), file("b")], recursive: false }, statKind));
      expect(e.code).toBe("E_DEST");
      expect(e.message).toBe(`destination ${destPath} is not a directory`);
    }
  });
  test("-r dir → existing dir keeps the top level", () => {
    expect(resolveDestRoot({ destPath: "/tmp", sources: [dir("d")], recursive: true }, statKind)).toEqual({ root: "/tmp", stripTopLevel: false });
  });
  test("-r dir → missing path strips the top level", () => {
    const plan = resolveDestRoot({ destPath: "/tmp/new", sources: [dir("d")], recursive: true }, statKind);
    expect(plan).toEqual({ root: "/tmp/new", stripTopLevel: true });
    expect(destPathFor(plan, "d/x/y")).toBe("/tmp/new/x/y");
    expect(destPathFor(plan, "d")).toBe("/tmp/new");
  });
  test("-r dir → file or missing parent: E_DEST", () => {
    expect(errOf(() => resolveDestRoot({ destPath: "/tmp/f", sources: [dir("d")], recursive: true }, statKind)).message).toBe(
      "destination /tmp/f is not a directory",
    );
    expect(errOf(() => resolveDestRoot({ destPath: "/no/x", sources: [dir("d")], recursive: true }, statKind)).code).toBe("E_DEST");
  });
  test("filelist with one entry still needs a directory", () => {
    expect(resolveDestRoot({ destPath: "/tmp", sources: [file("a")], recursive: false, filelist: true }, statKind)).toEqual({
      root: "/tmp",
      stripTopLevel: false,
    });
    expect(errOf(() => resolveDestRoot({ destPath: "/tmp/f", sources: [file("a")], recursive: false, filelist: true }, statKind)).code).toBe("E_DEST");
  });
  test("a single-file basename cannot escape", () => {
    expect(errOf(() => resolveDestRoot({ destPath: "/tmp", sources: [file("..")], recursive: false }, statKind)).code).toBe("E_REJECTED_PATH");
    expect(errOf(() => resolveDestRoot({ destPath: "/tmp", sources: [file("a/b")], recursive: false }, statKind)).code).toBe("E_REJECTED_PATH");
  });
});

describe("safeJoin", () => {
  test("joins clean names", () => {
    expect(safeJoin("/tmp", "a/b")).toBe("/tmp/a/b");
    expect(safeJoin("/tmp/", "a")).toBe("/tmp/a");
    expect(safeJoin("/", "a")).toBe("/a");
    expect(safeJoin("", "a/b")).toBe("a/b");
    expect(safeJoin("/tmp", "..a/b..")).toBe("/tmp/..a/b..");
  });
  const cases: [string, string][] = [
    ["/etc/passwd", 'refusing unsafe name "/etc/passwd": absolute path'],
    ["../x", 'refusing unsafe name "../x": ".." segment'],
    ["a/../../x", 'refusing unsafe name "a/../../x": ".." segment'],
    ["a\0b", 'refusing unsafe name "a\\u0000b": contains a NUL byte'],
    ["a//b", 'refusing unsafe name "a//b": empty path segment'],
    ["a/", 'refusing unsafe name "a/": empty path segment'],
    ["", 'refusing unsafe name "": empty path segment'],
    ["./a", 'refusing unsafe name "./a": "." segment'],
  ];
  for (const [name, msg] of cases) {
    test(`rejects ${JSON.stringify(name)}`, () => {
      const e = errOf(() => safeJoin("/tmp", name));
      expect(e.code).toBe("E_REJECTED_PATH");
      expect(e.message).toBe(msg);
      expect(e.path).toBe(name);
    });
  }
  test("rejects a segment over 255 bytes (multi-byte characters count as bytes)", () => {
    expect(safeJoin("/tmp", "x".repeat(255))).toBe(`/tmp/${"x".repeat(255)}`);
    expect(errOf(() => safeJoin("/tmp", "x".repeat(256))).message).toEndWith("a segment is over 255 bytes");
    expect(errOf(() => safeJoin("/tmp", "é".repeat(128))).code).toBe("E_REJECTED_PATH");
  });
  test("rejects a path over 4095 bytes (PATH_MAX with its NUL)", () => {
    const name = Array.from({ length: 40 }, () => "y".repeat(100)).join("/"); // 4039 bytes
    expect(safeJoin("/r", name).length).toBe(4042);
    expect(errOf(() => safeJoin("/r".repeat(30), name)).message).toEndWith("path is over 4095 bytes");
  });
});
