// The `edge` dataset: every awkward case a copier must handle: empty files and dirs, sizes at
// block size −1/0/+1, unicode/space/255-byte names, deep paths, symlinks, a FIFO, read-only files.
import { type CatalogEntry, defineEntry } from "./entry.ts";
import { type Entry, file, type Params } from "./spec.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
export const EDGE_BLOCKS: readonly [string, number][] = [
  ["256K", 256 * KiB],
  ["1M", MiB],
  ["4M", 4 * MiB],
];
/** A 255-byte ASCII name and a 255-byte name of 3-byte UTF-8 characters (85 × "名"). */
export const NAME_255_ASCII = `${"n".repeat(251)}.bin`;
export const NAME_255_UTF8 = "名".repeat(85);
export const DEEP_DEPTH = 64;
/** 8 levels of 200-byte names: a path over 1600 bytes (PATH_MAX is 4096). */
export const LONG_PATH_LEVELS = 8;

function edge(p: Params, name: string): Entry[] {
  const seed = p.seed as number;
  const f = (path: string, size: number, mode?: number): Entry => file(name, seed, path, size, { kind: "random" }, mode);
  const out: Entry[] = [
    f("empty-file", 0),
    f("nested/also-empty.txt", 0),
    { kind: "dir", path: "empty-dir", mode: 0o755 },
    { kind: "dir", path: "nested/empty/inside", mode: 0o755 },
  ];
  for (const [label, b] of EDGE_BLOCKS) {
    out.push(f(`blocks/${label}-minus-1.bin`, b - 1), f(`blocks/${label}-exact.bin`, b), f(`blocks/${label}-plus-1.bin`, b + 1));
  }
  out.push(
    f("one-byte", 1),
    f("name with spaces.txt", 1000),
    f(" leading and trailing space ", 17),
    f("dir with spaces/inner file.txt", 300),
    f("ünïcödé 名前 ✓.dat", 4097),
    f("emoji-🚀-日本語/ファイル.bin", 65_537),
    f("combining-e\u0301-nfd.txt", 11), // NFD: "é" as e + U+0301
    f("caf\u00e9-nfc.txt", 12), // NFC "é": a different name on Linux
    f("quote'double\"back\\slash.txt", 13),
    f("-starts-with-dash", 14),
    f(".hidden", 15),
    f(NAME_255_ASCII, 255),
    f(`long-names/${NAME_255_UTF8}`, 256),
  );
  const deep = Array.from({ length: DEEP_DEPTH }, (_, i) => `d${i}`).join("/");
  out.push(f(`deep/${deep}/bottom.txt`, 64));
  const long = Array.from({ length: LONG_PATH_LEVELS }, (_, i) => `${String(i)}${"L".repeat(199)}`).join("/");
  out.push(f(`long-path/${long}/end.bin`, 100));
  out.push(
    { kind: "symlink", path: "links/to-file", target: "../name with spaces.txt" },
    { kind: "symlink", path: "links/to-dir", target: "../nested" },
    { kind: "symlink", path: "links/to-link", target: "to-file" },
    { kind: "symlink", path: "links/dangling", target: "../does-not-exist" },
    { kind: "fifo", path: "special/fifo", mode: 0o644 },
    f("readonly/ro-0444.txt", 444, 0o444),
    f("readonly/ro-0400.bin", 400, 0o400),
    f("modes/exec-0755.sh", 755, 0o755),
    f("modes/private-0600.key", 600, 0o600),
  );
  return out;
}

export const edgeEntries: readonly CatalogEntry[] = [
  defineEntry(
    "edge",
    "awkward cases: empty files/dirs, block ±1 sizes (256K/1M/4M), unicode, spaces, 255-byte names, deep paths, symlinks (file, dir, dangling), FIFO, read-only",
    [],
    edge,
  ),
];
