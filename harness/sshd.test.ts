// The sshd fixture itself: a key-authenticated login runs a command, and stop() frees the port.
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { type SshdFixture, sshCommand, startSshd } from "./sshd.ts";

let fx: SshdFixture | undefined;
afterAll(async () => {
  await fx?.stop();
});

/** Resolves "open" or "refused" for one TCP connect to 127.0.0.1:port. */
function probe(port: number): Promise<"open" | "refused"> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve("open");
    });
    sock.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED") resolve("refused");
      else reject(err);
    });
  });
}

test("ssh through the fixture runs a command, and stop() closes the port", async () => {
  fx = await startSshd();
  expect(fx.sshArgs).toContain(String(fx.port));
  const proc = Bun.spawn([...sshCommand(fx), "echo", "ok"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ code, out: out.trim(), err }).toEqual({ code: 0, out: "ok", err: "" });
  // No extra probe while it runs: a just-forked session child briefly shares the listener, so
  // the ssh login above (whose child closed it long ago) is the proof the port was open.

  const { port, dir } = fx;
  await fx.stop();
  fx = undefined;
  expect(await probe(port)).toBe("refused");
  expect(existsSync(dir)).toBe(false);
});
