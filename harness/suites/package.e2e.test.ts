// The Debian package (harness/package/build-deb.ts, `bun run package`): built once into a temp
// dir, installed with dpkg into an empty root, its compiled /usr/bin/escp run with an empty
// environment (so libescp.so can only come from its private /usr/lib/escp/), used as both ends
// of a push and a pull through a real sshd (the multi-host fixture), then removed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { buildDeb, type BuiltDeb } from "../package/build-deb.ts";
import { b3sum } from "../b3sum.ts";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { makeTmpDir, onExitCleanup, removeTmpDir } from "../tmp-dir.ts";
import { writeRandomFile } from "./e2e-helpers.ts";

const T = 180_000;
const _REPO = join(import.meta.dir, "..", "..");
const tools = ["dpkg", "dpkg-deb", "dpkg-shlibdeps", "objdump"].filter((t) => !Bun.which(t));
const can = canMultiHost();

let tmp = "";
let root = "";
let deb: BuiltDeb | undefined;
let fx: MultiHost | undefined;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(argv: string[], env?: Record<string, string>): Out {
  const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", ...(env ? { env } : {}) });
  return { code: r.exitCode ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function ok(argv: string[], env?: Record<string, string>): string {
  const r = sh(argv, env);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** The environment of a login with nothing escp-specific in it (no ESCP_LIBESCP). */
const BARE = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root" };

/** Runs the installed escp with only PATH and HOME set, in its own process group (ssh and the
 *  local side's children go with it); the group is killed when escp exits, at the safety
 *  bound, or at process exit. */
async function run(args: string[]): Promise<Out> {
  const proc = Bun.spawn([join(root, "usr/bin/escp"), ...args], { env: BARE, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  const kill = (): void => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const unregister = onExitCleanup(kill);
  const bound = setTimeout(kill, 120_000);
  try {
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const sig = proc.signalCode;
    return { code: sig ? 128 + (constants.signals[sig as keyof typeof constants.signals] ?? 0) : (proc.exitCode ?? -1), stdout, stderr };
  } finally {
    clearTimeout(bound);
    kill();
    unregister();
  }
}

function needDeb(): BuiltDeb {
  if (!deb) throw new Error("the package was not built (see beforeAll)");
  return deb;
}

function isElf(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

/** Files the package must hold: the two runtime files, the copyright, and the man page and
 *  completions when the checkout has them. */
function expectedFiles(): string[] {
  return [
    "/usr/bin/escp",
    "/usr/lib/escp/libescp.so",
    "/usr/share/bash-completion/completions/escp",
    "/usr/share/doc/escp/copyright",
    "/usr/share/man/man1/escp.1.gz",
    "/usr/share/zsh/vendor-completions/_escp",
  ].sort();
}

beforeAll(async () => {
  if (tools.length > 0) return;
  tmp = makeTmpDir("package");
  deb = await buildDeb({ out: join(tmp, "escp.deb") });
  root = join(tmp, "root");
  for (const d of ["info", "updates", "triggers"]) mkdirSync(join(root, "var", "lib", "dpkg", d), { recursive: true });
  for (const f of ["status", "available"]) writeFileSync(join(root, "var", "lib", "dpkg", f), "");
  // The empty root has none of the dependencies installed: --force-depends.
  ok(["dpkg", `--root=${root}`, "--force-depends", "-i", deb.path]);
}, T);

afterAll(async () => {
  try {
    await fx?.stop();
  } finally {
    if (tmp) removeTmpDir(tmp);
  }
});

describe("Debian package", () => {
  test("the build tools are present", () => {
    // Fails, rather than skips, on a machine without them: the package is a deliverable.
    expect(tools.length === 0 ? "" : `missing ${tools.join(", ")}: apt-get install dpkg-dev binutils`).toBe("");
  });

  test("holds exactly the runtime files; Depends is what they link, plus openssh-client", () => {
    const d = needDeb();
    const listed = ok(["dpkg", `--root=${root}`, "-L", "escp"])
      .split("\n")
      .filter((p) => p.startsWith("/"));
    const files = listed.filter((p) => statSync(join(root, p)).isFile()).sort();
    expect(files).toEqual(expectedFiles());
    expect(d.files).toEqual(expectedFiles());
    // no compiler, no bun, no node_modules: two ELF files, both ours
    expect(files.filter((p) => isElf(join(root, p)))).toEqual(["/usr/bin/escp", "/usr/lib/escp/libescp.so"]);
    expect(files.filter((p) => /node_modules|\/(bun|node|gcc|cc|clang|tcc|ld)$/.test(p))).toEqual([]);
    expect(ok(["dpkg-deb", "-f", d.path, "Package", "Version"])).toBe(`Package: escp\nVersion: ${d.version}\n`);

    const depends = ok(["dpkg-deb", "-f", d.path, "Depends"])
      .trim()
      .split(/,\s*/)
      .map((x) => x.split(" ")[0] ?? "");
    expect(depends).toContain("openssh-client");
    expect(depends).toContain("libc6");
    const needed = ok(["objdump", "-p", join(root, "usr/lib/escp/libescp.so")]);
    if (/NEEDED\s+libcrypto\.so\.3/.test(needed)) expect(depends.some((p) => /^libssl3(t64)?$/.test(p))).toBe(true);
    if (/NEEDED\s+libzstd\.so\.1/.test(needed)) expect(depends).toContain("libzstd1");
  });

  test("--version runs with an empty environment, also through a symlink", () => {
    const d = needDeb();
    const want = new RegExp(`^escp ${d.version.replace(/\./g, "\\.")} \\(protocol \\d+\\.\\d+\\)\\n$`);
    expect(ok(["env", "-i", join(root, "usr/bin/escp"), "--version"], {})).toMatch(want);
    const link = join(tmp, "elsewhere", "escp");
    mkdirSync(join(tmp, "elsewhere"));
    symlinkSync(join(root, "usr/bin/escp"), link);
    expect(ok(["env", "-i", link, "--version"], {})).toMatch(want);
  });

  test(
    "local copy and copy to stdout with the installed binary, no environment",
    async () => {
      const src = join(tmp, "local.bin");
      await writeRandomFile(src, 3 << 20, 161);
      const dst = join(tmp, "local-dst");
      mkdirSync(dst);
      const exe = join(root, "usr/bin/escp");
      // the local receiver is the binary re-running itself (--server), which loads libescp.so too
      ok(["env", "-i", exe, "-q", src, `${dst}/`], {});
      expect(await b3sum(join(dst, "local.bin"))).toBe(await b3sum(src));
      const piped = join(tmp, "piped.bin");
      ok(["sh", "-c", `env -i "$0" -q "$1" - > "$2"`, exe, src, piped], BARE);
      expect(await b3sum(piped)).toBe(await b3sum(src));
    },
    T,
  );
});

describe.skipIf(!can.ok)("Debian package over ssh (multi-host fixture)", () => {
  const flags = (f: MultiHost): string[] => ["-q", "--escp_port", "0", "--timeout", "20", "-F", f.sshConfig, "-D", join(root, "usr/bin/escp")];

  test(
    "push and pull through sshd, the installed binary at both ends",
    async () => {
      needDeb();
      fx = await startHosts({ count: 2 });
      const src = join(tmp, "push.bin");
      await writeRandomFile(src, 8 << 20, 162);
      const pushed = join(tmp, "on-h1");
      mkdirSync(pushed);
      const push = await run([...flags(fx), src, `h1:${pushed}/`]);
      if (push.code !== 0) throw new Error(`push exited ${push.code}: ${push.stderr}`);
      expect(await b3sum(join(pushed, "push.bin"))).toBe(await b3sum(src));

      const pulled = join(tmp, "pulled");
      mkdirSync(pulled);
      const pull = await run([...flags(fx), `h1:${join(pushed, "push.bin")}`, `${pulled}/`]);
      if (pull.code !== 0) throw new Error(`pull exited ${pull.code}: ${pull.stderr}`);
      expect(await b3sum(join(pulled, "push.bin"))).toBe(await b3sum(src));
    },
    T,
  );
});

describe("Debian package removal", () => {
  test("dpkg -r removes every packaged file and the private directories", () => {
    const d = needDeb();
    ok(["dpkg", `--root=${root}`, "-r", "escp"]);
    for (const f of d.files) expect(existsSync(join(root, f)) ? f : "").toBe("");
    for (const dir of ["usr/lib/escp", "usr/share/doc/escp"]) expect(existsSync(join(root, dir)) ? dir : "").toBe("");
    expect(sh(["dpkg", `--root=${root}`, "-s", "escp"]).code).not.toBe(0);
  });
});
