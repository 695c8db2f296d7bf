// Every failure named in the CLI contract exits non-zero with one line naming the cause,
// and a bad source never hangs or stops the rest of the transfer.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { BASE, runEscp } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-errors");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// Root bypasses file permissions; drop the DAC capabilities so EACCES is real.
const NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"];

describe("errors", () => {
  const good = join(tmp, "good.txt");
  writeFileSync(good, "good\n");

  test("missing source: named, others still copied, exit 1", async () => {
    const d = join(tmp, "out-missing");
    mkdirSync(d);
    const r = await runEscp([...BASE, join(tmp, "does-not-exist"), good, d]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("does-not-exist: No such file or directory");
    expect(readFileSync(join(d, "good.txt"), "utf8")).toBe("good\n");
  });

  test("only a missing source: exit 1, nothing written", async () => {
    const r = await runEscp([...BASE, join(tmp, "ghost"), join(tmp, "out-ghost")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ghost: No such file or directory");
    expect(existsSync(join(tmp, "out-ghost"))).toBe(false);
  });

  test("unreadable source file: named with the cause, exit 1, no partial file", async () => {
    const bad = join(tmp, "secret.bin");
    writeFileSync(bad, "x".repeat(5000));
    chmodSync(bad, 0o000);
    const d = join(tmp, "out-unreadable");
    mkdirSync(d);
    const r = await runEscp([...BASE, bad, good, d], { wrap: NO_DAC });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("secret.bin");
    expect(r.stderr).toContain("Permission denied");
    expect(readdirSync(d).sort()).toEqual(["good.txt"]);
  });

  test("destination not writable: exit 8 naming it", async () => {
    const ro = join(tmp, "readonly");
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    const r = await runEscp([...BASE, good, ro], { wrap: NO_DAC });
    expect(r.code).toBe(8);
    expect(r.stderr).toContain(`${ro} is not writable`);
  });

  test("bad flag values: exit 2 naming the flag", async () => {
    const cases: [string[], string][] = [
      [["--blocksize", "300K"], "--blocksize"],
      [["-t", "0"], "-t"],
      [["--ioengine", "warp"], "--ioengine"],
      [["-P", "abc"], "-P"],
      [["--bogus"], "--bogus"],
    ];
    for (const [flags, name] of cases) {
      const r = await runEscp([...flags, good, join(tmp, "never")]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(name);
    }
    expect(existsSync(join(tmp, "never"))).toBe(false);
  });
});
