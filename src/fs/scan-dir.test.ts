// escp_dir_scan through scanDir: every name once, sorted by its bytes, with the same stat
// node:fs gives (lstat with nofollow), the errno of a stat that failed, a listing larger than
// the first buffer, a directory that cannot be opened, and the read-ahead's choice of files
// within its allowance.
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTmpDir, removeTmpDir } from "../../harness/tmp-dir.ts";
import { fromBigIntStats, scanDir, type ScanEntry, type Stat } from "./scan-dir.ts";
import { ReadAhead } from "./read-ahead.ts";
import { ESCP_RA_FILE_MAX } from "../native/symbols.ts";

const tmp = makeTmpDir("scan-dir");
afterAll(() => removeTmpDir(tmp));

function listing(r: ScanEntry[] | { errno: number }): ScanEntry[] {
  if (!Array.isArray(r)) throw new Error(`errno ${r.errno}`);
  return r;
}

/** The fields node:fs agrees on (id only where scanDir sets it). */
function comparable(st: Stat): Omit<Stat, "id"> {
  const { id: _id, ...rest } = st;
  return rest;
}

describe("scanDir", () => {
  const d = join(tmp, "d");
  mkdirSync(d);
  writeFileSync(join(d, "b.txt"), "bee");
  writeFileSync(join(d, "a.bin"), new Uint8Array(70_000));
  utimesSync(join(d, "a.bin"), 1_600_000_000, 1_700_000_000);
  mkdirSync(join(d, "sub"));
  symlinkSync("b.txt", join(d, "link"));
  symlinkSync("missing", join(d, "dangling"));
  writeFileSync(join(d, "ünï ✓"), "x");
  Bun.spawnSync(["mkfifo", join(d, "fifo")]);

  test("names sorted by bytes; stat as node:fs sees it (followed)", () => {
    const got = listing(scanDir(d, false));
    expect(got.map((e) => e.name)).toEqual(["a.bin", "b.txt", "dangling", "fifo", "link", "sub", "ünï ✓"]);
    for (const e of got) {
      if (e.name === "dangling") {
        expect(e.st).toBe(2); // ENOENT: what it names is missing
        continue;
      }
      expect(typeof e.st).toBe("object");
      expect(comparable(e.st as Stat)).toEqual(comparable(fromBigIntStats(statSync(join(d, e.name), { bigint: true }))));
    }
    const sub = got.find((e) => e.name === "sub")?.st as Stat;
    expect(sub.kind).toBe("dir");
    expect(sub.id).toBe(fromBigIntStats(statSync(join(d, "sub"), { bigint: true })).id);
    const a = got.find((e) => e.name === "a.bin")?.st as Stat;
    expect([a.size, a.mtimeSec, a.mtimeNsec, a.atimeSec]).toEqual([70_000, 1_700_000_000, 0, 1_600_000_000]);
    expect((got.find((e) => e.name === "fifo")!.st as Stat).kind).toBe("fifo");
  });

  test("nofollow: links are links, dangling ones included", () => {
    const got = listing(scanDir(d, true));
    for (const e of got) expect(comparable(e.st as Stat)).toEqual(comparable(fromBigIntStats(lstatSync(join(d, e.name), { bigint: true }))));
    expect((got.find((e) => e.name === "dangling")!.st as Stat).kind).toBe("symlink");
  });

  test("a listing larger than the first buffer is read whole", () => {
    const big = join(tmp, "big");
    mkdirSync(big);
    const n = 1500; // 1500 × (72 + 200) bytes > 256 KiB
    for (let i = 0; i < n; i++) writeFileSync(join(big, `${String(i).padStart(5, "0")}${"x".repeat(195)}`), "");
    const got = listing(scanDir(big, false));
    expect(got.length).toBe(n);
    expect(got[0]?.name.startsWith("00000")).toBe(true);
    expect(got[n - 1]?.name.startsWith("01499")).toBe(true);
  });

  test("read-ahead: small regular files in name order, within the allowance", () => {
    const ra = join(tmp, "ra");
    mkdirSync(ra);
    writeFileSync(join(ra, "a"), new Uint8Array(40_000));
    writeFileSync(join(ra, "b-empty"), "");
    writeFileSync(join(ra, "c-huge"), new Uint8Array(ESCP_RA_FILE_MAX + 1));
    writeFileSync(join(ra, "d"), new Uint8Array(30_000));
    symlinkSync("d", join(ra, "e-link"));
    Bun.spawnSync(["mkfifo", join(ra, "f-fifo")]);
    mkdirSync(join(ra, "g-dir"));
    writeFileSync(join(ra, "h"), new Uint8Array(5_000));
    const spentBy = (nofollow: boolean, r: ReadAhead): number => (listing(scanDir(ra, nofollow, r)), r.total);
    // followed, the link is its regular file; empty, too large, FIFO and directory never
    expect(spentBy(false, new ReadAhead(undefined, 1 << 30))).toBe(40_000 + 30_000 + 30_000 + 5_000);
    expect(spentBy(true, new ReadAhead(undefined, 1 << 30))).toBe(40_000 + 30_000 + 5_000);
    // a budget ends for good at the first file past what is left (in name order): a fits 64 KiB, d does not
    const budget = new ReadAhead(undefined, 64 * 1024);
    expect(spentBy(true, budget)).toBe(40_000);
    expect(budget.allowance()).toBe(0);
    expect(spentBy(true, new ReadAhead(undefined, 1024))).toBe(0);
    // a window: what was sent since is allowed again
    let sent = 0;
    const w = new ReadAhead({ sent: () => sent, covered: 0 }, 80 * 1024);
    expect(spentBy(true, w)).toBe(75_000);
    expect(w.allowance()).toBe(80 * 1024 - 75_000);
    sent = 75_000;
    expect(w.allowance()).toBe(80 * 1024);
    expect(spentBy(true, w)).toBe(150_000);
    // a window after what an earlier pass covered: nothing until the walk has passed it
    const after = new ReadAhead({ sent: () => 0, covered: 75_000 }, 1 << 30);
    expect(spentBy(true, after)).toBe(0); // this listing brings the walk to 75,000
    expect(spentBy(true, after)).toBe(75_000);
    // without one nothing is read ahead, and the listing is the same
    expect(listing(scanDir(ra, true)).map((e) => e.name)).toEqual(listing(scanDir(ra, true, new ReadAhead())).map((e) => e.name));
  });

  test("a directory that cannot be opened: its errno", () => {
    expect(scanDir(join(tmp, "nope"), false)).toEqual({ errno: 2 });
    expect(scanDir(join(d, "b.txt"), false)).toEqual({ errno: 20 });
  });
});
