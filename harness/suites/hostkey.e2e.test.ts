// --builtin-ssh checks host keys like OpenSSH: real transfers through the sshd fixture with known_hosts
// files in temp dirs (plain, hashed by ssh-keygen -H, missing, another key) under each
// StrictHostKeyChecking, and an in-process ssh2 server proving a refused key stops the connection
// before authentication and before any agent forwarding (-A with a real ssh-agent).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Server, utils, type Connection } from "ssh2";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { BASE, expectOk, expectSameFile, runEscp, writeRandomFile } from "./e2e-helpers.ts";

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-hostkey");
const src = join(tmp, "src.bin");
let n = 0;
const fresh = (what: string): string => join(tmp, `${what}-${++n}`);

beforeAll(async () => {
  fx = await startSshd();
  await writeRandomFile(src, (1 << 20) + 7, 11);
});
afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

function run(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** "type base64" of an OpenSSH public key file. */
const pubKey = (file: string): string => readFileSync(file, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
/** The fingerprint as the real ssh-keygen prints it. */
const sshKeygenFp = (pubFile: string): string => run(["ssh-keygen", "-l", "-E", "sha256", "-f", pubFile]).split(" ")[1] ?? "";

const hostPub = (): string => join(fx.dir, "host_ed25519.pub");
const knownName = (): string => `[127.0.0.1]:${fx.port}`;

function knownHosts(lines: string[]): string {
  const file = fresh("known_hosts");
  writeFileSync(file, lines.map((l) => `${l}\n`).join(""));
  return file;
}

/** A transfer of src with the built-in client (no ssh program exists at -S) to a fresh destination. */
function builtin(known: string, extra: string[] = []): { args: string[]; dst: string } {
  const dst = fresh("dst");
  const args = [
    ...BASE,
    "--builtin-ssh",
    "-S",
    "/nonexistent/ssh",
    "-P",
    String(fx.port),
    "-i",
    fx.identity,
    "-o",
    `UserKnownHostsFile=${known}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    ...extra,
    "-D",
    ESCP_REMOTE_CMD,
    src,
    `${fx.user}@${fx.host}:${dst}`,
  ];
  return { args, dst };
}

describe("known host key", () => {
  test("a plain [127.0.0.1]:PORT line: the file arrives byte-identical, no warning", async () => {
    const { args, dst } = builtin(knownHosts(["# fixture", `${knownName()} ${pubKey(hostPub())}`]));
    const r = await expectOk(args);
    await expectSameFile(src, dst);
    expect(r.stderr).toBe("");
  });

  test("a line hashed by ssh-keygen -H works too", async () => {
    const known = knownHosts([`${knownName()} ${pubKey(hostPub())}`]);
    run(["ssh-keygen", "-q", "-H", "-f", known]);
    expect(readFileSync(known, "utf8")).toStartWith("|1|");
    const { args, dst } = builtin(known);
    await expectOk(args);
    await expectSameFile(src, dst);
  });
});

describe("unknown host key", () => {
  for (const extra of [[], ["-o", "StrictHostKeyChecking=yes"], ["-o", "StrictHostKeyChecking=ask"]]) {
    test(`refused with ${extra.join(" ") || "the default"}: exit 4, fingerprint, nothing written`, async () => {
      const known = fresh("absent");
      const { args, dst } = builtin(known, extra);
      const r = await runEscp(args);
      expect(r.code).toBe(4);
      expect(r.stderr.trim()).toBe(
        `escp: ssh to 127.0.0.1: host key verification failed: unknown host key (ED25519 ${sshKeygenFp(hostPub())}); add it to ${known} or pass -o StrictHostKeyChecking=accept-new`,
      );
      expect([existsSync(dst), existsSync(known)]).toEqual([false, false]);
    });
  }

  test("accept-new: works and appends the key; the next run (default policy) needs nothing more", async () => {
    const known = fresh("absent");
    const first = builtin(known, ["-o", "StrictHostKeyChecking=accept-new"]);
    const r = await expectOk(first.args);
    await expectSameFile(src, first.dst);
    expect(r.stderr).toContain(`escp: warning: ssh to 127.0.0.1: added ${knownName()} (ED25519 ${sshKeygenFp(hostPub())}) to ${known}`);
    expect(readFileSync(known, "utf8")).toBe(`${knownName()} ${pubKey(hostPub())}\n`);
    expect(statSync(known).mode & 0o777).toBe(0o600);
    const second = builtin(known);
    expect((await expectOk(second.args)).stderr).toBe("");
    await expectSameFile(src, second.dst);
    expect(readFileSync(known, "utf8").split("\n").length).toBe(2); // still one line
  });

  test("accept-new without -o UserKnownHostsFile creates $HOME/.ssh (0700) and known_hosts (0600)", async () => {
    const home = fresh("home");
    const dst = fresh("dst");
    const args = [
      ...BASE,
      "--builtin-ssh",
      "-S",
      "/nonexistent/ssh",
      "-P",
      String(fx.port),
      "-i",
      fx.identity,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-D",
      ESCP_REMOTE_CMD,
      src,
      `${fx.user}@${fx.host}:${dst}`,
    ];
    mkdirSync(home);
    await expectOk(args, { env: { HOME: home } });
    await expectSameFile(src, dst);
    expect(statSync(join(home, ".ssh")).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, ".ssh", "known_hosts")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(home, ".ssh", "known_hosts"), "utf8")).toBe(`${knownName()} ${pubKey(hostPub())}\n`);
  });

  test("no: works with a warning naming the fingerprint, writes no known_hosts", async () => {
    const known = fresh("absent");
    const { args, dst } = builtin(known, ["-o", "StrictHostKeyChecking=no"]);
    const r = await expectOk(args);
    await expectSameFile(src, dst);
    expect(r.stderr.trim()).toBe(
      `escp: warning: ssh to 127.0.0.1: unknown host key (ED25519 ${sshKeygenFp(hostPub())}) accepted unverified (StrictHostKeyChecking=no); not added to known_hosts`,
    );
    expect(existsSync(known)).toBe(false);
  });
});

describe("changed host key", () => {
  for (const extra of [[], ["-o", "StrictHostKeyChecking=no"], ["-o", "StrictHostKeyChecking=accept-new"]]) {
    test(`refused with ${extra.join(" ") || "the default"}: exit 4, fingerprint and file:line, nothing written`, async () => {
      const other = fresh("other_key");
      run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other]);
      const text = `# another key for the fixture's address\n${knownName()} ${pubKey(`${other}.pub`)}\n`;
      const known = knownHosts(text.trimEnd().split("\n"));
      const { args, dst } = builtin(known, extra);
      const r = await runEscp(args);
      expect(r.code).toBe(4);
      expect(r.stderr.trim()).toBe(
        `escp: ssh to 127.0.0.1: host key verification failed: REMOTE HOST KEY CHANGED (ED25519 ${sshKeygenFp(hostPub())}; ${known}:2 has another key): possible man-in-the-middle; refusing`,
      );
      expect(existsSync(dst)).toBe(false);
      expect(readFileSync(known, "utf8")).toBe(text);
    });
  }
});

describe("in-process ssh2 server: a refused key stops before authentication and agent forwarding", () => {
  const hostKey = utils.generateKeyPairSync("ed25519");
  const userKey = utils.generateKeyPairSync("ed25519");
  const userPub = utils.parseKey(userKey.public);
  const seen = { auth: 0, agentForward: 0 };
  let server: Server;
  let port = 0;
  let agent: ReturnType<typeof Bun.spawn> | undefined;
  const agentSock = join(tmp, "agent.sock");
  const identity = join(tmp, "ssh2-user-key");

  function onClient(client: Connection): void {
    client.on("authentication", (ctx) => {
      seen.auth++;
      const ok =
        ctx.method === "publickey" &&
        !(userPub instanceof Error) &&
        ctx.key.data.equals(userPub.getPublicSSH()) &&
        (!ctx.signature || (ctx.blob !== undefined && userPub.verify(ctx.blob, ctx.signature, ctx.hashAlgo)));
      return ok ? ctx.accept() : ctx.reject(["publickey"]);
    });
    client.on("ready", () =>
      client.on("session", (accept) => {
        const session = accept();
        session.on("auth-agent", (acceptAgent) => {
          seen.agentForward++;
          acceptAgent?.();
        });
        session.on("exec", (acc, _rej, info) => {
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
    writeFileSync(identity, userKey.private, { mode: 0o600 });
    server = new Server({ hostKeys: [hostKey.private] }, onClient);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
    // A real agent (no keys) for -A; it prints SSH_AUTH_SOCK once its socket listens.
    const proc = Bun.spawn(["ssh-agent", "-D", "-a", agentSock], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    agent = proc;
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("SSH_AUTH_SOCK=")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`ssh-agent exited: ${out}`);
      out += new TextDecoder().decode(value);
    }
    reader.releaseLock();
  });
  afterAll(async () => {
    server?.close();
    agent?.kill();
    await agent?.exited;
  });

  function viaServer(knownKey: string): { args: string[]; dst: string } {
    const known = knownHosts([`[127.0.0.1]:${port} ${knownKey.trim()}`]);
    const dst = fresh("dst");
    const args = [
      ...BASE,
      "--builtin-ssh",
      "-A",
      "-S",
      "/nonexistent/ssh",
      "-P",
      String(port),
      "-i",
      identity,
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-D",
      ESCP_REMOTE_CMD,
      src,
      `u@127.0.0.1:${dst}`,
    ];
    return { args, dst };
  }

  test("the known key: authenticated, agent forwarding requested, file arrives (control)", async () => {
    const before = { ...seen };
    const { args, dst } = viaServer(hostKey.public);
    await expectOk(args, { env: { SSH_AUTH_SOCK: agentSock } });
    await expectSameFile(src, dst);
    expect(seen.auth).toBeGreaterThan(before.auth);
    expect(seen.agentForward).toBe(before.agentForward + 1);
  });

  test("another known key, even with -A and StrictHostKeyChecking=no: refused, no authentication, no agent request", async () => {
    const before = { ...seen };
    const { args, dst } = viaServer(utils.generateKeyPairSync("ed25519").public);
    const r = await runEscp([...args.slice(0, -2), "-o", "StrictHostKeyChecking=no", ...args.slice(-2)], { env: { SSH_AUTH_SOCK: agentSock } });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("host key verification failed: REMOTE HOST KEY CHANGED (ED25519 SHA256:");
    expect(seen).toEqual(before);
    expect(existsSync(dst)).toBe(false);
  });
});

describe("the system ssh agrees", () => {
  test("an unknown host key with ssh itself is the same exit 4 and E_SSH_HOSTKEY's text", async () => {
    const dst = fresh("dst");
    const known = knownHosts([]);
    // fx.sshArgs turn host key checking off: pass this test's own options after them (ssh keeps the first
    // value of an option, so -F /dev/null and ours must come first).
    const r = await runEscp([
      ...BASE,
      "-P",
      String(fx.port),
      "-i",
      fx.identity,
      "-F",
      "/dev/null",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-D",
      ESCP_REMOTE_CMD,
      src,
      `${fx.user}@${fx.host}:${dst}`,
    ]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`ssh to ${fx.host}: host key verification failed`);
    expect(existsSync(dst)).toBe(false);
  });

  test("a known_hosts line with another key, StrictHostKeyChecking=yes: E_SSH_HOSTKEY's text, never 'authentication failed'", async () => {
    const dst = fresh("dst");
    const other = fresh("other_key");
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other]);
    const known = knownHosts([`${knownName()} ${pubKey(`${other}.pub`)}`]);
    const r = await runEscp([
      ...BASE,
      "-P",
      String(fx.port),
      "-i",
      fx.identity,
      "-F",
      "/dev/null",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-D",
      ESCP_REMOTE_CMD,
      src,
      `${fx.user}@${fx.host}:${dst}`,
    ]);
    expect(r.code).toBe(4);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("escp:"));
    expect(lines).toHaveLength(1);
    expect(lines).toEqual([
      `escp: ssh to ${fx.host}: host key verification failed: REMOTE HOST IDENTIFICATION HAS CHANGED (possible man-in-the-middle); Offending ED25519 key in ${known}:1`,
    ]);
    expect(r.stderr).not.toContain("authentication failed");
    expect(existsSync(dst)).toBe(false);
  });

  test("the same wrong key with --builtin-ssh and StrictHostKeyChecking=yes: the same code and exit", async () => {
    const other = fresh("other_key");
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other]);
    const known = knownHosts([`${knownName()} ${pubKey(`${other}.pub`)}`]);
    const { args, dst } = builtin(known, ["-o", "StrictHostKeyChecking=yes"]);
    const r = await runEscp(args);
    expect(r.code).toBe(4);
    expect(r.stderr).toStartWith(`escp: ssh to ${fx.host}: host key verification failed: REMOTE HOST KEY CHANGED`);
    expect(r.stderr).not.toContain("authentication failed");
    expect(existsSync(dst)).toBe(false);
  });
});
