// Pull across the multi-host fixture (harness/multihost.ts): hosts are network namespaces each
// with its own sshd, reached by alias through `-F <ssh config>`. A pull from h1 to here and one
// run inside h2 from h1 cross the bridge for real (the server listens on h1's address, which
// -v shows); a host this side cannot reach fails as ssh says. Smoke-sized: the pull suites
// cover the rules (pull.e2e, hostile-server.e2e, pull.fault).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_MAIN, ESCP_REMOTE_CMD } from "../escp-run.ts";
import { expectOk, expectSameFile, expectSameTree, makeAwkwardTree, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const can = canMultiHost();
if (!can.ok) console.warn(`[multihost-pull] skipping the multi-host pull tests: ${can.why}`);

let fx: MultiHost | undefined;
let tmp = "";
const T = 120_000;

function need(): MultiHost {
  if (!fx) throw new Error("fixture not started");
  return fx;
}

/** escp flags reaching the fixture's hosts (the same config works inside a host). */
const flags = (f: MultiHost): string[] => ["--escp_port", "0", "--timeout", "20", "-F", f.sshConfig, "-D", ESCP_REMOTE_CMD];

beforeAll(async () => {
  if (!can.ok) return;
  tmp = makeTmpDir("multihost-pull");
  // one file system for every host: sources and destinations get distinct paths
  mkdirSync(join(tmp, "on-h1", "tree"), { recursive: true });
  await writeRandomFile(join(tmp, "on-h1", "big.bin"), 8 << 20, 61);
  await makeAwkwardTree(join(tmp, "on-h1", "tree"), 30, 62);
  fx = await startHosts({ count: 2 });
}, T);

afterAll(async () => {
  await fx?.stop();
  if (tmp) removeTmpDir(tmp);
});

describe.skipIf(!can.ok)("pull across hosts", () => {
  test(
    "from h1 to here: a file, a -r tree and a glob; the data streams go to h1's address",
    async () => {
      const f = need();
      const h1 = f.host("h1").addr.replace(/\./g, "\\.");
      const dst = join(tmp, "local");
      mkdirSync(dst);
      const r = await expectOk(["-v", ...flags(f), `h1:${join(tmp, "on-h1", "big.bin")}`, `h1:${join(tmp, "on-h1", "tree")}`, "-r", dst]);
      expect(r.stderr).toMatch(new RegExp(`^escp server: debug: listening for data streams \\(address=${h1} port=\\d+\\)$`, "m"));
      expect(r.stdout).toMatch(/^Received: .* in 34 files at /m);
      await expectSameFile(join(tmp, "on-h1", "big.bin"), join(dst, "big.bin"));
      await expectSameTree(join(tmp, "on-h1", "tree"), join(dst, "tree"));
      const globbed = join(tmp, "local-glob");
      mkdirSync(globbed);
      await expectOk(["-q", ...flags(f), `h1:${join(tmp, "on-h1", "tree", "sub", "f*.dat")}`, globbed]);
      expect(readdirSync(globbed).sort()).toEqual(
        readdirSync(join(tmp, "on-h1", "tree", "sub"))
          .filter((n) => /^f.*\.dat$/.test(n))
          .sort(),
      );
      for (const n of readdirSync(globbed)) await expectSameFile(join(tmp, "on-h1", "tree", "sub", n), join(globbed, n));
    },
    T,
  );

  test(
    "inside h2, from h1: host to host over the bridge",
    async () => {
      const f = need();
      const dst = join(tmp, "on-h2");
      const r = await f.exec("h2", [process.execPath, ESCP_MAIN, "-v", ...flags(f), "-r", `h1:${join(tmp, "on-h1", "tree")}`, dst], { timeoutMs: 90_000 });
      if (r.code !== 0) throw new Error(`pull inside h2 exited ${r.code}: ${r.stderr}`);
      expect(r.stderr).toMatch(
        new RegExp(`^escp server: debug: listening for data streams \\(address=${f.host("h1").addr.replace(/\./g, "\\.")} port=\\d+\\)$`, "m"),
      );
      await expectSameTree(join(tmp, "on-h1", "tree"), dst);
    },
    T,
  );

  test(
    "h1 unreachable from here: exit 4 naming it, nothing created",
    async () => {
      const f = need();
      const dst = join(tmp, "never");
      await f.block("local", "h1");
      try {
        const r = await runEscp(["-q", ...flags(f), `h1:${join(tmp, "on-h1", "big.bin")}`, dst]);
        expect(r.code).toBe(4);
        expect(r.stderr).toContain("h1");
        expect(r.stderr).toContain("No route to host");
      } finally {
        await f.unblock("local", "h1");
      }
      expect(readdirSync(tmp)).not.toContain("never");
    },
    T,
  );
});
