// Third-party copies (`escp -3 h1:src h2:dst`, issue #11) between real hosts: the multi-host
// fixture's network namespaces, each with its own sshd, the local escp in the root namespace.
// Relayed (the default: both servers listen, this host splices their streams) and --direct
// (h1 connects to h2; the relay when it cannot). Every copy is checked byte for byte (b3sum /
// compareTrees), every destination for leftover temporaries. That the relay only ever sees
// ciphertext is proven in C (native/test/test_three.c, its tap), not here.
// The hosts share this machine's file system: every case has its own source and destination.
// Independent runs go side by side (Promise.all) to keep the file's wall time down.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_REMOTE_CMD } from "../escp-run.ts";
import { canMultiHost, type MultiHost, startHosts } from "../multihost.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import fc from "fast-check";
import { archiveTree, materializeArchiveTree, type ArchiveTree } from "../arb/archive-tree.ts";
import { compareTrees, expectSameFile, expectSameTree, makeAwkwardTree, writeRandomFile } from "./e2e-helpers.ts";
import { errLines, expectExit, expectServersGone, expectSummary, freshDir, listing, remoteWith, temporariesUnder, x3 } from "./third-party-helpers.ts";
import type { RunEscpResult } from "../escp-run.ts";

const can = canMultiHost();
if (!can.ok) console.warn(`[third-party] skipping the third-party copy suite: ${can.why}`);

const T = 120_000;
let fx: MultiHost | undefined;
let tmp = "";
let src = ""; // the sources, read by h1 (or h3)
let out = ""; // destinations, written by h2 (or h1/h3), one fresh directory per case

function need(): MultiHost {
  if (!fx) throw new Error("fixture not started");
  return fx;
}

const FILE = 3 * 1024 * 1024 + 4097; // a few blocks and an odd tail
const FALLBACK = /^escp: warning: (h\d) cannot connect to (h\d) directly \((.+)\); relaying through this host$/;

/** Sum of the sizes of the regular files under dir. */
function treeBytes(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(join(dir, rel));
    if (st.isFile()) {
      bytes += st.size;
      files++;
    }
  }
  return { bytes, files };
}

describe.skipIf(!can.ok)(can.ok ? "third-party copies (-3) across namespaced hosts" : `third-party copies (skipped: ${can.why})`, () => {
  beforeAll(async () => {
    tmp = makeTmpDir("third-party");
    src = join(tmp, "src");
    out = join(tmp, "out");
    mkdirSync(out);
    mkdirSync(join(src, "glob"), { recursive: true });
    await writeRandomFile(join(src, "one.bin"), FILE, 1);
    await writeRandomFile(join(src, "two.bin"), 70_000, 2);
    writeFileSync(join(src, "three.txt"), "three\n");
    for (const [i, size] of [0, 1, 65_536, 200_000].entries()) await writeRandomFile(join(src, "glob", `g${i}.dat`), size, 10 + i);
    writeFileSync(join(src, "glob", "not-matched.txt"), "no\n");
    await makeAwkwardTree(join(src, "tree"), 24, 31);
    fx = await startHosts({ count: 3 });
    console.log(`[third-party] hosts ${fx.hosts.map((h) => `${h.id}=${h.addr}`).join(", ")}; local ${fx.localAddr}`);
  }, 60_000);

  afterAll(async () => {
    try {
      await fx?.stop();
    } finally {
      fx = undefined;
      if (tmp) removeTmpDir(tmp);
    }
  }, 60_000);

  test(
    "one file: relayed (with and without -3) and --direct, byte-identical, summary line, no warning",
    async () => {
      const f = need();
      const d = freshDir(out, "single");
      const one = join(src, "one.bin");
      const [plain, relay, direct] = await Promise.all([
        x3(f, [`h1:${one}`, `h2:${d}/plain.bin`]),
        x3(f, ["-3", `h1:${one}`, `h2:${d}/relay.bin`]),
        x3(f, ["-3", "--direct", `h1:${one}`, `h2:${d}/direct.bin`]),
      ]);
      for (const r of [plain, relay, direct]) {
        expectExit(r, 0);
        expect(errLines(r)).toEqual([]);
        expectSummary(r, { bytes: FILE, files: 1 });
      }
      for (const n of ["plain.bin", "relay.bin", "direct.bin"]) await expectSameFile(one, join(d, n));
      expect(listing(d)).toEqual(["direct.bin", "plain.bin", "relay.bin"]);
    },
    T,
  );

  test(
    "-r tree (nesting, empty file and directory, unicode): new destination vs existing directory, relayed and --direct",
    async () => {
      const f = need();
      const tree = join(src, "tree");
      const d = freshDir(out, "trees");
      mkdirSync(join(d, "exist-relay"));
      mkdirSync(join(d, "exist-direct"));
      const runs = await Promise.all([
        x3(f, ["-r", `h1:${tree}`, `h2:${d}/new-relay`]),
        x3(f, ["-3", "--direct", "-r", `h1:${tree}`, `h2:${d}/new-direct`]),
        x3(f, ["-r", `h1:${tree}`, `h2:${d}/exist-relay`]),
        x3(f, ["-3", "--direct", "-r", `h1:${tree}`, `h2:${d}/exist-direct/`]),
      ]);
      const sum = treeBytes(tree);
      for (const r of runs) {
        expectExit(r, 0);
        expect(errLines(r)).toEqual([]);
        expectSummary(r, sum);
      }
      // scp: -r dir to a new path makes that path the copy; into an existing directory, dir/ inside it.
      await expectSameTree(tree, join(d, "new-relay"));
      await expectSameTree(tree, join(d, "new-direct"));
      await expectSameTree(tree, join(d, "exist-relay", "tree"));
      await expectSameTree(tree, join(d, "exist-direct", "tree"));
      expect(readdirSync(join(d, "exist-relay"))).toEqual(["tree"]);
      expect(readdirSync(join(d, "exist-direct"))).toEqual(["tree"]);
      expect(existsSync(join(d, "new-relay", "empty dir"))).toBe(true);
      expect(existsSync(join(d, "new-direct", "ünïcödé ✓", "日本語.bin"))).toBe(true);
      expect(temporariesUnder(d)).toEqual([]);
    },
    T,
  );

  test(
    "several sources and a glob (expanded by h1, without a shell) into an existing directory",
    async () => {
      const f = need();
      const d = freshDir(out, "many");
      const multi = freshDir(d, "multi");
      const globbed = freshDir(d, "glob");
      const [m, g] = await Promise.all([
        x3(f, [`h1:${src}/one.bin`, `h1:${src}/two.bin`, `h1:${src}/three.txt`, `h2:${multi}/`]),
        x3(f, ["-3", "--direct", `h1:${src}/glob/g*.dat`, `h2:${globbed}`]),
      ]);
      expectExit(m, 0);
      expectExit(g, 0);
      expectSummary(m, { bytes: FILE + 70_000 + 6, files: 3 });
      expectSummary(g, { bytes: 0 + 1 + 65_536 + 200_000, files: 4 });
      expect(listing(multi)).toEqual(["one.bin", "three.txt", "two.bin"]);
      expect(listing(globbed)).toEqual(["g0.dat", "g1.dat", "g2.dat", "g3.dat"]);
      for (const n of ["one.bin", "two.bin", "three.txt"]) await expectSameFile(join(src, n), join(multi, n));
      for (const n of listing(globbed)) await expectSameFile(join(src, "glob", n), join(globbed, n));
    },
    T,
  );

  test(
    "destination naming as scp: h2:dir/, h2:dir, h2:newname, over an existing file; a missing dir/ and many-to-a-file are exit 8",
    async () => {
      const f = need();
      const d = freshDir(out, "naming");
      const dir = freshDir(d, "dir");
      writeFileSync(join(d, "existing.bin"), "old contents\n");
      const two = join(src, "two.bin");
      const [slash, bare, named, over, missing, many] = await Promise.all([
        x3(f, [`h1:${two}`, `h2:${dir}/`]),
        x3(f, ["-3", "--direct", `h1:${src}/three.txt`, `h2:${dir}`]),
        x3(f, [`h1:${two}`, `h2:${d}/newname`]),
        x3(f, ["-3", "--direct", `h1:${two}`, `h2:${d}/existing.bin`]),
        x3(f, [`h1:${two}`, `h2:${d}/missing/`]),
        x3(f, [`h1:${two}`, `h1:${src}/three.txt`, `h2:${d}/not-a-dir`]),
      ]);
      for (const r of [slash, bare, named, over]) expectExit(r, 0);
      expect(listing(dir)).toEqual(["three.txt", "two.bin"]);
      await expectSameFile(two, join(dir, "two.bin"));
      await expectSameFile(two, join(d, "newname"));
      await expectSameFile(two, join(d, "existing.bin"));
      expectExit(missing, 8);
      expect(errLines(missing)).toEqual([`escp: h2: destination ${d}/missing/ is not a directory`]);
      expectExit(many, 8);
      expect(errLines(many)).toEqual([`escp: h2: destination ${d}/not-a-dir is not a directory`]);
      expect(listing(d)).toEqual(["dir", "dir/three.txt", "dir/two.bin", "existing.bin", "newname"]);
    },
    T,
  );

  test(
    "--direct falls back to the relay, with one warning, when h1 cannot reach h2 (rejected, then silently dropped)",
    async () => {
      const f = need();
      const d = freshDir(out, "fallback");
      const one = join(src, "one.bin");
      await f.block("h1", "h2");
      try {
        const [direct, relay] = await Promise.all([
          x3(f, ["-3", "--direct", `h1:${one}`, `h2:${d}/rejected.bin`], { timeout: 5 }),
          x3(f, ["-3", `h1:${one}`, `h2:${d}/relay.bin`]), // the relay never needs h1→h2
        ]);
        expectExit(direct, 0);
        const lines = errLines(direct);
        expect(lines).toHaveLength(1);
        const m = FALLBACK.exec(lines[0] ?? "");
        expect(m?.slice(1, 3)).toEqual(["h1", "h2"]);
        expect(m?.[3]).toContain("No route to host");
        expectSummary(direct, { bytes: FILE, files: 1 });
        expectExit(relay, 0);
        expect(errLines(relay)).toEqual([]);
      } finally {
        await f.unblock("h1", "h2");
      }
      // Dropped packets: h1's connect gets no answer at all; it gives up after --timeout.
      await f.block("h1", "h2", "drop");
      try {
        const dropped = await x3(f, ["-3", "--direct", `h1:${one}`, `h2:${d}/dropped.bin`], { timeout: 3 });
        expectExit(dropped, 0);
        const lines = errLines(dropped);
        expect(lines).toHaveLength(1);
        expect(FALLBACK.exec(lines[0] ?? "")?.[3]).toMatch(/0 of \d+ streams up after 3000 ms/);
      } finally {
        await f.unblock("h1", "h2");
      }
      for (const n of ["rejected.bin", "relay.bin", "dropped.bin"]) await expectSameFile(one, join(d, n));
      expect(listing(d)).toEqual(["dropped.bin", "rejected.bin", "relay.bin"]);
    },
    T,
  );

  test(
    "a missing source on h1 beside good ones: exit 1, named h1:…, the others copied",
    async () => {
      const f = need();
      const d = freshDir(out, "missing-src");
      const r = await x3(f, [`h1:${src}/two.bin`, `h1:${src}/no-such-file`, `h1:${src}/three.txt`, `h2:${d}/`]);
      expectExit(r, 1);
      expect(errLines(r)).toEqual([`escp: h1:${src}/no-such-file: No such file or directory`]);
      expectSummary(r, { bytes: 70_000 + 6, files: 2, failed: 1 });
      expect(listing(d)).toEqual(["three.txt", "two.bin"]);
      await expectSameFile(join(src, "two.bin"), join(d, "two.bin"));
    },
    T,
  );

  test(
    "a destination h2 cannot write: exit 8, named h2:…, nothing written",
    async () => {
      const f = need();
      const d = freshDir(out, "unwritable");
      const ro = freshDir(d, "read-only");
      chmodSync(ro, 0o555);
      // Both servers without CAP_DAC_OVERRIDE (root would write anyway); sources stay readable.
      const noDac = `setpriv --bounding-set=-dac_override,-dac_read_search -- ${ESCP_REMOTE_CMD}`;
      const [file, tree, direct] = await Promise.all([
        x3(f, [`h1:${src}/two.bin`, `h2:${ro}/`], { remote: noDac }),
        x3(f, ["-r", `h1:${src}/tree`, `h2:${ro}/tree`], { remote: noDac }),
        x3(f, ["-3", "--direct", `h1:${src}/two.bin`, `h2:${ro}/x.bin`], { remote: noDac }),
      ]);
      expectExit(file, 8);
      expect(errLines(file)).toEqual([`escp: h2: destination ${ro} is not writable: Permission denied`]);
      expectExit(tree, 8);
      expect(errLines(tree)).toEqual([`escp: h2: destination ${ro}/tree is not writable: Permission denied`]);
      expectExit(direct, 8);
      expect(errLines(direct)).toEqual([`escp: h2: destination ${ro} is not writable: Permission denied`]);
      for (const r of [file, tree, direct]) expect(r.stdout).toBe("");
      expect(readdirSync(ro)).toEqual([]);
    },
    T,
  );

  test(
    "a symlink planted in h2's destination: every name through it refused (h1 reports them), nothing written through it",
    async () => {
      const f = need();
      const d = freshDir(out, "unsafe");
      const victim = freshDir(d, "victim");
      // The whole copy would go through the link: every entry refused.
      const whole = freshDir(d, "whole");
      symlinkSync(victim, join(whole, "tree"));
      // Only one subdirectory is a link: its entries refused, the rest lands.
      const part = freshDir(d, "part");
      mkdirSync(join(part, "tree"));
      symlinkSync(victim, join(part, "tree", "sub"));
      const tree = join(src, "tree");
      const [w, p] = await Promise.all([x3(f, ["-r", `h1:${tree}`, `h2:${whole}/`]), x3(f, ["-3", "--direct", "-r", `h1:${tree}`, `h2:${part}`])]);
      const all = treeBytes(tree);
      expectExit(w, 1);
      const wl = errLines(w);
      expect(wl.length).toBeGreaterThan(all.files);
      for (const l of wl)
        expect(l).toMatch(/^escp: h2:tree(\/.+)?: refusing unsafe name "tree(\/.+)?": a component below the destination is a symlink or not a directory$/);
      expect(wl).toContain(
        `escp: h2:tree/sub/f1.dat: refusing unsafe name "tree/sub/f1.dat": a component below the destination is a symlink or not a directory`,
      );
      expectSummary(w, { bytes: 0, files: 0, failed: wl.length });

      expectExit(p, 1);
      const pl = errLines(p);
      for (const l of pl)
        expect(l).toMatch(
          /^escp: h2:tree\/sub(\/.+)?: refusing unsafe name "tree\/sub(\/.+)?": a component below the destination is a symlink or not a directory$/,
        );
      const sub = treeBytes(join(tree, "sub"));
      expectSummary(p, { bytes: all.bytes - sub.bytes, files: all.files - sub.files, failed: pl.length });
      expect(lstatSync(join(part, "tree", "sub")).isSymbolicLink()).toBe(true);
      await expectSameFile(join(tree, "with space.txt"), join(part, "tree", "with space.txt"));
      await expectSameFile(join(tree, "f0.dat"), join(part, "tree", "f0.dat"));

      expect(readdirSync(victim)).toEqual([]);
      expect(lstatSync(join(whole, "tree")).isSymbolicLink()).toBe(true);
      expect(readdirSync(whole)).toEqual(["tree"]);
      expect(temporariesUnder(d)).toEqual([]);
    },
    T,
  );

  test(
    "-p, -C, --nochecksum, -t 1 and -t 8, relayed and --direct",
    async () => {
      const f = need();
      const d = freshDir(out, "options");
      const ptree = join(tmp, "ptree"); // its own source: modes and times set here
      await makeAwkwardTree(ptree, 12, 47);
      chmodSync(join(ptree, "sub"), 0o750);
      chmodSync(join(ptree, "sub", "f1.dat"), 0o600);
      chmodSync(join(ptree, "with space.txt"), 0o444);
      utimesSync(join(ptree, "sub", "f1.dat"), new Date("2001-02-03T04:05:06Z"), new Date("2001-02-03T04:05:06Z"));
      utimesSync(join(ptree, "sub"), new Date("2003-04-05T06:07:08Z"), new Date("2003-04-05T06:07:08Z"));
      const big = join(tmp, "mixed.bin");
      writeFileSync(big, Buffer.concat([Buffer.alloc(2 << 20, "compressible text, over and over. "), readFileSync(join(src, "one.bin"))]));
      const runs = await Promise.all([
        x3(f, ["-3", "-r", "-p", "-t", "8", `h1:${ptree}`, `h2:${d}/p-relay-t8`]),
        x3(f, ["-3", "--direct", "-r", "-p", "-t", "1", `h1:${ptree}`, `h2:${d}/p-direct-t1`]),
        x3(f, ["-3", "-C", "--nochecksum", `h1:${big}`, `h2:${d}/c-relay.bin`]),
        x3(f, ["-3", "--direct", "-C", "-t", "8", `h1:${big}`, `h2:${d}/c-direct.bin`]),
      ]);
      for (const r of runs) {
        expectExit(r, 0);
        expect(errLines(r)).toEqual([]);
      }
      for (const n of ["p-relay-t8", "p-direct-t1"]) {
        expect(await compareTrees(ptree, join(d, n), { modes: true, mtimes: true })).toEqual([]);
        expect(statSync(join(d, n, "sub")).mtime.toISOString()).toBe("2003-04-05T06:07:08.000Z");
      }
      await expectSameFile(big, join(d, "c-relay.bin"));
      await expectSameFile(big, join(d, "c-direct.bin"));
      expect(temporariesUnder(d)).toEqual([]);
    },
    T,
  );

  test(
    "three hosts, h2 cut off from h1 and h3: h1→h3 and h3→h1 go direct, h1→h2 and h3→h2 fall back (paths are per pair)",
    async () => {
      const f = need();
      const d = freshDir(out, "three");
      const one = join(src, "one.bin");
      await f.block("h1", "h2");
      await f.block("h2", "h3");
      try {
        const [h13, h31, h12, h32] = await Promise.all([
          x3(f, ["-3", "--direct", `h1:${one}`, `h3:${d}/h1-h3.bin`], { timeout: 5 }),
          x3(f, ["-3", "--direct", `h3:${one}`, `h1:${d}/h3-h1.bin`], { timeout: 5 }),
          x3(f, ["-3", "--direct", `h1:${one}`, `h2:${d}/h1-h2.bin`], { timeout: 5 }),
          x3(f, ["-3", "--direct", `h3:${one}`, `h2:${d}/h3-h2.bin`], { timeout: 5 }),
        ]);
        for (const r of [h13, h31, h12, h32]) {
          expectExit(r, 0);
          expectSummary(r, { bytes: FILE, files: 1 });
        }
        expect(errLines(h13)).toEqual([]);
        expect(errLines(h31)).toEqual([]);
        expect(FALLBACK.exec(errLines(h12)[0] ?? "")?.slice(1, 3)).toEqual(["h1", "h2"]);
        expect(FALLBACK.exec(errLines(h32)[0] ?? "")?.slice(1, 3)).toEqual(["h3", "h2"]);
        expect(errLines(h12)).toHaveLength(1);
        expect(errLines(h32)).toHaveLength(1);
      } finally {
        await f.unblock("h1", "h2");
        await f.unblock("h2", "h3");
      }
      for (const n of ["h1-h3.bin", "h3-h1.bin", "h1-h2.bin", "h3-h2.bin"]) await expectSameFile(one, join(d, n));
    },
    T,
  );

  test(
    "resume: h2 stopped part way (SIGTERM), the same -3 command again sends only the rest, relayed and --direct",
    async () => {
      const f = need();
      const d = freshDir(out, "resume");
      const one = join(src, "one.bin");
      const cut = remoteWith({ ESCP_FAULT_KILL_BYTES: "receiver:1500000:TERM" }); // h2, the receiver, stops itself
      const pace = (remote?: string): string[] => (remote ? ["-l", "4M"] : []); // the cut run: slow enough to stop part way
      const runs = (remote?: string): Promise<RunEscpResult[]> =>
        Promise.all([
          x3(f, ["--blocksize", "64K", ...pace(remote), `h1:${one}`, `h2:${d}/relay.bin`], remote ? { remote } : {}),
          x3(f, ["--blocksize", "64K", ...pace(remote), "--direct", `h1:${one}`, `h2:${d}/direct.bin`], remote ? { remote } : {}),
        ]);
      for (const r of await runs(cut)) expect(r.code).not.toBe(0);
      expect(listing(d)).toEqual([".direct.bin.escp-journal", ".direct.bin.escp-part", ".relay.bin.escp-journal", ".relay.bin.escp-part"]);
      for (const r of await runs()) {
        expectExit(r, 0);
        expect(errLines(r)).toEqual([]);
        expect(r.stdout).toMatch(/, +[\d.]+ [KM]B resumed/);
      }
      for (const n of ["relay.bin", "direct.bin"]) await expectSameFile(one, join(d, n));
      expect(listing(d)).toEqual(["direct.bin", "relay.bin"]);
    },
    T,
  );

  test(
    "-a: symbolic links, hard links, owners and nanosecond times arrive as in the source, relayed and --direct",
    async () => {
      const f = need();
      const tree = fc.sample(archiveTree, { seed: 11, numRuns: 1 })[0] as ArchiveTree;
      const atree = join(src, "archive");
      mkdirSync(atree);
      await materializeArchiveTree(atree, tree);
      const d = freshDir(out, "archive");
      const [relay, direct] = await Promise.all([x3(f, ["-a", `h1:${atree}`, `h2:${d}/relay`]), x3(f, ["-a", "--direct", `h1:${atree}`, `h2:${d}/direct`])]);
      const fifos = tree.nodes
        .filter((n) => n.kind === "fifo")
        .map((n) => n.path)
        .sort();
      for (const [r, name] of [
        [relay, "relay"],
        [direct, "direct"],
      ] as const) {
        expectExit(r, 0);
        expect(await compareTrees(atree, join(d, name), { archive: true, atimes: true })).toEqual(
          fifos.map((p) => `missing in ${join(d, name)}: ${p} (other)`),
        );
      }
    },
    T,
  );

  test(
    "afterwards: no temporary under any destination, no escp server left on any host",
    async () => {
      expect(temporariesUnder(out)).toEqual([]);
      await expectServersGone(need());
    },
    T,
  );
});
