// Independent byte check for regression runs: what escp should have produced from a source
// tree (symlinks followed, FIFOs / dangling links / loops skipped, as escp documents) versus
// what is at the destination, compared by BLAKE3 (b3sum), sizes and entry lists.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { b3sumMany } from "../b3sum.ts";

interface View {
  files: Map<string, number>;
  dirs: Set<string>;
}

function view(root: string, follow: boolean): View {
  const out: View = { files: new Map(), dirs: new Set() };
  const walk = (abs: string, rel: string, seen: Set<string>): void => {
    for (const name of readdirSync(abs)) {
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      let st;
      try {
        st = follow ? statSync(a) : statSync(a, { throwIfNoEntry: true });
      } catch {
        continue; // dangling symlink: escp skips it
      }
      if (st.isDirectory()) {
        const id = `${st.dev}:${st.ino}`;
        if (seen.has(id)) continue; // loop: escp skips it
        out.dirs.add(r);
        walk(a, r, new Set(seen).add(id));
      } else if (st.isFile()) out.files.set(r, st.size);
    }
  };
  const st = statSync(root);
  walk(root, "", new Set([`${st.dev}:${st.ino}`]));
  return out;
}

/** Differences between the expected copy of `src` and `dst` (empty = identical). */
export async function verifyCopy(src: string, dst: string): Promise<string[]> {
  const want = view(src, true);
  const got = view(dst, false);
  const diffs: string[] = [];
  for (const d of want.dirs) if (!got.dirs.has(d)) diffs.push(`missing dir ${d}`);
  for (const d of got.dirs) if (!want.dirs.has(d)) diffs.push(`extra dir ${d}`);
  const common: string[] = [];
  for (const [f, size] of want.files) {
    const g = got.files.get(f);
    if (g === undefined) diffs.push(`missing file ${f}`);
    else if (g !== size) diffs.push(`size ${f}: ${g} != ${size}`);
    else common.push(f);
  }
  for (const f of got.files.keys()) if (!want.files.has(f)) diffs.push(`extra file ${f}`);
  const [a, b] = await Promise.all([b3sumMany(common.map((f) => join(src, f))), b3sumMany(common.map((f) => join(dst, f)))]);
  common.forEach((f, i) => {
    if (a[i] !== b[i]) diffs.push(`content ${f}`);
  });
  return diffs;
}

/** Bytes and files escp is expected to move for `src` (for throughput figures). */
export function sourceTotals(src: string): { bytes: number; files: number } {
  const v = view(src, true);
  let bytes = 0;
  for (const size of v.files.values()) bytes += size;
  return { bytes, files: v.files.size };
}
