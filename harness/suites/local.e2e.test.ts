// End-to-end transfers to a local destination (locally spawned receiver, full engine):
// big files at -t 1 and -t 4, block-size edges, a 2,000-file tree, O_DIRECT on and off.
import { afterAll, describe, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { BASE, expectOk, expectSameFile, expectSameTree, makeAwkwardTree, writeRandomFile } from "./e2e-helpers.ts";
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
});
