// The promise "nothing unverified ever gets a final name", through the real CLI and a real
// local receiver, on every commit path and option: the sender reports a wrong digest
// (ESCP_FAULT_CORRUPT_DIGEST=<byte>) for every file of a tree holding new files of several
// modes (read-only and set-uid among them), an empty file, a three-block file, a file in a
// new directory and a file replacing an existing one; without and with -p, with unnamed (O_TMPFILE) and named temporaries, and
// past the held-fd cap. Every file must fail by name with both digests, no new file may
// appear, the existing one must be untouched and no temporary may remain. The other way
// round (ESCP_FAULT_CORRUPT_RESULT=<byte>: the receiver claims success with a wrong digest)
// the sender must fail every file itself.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir } from "../tmp-dir.ts";
import { b3sumMany } from "../b3sum.ts";
import { b3sum, BASE, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const tmp = makeTmpDir("e2e-promise");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BLOCK = 64 * 1024;
const EXISTING = "existing.dat"; // present in the destination before each run
const PRECIOUS = "precious original: must survive every failed replacement\n";

/** name (relative to the tree) → [size, mode]; sizes are at --blocksize 64K. */
const FILES: Record<string, [number, number]> = {
  "new-0644.dat": [3000, 0o644],
  "new-0444.dat": [2000, 0o444],
  "new-0600.dat": [1500, 0o600],
  "new-4755.sh": [700, 0o4755], // -p: set-id bits go on at the commit, through the file's own fd
  empty: [0, 0o644],
  "three-blocks.bin": [2 * BLOCK + 777, 0o644],
  [EXISTING]: [5000, 0o644],
  "sub/nested.dat": [800, 0o640], // in a directory the session creates
};
/** Past the held-fd cap: enough files that 16 sealed ones wait for their digest at once. */
const MANY = 300;

const src = join(tmp, "tree");
const wide = join(tmp, "wide");
const digests = new Map<string, string>(); // source path → b3sum
let ready: Promise<void> | undefined;
function sourceTrees(): Promise<void> {
  ready ??= (async () => {
    mkdirSync(join(src, "sub"), { recursive: true });
    let seed = 70;
    for (const [name, [size, mode]] of Object.entries(FILES)) {
      await writeRandomFile(join(src, name), size, seed++);
      chmodSync(join(src, name), mode);
    }
    mkdirSync(join(wide, "many"), { recursive: true });
    await writeRandomFile(join(wide, EXISTING), 5000, 90);
    for (let i = 0; i < MANY; i++) await writeRandomFile(join(wide, "many", `f${i}`), 100 + i, 100 + i);
    const paths = [src, wide].flatMap((root) => regularFilesUnder(root).map((rel) => join(root, rel)));
    (await b3sumMany(paths)).forEach((d, i) => digests.set(paths[i] ?? "", d));
  })();
  return ready;
}

/** Regular files under dir, relative, sorted (directories are not files). */
function regularFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((n) => lstatSync(join(dir, n)).isFile())
    .sort();
}

/** Any entry under dir whose name marks it as an escp temporary. */
function temporariesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((n) => n.split("/").some((p) => p.startsWith(".escp-")));
}

/** The digest a fault hook reports: byte `at` XOR 0x5a (src/transfer/fault-points.ts). */
function flipped(hexDigest: string, at: number): string {
  const b = Buffer.from(hexDigest, "hex");
  b[at] = (b[at] ?? 0) ^ 0x5a;
  return b.toString("hex");
}

function digestOf(path: string): string {
  const d = digests.get(path);
  if (d === undefined) throw new Error(`no digest for ${path}`);
  return d;
}

/** The sender's lines about failed files ("escp: ..."), without -v's debug and the receiver's warnings. */
function verdictLines(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("escp: "))
    .sort();
}

/** A fresh destination root holding <tree>/existing.dat; returns its path and how to check it is untouched. */
function destinationWithExisting(tag: string, tree: string): { root: string; existing: string; untouched: () => void } {
  const root = join(tmp, tag);
  const dir = join(root, tree);
  mkdirSync(dir, { recursive: true });
  const existing = join(dir, EXISTING);
  writeFileSync(existing, PRECIOUS);
  chmodSync(existing, 0o640);
  const before = lstatSync(existing);
  return {
    root,
    existing,
    untouched: () => {
      const now = lstatSync(existing);
      expect(readFileSync(existing, "utf8")).toBe(PRECIOUS);
      expect(now.ino).toBe(before.ino); // not replaced by another file with the same bytes
      expect(now.mode).toBe(before.mode);
      expect(now.mtimeMs).toBe(before.mtimeMs);
    },
  };
}

/** Run a corrupt-digest transfer of `tree` and check the promise on its destination. */
async function expectNothingNamed(tag: string, tree: string, byte: number, flags: string[], opts: Parameters<typeof runEscp>[1] = {}): Promise<string> {
  await sourceTrees();
  const treeName = tree === src ? "tree" : "wide";
  const d = destinationWithExisting(tag, treeName);
  const env = { ...opts.env, ESCP_FAULT_CORRUPT_DIGEST: String(byte) };
  const r = await runEscp([...BASE, "--blocksize", "64K", ...flags, "-r", tree, d.root], { ...opts, env });
  expect(r.code).toBe(1);
  // Every file named once, by the receiver's verdict: the digest the sender claimed and the real one.
  const want = regularFilesUnder(tree).map((rel) => {
    const real = digestOf(join(tree, rel));
    return `escp: ${treeName}/${rel}: ${d.root}/${treeName}/${rel}: BLAKE3 mismatch (sender ${flipped(real, byte)}, receiver ${real})`;
  });
  expect(verdictLines(r.stderr)).toEqual(want.sort());
  // No new file under any name: only the file that was there before, unchanged.
  expect(regularFilesUnder(d.root)).toEqual([`${treeName}/${EXISTING}`]);
  d.untouched();
  expect(temporariesUnder(d.root)).toEqual([]);
  return r.stderr;
}

const BYTES = [0, 15, 31];
const TEMPORARIES: [string, Record<string, string>][] = [
  ["unnamed temporaries", {}],
  ["named temporaries (ESCP_TMPFILE=0)", { ESCP_TMPFILE: "0" }],
];

describe("a wrong digest from the sender: nothing gets a final name", () => {
  for (const byte of BYTES) {
    for (const preserve of [false, true]) {
      for (const [mode, env] of TEMPORARIES) {
        const p = preserve ? " -p" : "";
        test(`byte ${byte} flipped,${p || " no -p"}, ${mode}`, async () => {
          await expectNothingNamed(`digest-${byte}${preserve ? "-p" : ""}-${Object.keys(env).length}`, src, byte, preserve ? ["-p"] : [], { env });
        });
      }
    }
  }

  test("past the held-fd cap (fd limit 64: sealed files take their temporary name early), with -p", async () => {
    const stderr = await expectNothingNamed("digest-cap", wide, 7, ["-v", "-p"], { wrap: ["prlimit", "--nofile=64", "--"], env: { ESCP_TMPFILE_HOLD: "0" } });
    expect(stderr.split("\n").filter((l) => l.endsWith("0 unnamed files held: naming early"))).toHaveLength(1);
  });
});

describe("a wrong digest from the receiver: the sender fails the file", () => {
  for (const byte of BYTES) {
    test(`byte ${byte} flipped in the receiver's success`, async () => {
      await sourceTrees();
      const root = join(tmp, `result-${byte}`);
      mkdirSync(root);
      const r = await runEscp([...BASE, "--blocksize", "64K", "-r", src, root], { env: { ESCP_FAULT_CORRUPT_RESULT: String(byte) } });
      expect(r.code).toBe(1);
      const want = regularFilesUnder(src).map((rel) => {
        const real = digestOf(join(src, rel));
        return `escp: ${join(src, rel)}: BLAKE3 mismatch (sent ${real}, received ${flipped(real, byte)})`;
      });
      expect(verdictLines(r.stderr)).toEqual(want.sort());
      // The receiver verified and named the files; only its report lied, and the sender caught it.
      expect(regularFilesUnder(join(root, "tree"))).toEqual(regularFilesUnder(src));
      for (const rel of regularFilesUnder(src)) expect(await b3sum(join(root, "tree", rel))).toBe(digestOf(join(src, rel)));
      expect(temporariesUnder(root)).toEqual([]);
    });
  }
});
