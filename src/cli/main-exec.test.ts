// src/cli/main.ts is the package.json bin and runs as an executable by itself (shebang, mode
// 100755), so `-D <checkout>/src/cli/main.ts` names one checkout's code without any wrapper; and
// --version from a git checkout says which checkout and commit it is.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { CHECKOUT_ROOT, checkoutText } from "./checkout.ts";

const MAIN = join(import.meta.dir, "main.ts");
const tmp = makeTmpDir("main-exec-test");
afterAll(() => removeTmpDir(tmp));

function git(...args: string[]): string {
  const p = Bun.spawnSync(["git", "-C", CHECKOUT_ROOT, ...args], { stdout: "pipe", stderr: "pipe" });
  expect(p.exitCode).toBe(0);
  return p.stdout.toString().trim();
}

describe("src/cli/main.ts as an executable", () => {
  test("starts with a bun shebang and is executable, in the tree and in git", () => {
    expect(readFileSync(MAIN, "utf8").split("\n")[0]).toBe("#!/usr/bin/env bun");
    expect(statSync(MAIN).mode & 0o111).toBe(0o111);
    expect(git("ls-files", "-s", "src/cli/main.ts").split(/\s+/)[0]).toBe("100755");
  });

  test("--version names the checkout and its commit", () => {
    const p = Bun.spawnSync([MAIN, "--version"], { cwd: tmp, stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    const lines = p.stdout.toString().trimEnd().split("\n");
    expect(lines[0]).toMatch(/^escp \d+\.\d+\.\d+ \(protocol \d+\.\d+\)$/);
    expect(lines[1]).toBe(`checkout ${CHECKOUT_ROOT} (git ${git("rev-parse", "--short=12", "HEAD")})`);
    expect(lines).toHaveLength(2);
  });

  test("outside a git checkout --version adds nothing", () => {
    expect(checkoutText(tmp)).toBeUndefined();
  });

  test("a local copy runs with main.ts as the program and as -D", () => {
    const src = join(tmp, "src.bin");
    const dst = join(tmp, "dst.bin");
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    writeFileSync(src, data);
    const p = Bun.spawnSync([MAIN, "-q", "-D", MAIN, src, dst], { cwd: tmp, stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    expect(Buffer.compare(readFileSync(dst), data)).toBe(0);
  }, 120_000);
});
