// --mgmt: a receiver started by hand on a Unix socket (mode 0600), no SSH involved.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, statSync, watch } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { BASE, expectOk, expectSameFile, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-mgmt");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("--mgmt socket", () => {
  test("transfer through a hand-started receiver", async () => {
    const sock = join(tmp, "escp.sock");
    const appeared = new Promise<void>((resolve) => {
      const w = watch(tmp, (_ev, name) => {
        if (name === "escp.sock" && existsSync(sock)) {
          w.close();
          resolve();
        }
      });
    });
    const rx = Bun.spawn([...ESCP_REMOTE_CMD.split(" "), "--server", "--mgmt", sock], { cwd: tmp, stdout: "pipe", stderr: "pipe" });
    try {
      await appeared; // the receiver listens once its socket exists
      expect(statSync(sock).mode & 0o777).toBe(0o600);
      const src = join(tmp, "m.bin");
      await writeRandomFile(src, 3 * (1 << 20) + 11, 9);
      const dst = join(tmp, "m-copy.bin");
      await expectOk([...BASE, "--mgmt", sock, src, `localhost:${dst}`]);
      await expectSameFile(src, dst);
      expect(await rx.exited).toBe(0);
    } finally {
      rx.kill();
    }
  });
});
