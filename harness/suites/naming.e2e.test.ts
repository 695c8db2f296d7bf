// scp's destination naming, checked against real transfers to a local destination.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { BASE, expectOk, expectSameTree, runEscp } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-naming");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function file(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

describe("destination naming (as scp)", () => {
  const a = file(join(tmp, "a.txt"), "alpha\n");
  const b = file(join(tmp, "b.txt"), "beta\n");
  const dir = join(tmp, "srcdir");
  mkdirSync(join(dir, "inner"), { recursive: true });
  file(join(dir, "inner", "x"), "x\n");
  file(join(dir, "top"), "top\n");

  test("single file to a new file path", async () => {
    await expectOk([...BASE, a, join(tmp, "renamed.txt")]);
    expect(readFileSync(join(tmp, "renamed.txt"), "utf8")).toBe("alpha\n");
  });

  test("single file over an existing file replaces it", async () => {
    const target = file(join(tmp, "existing.txt"), "old contents that are longer\n");
    await expectOk([...BASE, a, target]);
    expect(readFileSync(target, "utf8")).toBe("alpha\n");
  });

  test("single file to an existing directory", async () => {
    const d = join(tmp, "into");
    mkdirSync(d);
    await expectOk([...BASE, a, d]);
    expect(readFileSync(join(d, "a.txt"), "utf8")).toBe("alpha\n");
  });

  test("several files to a directory", async () => {
    const d = join(tmp, "many");
    mkdirSync(d);
    await expectOk([...BASE, a, b, d]);
    expect(readFileSync(join(d, "a.txt"), "utf8")).toBe("alpha\n");
    expect(readFileSync(join(d, "b.txt"), "utf8")).toBe("beta\n");
  });

  test("several files to a path that is not a directory fails", async () => {
    const r = await runEscp([...BASE, a, b, join(tmp, "nope")]);
    expect(r.code).toBe(8);
    expect(r.stderr).toContain("not a directory");
    expect(existsSync(join(tmp, "nope"))).toBe(false);
  });

  test("-r dir to an existing directory nests it", async () => {
    const d = join(tmp, "existing-dir");
    mkdirSync(d);
    await expectOk([...BASE, "-r", dir, d]);
    await expectSameTree(dir, join(d, "srcdir"));
  });

  test("-r dir to a new path creates it with the contents", async () => {
    const d = join(tmp, "fresh-dir");
    await expectOk([...BASE, "-r", dir, d]);
    await expectSameTree(dir, d);
  });

  test("--filelist: newline list and YAML [src, dst] pairs", async () => {
    const nl = file(join(tmp, "list.txt"), `${a}\n${b}\n`);
    const d1 = join(tmp, "fl-newline");
    mkdirSync(d1);
    await expectOk([...BASE, "--filelist", nl, d1]);
    expect(readFileSync(join(d1, "b.txt"), "utf8")).toBe("beta\n");
    const yml = file(join(tmp, "pairs.yaml"), `- [${a}, first/renamed-a]\n- [${b}, second.txt]\n`);
    const d2 = join(tmp, "fl-yaml");
    mkdirSync(d2);
    await expectOk([...BASE, "--filelist", yml, d2]);
    expect(readFileSync(join(d2, "first", "renamed-a"), "utf8")).toBe("alpha\n");
    expect(readFileSync(join(d2, "second.txt"), "utf8")).toBe("beta\n");
  });
});
