// End-to-end transfers to a local destination (locally spawned receiver, full engine):
// big files at -t 1 and -t 4, block-size edges, a 2,000-file tree, O_DIRECT on and off.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { BASE, expectOk, expectSameFile, expectSameTree, makeAwkwardTree, runEscp, writeRandomFile } from "./e2e-helpers.ts";
import { rmSync } from "node:fs";

const tmp = makeTmpDir("e2e-local");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MiB = 1 << 20;

describe("local destination", () => {
  const big = join(tmp, "big64.bin");
  test("64 MiB random file, -t 1 and -t 4, digests equal b3sum", async () => {
    await writeRandomFile(big, 64 * MiB, 1);
    for (const t of ["1", "4"]) {
      const out = join(tmp, `big-t${t}.bin`);
      await expectOk([...BASE, "-t", t, big, out]);
      await expectSameFile(big, out);
    }
  });

  test("sizes at block size -1, 0 and +1 (1 MiB and 64 KiB blocks) and empty", async () => {
    const src = join(tmp, "edges");
    mkdirSync(src);
    const sizes = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 17];
    for (const [i, s] of sizes.entries()) await writeRandomFile(join(src, `s${s}`), s, 100 + i);
    for (const bs of ["1M", "64K"]) {
      const dst = join(tmp, `edges-${bs}`);
      await expectOk([...BASE, "-r", "--blocksize", bs, src, dst]);
      await expectSameTree(src, dst);
    }
  });

  test("tree of 2,000 small files with awkward names, -t 4", async () => {
    const src = join(tmp, "tree2000");
    mkdirSync(src);
    await makeAwkwardTree(src, 2000);
    const dst = join(tmp, "tree2000-copy");
    await expectOk([...BASE, "-r", "-t", "4", src, dst]);
    await expectSameTree(src, dst);
  });

  test("--nodirect, --nochecksum and the dummy engine", async () => {
    const src = join(tmp, "mix");
    mkdirSync(src);
    await makeAwkwardTree(src, 30, 99);
    await writeRandomFile(join(src, "three-blocks"), 3 * MiB + 5, 5);
    for (const flags of [["--nodirect"], ["--nochecksum"], ["--nodirect", "--nochecksum", "-t", "2"]]) {
      const dst = join(tmp, `mix-${flags.join("")}`);
      await expectOk([...BASE, "-r", ...flags, src, dst]);
      await expectSameTree(src, dst);
    }
    const dummyDst = join(tmp, "mix-dummy");
    await expectOk([...BASE, "-r", "--ioengine", "dummy", src, dummyDst]);
  });

  test("--ioengine dummy -v: the receiver logs each file as discarded, never committed, and writes none", async () => {
    const src = join(tmp, "dummy-v.bin");
    await writeRandomFile(src, MiB + 3, 21);
    const dst = join(tmp, "dummy-v-out.bin");
    const r = await expectOk([...BASE, "-v", "--ioengine", "dummy", src, dst]);
    expect(r.stderr).not.toContain("committed");
    expect(r.stderr).toContain(`discarded (--ioengine dummy, nothing written) ${dst}`);
    expect(existsSync(dst)).toBe(false);
  });

  test("--ioengine dummy::posix: a warning first, zeros of the source's size, a summary saying so", async () => {
    const src = join(tmp, "dummy-posix.bin");
    await writeRandomFile(src, MiB + 3, 22);
    const dst = join(tmp, "dummy-posix-out.bin");
    const r = await runEscp([...BASE.filter((a) => a !== "-q"), "--ioengine", "dummy::posix", src, dst]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "escp: warning: --ioengine dummy::posix: the sender reads no file; each destination file is written with zeros of its source's size\n",
    );
    expect(r.stdout).toMatch(/^Sent    : .* in 1 file at .*, synthetic data \(zeros\)\n$/);
    expect(readFileSync(dst).equals(Buffer.alloc(MiB + 3))).toBe(true);
  });
});

describe("commit paths on the receiver", () => {
  // A verified file is named by linking its unnamed (O_TMPFILE) file into place; a file that
  // already exists is replaced through a named temporary and rename; past the cap on held fds
  // (a quarter of the fd limit) files take their temporary name early; ESCP_TMPFILE=0 uses
  // named temporaries throughout. Every path must give the same tree and leave no temporary.
  const src = join(tmp, "commit-src");
  let ready: Promise<void> | undefined;
  const source = (): Promise<void> =>
    (ready ??= (async () => {
      mkdirSync(src);
      await makeAwkwardTree(src, 600, 41);
      await writeRandomFile(join(src, "big.bin"), 3 * MiB + 5, 42);
    })());
  const temporaries = (dir: string): string[] =>
    readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((n) => n.split("/").some((p) => p.startsWith(".escp-")));
  const cases: [string, Parameters<typeof runEscp>[1], string[], string | null][] = [
    ["unnamed temporaries (default: small files in bundles)", {}, [], null],
    ["unnamed temporaries, every file announced (--bundle-max 0)", {}, ["--bundle-max", "0"], null],
    ["named temporaries (ESCP_TMPFILE=0)", { env: { ESCP_TMPFILE: "0" } }, [], null],
    // The cap from the fd limit (64 → 16) is reached only when enough announced files wait for
    // their FileDone at once, which depends on timing; ESCP_TMPFILE_HOLD=0 takes that path for
    // every file (bundled files are named as soon as they are written: no cap to reach).
    [
      "the held-fd cap reached (fd limit 64, hold 0)",
      { wrap: ["prlimit", "--nofile=64", "--"], env: { ESCP_TMPFILE_HOLD: "0" } },
      ["-v", "--bundle-max", "0"],
      "0 unnamed files held: naming early",
    ],
  ];
  cases.forEach(([name, opts, flags, logLine], i) => {
    test(name, async () => {
      await source();
      const root = join(tmp, `commit-${i}`);
      const dst = join(root, "commit-src");
      mkdirSync(join(dst, "sub"), { recursive: true });
      writeFileSync(join(dst, "f0.dat"), "stale contents to be replaced\n");
      writeFileSync(join(dst, "sub", "f1.dat"), "stale too\n");
      writeFileSync(join(dst, "big.bin"), "stale big\n");
      const r = await runEscp([...BASE, ...flags, "-r", src, root], opts);
      expect(r.code).toBe(0);
      if (logLine) expect(r.stderr).toContain(logLine);
      await expectSameTree(src, dst);
      expect(temporaries(dst)).toEqual([]);
    });
  });
});
