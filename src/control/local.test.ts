// Local channel + server stdio channel end to end: a spawned echo peer, noise on its stdout,
// exit status and stderr surfacing in the error when it dies.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EscpError } from "../errors/escp-error.ts";
import { openLocalChannel } from "./local.ts";
import { writeEchoPeer } from "./test-peer.fixture.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "escp-local-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("openLocalChannel", () => {
  test("round-trips messages through a spawned stdio peer", async () => {
    const ch = openLocalChannel([process.execPath, writeEchoPeer(dir)]);
    await ch.send(new Uint8Array([1, 2, 3]));
    expect(await ch.recv(10000)).toEqual(new Uint8Array([3, 2, 1]));
    const big = new Uint8Array(200_000).map((_, i) => i & 0xff);
    await ch.send(big);
    expect(await ch.recv(10000)).toEqual(big.slice().reverse());
    await ch.close();
    expect(await ch.exited).toBe(0);
  });

  test("a peer that dies reports its status and stderr", async () => {
    const ch = openLocalChannel([process.execPath, writeEchoPeer(dir)]);
    await ch.send(new Uint8Array([0xff]));
    let err: unknown;
    await ch.recv(10000).catch((e) => {
      err = e;
    });
    expect(err).toBeInstanceOf(EscpError);
    expect((err as EscpError).code).toBe("E_HANDSHAKE");
    expect((err as EscpError).message).toBe("local peer exited with status 3: bye");
    expect(await ch.exited).toBe(3);
    await ch.close();
  });

  test("a missing program is an EscpError", () => {
    expect(() => openLocalChannel([path.join(dir, "no-such-binary")])).toThrow(EscpError);
  });
});
