// Tests for --filelist parsing: YAML lists, pairs, several documents, newline lists, errors.
import { describe, expect, test } from "bun:test";
import type { EscpError } from "../errors/escp-error.ts";
import { ESCP_RANGE_BLOCKS_MAX } from "../native/symbols.ts";
import { parseFilelist, shardRanges } from "./filelist.ts";

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

describe("shardRanges (--shard: src@OFFSET+LENGTH)", () => {
  const B = 65536;
  const sizes: Record<string, number> = { "/d/big": 5 * B + 7, "/d/one": 100, "/d/empty": 0, "/d/dir": -1, "/d/huge": (ESCP_RANGE_BLOCKS_MAX + 2) * B };
  const size = (p: string): number | undefined => sizes[p];
  const one = (src: string) => shardRanges("s.list", [{ src, dst: "x" }], B, size)[0];

  test("a range is split off the name; the whole file and names without a suffix stay plain", () => {
    expect(one(`/d/big@${B}+${2 * B}`)).toEqual({ src: "/d/big", dst: "x", range: { offset: B, length: 2 * B } });
    expect(one(`/d/big@${4 * B}+${B + 7}`)).toEqual({ src: "/d/big", dst: "x", range: { offset: 4 * B, length: B + 7 } }); // ends the file
    expect(one(`/d/big@0+${5 * B + 7}`)).toEqual({ src: "/d/big", dst: "x" }); // @0+SIZE: the whole file
    expect(one("/d/empty@0+0")).toEqual({ src: "/d/empty", dst: "x" });
    expect(one("/d/big")).toEqual({ src: "/d/big", dst: "x" });
    expect(one("/d/missing@0+65536")).toEqual({ src: "/d/missing", dst: "x" }); // the walk names it
  });

  test("bad ranges: E_USAGE naming the list, the item and the cause", () => {
    const cases: [string, string][] = [
      [`/d/big@1+${B}`, "offset 1 is not a multiple of the block size 65536"],
      ["/d/big@0+0", "the length is 0"],
      [`/d/big@${4 * B}+${2 * B}`, `the range ends at ${6 * B}, past the file's ${5 * B + 7} bytes`],
      ["/d/big@0+1000", "length 1000 is not a multiple of the block size 65536 (only a range that ends the file may be shorter)"],
      ["/d/one@0+50", "length 50 is not a multiple of the block size 65536 (only a range that ends the file may be shorter)"],
      ["@0+10", "empty path before the range"],
      ["/d/dir@0+65536", "not a regular file (a byte range needs one)"],
      ["/d/big@0+99999999999999999999", "offset or length over 2^53 - 1"],
    ];
    for (const [src, cause] of cases) expect(usageMessage(() => one(src))).toBe(`--shard s.list: item 1 (${JSON.stringify(src)}): ${cause}`);
  });

  test("only the last @N+M is a range; other @ and + stay in the name", () => {
    sizes["/d/a@1+2"] = 3 * B;
    expect(one(`/d/a@1+2@${B}+${B}`)).toEqual({ src: "/d/a@1+2", dst: "x", range: { offset: B, length: B } });
    expect(one("/d/a+b@x")).toEqual({ src: "/d/a+b@x", dst: "x" });
  });
  test("a range of more than ESCP_RANGE_BLOCKS_MAX blocks is refused, naming the limit", () => {
    expect(one(`/d/huge@0+${ESCP_RANGE_BLOCKS_MAX * B}`)).toEqual({ src: "/d/huge", dst: "x", range: { offset: 0, length: ESCP_RANGE_BLOCKS_MAX * B } });
    expect(() => one(`/d/huge@0+${(ESCP_RANGE_BLOCKS_MAX + 1) * B}`)).toThrow(`is more than ${ESCP_RANGE_BLOCKS_MAX} blocks of ${B}`);
  });
});
