// FileList batches of worst-case entries (4,095-byte multi-byte names and dsts) fit one control
// message; entries whose name or dst the receiver could never accept are refused, not sent.
import { describe, expect, test } from "bun:test";
import { encodeControl, type FileEntry } from "../control/messages.ts";
import type { EscpError } from "../errors/escp-error.ts";
import type { FoundEntry, WalkItem } from "../fs/discover.ts";
import { ESCP_CTL_MAX } from "../native/symbols.ts";
import { Announcer, type SmallFile } from "./announcer.ts";

function found(i: number, name: string, dst?: string): WalkItem {
  const entry: FoundEntry = {
    kind: "file",
    path: `/src/${i}`,
    name,
    size: 1,
    mode: 0o644,
    mtimeSec: 0,
    mtimeNsec: 0,
    atimeSec: 0,
    atimeNsec: 0,
    ino: i,
    ...(dst === undefined ? {} : { dst }),
  };
  return { kind: "entry", entry };
}

function announceAll(
  items: WalkItem[],
  bundleMax = 0,
): { batches: FileEntry[][]; problems: EscpError[]; notices: string[]; files: number; small: SmallFile[]; order: string[] } {
  const out = { batches: [] as FileEntry[][], problems: [] as EscpError[], notices: [] as string[], files: 0, small: [] as SmallFile[], order: [] as string[] };
  const a = new Announcer(
    items[Symbol.iterator](),
    {
      fileList: (files) => void (out.batches.push(files), out.order.push("list")),
      file: () => void out.files++,
      dir: () => {},
      link: () => {},
      small: (files) => void (out.small.push(...files), out.order.push("small")),
      problem: (err) => void out.problems.push(err),
      notice: (text) => void out.notices.push(text),
      finished: () => {},
    },
    bundleMax,
  );
  while (!a.done) a.step(0);
  return out;
}

/** 4,095 UTF-8 bytes of 3-byte characters: 1,365 UTF-16 units, the worst bytes-per-length ratio. */
const WIDE = "語".repeat(1365);

describe("FileList batches", () => {
  test("worst-case entries: every batch encodes within ESCP_CTL_MAX", () => {
    expect(Buffer.byteLength(WIDE, "utf8")).toBe(4095);
    const items = Array.from({ length: 600 }, (_, i) => found(i, `${i}`.padEnd(3, "_") + WIDE.slice(1), WIDE));
    const { batches, problems, files } = announceAll(items);
    expect(problems).toEqual([]);
    expect(files).toBe(600);
    expect(batches.length).toBeGreaterThan(1);
    for (const files of batches) {
      const len = encodeControl({ type: "fileList", files, last: false }).length;
      expect(len).toBeLessThanOrEqual(ESCP_CTL_MAX);
      expect(len).toBeLessThan(300 * 1024); // cut near 256 KiB of real bytes, not 3x that
    }
  });

  test("a name or dst over 4,095 bytes is refused with E_REJECTED_PATH and never announced", () => {
    const { batches, problems, files } = announceAll([found(1, `${WIDE}x`), found(2, "ok", `${WIDE}/x`), found(3, "fine", WIDE)]);
    expect(problems.map((p) => [p.code, p.message.endsWith("is over 4095 bytes")])).toEqual([
      ["E_REJECTED_PATH", true],
      ["E_REJECTED_PATH", true],
    ]);
    expect(files).toBe(1);
    expect(batches.flat().map((f) => [f.fino, f.name])).toEqual([[1, "fine"]]);
  });

  test("a notice (a dangling link skipped) is passed on, neither a problem nor a file", () => {
    const { problems, notices, files } = announceAll([found(1, "a"), { kind: "notice", text: "/t/d: dangling symbolic link, skipped" }, found(2, "b")]);
    expect(notices).toEqual(["/t/d: dangling symbolic link, skipped"]);
    expect(problems).toEqual([]);
    expect(files).toBe(2);
  });
});

describe("-a: hard links and symbolic links", () => {
  test("the second and later names of one inode are hard links to the first; others stay files", () => {
    const linked = (i: number, name: string, key: string): WalkItem => {
      const item = found(i, name);
      if (item.kind === "entry") Object.assign(item.entry, { nlink: 3, linkKey: key, uid: 7, gid: 8, xattrs: new Uint8Array([1]) });
      return item;
    };
    const sym: WalkItem = {
      kind: "entry",
      entry: { kind: "symlink", path: "/src/s", name: "s", size: 0, mode: 0o777, mtimeSec: 0, mtimeNsec: 0, atimeSec: 0, atimeNsec: 0, ino: 9, target: "a" },
    };
    const { batches, files } = announceAll([
      linked(1, "a", "1:5"),
      found(2, "plain"),
      linked(3, "b", "1:5"),
      sym,
      linked(4, "c", "1:6"),
      linked(5, "d", "1:5"),
    ]);
    const got = batches.flat().map((f) => [f.fino, f.kind, f.name, f.size, f.linkTo ?? null, f.target ?? null, f.xattrs?.length ?? 0]);
    expect(got).toEqual([
      [1, "file", "a", 1, null, null, 1],
      [2, "file", "plain", 1, null, null, 0],
      [3, "hardlink", "b", 0, 1, null, 0],
      [4, "symlink", "s", 0, null, "a", 0],
      [5, "file", "c", 1, null, null, 1],
      [6, "hardlink", "d", 0, 1, null, 0],
    ]);
    expect(batches.flat()[0]).toMatchObject({ uid: 7, gid: 8, nlink: 3 });
    expect(files).toBe(3); // data for a, plain and c only
  });
});

describe("bundles", () => {
  const dir = (i: number, name: string): WalkItem => {
    const item = found(i, name);
    if (item.kind === "entry") item.entry.kind = "dir";
    return item;
  };
  const sized = (i: number, name: string, size: number, extra: Partial<FoundEntry> = {}): WalkItem => {
    const item = found(i, name);
    if (item.kind === "entry") Object.assign(item.entry, { size }, extra);
    return item;
  };

  test("small plain files inside an announced directory are bundled after the list that names it; others are announced", () => {
    const { batches, small, order } = announceAll(
      [
        sized(1, "top", 10),
        dir(2, "d"),
        sized(3, "d/a", 10),
        sized(4, "d/big", 101),
        dir(5, "d/e"),
        sized(6, "d/e/b", 0),
        sized(7, "d/x", 5, { dst: "y" }),
        sized(8, "d/l", 5, { linkKey: "1:2", nlink: 2 }),
        sized(9, "d/x2", 5, { xattrs: new Uint8Array([1]) }),
        sized(10, "d/c", 100),
      ],
      100,
    );
    expect(batches.flat().map((f) => [f.fino, f.name])).toEqual([
      [1, "top"],
      [2, "d"],
      [3, "d/big"],
      [4, "d/e"],
      [5, "d/x"],
      [6, "d/l"],
      [7, "d/x2"],
    ]);
    expect(small.map((f) => [f.dir, f.leaf, f.entry.path])).toEqual([
      [2, "a", "/src/3"],
      [4, "b", "/src/6"],
      [2, "c", "/src/10"],
    ]);
    expect(order).toEqual(["list", "small"]);
  });

  test("no bundles when off", () => {
    const { small, files } = announceAll([dir(1, "d"), sized(2, "d/a", 1)]);
    expect(small).toEqual([]);
    expect(files).toBe(1);
  });
});
