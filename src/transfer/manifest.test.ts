// The manifest: its lines are exactly what the real b3sum prints for the same names (escaping
// included), its check mode accepts them, and the writer's temporary / rename / refusal rules.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { b3sum } from "../../harness/b3sum.ts";
import { manifestLine, ManifestWriter } from "./manifest.ts";
import { EscpError } from "../errors/escp-error.ts";

const tmp = makeTmpDir("manifest-unit");
afterAll(() => removeTmpDir(tmp));

const NAMES = ["plain.txt", "with space", "back\\slash", "new\nline", "both\\and\nboth", "cr\rin", "ünïcödé ✓", "tab\tname", "\\lead"];

function run(argv: string[], cwd: string): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(argv, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("manifestLine", () => {
  test("the same bytes b3sum prints for each name, and b3sum -c accepts them", async () => {
    const dir = join(tmp, "names");
    mkdirSync(dir);
    for (const [i, n] of NAMES.entries()) writeFileSync(join(dir, n), `content ${i}\n`);
    let ours = "";
    for (const n of NAMES) {
      const digest = await b3sum(join(dir, n));
      ours += manifestLine(digest, n);
      const theirs = run(["b3sum", "--", n], dir);
      expect(theirs.code).toBe(0);
      expect(manifestLine(digest, n)).toBe(theirs.out);
    }
    writeFileSync(join(tmp, "names.b3"), ours);
    const check = run(["b3sum", "-c", join(tmp, "names.b3")], dir);
    expect(check.err).toBe("");
    expect(check.code).toBe(0);
    expect(check.out.split("\n").filter((l) => l.endsWith(": OK"))).toHaveLength(NAMES.length);
  });

  test("escaping rules without b3sum", () => {
    const d = "ab".repeat(32);
    expect(manifestLine(d, "a b")).toBe(`${d}  a b\n`);
    expect(manifestLine(d, "a\\b")).toBe(`\\${d}  a\\\\b\n`);
    expect(manifestLine(d, "a\nb")).toBe(`\\${d}  a\\nb\n`);
    expect(manifestLine(d, "x\r")).toBe(`${d}  x\r\n`);
    expect(() => manifestLine("AB".repeat(32), "x")).toThrow(EscpError);
    expect(() => manifestLine("ab", "x")).toThrow(EscpError);
  });
});

describe("ManifestWriter", () => {
  const digest = new Uint8Array(32).fill(0xab);
  const hex = "ab".repeat(32);

  test("lines go to a temporary beside FILE, which replaces FILE at commit", () => {
    const dir = join(tmp, "commit");
    mkdirSync(dir);
    const file = join(dir, "m.b3");
    writeFileSync(file, "old contents\n");
    let now = 0;
    const w = ManifestWriter.open(file, () => now);
    expect(w.tmp.startsWith(join(dir, ".m.b3.escp-"))).toBe(true);
    w.add(digest, "a");
    w.poll(); // under a second: still buffered
    expect(readFileSync(w.tmp, "utf8")).toBe("");
    now = 1000;
    w.poll();
    expect(readFileSync(w.tmp, "utf8")).toBe(`${hex}  a\n`);
    expect(readFileSync(file, "utf8")).toBe("old contents\n");
    w.add(digest, "b/c");
    expect(w.commit()).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe(`${hex}  a\n${hex}  b/c\n`);
    expect(readdirSync(dir)).toEqual(["m.b3"]);
    expect(w.commit()).toBeUndefined(); // twice is harmless
    expect(w.lines).toBe(2);
  });

  test("no verified file: an empty manifest", () => {
    const dir = join(tmp, "empty");
    mkdirSync(dir);
    const w = ManifestWriter.open(join(dir, "m"));
    expect(w.commit()).toBeUndefined();
    expect(readFileSync(join(dir, "m"), "utf8")).toBe("");
  });

  test("refused before anything: a missing or unwritable directory, a directory as FILE", () => {
    const ro = join(tmp, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    const cases: [string, RegExp][] = [
      [join(tmp, "no-such-dir", "m"), /^--manifest .*no-such-dir\/m: cannot write in .*no-such-dir: No such file or directory$/],
      [tmp, /^--manifest .*: is a directory$/],
    ];
    // root passes DAC checks: the read-only directory is only refused for other users
    if (process.getuid?.() !== 0) cases.push([join(ro, "m"), /: cannot write in .*ro: Permission denied$/]);
    for (const [file, re] of cases) {
      let err: unknown;
      try {
        ManifestWriter.open(file);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EscpError);
      expect((err as EscpError).code).toBe("E_USAGE");
      expect((err as EscpError).message).toMatch(re);
    }
    expect(existsSync(join(tmp, "no-such-dir"))).toBe(false);
  });

  test("a rename that fails removes the temporary and says why", () => {
    const dir = join(tmp, "rename");
    mkdirSync(dir);
    const file = join(dir, "m");
    const w = ManifestWriter.open(file);
    mkdirSync(file); // FILE became a non-empty directory meanwhile
    writeFileSync(join(file, "x"), "");
    w.add(digest, "a");
    expect(w.commit()).toMatch(/^cannot rename .* to it: /);
    expect(readdirSync(dir)).toEqual(["m"]);
  });
});
