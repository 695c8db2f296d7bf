// Sender-side trouble is reported per item and skipped, never hangs the transfer:
// unreadable directories, symlink loops, dangling links, FIFOs, files that vanish or
// change between discovery and reading.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { BASE, expectSameFile, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-sender-errors");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"];

describe("sender-side errors", () => {
  test("unreadable dir, symlink loop, dangling link and FIFO are named and skipped", async () => {
    const src = join(tmp, "tree");
    mkdirSync(join(src, "locked"), { recursive: true });
    mkdirSync(join(src, "loop"));
    writeFileSync(join(src, "ok.txt"), "fine\n");
    writeFileSync(join(src, "locked", "hidden"), "x");
    chmodSync(join(src, "locked"), 0o000);
    symlinkSync("..", join(src, "loop", "up"));
    symlinkSync(join(tmp, "nowhere"), join(src, "dangling"));
    Bun.spawnSync(["mkfifo", join(src, "fifo")]);
    const dst = join(tmp, "tree-out");
    const r = await runEscp([...BASE, "-r", src, dst], { wrap: NO_DAC, timeoutMs: 60_000 });
    chmodSync(join(src, "locked"), 0o755);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("locked: Permission denied");
    expect(r.stderr).toContain("symbolic link loop");
    expect(r.stderr).toContain("dangling: dangling symbolic link");
    expect(r.stderr).toContain("fifo: not a regular file");
    await expectSameFile(join(src, "ok.txt"), join(dst, "ok.txt"));
  });

  test("-r: a dangling link and a symlink loop inside the tree are notices, not failures (exit 0)", async () => {
    const src = join(tmp, "links");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "sub", "ok.txt"), "fine\n");
    symlinkSync(join(tmp, "nowhere"), join(src, "dangling"));
    symlinkSync("..", join(src, "sub", "up"));
    const dst = join(tmp, "links-out");
    const r = await runEscp([...BASE, "-r", src, dst], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`escp: ${join(src, "dangling")}: dangling symbolic link, skipped`);
    expect(r.stderr).toContain(`escp: ${join(src, "sub", "up")}: symbolic link loop, skipped`);
    await expectSameFile(join(src, "sub", "ok.txt"), join(dst, "sub", "ok.txt"));
    expect(existsSync(join(dst, "dangling"))).toBe(false);
  });

  test("a file deleted after it was announced is named; the others arrive", async () => {
    const src = join(tmp, "vanish");
    mkdirSync(src);
    await writeRandomFile(join(src, "a-stays"), 5000, 1);
    await writeRandomFile(join(src, "b-goes"), 5000, 2);
    const dst = join(tmp, "vanish-out");
    const env = { ...process.env, ESCP_FAULT_EXEC_AT: "sender:filelist", ESCP_FAULT_EXEC: `rm -f '${join(src, "b-goes")}'` };
    const r = await runEscp([...BASE, "-r", src, dst], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("b-goes: No such file or directory");
    await expectSameFile(join(src, "a-stays"), join(dst, "a-stays"));
    expect(existsSync(join(dst, "b-goes"))).toBe(false);
    expect(readdirSync(dst).filter((n) => n.startsWith(".escp-"))).toEqual([]);
  });
});
