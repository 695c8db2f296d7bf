// Tests for the server's handling of requested paths: tilde expansion (incl. real ~root and an
// unknown user), and pull-source globbing on real temp trees (hidden files, nested globs,
// brackets, escapes, no match, missing literals, sorting, names, the match bound).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { EscpError } from "../errors/escp-error.ts";
import {
  expandDest,
  expandSources,
  expandTilde,
  homeFromPasswd,
  lookupHome,
  matchSegment,
  parsePasswdLine,
  parseSegment,
  splitSegments,
  type RemotePathContext,
} from "./remote-path.ts";

function errOf(fn: () => unknown): EscpError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EscpError) return e;
    throw e;
  }
  throw new Error("expected an EscpError");
}

let root = "";
let ctx: RemotePathContext;

function touch(rel: string): void {
  writeFileSync(`${root}/${rel}`, rel);
}

beforeAll(() => {
  root = makeTmpDir("remote-path");
  for (const d of [
    "cwd",
    "cwd/run1",
    "cwd/run2",
    "cwd/.run4",
    "cwd/sub",
    "cwd/d1",
    "cwd/d2",
    "home",
    "alice",
    "alice/docs",
    "h[1]",
    "sort",
    "sort/a",
    "sort/a-b",
    "sort/b",
    "many",
  ]) {
    mkdirSync(`${root}/${d}`);
  }
  for (const f of [
    "cwd/a.txt",
    "cwd/b.txt",
    "cwd/c.dat",
    "cwd/.hidden",
    "cwd/.h.txt",
    "cwd/b*c",
    "cwd/bxc",
    "cwd/[x",
    "cwd/1st",
    "cwd/]x",
    "cwd/run1/a.h5",
    "cwd/run1/b.txt",
    "cwd/run2/c.h5",
    "cwd/run3",
    "cwd/.run4/d.h5",
    "cwd/sub/s.txt",
    "cwd/d1/f",
    "home/f.txt",
    "home/g.txt",
    "alice/docs/r.txt",
    "h[1]/x.txt",
    "sort/a/x1",
    "sort/a-b/x2",
    "sort/b/x3",
  ]) {
    touch(f);
  }
  for (let i = 0; i < 12; i++) touch(`many/f${String(i).padStart(2, "0")}`);
  symlinkSync(`${root}/nowhere`, `${root}/cwd/dangling`);
  ctx = {
    home: `${root}/home`,
    homeOf: (u) => (u === "alice" ? `${root}/alice` : undefined),
    cwd: `${root}/cwd`,
    label: "host:",
  };
});

afterAll(() => removeTmpDir(root));

/** Shown paths of the sources, problems as "CODE message". */
function run(patterns: string[], c: RemotePathContext = ctx): { shown: string[]; names: string[]; problems: string[] } {
  const r = expandSources(patterns, c);
  return { shown: r.sources.map((s) => s.shown), names: r.sources.map((s) => s.name), problems: r.problems.map((e) => `${e.code} ${e.message}`) };
}

describe("expandTilde / expandDest", () => {
  const c: RemotePathContext = { home: "/home/u", homeOf: (u) => ({ alice: "/home/alice", r: "/" })[u] };
  test("~ and ~/x are the login home", () => {
    expect(expandTilde("~", c)).toBe("/home/u");
    expect(expandTilde("~/", c)).toBe("/home/u/");
    expect(expandTilde("~/x", c)).toBe("/home/u/x");
    expect(expandTilde("~/x/", c)).toBe("/home/u/x/");
    expect(expandTilde("~", { ...c, home: "/home/u/" })).toBe("/home/u");
  });
  test("~user and ~user/x are that user's home", () => {
    expect(expandTilde("~alice", c)).toBe("/home/alice");
    expect(expandTilde("~alice/docs/r.txt", c)).toBe("/home/alice/docs/r.txt");
    expect(expandTilde("~r/x", c)).toBe("/x");
    expect(expandTilde("~r", c)).toBe("/");
  });
  test("anything else is unchanged: relative stays relative", () => {
    for (const p of ["", "x", "x/~", "a/~/b", "/abs/~x", "\\~/x", "./~"]) expect(expandTilde(p, c)).toBe(p);
  });
  test("an unknown user is a one-line error naming the user", () => {
    const e = errOf(() => expandTilde("~nosuchuser/x", c));
    expect(e.code).toBe("E_SOURCE_MISSING");
    expect(e.message).toBe('~nosuchuser/x: no such user "nosuchuser"');
    const d = errOf(() => expandDest("~nosuchuser", { ...c, label: "host:" }));
    expect(d.code).toBe("E_DEST");
    expect(d.exitCode).toBe(8);
    expect(d.message).toBe('host:~nosuchuser: no such user "nosuchuser"');
  });
  test("expandDest expands tildes only: a pattern stays as written", () => {
    expect(expandDest("~/in/*.h5", c)).toBe("/home/u/in/*.h5");
    expect(expandDest("dir/", c)).toBe("dir/");
  });
});

describe("users' homes from the system", () => {
  test("~root is root's passwd home; unknown names, option look-alikes and uids are no user", () => {
    const want = homeFromPasswd(readFileSync("/etc/passwd", "utf8"), "root");
    expect(want).toBeDefined();
    expect(lookupHome("root")).toBe(want);
    expect(lookupHome("nosuchuser-escp")).toBeUndefined();
    expect(lookupHome("-x")).toBeUndefined();
    expect(lookupHome("0")).toBeUndefined(); // getent passwd 0 answers root; ~0 names no user
    expect(lookupHome("")).toBeUndefined();
    expect(lookupHome("a b")).toBeUndefined();
    expect(expandTilde("~root/x", { home: "/h", homeOf: lookupHome })).toBe(`${want === "/" ? "" : want}/x`);
  });
  test("passwd lines", () => {
    expect(parsePasswdLine("alice:x:1000:1000:Alice A,,,:/home/alice:/bin/bash")).toEqual({ name: "alice", home: "/home/alice" });
    expect(parsePasswdLine("alice:x:1000:1000::/home/alice:/bin/bash\n")).toEqual({ name: "alice", home: "/home/alice" });
    expect(parsePasswdLine("broken:x:1")).toBeUndefined();
    expect(parsePasswdLine("rel:x:1:1::home/rel:/bin/sh")).toBeUndefined();
    expect(parsePasswdLine("# comment")).toBeUndefined();
    const text = "root:x:0:0::/root:/bin/sh\nbob:x:1:1::/srv/bob:/bin/sh\nbob:x:2:2::/other:/bin/sh\n";
    expect(homeFromPasswd(text, "bob")).toBe("/srv/bob");
    expect(homeFromPasswd(text, "bo")).toBeUndefined();
  });
});

describe("segment patterns", () => {
  const m = (p: string, n: string) => matchSegment(parseSegment(p), n);
  test("*, ? and a leading dot", () => {
    expect(m("*", "a")).toBe(true);
    expect(m("*", "")).toBe(true);
    expect(m("*", ".a")).toBe(false);
    expect(m("?a", ".a")).toBe(false);
    expect(m("[.]a", ".a")).toBe(false);
    expect(m(".*", ".a")).toBe(true);
    expect(m("\\.*", ".a")).toBe(true);
    expect(m("a*b*c", "aXbYbZc")).toBe(true);
    expect(m("a*b*c", "aXbYbZ")).toBe(false);
    expect(m("??", "é1")).toBe(true); // by code point
  });
  test("brackets: sets, ranges, negation, classes, a literal ] first, unclosed [", () => {
    expect(m("[ab]x", "bx")).toBe(true);
    expect(m("[ab]x", "cx")).toBe(false);
    expect(m("[a-c]", "b")).toBe(true);
    expect(m("[!a-c]", "b")).toBe(false);
    expect(m("[^a-c]", "d")).toBe(true);
    expect(m("[[:digit:]]*", "1st")).toBe(true);
    expect(m("[[:digit:]]*", "st")).toBe(false);
    expect(m("[]x]", "]")).toBe(true);
    expect(m("[!]]", "]")).toBe(false);
    expect(m("[a\\]]", "]")).toBe(true);
    expect(parseSegment("[x").magic).toBe(false);
    expect(parseSegment("[x").literal).toBe("[x");
  });
  test("escapes make a segment literal", () => {
    expect(parseSegment("b\\*c")).toMatchObject({ magic: false, literal: "b*c" });
    expect(parseSegment("a\\b")).toMatchObject({ magic: false, literal: "ab" });
    expect(parseSegment("a\\")).toMatchObject({ magic: false, literal: "a\\" });
    expect(m("b\\*c", "bxc")).toBe(false);
  });
  test("many stars stay fast", () => {
    const t0 = performance.now();
    expect(m(`${"*a".repeat(60)}b`, "a".repeat(250))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
  test("splitting: repeated slashes, escaped slash, trailing slash", () => {
    expect(splitSegments("/a//b/")).toEqual({ segments: ["a", "b"], absolute: true, trailingSlash: true });
    expect(splitSegments("a\\/b")).toEqual({ segments: ["a", "b"], absolute: false, trailingSlash: false });
    expect(splitSegments("")).toEqual({ segments: [], absolute: false, trailingSlash: false });
  });
});

describe("expandSources", () => {
  test("a relative glob: sorted, hidden names left out, paths opened under cwd", () => {
    const r = expandSources(["*.txt"], ctx);
    expect(r.sources).toEqual([
      { path: `${root}/cwd/a.txt`, shown: "a.txt", name: "a.txt" },
      { path: `${root}/cwd/b.txt`, shown: "b.txt", name: "b.txt" },
    ]);
    expect(r.problems).toEqual([]);
  });
  test("hidden names need an explicit leading dot", () => {
    expect(run([".h*"]).shown).toEqual([".h.txt", ".hidden"]);
    expect(run(["\\.h*"]).shown).toEqual([".h.txt", ".hidden"]);
    expect(run(["?hidden", "[.]hidden"]).problems).toEqual(["E_SOURCE_MISSING no match for host:?hidden", "E_SOURCE_MISSING no match for host:[.]hidden"]);
    expect(run(["run*/*"]).shown).toEqual(["run1/a.h5", "run1/b.txt", "run2/c.h5"]);
  });
  test("nested globs: only directories are entered; .run4 is hidden, run3 is a file", () => {
    expect(run(["run*/*.h5"])).toEqual({ shown: ["run1/a.h5", "run2/c.h5"], names: ["a.h5", "c.h5"], problems: [] });
  });
  test("a trailing slash keeps only directories", () => {
    expect(run(["d*/"]).shown).toEqual(["d1", "d2"]);
    expect(run(["d*"]).shown).toEqual(["d1", "d2", "dangling"]);
  });
  test("brackets and classes", () => {
    expect(run(["[ab].txt"]).shown).toEqual(["a.txt", "b.txt"]);
    expect(run(["[!a].txt"]).shown).toEqual(["b.txt"]);
    expect(run(["[[:digit:]]*"]).shown).toEqual(["1st"]);
    expect(run(["[]]x"]).shown).toEqual(["]x"]);
    expect(run(["[x"]).shown).toEqual(["[x"]); // an unclosed [ is literal
  });
  test("escapes: b\\*c names the file b*c only; b?c matches both", () => {
    expect(run(["b\\*c"]).shown).toEqual(["b*c"]);
    expect(run(["b?c"]).shown).toEqual(["b*c", "bxc"]);
  });
  test("sorted by bytes over the whole path, as bash in C.UTF-8", () => {
    expect(run([`${root}/sort/*/x*`]).shown).toEqual([`${root}/sort/a-b/x2`, `${root}/sort/a/x1`, `${root}/sort/b/x3`]);
  });
  test("absolute patterns give absolute paths", () => {
    const r = expandSources([`${root}/cwd/run1/*.h5`], ctx);
    expect(r.sources).toEqual([{ path: `${root}/cwd/run1/a.h5`, shown: `${root}/cwd/run1/a.h5`, name: "a.h5" }]);
  });
  test("several requests keep their order; literal paths are taken as written", () => {
    expect(run(["c.dat", "run2/*", "sub/s.txt"]).shown).toEqual(["c.dat", "run2/c.h5", "sub/s.txt"]);
  });
  test(".. is an ordinary segment of the user's own request", () => {
    expect(run(["sub/../a.txt", "../cwd/run1/a*"])).toEqual({ shown: ["sub/../a.txt", "../cwd/run1/a.h5"], names: ["a.txt", "a.h5"], problems: [] });
  });
  test("no match and a missing literal path are problems for that request only", () => {
    expect(run(["*.zip", "nope", "nodir/*", "a.txt"])).toEqual({
      shown: ["a.txt"],
      names: ["a.txt"],
      problems: [
        "E_SOURCE_MISSING no match for host:*.zip",
        "E_SOURCE_MISSING host:nope: No such file or directory",
        "E_SOURCE_MISSING no match for host:nodir/*",
      ],
    });
    expect(run(["a.txt/x"]).problems).toEqual(["E_SOURCE_UNREADABLE host:a.txt/x: Not a directory"]);
  });
  test("a dangling symlink named literally is a source (the walk reports it)", () => {
    expect(run(["dangling"]).shown).toEqual(["dangling"]);
  });
  test("~, ~/glob, ~user; the home is never a pattern", () => {
    expect(expandSources(["~"], ctx).sources).toEqual([{ path: `${root}/home`, shown: `${root}/home`, name: "home" }]);
    expect(run(["~/*.txt", "~alice/docs/*"]).shown).toEqual([`${root}/home/f.txt`, `${root}/home/g.txt`, `${root}/alice/docs/r.txt`]);
    const odd = { ...ctx, home: `${root}/h[1]/` };
    expect(run(["~/*.txt"], odd).shown).toEqual([`${root}/h[1]/x.txt`]);
  });
  test("~nosuchuser is a problem naming the user; the other requests still go", () => {
    expect(run(["~nosuchuser/x", "a.txt"])).toEqual({
      shown: ["a.txt"],
      names: ["a.txt"],
      problems: ['E_SOURCE_MISSING host:~nosuchuser/x: no such user "nosuchuser"'],
    });
  });
  test("the login directory and . are named by their basename; / is refused", () => {
    expect(run([""]).names).toEqual(["cwd"]);
    expect(run(["."]).names).toEqual(["cwd"]);
    expect(run(["/"]).problems).toEqual(["E_SOURCE_UNREADABLE host:/: the root directory has no name to copy it under; name its entries (host:'/*')"]);
  });
  test("two sources under one name are refused", () => {
    mkdirSync(`${root}/cwd/run1/x`, { recursive: true });
    mkdirSync(`${root}/cwd/run2/x`, { recursive: true });
    const e = errOf(() => expandSources(["run*/x"], ctx));
    expect(e.code).toBe("E_USAGE");
    expect(e.message).toBe("host:run1/x and host:run2/x would both be copied as x");
    expect(errOf(() => expandSources(["a.txt", "sub/../a.txt"], ctx)).message).toBe("host:a.txt and host:sub/../a.txt would both be copied as a.txt");
  });
  test("the same paths as bash (LC_ALL=C.UTF-8, dotglob off, nullglob) for every pattern here", () => {
    const dir = makeTmpDir("remote-path-bash");
    for (const d of ["run1", "run2", ".run4", "sub", "d1", "d2"]) mkdirSync(`${dir}/${d}`);
    for (const f of [
      "a.txt",
      "b.txt",
      "c.dat",
      ".hidden",
      ".h.txt",
      "b*c",
      "bxc",
      "[x",
      "1st",
      "]x",
      "é.txt",
      "run1/a.h5",
      "run1/b1.txt",
      "run2/c.h5",
      "run3",
      ".run4/d.h5",
      "sub/s.txt",
      "d1/f",
    ])
      writeFileSync(`${dir}/${f}`, f);
    symlinkSync(`${dir}/nowhere`, `${dir}/dangling`);
    const patterns = [
      "*",
      "*.txt",
      ".*",
      ".h*",
      "\\.h*",
      "?hidden",
      "[.]hidden",
      "run*/*.h5",
      "run*/*",
      "d*/",
      "d*",
      "[ab].txt",
      "[!a].txt",
      "[[:digit:]]*",
      "[]]x",
      "b\\*c",
      "b?c",
      "*/*",
      "sub/../*.txt",
      "[a-c]*.*",
      "?.txt",
      "*/",
      "[x",
      "run[1]/../b*",
    ];
    for (const p of patterns) {
      const sh = Bun.spawnSync(["bash", "-c", `shopt -s nullglob; shopt -u dotglob; for f in ${p}; do printf '%s\\0' "$f"; done`], {
        cwd: dir,
        env: { LC_ALL: "C.UTF-8", PATH: process.env.PATH ?? "/usr/bin:/bin" },
      });
      const want = sh.stdout
        .toString()
        .split("\0")
        .filter((x) => x !== "")
        .map((x) => x.replace(/\/$/, ""));
      const shown = expandSources([p], { ...ctx, cwd: dir }).sources.map((x) => x.shown);
      expect({ p, shown }).toEqual({ p, shown: want });
    }
    removeTmpDir(dir);
  });
  test("the bound: a pattern past maxMatches is refused, at the last step or on the way", () => {
    const c = { ...ctx, cwd: root, maxMatches: 10 };
    expect(expandSources(["many/f0*"], c).sources.length).toBe(10);
    const e = errOf(() => expandSources(["many/*"], c));
    expect(e.code).toBe("E_USAGE");
    expect(e.message).toBe("host:many/* matches more than 10 paths; name fewer");
    for (let i = 0; i < 11; i++) mkdirSync(`${root}/many/d${i}`);
    expect(errOf(() => expandSources(["many/d*/none"], c)).message).toBe("host:many/d*/none matches more than 10 paths; name fewer");
  });
});
