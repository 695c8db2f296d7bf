// -a (archive) and --xattrs end to end: generated trees with every kind of symbolic link, hard
// links, FIFOs, odd modes, owners and nanosecond times, copied locally, pushed and pulled through
// the loopback sshd; afterwards the copy equals the source in lstat's view (modes, owner,
// group, atime and mtime to the nanosecond, link targets, hard-link groups, xattrs) and
// `rsync -a -H -X --dry-run --itemize-changes` finds nothing to do. Plain -r on the same kind of
// tree keeps scp's behaviour (links followed) with notices for dangling links and loops.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import fc from "fast-check";
import { archiveTree, materializeArchiveTree, type ArchiveTree } from "../arb/archive-tree.ts";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { BASE, compareTrees, expectOk, runEscp } from "./e2e-helpers.ts";
import { xattrsRead } from "../../src/native/session.ts";

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-archive");
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

/** name → value of a path's extended attributes, from the packed form libescp reads. */
function xattrsOf(path: string): Record<string, string> {
  const packed = xattrsRead(path, true);
  if (!(packed instanceof Uint8Array)) throw new Error(`${path}: ${packed.why}`);
  const out: Record<string, string> = {};
  const dv = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  for (let i = 0; i < packed.length; ) {
    const n = packed[i] as number;
    const name = new TextDecoder().decode(packed.subarray(i + 1, i + 1 + n));
    const len = dv.getUint32(i + 1 + n, true);
    out[name] = new TextDecoder().decode(packed.subarray(i + 5 + n, i + 5 + n + len));
    i += 5 + n + len;
  }
  return Object.fromEntries(
    Object.entries(out)
      .filter(([k]) => k.startsWith("user."))
      .sort(),
  );
}

/** What rsync -a -H -X would still change in dst to make it src (nothing, when escp kept it all). */
async function rsyncWouldChange(src: string, dst: string): Promise<string[]> {
  const p = Bun.spawn(["rsync", "-a", "-H", "-X", "--numeric-ids", "--no-devices", "--no-specials", "--dry-run", "--itemize-changes", `${src}/`, `${dst}/`], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`rsync exited ${code}: ${err}`);
  // ".d..t...... ./" is the root directory itself (escp names its copy, rsync compares into it)
  return out.split("\n").filter((l) => l !== "" && !/^\.d\S* \.\/$/.test(l) && !l.startsWith("skipping non-regular file"));
}

const fifosOf = (tree: ArchiveTree): string[] => tree.nodes.filter((n) => n.kind === "fifo").map((n) => n.path);

/** A copy made with -a must differ from its source only by the FIFOs it skipped (a leftover
 * temporary would be an "extra in" line). */
async function expectArchived(src: string, dst: string, tree: ArchiveTree, stderr: string): Promise<void> {
  const diffs = await compareTrees(src, dst, { archive: true, atimes: true, xattrs: xattrsOf });
  expect(diffs).toEqual(
    fifosOf(tree)
      .sort()
      .map((p) => `missing in ${dst}: ${p} (other)`),
  );
  expect(await rsyncWouldChange(src, dst)).toEqual([]);
  for (const f of fifosOf(tree)) expect(stderr).toContain(`${f}: a FIFO, skipped`);
}

describe("-a: the copy is the source, as rsync -a -H -X sees it", () => {
  // ESCP_SEED replays a run, ESCP_ARCHIVE_TREES sets the count (`bun run regress --full`: 60).
  const SEED = Number(process.env.ESCP_SEED ?? 13);
  const TREES = Number(process.env.ESCP_ARCHIVE_TREES ?? 6);
  test(
    `generated trees, local copy (property, ${TREES} trees, seed ${SEED})`,
    async () => {
      await fc.assert(
        fc.asyncProperty(archiveTree, async (tree) => {
          const src = fresh("src");
          await materializeArchiveTree(src, tree);
          const dst = join(fresh("dst"), "copy");
          const r = await runEscp([...BASE, "-a", "--xattrs", src, dst]);
          if (r.code !== 0) throw new Error(`escp -a exited ${r.code}: ${r.stderr}`);
          await expectArchived(src, dst, tree, r.stderr);
        }),
        { seed: SEED, numRuns: TREES },
      );
    },
    40_000 * TREES,
  );

  test("push and pull through sshd, one generated tree each", async () => {
    // seeds picked for trees with every kind: ≥ 3 dirs, ≥ 3 symlinks, ≥ 2 hard links, a FIFO, xattrs
    const trees = [11, 92].map((seed) => fc.sample(archiveTree, { seed, numRuns: 1 })[0]);
    for (const [i, tree] of trees.entries()) {
      const src = fresh("ssh-src");
      await materializeArchiveTree(src, tree as ArchiveTree);
      const dst = join(fresh("ssh-dst"), "copy");
      const args = i === 0 ? [src, H(dst)] : [H(src), dst];
      const r = await runEscp([...BASE, ...viaSsh(), "-a", "--xattrs", ...args]);
      if (r.code !== 0) throw new Error(`escp -a ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      await expectArchived(src, dst, tree as ArchiveTree, r.stderr);
    }
  }, 120_000);

  test("a named symbolic link is copied as a link; with a trailing slash, what it names", async () => {
    const src = fresh("named");
    mkdirSync(join(src, "real"));
    writeFileSync(join(src, "real", "f"), "data\n");
    symlinkSync("real", join(src, "ln"));
    symlinkSync("nowhere", join(src, "dangling"));
    const dst = fresh("named-dst");
    await expectOk([...BASE, "-a", join(src, "ln"), join(src, "dangling"), dst]);
    expect(readlinkSync(join(dst, "ln"))).toBe("real");
    expect(readlinkSync(join(dst, "dangling"))).toBe("nowhere");
    const dst2 = fresh("named-dst2");
    await expectOk([...BASE, "-a", `${join(src, "ln")}/`, dst2]);
    expect(lstatSync(join(dst2, "ln")).isDirectory()).toBe(true);
  });

  test("an existing file, symlink or hard link at a link's name is replaced; a directory there fails that entry only", async () => {
    const src = fresh("replace");
    writeFileSync(join(src, "data"), "new\n");
    symlinkSync("data", join(src, "was-file"));
    symlinkSync("data", join(src, "was-dir"));
    const dst = fresh("replace-dst");
    const root = join(dst, basename(src)); // escp -a src dst/ puts it in dst/<basename>
    mkdirSync(root);
    writeFileSync(join(root, "was-file"), "old\n");
    mkdirSync(join(root, "was-dir"));
    writeFileSync(join(root, "was-dir", "keep"), "x");
    const r = await runEscp([...BASE, "-a", src, dst]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("was-dir");
    expect(readlinkSync(join(root, "was-file"))).toBe("data");
    expect(existsSync(join(root, "was-dir", "keep"))).toBe(true);
  });
});

describe("-r without -a keeps scp's behaviour", () => {
  test("links are followed; a dangling link and a loop are notices, not failures", async () => {
    const src = fresh("follow");
    mkdirSync(join(src, "d"));
    writeFileSync(join(src, "d", "f"), "file\n");
    symlinkSync("d/f", join(src, "to-file"));
    symlinkSync("d", join(src, "to-dir"));
    symlinkSync("missing", join(src, "dangling"));
    symlinkSync("..", join(src, "d", "loop"));
    const dst = join(fresh("follow-dst"), "copy");
    const r = await runEscp([...BASE.filter((a) => a !== "-q"), "-r", src, dst]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("dangling: dangling symbolic link, skipped");
    expect(r.stderr).toContain("loop: symbolic link loop, skipped");
    expect(lstatSync(join(dst, "to-file")).isFile()).toBe(true);
    expect(lstatSync(join(dst, "to-dir", "f")).isFile()).toBe(true);
    expect(existsSync(join(dst, "dangling"))).toBe(false);
  });
});
