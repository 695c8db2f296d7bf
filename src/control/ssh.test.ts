// ssh transport: exact argv for every option and quoting case, failure classification on real
// ssh/shell stderr samples, and openSshChannel end to end through a fake `ssh` that runs the
// remote command with sh -c (so the quoting is exercised for real).
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EscpError } from "../errors/escp-error.ts";
import { buildSshArgv, classifySshFailure, openSshChannel, remoteCommandString, type SshOpts } from "./ssh.ts";
import { writeEchoPeer } from "./test-peer.fixture.ts";

const base: SshOpts = { ssh: "ssh", port: 22, agent: false, ipv4: false, ipv6: false, batchMode: false, sshOptions: [] };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "escp-ssh-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("buildSshArgv", () => {
  test("minimal", () => {
    expect(buildSshArgv(base, { host: "h" }, ["escp", "--server"])).toEqual(["ssh", "-T", "--", "h", "'escp' '--server'"]);
  });
  test("every option, in order", () => {
    const o: SshOpts = {
      ssh: "/usr/bin/ssh",
      port: 2200,
      identity: "/k/id",
      sshConfig: "/c/cfg",
      jumpHost: "j@jump:22",
      cipher: "aes128-gcm@openssh.com",
      agent: true,
      ipv4: true,
      ipv6: true,
      batchMode: true,
      sshOptions: ["StrictHostKeyChecking=no", "Compression=yes"],
    };
    expect(buildSshArgv(o, { host: "::1", user: "bob" }, ["escp", "--server", "-v"])).toEqual([
      "/usr/bin/ssh",
      "-T",
      "-p",
      "2200",
      "-i",
      "/k/id",
      "-F",
      "/c/cfg",
      "-J",
      "j@jump:22",
      "-c",
      "aes128-gcm@openssh.com",
      "-A",
      "-4",
      "-6",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "Compression=yes",
      "-l",
      "bob",
      "--",
      "::1",
      "'escp' '--server' '-v'",
    ]);
  });
  test("target port wins; the default port is left to ssh_config", () => {
    expect(buildSshArgv({ ...base, port: 2200 }, { host: "h", port: 2222 }, ["escp"])).toContain("2222");
    expect(buildSshArgv(base, { host: "h" }, ["escp"])).not.toContain("-p");
    expect(buildSshArgv(base, { host: "h", port: 2022 }, ["escp"]).slice(1, 4)).toEqual(["-T", "-p", "2022"]);
  });
  test("a -D with spaces is a command with args; quotes inside words are escaped", () => {
    expect(buildSshArgv(base, { host: "h" }, ["bun /opt/escp/src/cli/main.ts", "--server"]).at(-1)).toBe("'bun' '/opt/escp/src/cli/main.ts' '--server'");
    expect(remoteCommandString(["/opt/it's/escp", "--logfile", "/tmp/a b'c"])).toBe(`'/opt/it'\\''s/escp' '--logfile' '/tmp/a b'\\''c'`);
    expect(remoteCommandString(["RUST_BACKTRACE=1 X=a'b escp -v", "--server"])).toBe(`RUST_BACKTRACE='1' X='a'\\''b' 'escp' '-v' '--server'`);
    expect(() => remoteCommandString(["  "])).toThrow(EscpError);
  });
  test("a host that looks like a flag stays a host", () => {
    expect(buildSshArgv(base, { host: "-oProxyCommand=x" }, ["escp"]).slice(-3)).toEqual(["--", "-oProxyCommand=x", "'escp'"]);
  });
});

describe("classifySshFailure", () => {
  test.each([
    ["E_SSH_AUTH", 255, "bob@h: Permission denied (publickey,password).\n"],
    ["E_SSH_AUTH", 255, "Received disconnect from 1.2.3.4 port 22:2: Too many authentication failures\n"],
    ["E_SSH_HOSTKEY", 255, "No ED25519 host key is known for h and you have requested strict checking.\nHost key verification failed.\n"],
    ["E_SSH_UNREACHABLE", 255, "ssh: Could not resolve hostname nope: Name or service not known\n"],
    ["E_SSH_UNREACHABLE", 255, "ssh: connect to host h port 22: Connection refused\n"],
    ["E_SSH_UNREACHABLE", 255, "ssh: connect to host 10.9.9.9 port 22: No route to host\n"],
    ["E_SSH_UNREACHABLE", 255, "ssh: connect to host h port 22: Connection timed out\n"],
    ["E_SSH_UNREACHABLE", 255, "ssh: connect to host h port 22: Network is unreachable\n"],
    ["E_REMOTE_MISSING", 127, "bash: line 1: escp: command not found\n"],
    ["E_REMOTE_MISSING", 127, ""],
    ["E_REMOTE_MISSING", 1, "sh: 1: escp: not found\n"],
    ["E_REMOTE_MISSING", 1, "bash: /opt/escp/bin/escp: No such file or directory\n"],
    ["E_REMOTE_MISSING", 126, "bash: /opt/escp: Permission denied\n"],
    ["E_SSH_FAILED", 255, "kex_exchange_identification: read: Connection reset by peer\nConnection reset by 1.2.3.4 port 22\n"],
    ["E_SSH_FAILED", 1, "Warning: Identity file /nope not accessible: No such file or directory.\nescp: E_DEST /x: No such file or directory\n"],
    ["E_REMOTE_MISSING", 1, ""],
    ["E_REMOTE_MISSING", 3, "Warning: Permanently added '[h]:22' (ED25519) to the list of known hosts.\n"],
    ["E_SSH_FAILED", null, ""],
  ] as [string, number | null, string][])("%s for exit %p: %j", (code, exit, stderr) => {
    const e = classifySshFailure(exit, stderr, "example.org");
    expect(e.code).toBe(code as EscpError["code"]);
    expect(e.message).toContain("example.org");
    expect(e.message).not.toContain("\n");
  });
  test("messages", () => {
    expect(classifySshFailure(127, "", "h").message).toBe("escp not found on h: install it or pass -D PATH");
    expect(classifySshFailure(255, "a\nssh: weird thing\n", "h").message).toBe("ssh to h failed with exit status 255: ssh: weird thing");
    const changed =
      "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n" +
      "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nIT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n" +
      "Offending ED25519 key in /k/known_hosts:3\nHost key for h has changed and you have requested strict checking.\nHost key verification failed.\n";
    expect(classifySshFailure(255, changed, "h").message).toBe(
      "ssh to h: host key verification failed: REMOTE HOST IDENTIFICATION HAS CHANGED (possible man-in-the-middle); Offending ED25519 key in /k/known_hosts:3",
    );
    expect(classifySshFailure(255, "Host key verification failed.\n", "h").message).toBe(
      "ssh to h: host key verification failed: Host key verification failed.",
    );
    expect(classifySshFailure(1, "", "h", "/bin/false").message).toBe(
      "h: remote command '/bin/false' exited 1 before the session started (is escp installed there? -D)",
    );
    expect(classifySshFailure(1, "", "h").message).toBe("h: remote command (-D) exited 1 before the session started (is escp installed there? -D)");
    expect(classifySshFailure(2, "escp: --bogus: unknown option\n", "h", "escp").message).toBe(
      "h: remote command 'escp' exited 2 before the session started: escp: --bogus: unknown option",
    );
    expect(classifySshFailure(255, "bob@h: Permission denied (publickey).", "h").message).toBe(
      "ssh to h: authentication failed: bob@h: Permission denied (publickey).",
    );
  });
});

function fakeSsh(body: string): string {
  const file = path.join(dir, `ssh-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe("openSshChannel", () => {
  test("runs the quoted remote command and round-trips (path with a quote and a space)", async () => {
    const odd = fs.mkdtempSync(path.join(dir, "it's a dir-"));
    const peer = writeEchoPeer(odd);
    // A fake ssh: the last argument is the remote command line; run it like sshd would.
    const ssh = fakeSsh('for a; do last="$a"; done; exec sh -c "$last"');
    const ch = openSshChannel({ ...base, ssh }, { host: "h" }, [process.execPath, peer]);
    await ch.send(new Uint8Array([9, 8]));
    expect(await ch.recv(10000)).toEqual(new Uint8Array([8, 9]));
    await ch.close();
    expect(await ch.exited).toBe(0);
  });

  test("ssh failures are classified on recv", async () => {
    const ssh = fakeSsh('echo "bob@h: Permission denied (publickey)." >&2; exit 255');
    const ch = openSshChannel({ ...base, ssh }, { host: "h" }, ["escp"]);
    const e = await ch.recv(10000).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(EscpError);
    expect((e as EscpError).code).toBe("E_SSH_AUTH");
    await ch.close();
  });

  test("a missing remote escp is E_REMOTE_MISSING", async () => {
    const ssh = fakeSsh('for a; do last="$a"; done; exec sh -c "$last"');
    const ch = openSshChannel({ ...base, ssh }, { host: "h" }, [path.join(dir, "no-escp-here"), "--server"]);
    const e = await ch.recv(10000).then(
      () => null,
      (x: unknown) => x,
    );
    expect((e as EscpError).code).toBe("E_REMOTE_MISSING");
    expect((e as EscpError).message).toBe("escp not found on h: install it or pass -D PATH");
    await ch.close();
  });

  test("a missing ssh binary is E_SSH_FAILED", () => {
    let e: unknown;
    try {
      openSshChannel({ ...base, ssh: path.join(dir, "no-ssh") }, { host: "h" }, ["escp"]);
    } catch (x) {
      e = x;
    }
    expect((e as EscpError).code).toBe("E_SSH_FAILED");
  });
});
