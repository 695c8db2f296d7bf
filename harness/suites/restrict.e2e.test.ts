// Server --restrict DIR end to end: a real OpenSSH sshd whose authorized_keys line forces
// `escp --server --restrict DIR` (what an administrator gives a transfer-only key). Every
// destination resolves beneath DIR without following symlinks (`host:/x` is DIR/x, `host:`
// is DIR), `..` is refused, a symlink inside DIR is never followed, a client --logfile is
// refused, and the client's own -D command cannot replace the forced one. Each case runs
// through ssh; further variants of the same server-side rules run through a receiver
// started by hand with `--server --restrict DIR --mgmt SOCK` (no ssh login: cheaper).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { forcedCommand, startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD, type RunEscpResult } from "../escp-run.ts";
import { compareTrees } from "../compare-trees.ts";
import { BASE, expectSameTree, makeAwkwardTree, runEscp } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-restrict");
const jail = join(tmp, "jail"); // DIR
const outside = join(tmp, "outside"); // what the symlinks in DIR point at
const src = join(tmp, "src");
const client = join(tmp, "client"); // the client's own files: its --logfile, the mgmt socket
const TOP = ["client", "jail", "outside", "src"];
const T = 120_000; // per test: several transfers, each an ssh login
const f = join(src, "f.txt");
const tree = join(src, "tree");

let fx: SshdFixture;
beforeAll(async () => {
  for (const d of [jail, outside, src, client]) mkdirSync(d);
  writeFileSync(join(outside, "marker"), "outside\n");
  writeFileSync(f, "hello\n");
  writeFileSync(join(src, "g.txt"), "gee\n");
  mkdirSync(tree);
  await makeAwkwardTree(tree, 30, 21);
  fx = await startSshd({ keyOptions: forcedCommand(`${ESCP_REMOTE_CMD} --server --restrict ${jail}`) });
}, 60_000);
afterAll(async () => {
  await fx?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Through sshd, without -D: the key's forced command decides what runs there. */
function viaSsh(args: string[], dst: string): Promise<RunEscpResult> {
  return runEscp([...BASE, ...fx.sshArgs, ...args, `${fx.host}:${dst}`]);
}
const SSH = (): string => `escp: ${fx.host}: `; // how the client names a session failure

/** Through a hand-started `--server --restrict DIR --mgmt SOCK` (one session, then it exits). */
async function viaMgmt(args: string[], dst: string): Promise<RunEscpResult & { rxCode: number }> {
  const sock = join(client, "rx.sock");
  rmSync(sock, { force: true });
  const rx = Bun.spawn([...ESCP_REMOTE_CMD.split(" "), "--server", "--restrict", jail, "--mgmt", sock], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  try {
    const deadline = Date.now() + 20_000;
    while (!existsSync(sock)) {
      // the receiver listens once its socket exists
      if (rx.exitCode !== null || Date.now() > deadline) {
        throw new Error(`--mgmt receiver made no socket (exit ${rx.exitCode}): ${await new Response(rx.stderr).text()}`);
      }
      await Bun.sleep(10);
    }
    const r = await runEscp([...BASE, "--mgmt", sock, ...args, `localhost:${dst}`]);
    return { ...r, rxCode: await rx.exited };
  } finally {
    rx.kill();
    rmSync(sock, { force: true });
  }
}
const MGMT = (): string => `escp: mgmt socket ${join(client, "rx.sock")}: `;

/** Nothing was written outside DIR: the temp dir and the symlinks' target are as made. */
function expectNothingOutside(): void {
  expect(readdirSync(tmp).sort()).toEqual(TOP);
  expect(readdirSync(outside)).toEqual(["marker"]);
  expect(readdirSync(client).filter((n) => n !== "log.client")).toEqual([]); // the client's own log only
}

async function expectOk(r: Promise<RunEscpResult>): Promise<void> {
  const { code, stderr } = await r;
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
}

const DOTDOT = `".." is not allowed by this server: it keeps every path beneath its --restrict directory`;
const THROUGH = "it leads through a symlink or a non-directory";

describe("--restrict DIR (forced command; --mgmt for more variants)", () => {
  test(
    "a file lands beneath DIR: host:sub/, host:/abs, host: and host:/",
    async () => {
      mkdirSync(join(jail, "sub"));
      await expectOk(viaSsh([f], "sub/"));
      expect(readFileSync(join(jail, "sub", "f.txt"), "utf8")).toBe("hello\n");
      await expectOk(viaSsh([f], "/abs"));
      expect(readFileSync(join(jail, "abs"), "utf8")).toBe("hello\n");
      await expectOk(viaSsh([f], ""));
      expect(readFileSync(join(jail, "f.txt"), "utf8")).toBe("hello\n");
      await expectOk(viaMgmt([join(src, "g.txt")], "/"));
      expect(readFileSync(join(jail, "g.txt"), "utf8")).toBe("gee\n");
      expectNothingOutside();
    },
    T,
  );

  test(
    "an absolute path is DIR/<path>, never the host's own",
    async () => {
      const r = await viaSsh([f], join(outside, "f.txt"));
      expect(r.code).toBe(8); // the host has that directory, DIR does not
      expect(r.stderr.trim()).toBe(`${SSH()}destination ${join(outside, "f.txt")}: directory ${outside} does not exist`);
      mkdirSync(join(jail, outside), { recursive: true });
      await expectOk(viaSsh([f], join(outside, "f.txt")));
      expect(readFileSync(join(jail, outside, "f.txt"), "utf8")).toBe("hello\n");
      expectNothingOutside();
    },
    T,
  );

  test(
    "-r trees land beneath DIR: host:rsub/, host: (-p), and /mgmt-tree (-p, new)",
    async () => {
      mkdirSync(join(jail, "rsub"));
      await expectOk(viaSsh(["-r", tree], "rsub/"));
      await expectSameTree(tree, join(jail, "rsub", "tree"));
      await expectOk(viaSsh(["-r", "-p", tree], ""));
      expect(await compareTrees(tree, join(jail, "tree"), { modes: true, mtimes: true })).toEqual([]);
      const m = await viaMgmt(["-r", "-p", tree], "/mgmt-tree");
      expect({ code: m.code, stderr: m.stderr, rx: m.rxCode }).toEqual({ code: 0, stderr: "", rx: 0 });
      expect(await compareTrees(tree, join(jail, "mgmt-tree"), { modes: true, mtimes: true })).toEqual([]);
      expectNothingOutside();
    },
    T,
  );

  test(
    "`..` is refused (exit 8, saying why) and nothing is written",
    async () => {
      const before = readdirSync(jail).sort();
      const r = await viaSsh([f], "../escape");
      expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 8, stderr: `${SSH()}destination ../escape: ${DOTDOT}` });
      for (const [args, dst] of [
        [[f], "/.."],
        [[f], "sub/../../escape"],
        [[f], ".."],
        [["-r", tree], ".."],
        [["-r", tree], "../escape"],
      ] as const) {
        const m = await viaMgmt([...args], dst);
        expect({ dst, code: m.code, rx: m.rxCode, stderr: m.stderr.trim() }).toEqual({ dst, code: 8, rx: 8, stderr: `${MGMT()}destination ${dst}: ${DOTDOT}` });
      }
      expect(readdirSync(jail).sort()).toEqual(before);
      expectNothingOutside();
    },
    T,
  );

  test(
    "a symlink inside DIR that points outside is never followed",
    async () => {
      symlinkSync(outside, join(jail, "link"));
      const r = await viaSsh([f], "link/x");
      expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 8, stderr: `${SSH()}destination link/x: ${THROUGH}` });
      const cases: [string[], string, string][] = [
        [[f], "link/", "destination link/ is not a directory"],
        [[f], "link/deeper/x", `destination link/deeper/x: ${THROUGH}`],
        [["-r", tree], "link", "destination link is not a directory"],
        [["-r", tree], "link/new", `destination link/new: ${THROUGH}`],
      ];
      for (const [args, dst, why] of cases) {
        const m = await viaMgmt(args, dst);
        expect({ dst, code: m.code, rx: m.rxCode, stderr: m.stderr.trim() }).toEqual({ dst, code: 8, rx: 8, stderr: `${MGMT()}${why}` });
      }
      expect(lstatSync(join(jail, "link")).isSymbolicLink()).toBe(true);
      // below the destination: a planted link fails the entries under it, the rest lands
      mkdirSync(join(jail, "planted", "tree"), { recursive: true });
      symlinkSync(outside, join(jail, "planted", "tree", "sub"));
      const p = await viaSsh(["-r", tree], "planted");
      expect(p.code).toBe(1);
      const lines = p.stderr.trim().split("\n");
      expect(lines.length).toBeGreaterThan(1); // tree/sub and each entry below it, each named
      for (const l of lines) {
        expect(l).toMatch(
          /^escp: 127\.0\.0\.1:tree\/sub(\/\S+)*: refusing unsafe name "tree\/sub(\/\S+)*": a component below the destination is a symlink or not a directory$/,
        );
      }
      expect(readFileSync(join(jail, "planted", "tree", "with space.txt"), "utf8")).toBe("hello world\n");
      // a single file onto a link replaces the link itself (scp: an existing non-directory
      // target is replaced); the directory it pointed to is untouched
      symlinkSync(outside, join(jail, "link2"));
      await expectOk(viaMgmt([f], "link2"));
      expect(lstatSync(join(jail, "link2")).isFile()).toBe(true);
      expect(readFileSync(join(jail, "link2"), "utf8")).toBe("hello\n");
      expectNothingOutside();
    },
    T,
  );

  test(
    "a client --logfile is refused (exit 2) and no server log is written",
    async () => {
      const log = join(client, "log");
      const r = await viaSsh(["--logfile", log, f], "logged.txt");
      expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({
        code: 2,
        stderr: `${SSH()}--logfile is not allowed by this server: it restricts where the session may write (--restrict)`,
      });
      expect(readdirSync(client)).toEqual(["log.client"]); // the client's own side only
      expect(existsSync(join(jail, "logged.txt"))).toBe(false);
      expectNothingOutside();
    },
    T,
  );

  test(
    "the client's -D cannot replace the forced command",
    async () => {
      const pwned = join(outside, "pwned");
      const dst = join(outside, "via-d.txt");
      mkdirSync(join(jail, outside), { recursive: true });
      // without the forced command this would create `pwned` and write to the host's own path
      await expectOk(viaSsh(["-D", `touch ${pwned}; ${ESCP_REMOTE_CMD} --server`, f], dst));
      expect(readFileSync(join(jail, dst), "utf8")).toBe("hello\n");
      expect(existsSync(pwned)).toBe(false);
      expect(existsSync(dst)).toBe(false);
      expectNothingOutside();
    },
    T,
  );
});
