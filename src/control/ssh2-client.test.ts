// Built-in ssh2 client against an in-process ssh2 server that runs exec requests with sh -c:
// round trip through the remote echo peer, auth failure, unreachable host, unsupported flags,
// and host keys: a known key connects, an unknown or changed one is refused before authentication.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { Server, utils, type Connection } from "ssh2";
import { EscpError } from "../errors/escp-error.ts";
import type { SshOpts } from "./ssh.ts";
import { openSsh2Channel } from "./ssh2-client.ts";
import { writeEchoPeer } from "./test-peer.fixture.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "escp-ssh2-"));
const hostKey = utils.generateKeyPairSync("ed25519");
const userKey = utils.generateKeyPairSync("ed25519");
const otherKey = utils.generateKeyPairSync("ed25519");
const userPub = utils.parseKey(userKey.public);
let server: Server;
let port = 0;
let authAttempts = 0;

function onClient(client: Connection): void {
  client.on("authentication", (ctx) => {
    authAttempts++;
    const ok =
      ctx.method === "publickey" &&
      !(userPub instanceof Error) &&
      ctx.key.data.equals(userPub.getPublicSSH()) &&
      (!ctx.signature || (ctx.blob !== undefined && userPub.verify(ctx.blob, ctx.signature, ctx.hashAlgo)));
    return ok ? ctx.accept() : ctx.reject(["publickey"]);
  });
  client.on("ready", () =>
    client.on("session", (accept) => {
      accept().on("exec", (acc, _rej, info) => {
        const stream = acc();
        const child = spawn("sh", ["-c", info.command], { stdio: "pipe" });
        stream.pipe(child.stdin);
        child.stdout.pipe(stream);
        child.stderr.pipe(stream.stderr);
        child.on("exit", (code) => {
          stream.exit(code ?? 1);
          stream.end();
        });
      });
    }),
  );
  client.on("error", () => undefined);
}

beforeAll(async () => {
  server = new Server({ hostKeys: [hostKey.private] }, onClient);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A known_hosts file naming `key` (OpenSSH public key text) for the server's [127.0.0.1]:port. */
function knownHosts(key: string): string {
  const file = path.join(dir, `known-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, `[127.0.0.1]:${port} ${key.trim()}\n`);
  return file;
}

function opts(key: string, over: Partial<SshOpts> = {}, known: string = knownHosts(hostKey.public)): SshOpts & { user: string } {
  const identity = path.join(dir, `key-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(identity, key, { mode: 0o600 });
  const sshOptions = [`UserKnownHostsFile=${known}`, "GlobalKnownHostsFile=/dev/null"];
  return { ssh: "ssh", port, identity, agent: false, ipv4: false, ipv6: false, batchMode: true, sshOptions, user: "u", ...over };
}

async function failure(p: Promise<unknown>): Promise<EscpError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof EscpError)) throw new Error(`expected EscpError, got ${String(e)}`);
  return e;
}

describe("openSsh2Channel", () => {
  test("round-trips through the remote escp", async () => {
    const ch = await openSsh2Channel(opts(userKey.private), { host: "127.0.0.1" }, [process.execPath, writeEchoPeer(dir)]);
    await ch.send(new Uint8Array([4, 5, 6]));
    expect(await ch.recv(10000)).toEqual(new Uint8Array([6, 5, 4]));
    await ch.close();
  });

  test("a missing remote escp is E_REMOTE_MISSING", async () => {
    const ch = await openSsh2Channel(opts(userKey.private), { host: "127.0.0.1" }, [path.join(dir, "nope"), "--server"]);
    expect((await failure(ch.recv(10000))).code).toBe("E_REMOTE_MISSING");
    await ch.close();
  });

  test("a wrong key is E_SSH_AUTH; a closed port is E_SSH_UNREACHABLE", async () => {
    expect((await failure(openSsh2Channel(opts(otherKey.private), { host: "127.0.0.1" }, ["escp"]))).code).toBe("E_SSH_AUTH");
    const closed = opts(userKey.private, { port: 1 });
    expect((await failure(openSsh2Channel(closed, { host: "127.0.0.1" }, ["escp"]))).code).toBe("E_SSH_UNREACHABLE");
  });

  test("flags only the system ssh supports are E_USAGE", async () => {
    const e = await failure(openSsh2Channel(opts(userKey.private, { jumpHost: "j" }), { host: "127.0.0.1" }, ["escp"]));
    expect(e.code).toBe("E_USAGE");
    const o = await failure(openSsh2Channel(opts(userKey.private, { sshOptions: ["ProxyJump=j"] }), { host: "127.0.0.1" }, ["escp"]));
    expect(o.message).toBe("the built-in ssh client does not support -o ProxyJump=j; use the system ssh");
  });

  test("an unknown or changed host key is E_SSH_HOSTKEY, before any authentication", async () => {
    const before = authAttempts;
    const unknown = await failure(openSsh2Channel(opts(userKey.private, {}, path.join(dir, "missing")), { host: "127.0.0.1" }, ["escp"]));
    expect(unknown.code).toBe("E_SSH_HOSTKEY");
    expect(unknown.message).toContain("unknown host key (ED25519 SHA256:");
    const changed = await failure(openSsh2Channel(opts(userKey.private, {}, knownHosts(otherKey.public)), { host: "127.0.0.1" }, ["escp"]));
    expect(changed.message).toContain("REMOTE HOST KEY CHANGED");
    expect(authAttempts).toBe(before);
  });
});
