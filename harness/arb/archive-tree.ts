// Arbitrary trees for archive mode (-a): directories and files with odd modes (set-id, sticky,
// 000), owners and groups, nanosecond atimes and mtimes, extended attributes, hard links within
// the tree, symbolic links of every kind (relative, absolute, dangling, looping, to a directory)
// and FIFOs. Materialised with Node for the contents and one python3 run for what Node cannot
// set exactly (lchown, nanosecond times on links, setxattr, mkfifo).
import { linkSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { writeRandomFile } from "../../datasets/materialize.ts";

export interface Stamp {
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch (the atime a little ahead, so reading the file leaves it alone). */
  mtimeNs: bigint;
  atimeNs: bigint;
}

export type ArchiveNode =
  | { kind: "dir"; path: string; mode: number; stamp: Stamp; xattrs: Record<string, string> }
  | { kind: "file"; path: string; mode: number; stamp: Stamp; size: number; seed: number; xattrs: Record<string, string> }
  | { kind: "hardlink"; path: string; to: string }
  | { kind: "symlink"; path: string; target: string; stamp: Stamp }
  | { kind: "fifo"; path: string };

/** Nodes in creation order: a directory before its entries, a file before its hard links. */
export interface ArchiveTree {
  nodes: ArchiveNode[];
}

const NOW_NS = BigInt(Date.now()) * 1_000_000n;
const stamp: fc.Arbitrary<Stamp> = fc.record({
  uid: fc.constantFrom(0, 1234, 65534),
  gid: fc.constantFrom(0, 5678, 65534),
  // 2001 .. two hours ago, any nanosecond: before the atime, so relatime leaves reads alone
  mtimeNs: fc.bigInt({ min: 1_000_000_000_000_000_000n, max: NOW_NS - 7_200_000_000_000n }),
  // 1..20 hours ahead: later than the mtime and than the ctime materialising gives (and not a
  // day old), so relatime leaves it alone when escp or the checks read the file
  atimeNs: fc.bigInt({ min: NOW_NS + 3_600_000_000_000n, max: NOW_NS + 72_000_000_000_000n }),
});
const fileMode = fc.constantFrom(0o644, 0o600, 0o755, 0o4755, 0o2750, 0o000, 0o444, 0o1644);
const dirMode = fc.constantFrom(0o755, 0o700, 0o1777, 0o2775, 0o711);
const xattrs = fc.dictionary(fc.constantFrom("user.a", "user.origin", "user.ünï"), fc.string({ maxLength: 40 }), { maxKeys: 2 });
const leaf = fc.tuple(fc.constantFrom("f", "g", "with space", "ünï", "x.dat", "l"), fc.nat({ max: 20 })).map(([s, n]) => `${s}${n}`);

type Draft = { dir: number; name: string } & (
  | { kind: "dir"; mode: number; stamp: Stamp; xattrs: Record<string, string> }
  | { kind: "file"; mode: number; stamp: Stamp; size: number; seed: number; xattrs: Record<string, string> }
  | { kind: "hardlink"; pick: number }
  | { kind: "symlink"; how: "sibling" | "up" | "absolute" | "dangling" | "self" | "dotdot"; pick: number; stamp: Stamp }
  | { kind: "fifo" }
);

const draft: fc.Arbitrary<Draft> = fc.tuple(fc.nat(), leaf).chain(([dir, name]) =>
  fc
    .oneof(
      fc.record({ kind: fc.constant("dir" as const), mode: dirMode, stamp, xattrs }),
      fc.record({
        kind: fc.constant("file" as const),
        mode: fileMode,
        stamp,
        size: fc.oneof(fc.constant(0), fc.nat({ max: 70_000 })),
        seed: fc.nat(),
        xattrs,
      }),
      fc.record({ kind: fc.constant("file" as const), mode: fileMode, stamp, size: fc.nat({ max: 3000 }), seed: fc.nat(), xattrs }),
      fc.record({ kind: fc.constant("hardlink" as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constantFrom("symlink" as const),
        how: fc.constantFrom("sibling", "up", "absolute", "dangling", "self", "dotdot"),
        pick: fc.nat(),
        stamp,
      }),
      fc.record({ kind: fc.constant("fifo" as const) }),
    )
    .map((d) => ({ dir, name, ...d }) as Draft),
);

/** Resolve drafts into a consistent tree: parents exist, names are unique, links point at
 * entries made earlier (a hard link to nothing yet becomes a plain file). */
function resolveTree(drafts: Draft[]): ArchiveTree {
  const dirs = [""];
  const files: string[] = [];
  const taken = new Set<string>();
  const nodes: ArchiveNode[] = [];
  for (const d of drafts) {
    const parent = dirs[d.dir % dirs.length] ?? "";
    const path = parent === "" ? d.name : `${parent}/${d.name}`;
    if (taken.has(path)) continue;
    taken.add(path);
    switch (d.kind) {
      case "dir":
        dirs.push(path);
        nodes.push({ kind: "dir", path, mode: d.mode, stamp: d.stamp, xattrs: d.xattrs });
        break;
      case "file":
        files.push(path);
        nodes.push({ kind: "file", path, mode: d.mode, stamp: d.stamp, size: d.size, seed: d.seed, xattrs: d.xattrs });
        break;
      case "hardlink": {
        const to = files[d.pick % Math.max(1, files.length)];
        if (to === undefined) {
          files.push(path);
          nodes.push({
            kind: "file",
            path,
            mode: 0o644,
            stamp: { uid: 0, gid: 0, mtimeNs: 1_500_000_000_123_456_789n, atimeNs: NOW_NS + 5_000_000_000_000n },
            size: 10,
            seed: 1,
            xattrs: {},
          });
        } else nodes.push({ kind: "hardlink", path, to });
        break;
      }
      case "symlink": {
        const sib = [...files, ...dirs.slice(1)];
        const other = sib[d.pick % Math.max(1, sib.length)] ?? "";
        const depth = parent === "" ? 0 : parent.split("/").length;
        const target = {
          sibling: other === "" ? "nothing-here" : `${"../".repeat(depth)}${other}`,
          up: "..",
          absolute: "/etc/hostname",
          dangling: `missing-${d.pick % 100}`,
          self: d.name, // a link to itself: ELOOP when followed
          dotdot: depth > 0 ? "../.." : ".",
        }[d.how];
        nodes.push({ kind: "symlink", path, target, stamp: d.stamp });
        break;
      }
      case "fifo":
        nodes.push({ kind: "fifo", path });
        break;
    }
  }
  return { nodes };
}

export const archiveTree: fc.Arbitrary<ArchiveTree> = fc.array(draft, { minLength: 3, maxLength: 40 }).map(resolveTree);

const PY_APPLY = `
import json, os, sys
ops = json.load(sys.stdin)
for o in ops["fifos"]:
    os.mkfifo(o)
for path, names in ops["xattrs"]:
    for k, v in names.items():
        os.setxattr(path, k, v.encode())
for path, uid, gid, mode, at, mt, link in ops["meta"]:
    os.chown(path, uid, gid, follow_symlinks=False)
    if not link:
        os.chmod(path, mode)
    os.utime(path, ns=(int(at), int(mt)), follow_symlinks=False)
`;

/** Writes the tree under the existing directory root. Metadata is applied deepest first, so a
 * directory's times are set after its entries were made. */
export async function materializeArchiveTree(root: string, tree: ArchiveTree): Promise<void> {
  const fifos: string[] = [];
  const xattrList: [string, Record<string, string>][] = [];
  const meta: [string, number, number, number, string, string, boolean][] = [];
  for (const n of tree.nodes) {
    const p = join(root, n.path);
    if (n.kind === "dir") mkdirSync(p);
    else if (n.kind === "file") await writeRandomFile(p, n.size, n.seed);
    else if (n.kind === "hardlink") linkSync(join(root, n.to), p);
    else if (n.kind === "symlink") symlinkSync(n.target, p);
    else fifos.push(p);
    if ((n.kind === "dir" || n.kind === "file") && Object.keys(n.xattrs).length > 0) xattrList.push([p, n.xattrs]);
    if (n.kind === "dir" || n.kind === "file") meta.push([p, n.stamp.uid, n.stamp.gid, n.mode, String(n.stamp.atimeNs), String(n.stamp.mtimeNs), false]);
    if (n.kind === "symlink") meta.push([p, n.stamp.uid, n.stamp.gid, 0, String(n.stamp.atimeNs), String(n.stamp.mtimeNs), true]);
  }
  meta.sort((a, b) => b[0].split("/").length - a[0].split("/").length); // deepest first
  const proc = Bun.spawn(["python3", "-c", PY_APPLY], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  proc.stdin.write(JSON.stringify({ fifos, xattrs: xattrList, meta }));
  await proc.stdin.end();
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`materializeArchiveTree: python3 failed (${code}): ${err}`);
}
