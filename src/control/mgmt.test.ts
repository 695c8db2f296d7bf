// --mgmt Unix socket: created 0600, one connection only, refuses to replace a non-socket,
// and messages round-trip both ways (including one large enough to need drain()).
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EscpError } from "../errors/escp-error.ts";
import { openMgmtChannel, serveMgmt } from "./mgmt.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "escp-mgmt-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("mgmt socket", () => {
  test("is mode 0600 and carries messages both ways", async () => {
    const sock = path.join(dir, "a.sock");
    fs.writeFileSync(sock, ""); // a stale regular file must not be replaced...
    await expect(serveMgmt(sock)).rejects.toThrow(EscpError);
    fs.rmSync(sock);
    const serving = serveMgmt(sock);
    const st = fs.statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const client = await openMgmtChannel(sock);
    const server = await serving;
    await client.send(new Uint8Array([1, 2, 3]));
    expect(await server.recv(5000)).toEqual(new Uint8Array([1, 2, 3]));
    const big = new Uint8Array(2_000_000).map((_, i) => (i * 7) & 0xff);
    await server.send(big);
    expect(await client.recv(5000)).toEqual(big);
    await client.close();
    expect(await server.exited).toBeNull();
    const e = await server.recv(5000).then(
      () => null,
      (x: unknown) => x,
    );
    expect((e as EscpError).code).toBe("E_HANDSHAKE");
    await server.close();
  });

  test("a stale socket is replaced; a second client is refused", async () => {
    const sock = path.join(dir, "b.sock");
    Bun.spawnSync(["python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", sock]);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    const first = serveMgmt(sock);
    const c1 = await openMgmtChannel(sock);
    const s1 = await first;
    expect(fs.existsSync(sock)).toBe(false); // unlinked after the one accept
    await expect(openMgmtChannel(sock)).rejects.toThrow(EscpError);
    await Promise.all([c1.close(), s1.close()]);
  });
});
