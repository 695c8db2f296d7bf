// Transfers through a real OpenSSH sshd on 127.0.0.1 (started by the harness with generated
// keys): remote destinations, naming, and the SSH-side failures (unreachable, auth, no escp).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { BASE, expectOk, expectSameFile, expectSameTree, makeAwkwardTree, runEscp, writeRandomFile } from "./e2e-helpers.ts";

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-ssh");
beforeAll(async () => {
  fx = await startSshd();
});
afterAll(async () => {
  await fx?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const remote = (): string[] => [...BASE, ...fx.sshArgs, "-D", ESCP_REMOTE_CMD];

describe("over loopback sshd", () => {
  test("64 MiB random file at -t 1 and -t 4", async () => {
    const src = join(tmp, "big.bin");
    await writeRandomFile(src, 64 << 20, 42);
    for (const t of ["1", "4"]) {
      const dst = join(tmp, `big-${t}.bin`);
      await expectOk([...remote(), "-t", t, src, `${fx.user}@${fx.host}:${dst}`]);
      await expectSameFile(src, dst);
    }
  });

  test("-r tree to a new remote directory, scp:// form", async () => {
    const src = join(tmp, "tree");
    mkdirSync(src);
    await makeAwkwardTree(src, 2000, 3);
    const dst = join(tmp, "tree-remote");
    await expectOk([
      ...BASE,
      ...fx.sshArgs.filter((_, i, a) => a[i] !== "-P" && a[i - 1] !== "-P"),
      "-D",
      ESCP_REMOTE_CMD,
      "-r",
      src,
      `scp://${fx.user}@${fx.host}:${fx.port}/${dst}`,
    ]);
    await expectSameTree(src, dst);
  });

  test("sizes at block size -1, 0 and +1, and an empty file", async () => {
    const src = join(tmp, "edges");
    mkdirSync(src);
    const MiB = 1 << 20;
    for (const [i, size] of [0, 1, MiB - 1, MiB, MiB + 1].entries()) await writeRandomFile(join(src, `s${size}`), size, 50 + i);
    const dst = join(tmp, "edges-remote");
    await expectOk([...remote(), "-r", src, `${fx.host}:${dst}`]);
    await expectSameTree(src, dst);
  });

  test("several files into an existing remote directory", async () => {
    const a = join(tmp, "a1");
    const b = join(tmp, "b1");
    writeFileSync(a, "A");
    writeFileSync(b, "B");
    const d = join(tmp, "remote-dir");
    mkdirSync(d);
    await expectOk([...remote(), a, b, `${fx.host}:${d}`]);
    expect(readFileSync(join(d, "a1"), "utf8")).toBe("A");
    expect(readFileSync(join(d, "b1"), "utf8")).toBe("B");
  });

  test("unreachable host: exit 4 naming the host", async () => {
    const port = await closedPort();
    const f = join(tmp, "x");
    writeFileSync(f, "x");
    const args = fx.sshArgs.map((v, i, a) => (a[i - 1] === "-P" ? String(port) : v));
    const r = await runEscp([...BASE, ...args, "-D", ESCP_REMOTE_CMD, f, `127.0.0.1:${tmp}/never`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("127.0.0.1");
    expect(r.stderr.toLowerCase()).toContain("connection refused");
  });

  test("ssh authentication failure: exit 4", async () => {
    const wrongKey = join(fx.dir, "wrong_key");
    Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrongKey]);
    const args = fx.sshArgs.map((v, i, a) => (a[i - 1] === "-i" ? wrongKey : v));
    const f = join(tmp, "y");
    writeFileSync(f, "y");
    const r = await runEscp([...BASE, ...args, "-D", ESCP_REMOTE_CMD, f, `${fx.host}:${tmp}/never`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("authentication failed");
  });

  test("escp missing on the remote: exit 5", async () => {
    const f = join(tmp, "z");
    writeFileSync(f, "z");
    const r = await runEscp([...BASE, ...fx.sshArgs, "-D", "/nonexistent/escp", f, `${fx.host}:${tmp}/never`]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("escp not found");
  });

  for (const builtin of [false, true]) {
    test(`-D /bin/false${builtin ? " with --builtin-ssh" : ""}: exit 5, the remote command failed (not "ssh failed")`, async () => {
      const f = join(tmp, "false-src");
      writeFileSync(f, "f");
      const via = builtin
        ? [
            "--builtin-ssh",
            "-S",
            "/nonexistent/ssh",
            "-P",
            String(fx.port),
            "-i",
            fx.identity,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
          ]
        : fx.sshArgs;
      const r = await runEscp([...BASE, ...via, "-D", "/bin/false", f, `${fx.user}@${fx.host}:${tmp}/never-false`]);
      expect(r.code).toBe(5);
      const lines = r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("escp: warning:")); // --builtin-ssh: the unverified key;
      expect(lines).toEqual([`escp: ${fx.host}: remote command '/bin/false' exited 1 before the session started (is escp installed there? -D)`]);
      expect(existsSync(join(tmp, "never-false"))).toBe(false);
    });
  }
});

/** A port nothing listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 1;
      s.close(() => resolve(port));
    });
  });
}
