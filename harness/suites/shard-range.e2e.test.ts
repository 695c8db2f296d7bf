// Shards are ordinary sessions (issue #17): `escp --shard LIST DEST` runs one shard of a plan,
// whose list may name byte ranges of files (`src@OFFSET+LENGTH`). Every range of a file writes
// into the one shared partial; the file is named only when its last range is in, by whichever
// session finishes it, and then equals its source by b3sum. Through the real CLI: pushes over
// the loopback sshd and local copies, sequential and concurrent ranges, a range session killed
// part way and rerun (resumed from its own journal), bad ranges (exit 2, one line), a mixed list.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESCP_REMOTE_CMD, type RunEscpResult } from "../escp-run.ts";
import { parseJsonLines } from "../json-schema.ts";
import { startSshd, type SshdFixture } from "../sshd.ts";
import { makeTmpDir, removeTmpDir } from "../tmp-dir.ts";
import { loadNative } from "../../src/native/lib.ts";
import { BASE, b3sum, runEscp, writeRandomFile } from "./e2e-helpers.ts";

const B = 64 * 1024;
const MIB = 1024 * 1024;
const SIZE = 5 * MIB + 777; // 81 blocks: ranges 0+2M, 2M+2M, 4M+(1M+777)
const RANGES: [number, number][] = [
  [0, 2 * MIB],
  [2 * MIB, 2 * MIB],
  [4 * MIB, SIZE - 4 * MIB],
];
const ARGS = [...BASE, "--blocksize", "64K", "-t", "2"];

let fx: SshdFixture;
const tmp = makeTmpDir("e2e-shard-range");
let n = 0;

beforeAll(async () => {
  fx = await startSshd();
}, 60_000);

afterAll(async () => {
  await fx?.stop();
  removeTmpDir(tmp);
});

const remote = (): string[] => [...fx.sshArgs, "-D", ESCP_REMOTE_CMD];
const H = (path: string): string => `${fx.user}@${fx.host}:${path}`;

/** A fresh case directory: a random source file and an empty destination. */
async function setup(size = SIZE): Promise<{ dir: string; src: string; dst: string; target: string }> {
  const dir = join(tmp, `case${++n}`);
  const src = join(dir, "src", "big.bin");
  const dst = join(dir, "dst");
  await writeRandomFile(src, size, 4200 + n);
  mkdirSync(dst, { recursive: true });
  return { dir, src, dst, target: join(dst, "big.bin") };
}

/** A shard list file in the plan's form: one `- ["<src>", "<dst>"]` per line. */
function list(dir: string, name: string, items: [string, string][]): string {
  const path = join(dir, name);
  writeFileSync(path, items.map(([s, d]) => `- [${JSON.stringify(s)}, ${JSON.stringify(d)}]\n`).join(""));
  return path;
}

const ranged = (src: string, [o, l]: [number, number]): string => `${src}@${o}+${l}`;

function expectExit(r: RunEscpResult, code: number): void {
  if (r.code !== code) throw new Error(`escp exited ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

type Subtree = { block: number; log2: number; cv: string };
type FileEvent = {
  type: string;
  status?: string;
  path?: string;
  bytes?: number;
  resumed_bytes?: number;
  digest?: string | null;
  committed?: boolean;
  range?: { offset: number; length: number; block_size: number; subtrees: Subtree[] };
};

/** The `file` ok events of a --json run (every line validated against the schema). */
function fileEvents(r: RunEscpResult): FileEvent[] {
  return (parseJsonLines(r.stdout) as FileEvent[]).filter((e) => e.type === "file" && e.status === "ok");
}

const leftovers = (dst: string): string[] => readdirSync(dst).filter((x) => x.includes("escp"));

/** The whole file's BLAKE3 from its ranges' subtrees (the contract's left-heavy tree over the
 * blocks, parents by libescp's escp_b3_parent): what `escp plan` can check the shards with. */
function rootFromSubtrees(subtrees: Subtree[], nblocks: number): string {
  const lib = loadNative();
  const byStart = new Map<string, Uint8Array>();
  for (const s of subtrees) byStart.set(`${s.block}/${2 ** s.log2}`, Uint8Array.from(Buffer.from(s.cv, "hex")));
  const node = (start: number, len: number, root: boolean): Uint8Array => {
    const have = byStart.get(`${start}/${len}`);
    if (have !== undefined && !root) return have;
    if (len === 1) throw new Error(`no CV for block ${start}`);
    let left = 1;
    while (left * 2 < len) left *= 2;
    const out = new Uint8Array(32);
    lib.escp_b3_parent(node(start, left, false), node(start + left, len - left, false), root ? 1 : 0, out);
    return out;
  };
  return Buffer.from(node(0, nblocks, true)).toString("hex");
}

describe("--shard: byte ranges of one file", () => {
  test("three ranges as three sequential pushes: the file appears only after the last, equal to its source; only the last committed", async () => {
    const { dir, src, dst, target } = await setup();
    const digest = await b3sum(src);
    const subtrees: Subtree[] = [];
    for (let i = 0; i < RANGES.length; i++) {
      const shard = list(dir, `shard-${i}.list`, [[ranged(src, RANGES[i] as [number, number]), "big.bin"]]);
      const r = await runEscp([...ARGS, ...remote(), "--json", "--shard", shard, H(`${dst}/`)]);
      expectExit(r, 0);
      const [ev, more] = fileEvents(r);
      expect(more).toBeUndefined();
      const [o, l] = RANGES[i] as [number, number];
      expect(ev?.bytes).toBe(l);
      expect(ev?.range?.offset).toBe(o);
      expect(ev?.range?.length).toBe(l);
      expect(ev?.range?.block_size).toBe(B);
      const last = i === RANGES.length - 1;
      expect(ev?.committed).toBe(last);
      expect(ev?.digest).toBe(last ? digest : null);
      expect(existsSync(target)).toBe(last);
      subtrees.push(...(ev?.range?.subtrees ?? []));
    }
    expect(await b3sum(target)).toBe(digest);
    expect(leftovers(dst)).toEqual([]); // partial and every range journal gone
    expect(rootFromSubtrees(subtrees, Math.ceil(SIZE / B))).toBe(digest);
  }, 120_000);

  test("two ranges of one file at the same time (pushes), then the third: exactly one session names the file", async () => {
    const { dir, src, dst, target } = await setup();
    const digest = await b3sum(src);
    const shards = RANGES.map((r, i) => list(dir, `shard-${i}.list`, [[ranged(src, r), "big.bin"]]));
    // paced so the two overlap: both hold the shared partial while they write
    const both = await Promise.all(
      [shards[0], shards[1]].map((s) => runEscp([...ARGS, ...remote(), "-l", "8M", "--json", "--shard", s as string, H(`${dst}/`)])),
    );
    for (const r of both) expectExit(r, 0);
    expect(both.flatMap(fileEvents).map((e) => e.committed)).toEqual([false, false]);
    expect(existsSync(target)).toBe(false);
    const r3 = await runEscp([...ARGS, ...remote(), "--json", "--shard", shards[2] as string, H(`${dst}/`)]);
    expectExit(r3, 0);
    expect(fileEvents(r3)[0]?.committed).toBe(true);
    expect(await b3sum(target)).toBe(digest);
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);

  test("all three ranges at the same time (local copies): the file is named once, by one of them", async () => {
    const { dir, src, dst, target } = await setup();
    const digest = await b3sum(src);
    const runs = await Promise.all(
      RANGES.map((r, i) => runEscp([...ARGS, "-l", "8M", "--json", "--shard", list(dir, `shard-${i}.list`, [[ranged(src, r), "big.bin"]]), `${dst}/`])),
    );
    for (const r of runs) expectExit(r, 0);
    const committed = runs.flatMap(fileEvents).filter((e) => e.committed);
    expect(committed.length).toBe(1);
    expect(committed[0]?.digest).toBe(digest);
    expect(await b3sum(target)).toBe(digest);
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);

  test("every range of a file in one shard (local copy, -p): one session, the file named once, with the source's mode and times", async () => {
    const { dir, src, dst, target } = await setup();
    const shard = list(
      dir,
      "all.list",
      RANGES.map((r) => [ranged(src, r), "big.bin"]),
    );
    chmodSync(src, 0o640);
    utimesSync(src, new Date("2020-01-02T03:04:05Z"), new Date("2020-01-02T03:04:05Z"));
    const r = await runEscp([...ARGS, "-p", "--json", "--shard", shard, `${dst}/`]);
    expectExit(r, 0);
    // -p: the committer gives the named file the source's mode and times
    expect(statSync(target).mode & 0o7777).toBe(0o640);
    expect(statSync(target).mtimeMs).toBe(statSync(src).mtimeMs);
    const evs = fileEvents(r);
    expect(evs.map((e) => e.range?.offset).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(RANGES.map(([o]) => o));
    expect(evs.filter((e) => e.committed).length).toBe(1);
    expect(await b3sum(target)).toBe(await b3sum(src));
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);

  test("a range whose digest does not match fails alone (E_DIGEST_MISMATCH): only its journal goes; rerun, it completes", async () => {
    const { dir, src, dst, target } = await setup();
    const shards = RANGES.map((r, i) => list(dir, `shard-${i}.list`, [[ranged(src, r), "big.bin"]]));
    expectExit(await runEscp([...ARGS, "--shard", shards[0] as string, `${dst}/`]), 0);
    const bad = await runEscp([...ARGS, "--json", "--shard", shards[1] as string, `${dst}/`], { env: { ESCP_FAULT_CORRUPT_DIGEST: "3" } });
    expectExit(bad, 1);
    const failed = (parseJsonLines(bad.stdout) as { type: string; status?: string; code?: string }[]).filter((e) => e.type === "file");
    expect(failed.map((e) => [e.status, e.code])).toEqual([["failed", "E_DIGEST_MISMATCH"]]);
    expect(leftovers(dst).sort()).toEqual([".big.bin.escp-journal.0", ".big.bin.escp-part"]); // the shared partial stays
    for (const s of shards.slice(1)) expectExit(await runEscp([...ARGS, "--shard", s as string, `${dst}/`]), 0);
    expect(await b3sum(target)).toBe(await b3sum(src));
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);

  test("every range in but the last could not commit (another holder of the partial): the next session to leave it, even unfinished, names the file", async () => {
    const { dir, src, dst, target } = await setup();
    const digest = await b3sum(src);
    const shards = RANGES.map((r, i) => list(dir, `shard-${i}.list`, [[ranged(src, r), "big.bin"]]));
    for (const s of shards.slice(0, 2)) expectExit(await runEscp([...ARGS, "--shard", s as string, `${dst}/`]), 0);
    // another process shares the partial (as a running range session does) while the last range ends
    const holder = Bun.spawn(["flock", "-s", join(dst, ".big.bin.escp-part"), "-c", "echo locked; cat >/dev/null"], { stdin: "pipe", stdout: "pipe" });
    const first = await holder.stdout.getReader().read();
    expect(new TextDecoder().decode(first.value)).toContain("locked");
    try {
      const r = await runEscp([...ARGS, "--json", "--shard", shards[2] as string, `${dst}/`]);
      expectExit(r, 0);
      expect(fileEvents(r)[0]?.committed).toBe(false); // verified, durable, but not the committer
    } finally {
      holder.stdin.end();
      await holder.exited;
    }
    expect(existsSync(target)).toBe(false);
    // a rerun of the first range stopped by SIGTERM as soon as the file list arrives (before
    // any block: the session ends with its range unfinished) finds every range in when it
    // leaves the partial, and names the file
    const stopped = await runEscp([...ARGS, "--shard", shards[0] as string, `${dst}/`], {
      env: { ESCP_FAULT_EXEC_AT: "receiver:filelist", ESCP_FAULT_EXEC: "kill -TERM $PPID" },
    });
    expect(stopped.code).not.toBe(0);
    expect(await b3sum(target)).toBe(digest);
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);

  test("a range session killed part way (SIGKILL of the receiver) and rerun resumes from its own journal", async () => {
    const { dir, src, dst, target } = await setup();
    const digest = await b3sum(src);
    const shards = RANGES.map((r, i) => list(dir, `shard-${i}.list`, [[ranged(src, r), "big.bin"]]));
    expectExit(await runEscp([...ARGS, "--json", "--shard", shards[0] as string, `${dst}/`]), 0);
    // the middle range: the receiver dies after 1 MiB of its 2 MiB (journal committed every block)
    const killed = await runEscp([...ARGS, "-l", "4M", "--shard", shards[1] as string, `${dst}/`], {
      env: { ESCP_FAULT_KILL_BYTES: `receiver:${MIB}`, ESCP_JOURNAL_BYTES: String(B) },
    });
    expect(killed.code).not.toBe(0);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(dst, `.big.bin.escp-journal.${2 * MIB}`))).toBe(true);
    expect(existsSync(join(dst, ".big.bin.escp-journal.0"))).toBe(true); // the first range's, untouched
    const again = await runEscp([...ARGS, "--json", "--shard", shards[1] as string, `${dst}/`]);
    expectExit(again, 0);
    const ev = fileEvents(again)[0];
    expect(ev?.resumed_bytes).toBeGreaterThan(0);
    expect((ev?.resumed_bytes ?? 0) % B).toBe(0);
    expect(ev?.resumed_bytes).toBeLessThan(2 * MIB); // never the range's last block
    expect(ev?.committed).toBe(false);
    const last = await runEscp([...ARGS, "--json", "--shard", shards[2] as string, `${dst}/`]);
    expectExit(last, 0);
    expect(fileEvents(last)[0]?.committed).toBe(true);
    expect(await b3sum(target)).toBe(digest);
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);

  test("a mixed shard list (whole files and a range) pushes the whole files and the range; the other range completes it", async () => {
    const { dir, src, dst, target } = await setup();
    const small = join(dir, "src", "small.txt");
    const mid = join(dir, "src", "mid.bin");
    writeFileSync(small, "hello shard\n");
    await writeRandomFile(mid, 300_000, 77);
    const half = 3 * MIB;
    const a = list(dir, "a.list", [
      [small, "small.txt"],
      [ranged(src, [0, half]), "big.bin"],
      [`${mid}@0+300000`, "sub/mid.bin"], // @0+SIZE: the whole file, an ordinary entry
    ]);
    const r1 = await runEscp([...ARGS, ...remote(), "--json", "--shard", a, H(`${dst}/`)]);
    expectExit(r1, 0);
    const ev1 = fileEvents(r1);
    expect(ev1.length).toBe(3);
    expect(ev1.filter((e) => e.range !== undefined).map((e) => [e.range?.offset, e.range?.length, e.committed])).toEqual([[0, half, false]]);
    for (const e of ev1.filter((x) => x.range === undefined)) expect(e.committed).toBeUndefined();
    expect(await b3sum(join(dst, "small.txt"))).toBe(await b3sum(small));
    expect(await b3sum(join(dst, "sub", "mid.bin"))).toBe(await b3sum(mid));
    expect(existsSync(target)).toBe(false);
    const b = list(dir, "b.list", [[ranged(src, [half, SIZE - half]), "big.bin"]]);
    const r2 = await runEscp([...ARGS, ...remote(), "--json", "--shard", b, H(`${dst}/`)]);
    expectExit(r2, 0);
    expect(fileEvents(r2)[0]?.committed).toBe(true);
    expect(await b3sum(target)).toBe(await b3sum(src));
    expect(leftovers(dst)).toEqual([]);
  }, 120_000);
});

describe("--shard: an older receiver (protocol 2.7) cannot take ranges", () => {
  test("a push to a server that answers as 2.7: E_VERSION (exit 5), one line, nothing written; whole files still go", async () => {
    const { dir, src, dst } = await setup();
    const old = ["-D", `env ESCP_FAULT_REPLY_MINOR=7 ${ESCP_REMOTE_CMD}`];
    const shard = list(dir, "old.list", [[ranged(src, [0, 2 * MIB]), "big.bin"]]);
    const r = await runEscp([...ARGS, ...fx.sshArgs, ...old, "--shard", shard, H(`${dst}/`)]);
    expect(r.code).toBe(5);
    expect(r.stderr.trim().split("\n")).toEqual([
      `escp: --shard: ${fx.host} runs escp protocol 2.7, which cannot take byte ranges (2.8 or later needed: update escp there)`,
    ]);
    expect(readdirSync(dst)).toEqual([]);
    const whole = list(dir, "whole.list", [[src, "big.bin"]]);
    expectExit(await runEscp([...ARGS, ...fx.sshArgs, ...old, "--shard", whole, H(`${dst}/`)]), 0);
    expect(await b3sum(join(dst, "big.bin"))).toBe(await b3sum(src));
  }, 120_000);
});

describe("--shard: refused before anything moves", () => {
  let c: { dir: string; src: string; dst: string };
  beforeAll(async () => {
    c = await setup();
  });

  const cases: [string, (src: string) => string, RegExp][] = [
    ["an offset that is not a multiple of the block size", (s) => `${s}@1000+65536`, /offset 1000 is not a multiple of the block size 65536/],
    ["a zero length", (s) => `${s}@65536+0`, /the length is 0/],
    ["a range past the end of the file", (s) => `${s}@${4 * MIB}+${2 * MIB}`, /past the file's 5243657 bytes/],
    ["a length that is not whole blocks and does not end the file", (s) => `${s}@0+100000`, /length 100000 is not a multiple of the block size/],
  ];
  for (const [what, item, cause] of cases) {
    test(`${what}: exit 2, one line naming the list, the item and the cause; nothing written`, async () => {
      const shard = list(c.dir, `bad-${++n}.list`, [[item(c.src), "big.bin"]]);
      const r = await runEscp([...ARGS, "--shard", shard, `${c.dst}/`]);
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(`--shard ${shard}: item 1 (`);
      expect(lines[0]).toMatch(cause);
      expect(readdirSync(c.dst)).toEqual([]);
    });
  }

  test("--shard with --no-resume, with a source operand, or with --nochecksum: exit 2", async () => {
    const shard = list(c.dir, "ok.list", [[ranged(c.src, [0, 2 * MIB]), "big.bin"]]);
    const noResume = await runEscp([...ARGS, "--no-resume", "--shard", shard, `${c.dst}/`]);
    expect(noResume.code).toBe(2);
    expect(noResume.stderr).toContain("--shard: not with --no-resume");
    const extra = await runEscp([...ARGS, "--shard", shard, c.src, `${c.dst}/`]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain("--shard: give only the destination");
    const noSum = await runEscp([...ARGS, "--nochecksum", "--shard", shard, `${c.dst}/`]);
    expect(noSum.code).toBe(2);
    expect(noSum.stderr).toContain("--shard: not with --nochecksum");
    expect(readdirSync(c.dst)).toEqual([]);
  });
});
