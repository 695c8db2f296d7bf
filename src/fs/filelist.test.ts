// Tests for --filelist parsing: YAML lists, pairs, several documents, newline lists, errors.
import { describe, expect, test } from "bun:test";
import type { EscpError } from "../errors/escp-error.ts";
import { parseFilelist } from "./filelist.ts";

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect((e as EscpError).code).toBe("E_USAGE");
    return (e as Error).message;
  }
  throw new Error("expected an E_USAGE error");
}

describe("parseFilelist", () => {
  test("YAML list of strings", () => {
    expect(parseFilelist("f", "- /a/b\n- 'c d'\n")).toEqual([{ src: "/a/b" }, { src: "c d" }]);
  });

  test("YAML [src, dst] pairs mixed with strings", () => {
    expect(parseFilelist("f", "- [/a, x/y]\n- /b\n")).toEqual([{ src: "/a", dst: "x/y" }, { src: "/b" }]);
  });

  test("several YAML documents", () => {
    expect(parseFilelist("f", "---\n- a\n- b\n---\n- [c, d]\n")).toEqual([{ src: "a" }, { src: "b" }, { src: "c", dst: "d" }]);
  });

  test("plain newline list (a YAML scalar in the original)", () => {
    expect(parseFilelist("f", "/a/b\n/c d\n\n/e:f\n")).toEqual([{ src: "/a/b" }, { src: "/c d" }, { src: "/e:f" }]);
  });

  test("newline list with CRLF and blank lines", () => {
    expect(parseFilelist("f", "a\r\n\r\nb\r\n")).toEqual([{ src: "a" }, { src: "b" }]);
  });

  test("newline list that is not valid YAML", () => {
    expect(parseFilelist("f", "x: y\nz\n[w\n")).toEqual([{ src: "x: y" }, { src: "z" }, { src: "[w" }]);
  });

  test("newline list: `#` comment lines (also indented) and blank lines are skipped; ./#name names such a file", () => {
    const text = "# sources for tonight\n/a/b\n\n  # indented comment\n\t#tabbed\n./#kept\nc #not a comment\n /lead space\n";
    expect(parseFilelist("f", text)).toEqual([{ src: "/a/b" }, { src: "./#kept" }, { src: "c #not a comment" }, { src: " /lead space" }]);
    expect(parseFilelist("f", "a\r\n#b\r\n")).toEqual([{ src: "a" }]);
    expect(usageMessage(() => parseFilelist("f", "# only\n  # comments\n\n"))).toBe("--filelist f: content: no paths listed");
  });

  test("single path", () => {
    expect(parseFilelist("f", "/only\n")).toEqual([{ src: "/only" }]);
  });

  test("empty → error", () => {
    expect(usageMessage(() => parseFilelist("f.yaml", ""))).toBe("--filelist f.yaml: content: no paths listed");
    expect(usageMessage(() => parseFilelist("f.yaml", "\n\r\n  \n"))).toBe("--filelist f.yaml: content: no paths listed");
    expect(usageMessage(() => parseFilelist("f.yaml", "[]\n"))).toBe("--filelist f.yaml: content: no paths listed");
  });

  test("bad items name the file and item", () => {
    expect(usageMessage(() => parseFilelist("f", "- a\n- [b]\n"))).toBe('--filelist f: item 2: expected [src, dst] with two non-empty strings, got ["b"]');
    expect(usageMessage(() => parseFilelist("f", "- a\n- {x: 1}\n"))).toBe('--filelist f: item 2: expected a path or [src, dst], got {"x":1}');
    expect(usageMessage(() => parseFilelist("f", "- 12\n"))).toBe(
      "--filelist f: item 1: expected a path or [src, dst], got 12 (quote names that look like numbers)",
    );
    expect(usageMessage(() => parseFilelist("f", "k: v\n"))).toBe("--filelist f: top level: expected a YAML list of paths, got a mapping");
    expect(usageMessage(() => parseFilelist("f", "- a\n---\nk: v\n"))).toBe("--filelist f: document 2: expected a YAML list of paths, got a mapping");
    expect(usageMessage(() => parseFilelist("f", "a\0b\n"))).toBe("--filelist f: content: contains a NUL byte (not a text file)");
  });
});
