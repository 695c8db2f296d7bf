// Tests for argv tokenizing, endpoint parsing and the SOURCE... DEST split.
import { describe, expect, test } from "bun:test";
import { EscpError } from "../errors/escp-error.ts";
import { parseEndpoint, splitPositionals, tokenizeArgv } from "./args.ts";

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EscpError);
    expect((e as EscpError).code).toBe("E_USAGE");
    return (e as EscpError).message;
  }
  throw new Error("expected an E_USAGE error");
}

describe("tokenizeArgv", () => {
  test("value forms: -t4, -t 4, --parallel=4, --parallel 4", () => {
    for (const argv of [["-t4"], ["-t", "4"], ["--parallel=4"], ["--parallel", "4"]]) {
      expect(tokenizeArgv(argv).values.threads).toBe(4);
    }
  });

  test("bundled bools and a trailing valued flag", () => {
    const p = tokenizeArgv(["-rpq", "-rCt8", "src", "h:d"]);
    expect(p.values).toMatchObject({ recursive: true, preserve: true, quiet: true, compress: true, threads: 8 });
    expect(p.positionals).toEqual(["src", "h:d"]);
  });

  test("-- ends options; lone - is positional", () => {
    const p = tokenizeArgv(["-v", "--", "-r", "-", "h:"]);
    expect(p.values.verbose).toBe(true);
    expect(p.values.recursive).toBeUndefined();
    expect(p.positionals).toEqual(["-r", "-", "h:"]);
  });

  test("every flag", () => {
    const argv = [
      "--filelist",
      "fl",
      "-P",
      "2222",
      "--escp_port",
      "2000",
      "--escp_portrange",
      "20",
      "-v",
      "--logfile",
      "/tmp/l",
      "-q",
      "-l",
      "100Mbit",
      "-p",
      "-C",
      "--sparse",
      "-r",
      "-o",
      "A=1",
      "-o",
      "B=2",
      "-S",
      "myssh",
      "-D",
      "/opt/escp",
      "--blocksize",
      "4M",
      "--ioengine",
      "dummy",
      "-t",
      "16",
      "--bits",
      "--nodirect",
      "--nochecksum",
      "-A",
      "-c",
      "aes128-ctr",
      "-i",
      "id",
      "-F",
      "cfg",
      "-J",
      "jump",
      "-B",
      "-4",
      "--timeout",
      "90",
      "--builtin-ssh",
      "--server",
      "--mgmt",
      "/tmp/m",
      "-L",
      "-h",
      "-V",
    ];
    expect(tokenizeArgv(argv).values).toEqual({
      filelist: "fl",
      port: 2222,
      escpPort: 2000,
      escpPortrange: 20,
      verbose: true,
      logfile: "/tmp/l",
      quiet: true,
      limit: 12_500_000,
      preserve: true,
      compress: true,
      sparse: true,
      recursive: true,
      sshOptions: ["A=1", "B=2"],
      ssh: "myssh",
      escp: "/opt/escp",
      blocksize: 4 * 1024 * 1024,
      ioengine: "dummy",
      ioengineRx: "dummy",
      threads: 16,
      bits: true,
      nodirect: true,
      nochecksum: true,
      agent: true,
      cipher: "aes128-ctr",
      identity: "id",
      sshConfig: "cfg",
      jumpHost: "jump",
      batchMode: true,
      ipv4: true,
      timeoutMs: 90_000,
      builtinSsh: true,
      server: true,
      mgmt: "/tmp/m",
      license: true,
      help: true,
      version: true,
    });
    expect(tokenizeArgv(["-6"]).values.ipv6).toBe(true);
  });

  test("long aliases", () => {
    const v = tokenizeArgv([
      "--port=1",
      "--verbose",
      "--quiet",
      "--limit",
      "1G",
      "--preserve",
      "--compress",
      "--recursive",
      "--ssh",
      "s",
      "--escp",
      "e",
      "--agent",
      "--cipher",
      "c",
      "--identity",
      "i",
      "--ssh_config",
      "f",
      "--jump_host",
      "j",
      "--batch",
      "--license",
      "--help",
      "--version",
    ]).values;
    expect(v).toMatchObject({
      port: 1,
      verbose: true,
      quiet: true,
      limit: 1024 ** 3,
      preserve: true,
      compress: true,
      recursive: true,
      ssh: "s",
      escp: "e",
      agent: true,
      cipher: "c",
      identity: "i",
      sshConfig: "f",
      jumpHost: "j",
      batchMode: true,
      license: true,
      help: true,
      version: true,
    });
  });

  test("ioengine TX::RX", () => {
    expect(tokenizeArgv(["--ioengine", "dummy::posix"]).values).toMatchObject({ ioengine: "dummy", ioengineRx: "posix" });
    expect(usageMessage(() => tokenizeArgv(["--ioengine", "posix::foo"]))).toBe('--ioengine posix::foo: unknown I/O engine "foo" (expected posix or dummy)');
  });

  test("bad values, exact text", () => {
    expect(usageMessage(() => tokenizeArgv(["--blocksize", "300K"]))).toBe("--blocksize 300K: must be a power of two between 64K and 64M");
    expect(usageMessage(() => tokenizeArgv(["--blocksize", "128M"]))).toBe("--blocksize 128M: must be a power of two between 64K and 64M");
    expect(usageMessage(() => tokenizeArgv(["--blocksize=abc"]))).toBe("--blocksize abc: not a size (e.g. 1M or 256K)");
    expect(usageMessage(() => tokenizeArgv(["-t", "0"]))).toBe("-t 0: must be an integer between 1 and 64");
    expect(usageMessage(() => tokenizeArgv(["-t65"]))).toBe("-t 65: must be an integer between 1 and 64");
    expect(usageMessage(() => tokenizeArgv(["--parallel=4.5"]))).toBe("--parallel 4.5: must be an integer between 1 and 64");
    expect(usageMessage(() => tokenizeArgv(["--ioengine", "foo"]))).toBe('--ioengine foo: unknown I/O engine "foo" (expected posix or dummy)');
    expect(usageMessage(() => tokenizeArgv(["-P", "abc"]))).toBe("-P abc: must be an integer between 1 and 65535");
    expect(usageMessage(() => tokenizeArgv(["--timeout", "0"]))).toBe("--timeout 0: must be an integer between 1 and 86400");
    expect(usageMessage(() => tokenizeArgv(["-l", "fast"]))).toBe("-l fast: not a rate in bytes/s (e.g. 100M, 1G or 800Mbit; 0 = off)");
    expect(usageMessage(() => tokenizeArgv(["--escp_portrange", "0"]))).toBe("--escp_portrange 0: must be an integer between 1 and 1000");
  });

  test("unknown and malformed flags", () => {
    expect(usageMessage(() => tokenizeArgv(["--foo"]))).toBe("unknown option --foo");
    expect(usageMessage(() => tokenizeArgv(["--foo=1"]))).toBe("unknown option --foo");
    expect(usageMessage(() => tokenizeArgv(["-rx"]))).toBe("unknown option -x");
    expect(usageMessage(() => tokenizeArgv(["-t"]))).toBe("-t: missing value (N)");
    expect(usageMessage(() => tokenizeArgv(["--blocksize"]))).toBe("--blocksize: missing value (SIZE)");
    expect(usageMessage(() => tokenizeArgv(["--verbose=1"]))).toBe("--verbose: takes no value");
  });

  test("rates and sizes in human units", () => {
    expect(tokenizeArgv(["-l", "1k"]).values.limit).toBe(1024);
    expect(tokenizeArgv(["-l", "1M"]).values.limit).toBe(1024 * 1024);
    expect(tokenizeArgv(["-l", "800Mbit"]).values.limit).toBe(100_000_000);
    expect(tokenizeArgv(["-l", "0"]).values.limit).toBe(0);
    expect(tokenizeArgv(["--blocksize", "64K"]).values.blocksize).toBe(65536);
    expect(tokenizeArgv(["--blocksize", "64m"]).values.blocksize).toBe(64 * 1024 * 1024);
  });

  test("ignored scp flags produce warnings; -3 is a real flag", () => {
    const p = tokenizeArgv(["-3", "-sOTR", "a", "h:"]);
    expect(p.warnings).toHaveLength(4);
    expect(p.warnings[3]).toContain("-R ignored");
    expect(p.values.thirdParty).toBe(true);
    expect(p.positionals).toEqual(["a", "h:"]);
  });
});

describe("parseEndpoint", () => {
  test("remote forms", () => {
    expect(parseEndpoint("user@host:path")).toEqual({ user: "user", host: "host", path: "path" });
    expect(parseEndpoint("host:")).toEqual({ host: "host", path: "" });
    expect(parseEndpoint("host:/abs/p:q")).toEqual({ host: "host", path: "/abs/p:q" });
    expect(parseEndpoint("[::1]:/x")).toEqual({ host: "::1", path: "/x" });
    expect(parseEndpoint("user@[fe80::1]:p")).toEqual({ user: "user", host: "fe80::1", path: "p" });
    expect(parseEndpoint("a@b@host:p")).toEqual({ user: "a@b", host: "host", path: "p" });
  });

  test("scp:// URIs", () => {
    expect(parseEndpoint("scp://u@h:2222/p")).toEqual({ user: "u", host: "h", port: 2222, path: "p" });
    expect(parseEndpoint("scp://h")).toEqual({ host: "h", path: "" });
    expect(parseEndpoint("scp://h//abs/x")).toEqual({ host: "h", path: "/abs/x" });
    expect(parseEndpoint("scp://[::1]:22/d")).toEqual({ host: "::1", port: 22, path: "d" });
    expect(usageMessage(() => parseEndpoint("scp://h:99999/p"))).toBe('scp://h:99999/p: bad port "99999" (must be 1..65535)');
  });

  test("local paths", () => {
    expect(parseEndpoint("./a:b")).toEqual({ path: "./a:b" });
    expect(parseEndpoint("/x:y")).toEqual({ path: "/x:y" });
    expect(parseEndpoint("plain")).toEqual({ path: "plain" });
    expect(parseEndpoint(":lead")).toEqual({ path: ":lead" });
    expect(parseEndpoint("a\\:b")).toEqual({ path: "a:b" });
    expect(parseEndpoint("dir/f:x")).toEqual({ path: "dir/f:x" });
  });

  test("bad hosts and users", () => {
    expect(usageMessage(() => parseEndpoint("user@:x"))).toBe("user@:x: missing host name");
    expect(usageMessage(() => parseEndpoint("@h:x"))).toBe("@h:x: empty user name before @");
    expect(usageMessage(() => parseEndpoint("-oProxyCommand=x:y"))).toBe('-oProxyCommand=x:y: bad host name "-oProxyCommand=x"');
  });
});

describe("splitPositionals", () => {
  test("last is the destination", () => {
    expect(splitPositionals(["a", "b", "h:d"], false)).toEqual({ sources: ["a", "b"], dest: { host: "h", path: "d" } });
  });
  test("filelist: only the destination", () => {
    expect(splitPositionals(["h:d"], true)).toEqual({ sources: [], dest: { host: "h", path: "d" } });
    expect(usageMessage(() => splitPositionals(["a", "h:d"], true))).toContain("--filelist: give only the destination");
  });
  test("missing arguments name the usage line", () => {
    expect(usageMessage(() => splitPositionals([], false))).toStartWith("missing source and destination; usage: escp");
    expect(usageMessage(() => splitPositionals(["a"], false))).toStartWith("missing destination; usage: escp");
  });
  test("remote sources on one host are a pull", () => {
    expect(splitPositionals(["u@h:x", "u@h:/y/*.h5", "d"], false)).toEqual({
      sources: [],
      remote: { host: "h", user: "u", paths: ["x", "/y/*.h5"] },
      dest: { path: "d" },
    });
    expect(splitPositionals(["scp://h:2222/~/x", "."], false).remote).toEqual({ host: "h", port: 2222, paths: ["~/x"] });
  });
  test("remote to remote is a third-party copy", () => {
    expect(splitPositionals(["h:x", "g:d"], false)).toEqual({ sources: [], remote: { host: "h", paths: ["x"] }, dest: { host: "g", path: "d" } });
  });
  test("mixed and several hosts are refused", () => {
    expect(usageMessage(() => splitPositionals(["h:x", "local", "d"], false))).toBe("local: local and remote sources cannot be mixed in one command");
    expect(usageMessage(() => splitPositionals(["h:x", "g:y", "d"], false))).toBe("g:y: all remote sources must be on one host (h)");
    expect(usageMessage(() => splitPositionals(["h:x", "u@h:y", "d"], false))).toBe("u@h:y: all remote sources must be on one host (h)");
  });
});
