// Small files packed into bundles (protocol 2.6), end to end: pushed, pulled and copied locally,
// with -p, -a and -C; the copy equals the source byte for byte (and in mode and times where asked),
// the source's log says how many files travelled in bundles, a file that cannot be written fails
// alone and by name, and --bundle-max 0 sends every file on its own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, utimesSync, chmodSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { BASE, compareTrees, expectOk, runEscp, writeRandomFile } from "./e2e-helpers.ts";

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-bundles");
beforeAll(async () => {
  fx = await startSshd();
});
afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

const viaSsh = (): string[] => [...fx.sshArgs, "-D", ESCP_REMOTE_CMD];
const H = (path: string): string => `${fx.user}@${fx.host}:${path}`;
let seq = 0;
const fresh = (tag: string): string => {
  const d = join(tmp, `${tag}-${++seq}`);
  mkdirSync(d);
  return d;
};

const KiB = 1024;
/** Sizes around the default limit (64 KiB) and the edges of a record: empty, one byte, a page. */
const SIZES = [0, 1, 4 * KiB, 4 * KiB + 1, 60 * KiB, 64 * KiB, 64 * KiB + 1, 300 * KiB];

/** A tree of `per` files of every size in each of a few nested directories, plus top-level
 *  files (never bundled: they have no announced directory). Returns how many files a bundle
 *  may carry (≤ 64 KiB, inside a directory). */
async function makeTree(root: string, per = 6, seed = 3): Promise<number> {
  const dirs = ["d", "d/sub", "d/sub/deeper", "d/ünï cödé", "d/empty"];
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  let bundleable = 0;
  let n = 0;
  for (const d of dirs.slice(0, 4)) {
    for (let i = 0; i < per; i++) {
      for (const size of SIZES) {
        await writeRandomFile(join(root, d, `f${i}-${size}.dat`), size, seed + n++);
        if (size <= 64 * KiB) bundleable++;
      }
    }
  }
  writeFileSync(join(root, "top.txt"), "top level\n");
  return bundleable;
}

function logLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The source's "bundles" log record (files and bundles sent that way), or undefined. */
function bundlesLogged(path: string): { files: number; bundles: number } | undefined {
  const line = logLines(path).find((l) => l.msg === "bundles");
  return line?.fields as { files: number; bundles: number } | undefined;
}

describe("bundles: small files travel many to a frame", () => {
  test("push over sshd: the copy is the source; the small files went in bundles", async () => {
    const src = fresh("src");
    const want = await makeTree(src);
    const dst = fresh("dst");
    const log = join(tmp, `push-log-${seq}`);
    await expectOk([...BASE, ...viaSsh(), "-r", "--logfile", log, join(src, "d"), join(src, "top.txt"), H(dst)]);
    expect(await compareTrees(join(src, "d"), join(dst, "d"))).toEqual([]);
    expect(readFileSync(join(dst, "top.txt"), "utf8")).toBe("top level\n");
    const b = bundlesLogged(`${log}.client`);
    expect(b?.files).toBe(want);
    expect(b?.bundles).toBeGreaterThan(0);
    expect(b?.bundles).toBeLessThan(want / 4); // many files to a frame, not one each
  });

  test("pull over sshd: the sink names every file; the server's source bundled them", async () => {
    const src = fresh("src");
    const want = await makeTree(src, 4, 11);
    const dst = fresh("dst");
    const log = join(tmp, `pull-log-${seq}`);
    await expectOk([...BASE, ...viaSsh(), "-r", "--logfile", log, H(join(src, "d")), dst]);
    expect(await compareTrees(join(src, "d"), join(dst, "d"))).toEqual([]);
    expect(bundlesLogged(`${log}.server`)?.files).toBe(want);
  });

  test("pull with --manifest: every bundled file has its b3sum line", async () => {
    const src = fresh("src");
    const want = await makeTree(src, 2, 17);
    const dst = fresh("dst");
    const manifest = join(tmp, `manifest-${seq}.b3`);
    await expectOk([...BASE, ...viaSsh(), "-r", "--manifest", manifest, H(join(src, "d")), dst]);
    const lines = readFileSync(manifest, "utf8").trimEnd().split("\n");
    expect(lines.length).toBe(want + 2 * 4 * 2); // the bundled files and the two larger sizes
    const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: dst, stdout: "pipe", stderr: "pipe" });
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
  });

  test("local copy with -p: modes and times of bundled files are kept", async () => {
    const src = fresh("src");
    await makeTree(src, 2, 23);
    let i = 0;
    for (const name of readdirSync(join(src, "d/sub"))) {
      const p = join(src, "d/sub", name);
      chmodSync(p, [0o600, 0o640, 0o755, 0o444][i % 4]!);
      utimesSync(p, 1_000_000_000 + i * 1000, 1_100_000_000 + i * 7777);
      i++;
    }
    const dst = fresh("dst");
    const log = join(tmp, `local-log-${seq}`);
    await expectOk([...BASE, "-r", "-p", "--logfile", log, join(src, "d"), dst]);
    expect(await compareTrees(join(src, "d"), join(dst, "d"), { modes: true, mtimes: true })).toEqual([]);
    expect(bundlesLogged(`${log}.client`)?.files).toBeGreaterThan(0);
  });

  test("-C: compressed bundles arrive whole", async () => {
    const src = fresh("src");
    mkdirSync(join(src, "t"));
    for (let i = 0; i < 300; i++) writeFileSync(join(src, "t", `log${i}.txt`), `line ${i} of a very compressible file\n`.repeat(50 + i));
    const dst = fresh("dst");
    const log = join(tmp, `zstd-log-${seq}`);
    await expectOk([...BASE, ...viaSsh(), "-r", "-C", "--logfile", log, join(src, "t"), H(dst)]);
    expect(await compareTrees(join(src, "t"), join(dst, "t"))).toEqual([]);
    expect(bundlesLogged(`${log}.client`)?.files).toBe(300);
  });

  test("--bundle-max 0: every file travels on its own, the copy is the same", async () => {
    const src = fresh("src");
    await makeTree(src, 1, 29);
    const dst = fresh("dst");
    const log = join(tmp, `off-log-${seq}`);
    await expectOk([...BASE, ...viaSsh(), "-r", "--bundle-max", "0", "--logfile", log, join(src, "d"), H(dst)]);
    expect(await compareTrees(join(src, "d"), join(dst, "d"))).toEqual([]);
    expect(bundlesLogged(`${log}.client`)).toBeUndefined();
  });

  // A hostile receiver's bundle reports (ESCP_FAULT_BUNDLE_RESULT in the local receiver):
  // the sender ends the session as a protocol error (exit 7) that names the bundle.
  const lies: [string, RegExp][] = [
    ["stray", /result for bundle #1000000007, which awaits none \(never sent, or answered before\)/],
    ["twice", /result for bundle #\d+, which awaits none/],
    ["count", /result for bundle #\d+ names (\d+) files, not its \d+/],
  ];
  for (const [lie, says] of lies) {
    test(`a receiver whose bundle reports lie (${lie}): E_PROTOCOL, naming the bundle`, async () => {
      const src = fresh("src");
      mkdirSync(join(src, "d"));
      for (let i = 0; i < 20; i++) writeFileSync(join(src, "d", `f${i}`), `file ${i}\n`);
      const r = await runEscp([...BASE, "-r", join(src, "d"), fresh("dst")], { env: { ESCP_FAULT_BUNDLE_RESULT: lie } });
      expect(r.code).toBe(7);
      expect(r.stderr).toMatch(says);
    });
  }

  test("a bundled file that cannot be written fails alone, by name; the rest of its bundle lands", async () => {
    const src = fresh("src");
    mkdirSync(join(src, "d"));
    for (let i = 0; i < 50; i++) writeFileSync(join(src, "d", `f${i}`), `file ${i}\n`);
    const dst = fresh("dst");
    mkdirSync(join(dst, "d", "f7", "in the way"), { recursive: true }); // a directory where f7 would land
    const r = await runEscp([...BASE, ...viaSsh(), "-r", join(src, "d"), H(dst)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/d\/f7: .*(directory|Is a directory)/i);
    for (let i = 0; i < 50; i++) {
      if (i === 7) continue;
      expect(readFileSync(join(dst, "d", `f${i}`), "utf8")).toBe(`file ${i}\n`);
    }
    expect(existsSync(join(dst, "d", "f7", "in the way"))).toBe(true); // the directory was not replaced
    expect(readdirSync(join(dst, "d")).filter((n) => n.startsWith(".escp"))).toEqual([]); // no temporary left
  });
});
