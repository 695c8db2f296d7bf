// One real transfer per flag family from src/config/options.ts, asserting what the table promises:
// data-port walking, --builtin-ssh, -p, --sparse, --logfile, ESCP_CONFIG, -l, -S and the ssh argv,
// -v/-q, --numa, the progress bar under a pseudo-terminal, and IPv6 ([::1]:path with -6) through sshd.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_MAIN, ESCP_REMOTE_CMD, REPO_ROOT } from "../escp-run.ts";
import { BASE, compareTrees, expectOk, expectSameFile, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const MiB = 1 << 20;
const PAST = new Date("2001-02-03T04:05:06Z"); // whole seconds: survives any float rounding
const PAST_SEC = PAST.getTime() / 1000;

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-options");
beforeAll(async () => {
  fx = await startSshd();
});
afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

/** Flags that reach the fixture's sshd with the system ssh, running this checkout remotely. */
const viaSsh = (): string[] => [...fx.sshArgs, "-D", ESCP_REMOTE_CMD];

/** A small random source file under tmp. */
async function source(name: string, size: number, seed: number): Promise<string> {
  const p = join(tmp, name);
  await writeRandomFile(p, size, seed);
  return p;
}

function listenOn(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ port, host, exclusive: true }, () => resolve(s));
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

function portOf(s: Server): number {
  const a = s.address();
  if (typeof a !== "object" || a === null) throw new Error("server has no address");
  return a.port;
}

/** Occupies a kernel-chosen port P on 127.0.0.1 whose next `spare` ports are free right now. */
async function occupyWithSpares(spare: number): Promise<Server> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const s = await listenOn(0, "127.0.0.1");
    const p = portOf(s);
    let ok = p + spare <= 65535;
    for (let i = 1; ok && i <= spare; i++) {
      ok = await listenOn(p + i, "127.0.0.1")
        .then(closeServer)
        .then(
          () => true,
          () => false,
        );
    }
    if (ok) return s;
    await closeServer(s);
  }
  throw new Error(`no port with ${spare} free successors found`);
}

async function hasIpv6Loopback(): Promise<boolean> {
  try {
    await closeServer(await listenOn(0, "::1"));
    return true;
  } catch {
    return false;
  }
}
const IPV6 = await hasIpv6Loopback();
if (!IPV6) console.warn("options.e2e: IPv6 test skipped: this host cannot bind ::1 (no IPv6 loopback)");

/** Every line of a --logfile output, parsed (a line that is not JSON fails the test). */
function jsonLines(path: string): Record<string, unknown>[] {
  const text = readFileSync(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function fieldsOf(lines: Record<string, unknown>[], msg: string): Record<string, unknown> {
  const line = lines.find((l) => l.msg === msg);
  if (!line) throw new Error(`no log line with msg ${JSON.stringify(msg)} in ${JSON.stringify(lines)}`);
  return line.fields as Record<string, unknown>;
}

const shq = (w: string): string => `'${w.replaceAll("'", `'\\''`)}'`;

/** Runs escp under `script` (a pseudo-terminal on stdout), bounded and group-killed like runEscp. */
async function runUnderPty(args: string[], timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  const cmd = [process.execPath, ESCP_MAIN, ...args].map(shq).join(" ");
  const proc = Bun.spawn(["script", "-qfec", cmd, "/dev/null"], { cwd: REPO_ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  const kill = (): void => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // group already gone
    }
  };
  const unregister = onExitCleanup(kill);
  const timer = setTimeout(kill, timeoutMs);
  try {
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, output: out + err };
  } finally {
    clearTimeout(timer);
    kill();
    unregister();
  }
}

describe("--escp_port / --escp_portrange", () => {
  test("a busy first port is skipped within the range; a range of 1 fails with exit 6 naming it", async () => {
    const src = await source("ports.bin", 3 * MiB + 11, 1);
    const busy = await occupyWithSpares(2);
    try {
      const p = portOf(busy);
      const dst = join(tmp, "ports-ok.bin");
      const ok = await expectOk([...BASE, "-v", "--escp_port", String(p), "--escp_portrange", "3", src, dst]);
      await expectSameFile(src, dst);
      // The receiver walked past the occupied port to the next one.
      expect(ok.stderr).toContain(`local receiver listening (address=127.0.0.1 port=${p + 1})`);

      const never = join(tmp, "ports-fail.bin");
      const r = await runEscp(["-q", "--timeout", "20", "--escp_port", String(p), "--escp_portrange", "1", src, never]);
      expect(r.code).toBe(6);
      expect(r.stderr).toContain(`escp: local receiver: cannot listen on 127.0.0.1 ports ${p}-${p}`);
      expect(r.stderr).toContain("Address already in use");
      expect(existsSync(never)).toBe(false);
    } finally {
      await closeServer(busy);
    }
  });
});

describe("--builtin-ssh", () => {
  test("ssh2 client through sshd: bytes equal, host key verified from known_hosts, no ssh program run", async () => {
    const src = await source("builtin.bin", 5 * MiB + 3, 2);
    const dst = join(tmp, "builtin-out.bin");
    // The fixture's host key under its [host]:port name (hostkey.e2e.test.ts covers the refusals).
    const known = join(tmp, "builtin-known_hosts");
    const hostPub = readFileSync(join(fx.dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    writeFileSync(known, `[${fx.host}]:${fx.port} ${hostPub}\n`);
    // -S names a program that does not exist: only the built-in client can succeed.
    const r = await expectOk([
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
      "-D",
      ESCP_REMOTE_CMD,
      src,
      `${fx.user}@${fx.host}:${dst}`,
    ]);
    await expectSameFile(src, dst);
    expect(r.stderr).toBe("");
  });
});

describe("-p / --preserve", () => {
  const src = join(tmp, "meta");
  beforeAll(() => {
    mkdirSync(join(src, "d1", "d2"), { recursive: true });
    writeFileSync(join(src, "f750"), "seven five zero\n");
    writeFileSync(join(src, "d1", "f604"), "six oh four\n");
    writeFileSync(join(src, "d1", "d2", "f666"), "six six six\n");
    chmodSync(join(src, "f750"), 0o750);
    chmodSync(join(src, "d1", "f604"), 0o604);
    chmodSync(join(src, "d1", "d2", "f666"), 0o666);
    chmodSync(join(src, "d1", "d2"), 0o750);
    chmodSync(join(src, "d1"), 0o710);
    chmodSync(src, 0o751);
    // Files first, then directories bottom-up (adding entries changes a directory's mtime).
    for (const p of ["f750", "d1/f604", "d1/d2/f666", "d1/d2", "d1", ""]) utimesSync(join(src, p), PAST, PAST);
  });

  test("-p -r keeps modes and mtimes of files and directories", async () => {
    const dst = join(tmp, "meta-p");
    await expectOk([...BASE, "-p", "-r", src, dst]);
    expect(await compareTrees(src, dst, { modes: true, mtimes: true })).toEqual([]);
    for (const [rel, mode] of [
      ["", 0o751],
      ["d1", 0o710],
      ["d1/d2", 0o750],
      ["f750", 0o750],
      ["d1/f604", 0o604],
      ["d1/d2/f666", 0o666],
    ] as const) {
      const st = statSync(join(dst, rel));
      expect({ rel, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) }).toEqual({ rel, mode, mtime: PAST_SEC });
    }
  });

  test("without -p: file modes masked by the receiver's umask, fresh mtimes", async () => {
    const dst = join(tmp, "meta-nop");
    await expectOk([...BASE, "-r", src, dst], { wrap: ["sh", "-c", 'umask 027 && exec "$@"', "sh"] });
    const mode = (rel: string): number => statSync(join(dst, rel)).mode & 0o7777;
    expect([mode("f750"), mode("d1/f604"), mode("d1/d2/f666")]).toEqual([0o750, 0o600, 0o640]);
    expect([mode("d1"), mode("d1/d2")]).toEqual([0o750, 0o750]); // new directories: 0777 & ~umask
    for (const rel of ["f750", "d1/f604", "d1", "d1/d2"]) {
      expect(Math.floor(statSync(join(dst, rel)).mtimeMs / 1000)).toBeGreaterThan(PAST_SEC);
    }
    expect(await compareTrees(src, dst)).toEqual([]); // content still identical
  });
});

/** n bytes of (i * mul + add) & 0xff, never 0: data that no zero-block rule can mistake for a hole. */
function islandBytes(n: number, mul: number, add: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * mul + add) & 0xff || 1;
  return b;
}

/** A file of `size` bytes that is all hole except the given [offset, bytes] writes. */
async function sparseFile(path: string, size: number, writes: [number, Buffer][]): Promise<void> {
  writeFileSync(path, "");
  truncateSync(path, size);
  const fh = await open(path, "r+");
  try {
    for (const [off, bytes] of writes) await fh.write(bytes, 0, bytes.length, off);
  } finally {
    await fh.close();
  }
}

describe("--sparse", () => {
  test("64 MiB file with holes: identical bytes, far fewer blocks allocated than its size", async () => {
    const src = join(tmp, "holes.bin");
    const island = islandBytes(100_003, 31, 7);
    await sparseFile(src, 64 * MiB, [
      [1_234_567, island],
      [33_333_333, island],
      [50 * MiB + 4097, island],
      [64 * MiB - 4, Buffer.from("tail")],
    ]);
    expect(statSync(src).blocks * 512).toBeLessThan(2 * MiB); // precondition: the source is sparse
    const dst = join(tmp, "holes-out.bin");
    await expectOk([...BASE, "--sparse", src, dst]);
    await expectSameFile(src, dst);
    const st = statSync(dst);
    expect(st.size).toBe(64 * MiB);
    expect(st.blocks * 512).toBeLessThan(st.size / 4);
  });
});

describe("a sparse source (no flag)", () => {
  test("its holes are neither read nor sent: 64 MiB with 3 islands of data, the wire carries about the islands, holes kept", async () => {
    const src = join(tmp, "sparse-src.bin");
    const island = islandBytes(300_000, 29, 3);
    await sparseFile(src, 64 * MiB, [
      [0, island],
      [20 * MiB + 12345, island],
      [64 * MiB - island.length, island],
    ]);
    expect(statSync(src).blocks * 512).toBeLessThan(4 * MiB); // precondition: the source is sparse
    const dst = join(tmp, "sparse-out.bin");
    const base = join(tmp, "sparse-log");
    await expectOk([...BASE, "--logfile", base, src, dst]);
    await expectSameFile(src, dst); // and the BLAKE3 both sides agreed on is b3sum's
    expect(statSync(dst).blocks * 512).toBeLessThan(8 * MiB); // the holes are holes again
    const wire = fieldsOf(jsonLines(`${base}.client`), "session done").wire as number;
    expect(wire).toBeGreaterThan(0);
    // 1 MiB blocks: the islands touch at most 5 (one straddles two) of 64; the rest are ZERO frames.
    expect(wire).toBeLessThan(6 * MiB);
  });
});

describe("--logfile", () => {
  test("PATH.client and PATH.server hold JSON lines, mode 0600, and never key material", async () => {
    const src = await source("logged.bin", 2 * MiB + 1, 3);
    const dst = join(tmp, "logged-out.bin");
    const base = join(tmp, "run-log");
    await expectOk([...BASE, "--logfile", base, src, dst]);
    await expectSameFile(src, dst);
    for (const side of ["client", "server"]) {
      const path = `${base}.${side}`;
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const text = readFileSync(path, "utf8");
      expect(text).not.toMatch(/key/i);
      expect(text).not.toMatch(/[0-9a-f]{64}/i); // a 32-byte key in hex
      const lines = jsonLines(path);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const l of lines) expect(l).toMatchObject({ role: side, level: "info" }); // no debug lines without -v
    }
    const client = jsonLines(`${base}.client`);
    expect(fieldsOf(client, "session start")).toMatchObject({ files: 1, bytes: 2 * MiB + 1 });
    expect(fieldsOf(client, "session done")).toMatchObject({ files: 1, bytes: 2 * MiB + 1, failed: 0 });
    const server = jsonLines(`${base}.server`);
    expect(fieldsOf(server, "session init")).toMatchObject({ dest: dst });
    expect(fieldsOf(server, "session done")).toMatchObject({ filesOk: 1, filesFailed: 0 });
  });

  test("a symlink at PATH.server is refused by the receiver: exit 2 naming it, the victim untouched", async () => {
    const src = await source("log-victim-src.bin", 64 * 1024, 9);
    const dst = join(tmp, "log-victim-out.bin");
    const base = join(tmp, "evil-log");
    const victim = join(tmp, "victim.txt");
    writeFileSync(victim, "do not append here\n", { mode: 0o644 });
    const before = statSync(victim);
    symlinkSync(victim, `${base}.server`);
    const r = await runEscp([...BASE, "--logfile", base, src, dst]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^escp: .*--logfile ${base}\\.server: refusing to log there: it is a symbolic link\n$`));
    expect(readFileSync(victim, "utf8")).toBe("do not append here\n");
    expect(statSync(victim)).toMatchObject({ size: before.size, mode: before.mode, mtimeMs: before.mtimeMs });
    expect(existsSync(dst)).toBe(false);
  });
});

describe("config file (ESCP_CONFIG)", () => {
  test("threads: 2 and blocksize: 64K are applied; a bad key is exit 2 naming file and key", async () => {
    const cfg = join(tmp, "escp.conf");
    writeFileSync(cfg, "threads: 2\nblocksize: 64K\n");
    const src = await source("conf.bin", 3 * MiB + 5, 4);
    const dst = join(tmp, "conf-out.bin");
    const base = join(tmp, "conf-log");
    await expectOk([...BASE, "--logfile", base, src, dst], { env: { ESCP_CONFIG: cfg } });
    await expectSameFile(src, dst);
    // The receiver got them through session init.
    expect(fieldsOf(jsonLines(`${base}.server`), "session init")).toMatchObject({ threads: 2, blockSize: 64 * 1024 });

    const bad = join(tmp, "bad.conf");
    writeFileSync(bad, "threads: 2\nbogus_key: 1\n");
    const never = join(tmp, "conf-never.bin");
    const r = await runEscp([...BASE, src, never], { env: { ESCP_CONFIG: bad } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`escp: ${bad}: unknown key "bogus_key"\n`);
    expect(existsSync(never)).toBe(false);
  });

  test("a missing file named by ESCP_CONFIG is exit 2 naming the path and the cause", async () => {
    const src = await source("conf-missing.bin", 1000, 6);
    const missing = join(tmp, "no-such.conf");
    const never = join(tmp, "conf-missing-never.bin");
    const r = await runEscp([...BASE, src, never], { env: { ESCP_CONFIG: missing } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`escp: ${missing} (ESCP_CONFIG): cannot read: No such file or directory\n`);
    expect(existsSync(never)).toBe(false);
  });
});

describe("-l / --limit", () => {
  test("-l 50M paces but completes with equal bytes; the limit reaches the session", async () => {
    const src = await source("limited.bin", 16 * MiB + 9, 5);
    const dst = join(tmp, "limited-out.bin");
    const base = join(tmp, "limit-log");
    await expectOk([...BASE, "-l", "50M", "--logfile", base, src, dst]);
    await expectSameFile(src, dst);
    expect(fieldsOf(jsonLines(`${base}.client`), "session start")).toMatchObject({ limit: 50 * MiB });
  });
});

describe("-S / --ssh and the ssh argv", () => {
  test("a wrapper program is run with -p, -i, -c, -4 and every -o, in order", async () => {
    const dir = join(tmp, "wrapper");
    mkdirSync(dir);
    const argvLog = join(dir, "argv");
    const wrapper = join(dir, "my-ssh");
    writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\0' "$@" > ${shq(argvLog)}\nexec ssh "$@"\n`, { mode: 0o755 });
    const src = await source("wrapped.bin", 4 * MiB + 7, 6);
    const dst = join(tmp, "wrapped-out.bin");
    await expectOk([...BASE, "-S", wrapper, "-c", "aes128-gcm@openssh.com", "-4", ...viaSsh(), src, `${fx.user}@${fx.host}:${dst}`]);
    await expectSameFile(src, dst);
    const argv = readFileSync(argvLog, "utf8").split("\0").slice(0, -1);
    const sshOpts = fx.sshArgs.flatMap((v, i, a) => (a[i - 1] === "-o" ? ["-o", v] : []));
    expect(sshOpts.length).toBeGreaterThan(0);
    expect(argv.slice(0, -1)).toEqual([
      "-T",
      "-p",
      String(fx.port),
      "-i",
      fx.identity,
      "-c",
      "aes128-gcm@openssh.com",
      "-4",
      ...sshOpts,
      "-l",
      fx.user,
      "--",
      fx.host,
    ]);
    expect(argv.at(-1)).toContain("'--server'");
  });
});

describe("-v and -q", () => {
  test("-v: debug lines from both sender and receiver on stderr", async () => {
    const src = await source("verbose.bin", MiB + 3, 7);
    const dst = join(tmp, "verbose-out.bin");
    const r = await expectOk(["-v", "--escp_port", "0", "--timeout", "20", src, dst]);
    await expectSameFile(src, dst);
    expect(r.stderr).toMatch(/^debug: local receiver listening \(address=127\.0\.0\.1 port=\d+\)$/m);
    expect(r.stderr).toMatch(/^debug: verified .*verbose\.bin \(bytes=1048579\)$/m);
    expect(r.stderr).toMatch(/^escp server: debug: listening for data streams \(address=127\.0\.0\.1 port=\d+\)$/m);
    expect(r.stderr).toMatch(/^escp server: debug: committed .*verbose-out\.bin \(bytes=1048579\)$/m);
    expect(r.stdout).toMatch(/^Sent    : .* in 1 file at /m);
  });

  test("-q: stdout empty on success (the summary is printed without it)", async () => {
    const src = await source("quiet.bin", MiB, 8);
    const quiet = await expectOk([...BASE, src, join(tmp, "quiet-out.bin")]);
    expect(quiet.stdout).toBe("");
    expect(quiet.stderr).toBe("");
    await expectSameFile(src, join(tmp, "quiet-out.bin"));
    const loud = await expectOk(["--escp_port", "0", "--timeout", "20", src, join(tmp, "loud-out.bin")]);
    expect(loud.stdout).toMatch(/^Sent    : +1\.0 MB in 1 file at .*B\/s in \d\d:\d\d\.\d\d\n$/);
  });
});

describe("--numa", () => {
  test("off, auto and 0 transfer (one node here: placement is a no-op, said once per side at debug); 9 is exit 2 naming --numa", async () => {
    const src = await source("numa.bin", 2 * MiB + 1, 11);
    for (const mode of ["off", "auto", "0"]) {
      const dst = join(tmp, `numa-${mode}.bin`);
      const r = await expectOk(["-v", "--numa", mode, "--escp_port", "0", "--timeout", "20", src, dst]);
      await expectSameFile(src, dst);
      const said = mode === "off" ? "off" : "no placement (one node, or neither the NIC's nor the storage's node is known)";
      expect(r.stderr.match(/^debug: numa: .*$/gm)).toEqual([`debug: numa: ${said}`]);
      expect(r.stderr).toMatch(/^escp server: debug: numa: no placement/m); // the server uses its own (auto)
    }
    const never = join(tmp, "numa-never.bin");
    const r = await runEscp([...BASE, "--numa", "9", src, never]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^escp: --numa 9: no NUMA node 9 with CPUs on this machine \(nodes: [\d, ]+\)\n$/);
    expect(existsSync(never)).toBe(false);
  });
});

describe("progress bar on a terminal", () => {
  const BAR = /\[[ =>]{30}\] +[\d.]+ [ KMGTPE]B +[\d.]+ [ KMGTPE]B\/s +\d\d:\d\d\/(?:\d\d:\d\d|--:--)/;
  const BAR_BITS = /\[[ =>]{30}\] +[\d.]+ [ KMGTPE]B +[\d.]+ [ KMGTPE]bit\/s +\d\d:\d\d\/(?:\d\d:\d\d|--:--)/;

  test("64 MiB under script(1): a bar line and the final summary; --bits shows bit/s", async () => {
    const src = await source("tty.bin", 64 * MiB, 9);
    const r = await runUnderPty(["--escp_port", "0", "--timeout", "20", src, join(tmp, "tty-out.bin")]);
    expect(r.code).toBe(0);
    expect(r.output).toMatch(BAR);
    expect(r.output).toMatch(/Sent    :  64\.0 MB in 1 file at +[\d.]+ [ KMGTPE]B\/s in \d\d:\d\d\.\d\d\r?\n/);
    await expectSameFile(src, join(tmp, "tty-out.bin"));

    const b = await runUnderPty(["--bits", "--escp_port", "0", "--timeout", "20", src, join(tmp, "tty-bits.bin")]);
    expect(b.code).toBe(0);
    expect(b.output).toMatch(BAR_BITS);
    expect(b.output).not.toMatch(BAR);
    expect(b.output).toMatch(/Sent    :  64\.0 MB in 1 file at +[\d.]+ [ KMGTPE]bit\/s in /);
    expect(b.output).not.toContain("B/s");
  });
});

describe("IPv6", () => {
  test.skipIf(!IPV6)("[::1]:path with -6 through an sshd listening on ::1 only", async () => {
    const fx6 = await startSshd({ listen: "::1" });
    try {
      const src = await source("v6.bin", 3 * MiB + 1, 10);
      const dst = join(tmp, "v6-out.bin");
      const r = await expectOk([...BASE, "-v", "-6", ...fx6.sshArgs, "-D", ESCP_REMOTE_CMD, src, `${fx6.user}@[::1]:${dst}`]);
      await expectSameFile(src, dst);
      // The receiver bound the address ssh arrived on; the data streams went there too.
      expect(r.stderr).toMatch(/^debug: ::1 listening \(address=::1 port=\d+\)$/m);
    } finally {
      await fx6.stop();
    }
  });
});
