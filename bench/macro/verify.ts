// Every run is checked independently of the tool: the destination must hold exactly the
// dataset's files and directories with the manifest's sizes and BLAKE3 digests (b3sum).
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { b3sum } from "../../harness/b3sum.ts";
import { hashRecords, type ManifestRecord } from "../../datasets/manifest.ts";
import type { Materialized } from "./datasets.ts";

export interface Verdict {
  ok: boolean;
  error?: string;
}

const MAX_LISTED = 5;

function fail(diffs: string[]): Verdict {
  const more = diffs.length > MAX_LISTED ? ` (+${diffs.length - MAX_LISTED} more)` : "";
  return { ok: false, error: `${diffs.slice(0, MAX_LISTED).join("; ")}${more}` };
}

/** Relative paths of files (with sizes) and directories under `root`, no symlinks followed. */
function walk(root: string): { files: Map<string, number>; dirs: Set<string>; other: string[] } {
  const out = { files: new Map<string, number>(), dirs: new Set<string>(), other: [] as string[] };
  const pending = [""];
  while (pending.length > 0) {
    const rel = pending.pop() as string;
    for (const name of readdirSync(rel === "" ? root : join(root, rel))) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) {
        out.dirs.add(r);
        pending.push(r);
      } else if (st.isFile()) out.files.set(r, st.size);
      else out.other.push(r);
    }
  }
  return out;
}

/** Whether `dst` (the copy's path: the file, or the tree root) equals the dataset. */
export async function verifyCopy(ds: Materialized, dst: string): Promise<Verdict> {
  try {
    if (ds.kind === "file") {
      const want = ds.records[0];
      if (want?.blake3 === undefined) return { ok: false, error: "dataset manifest has no digest" };
      let size: number;
      try {
        const st = lstatSync(dst);
        if (!st.isFile()) return { ok: false, error: `${dst} is not a regular file` };
        size = st.size;
      } catch {
        return { ok: false, error: `${dst} is missing` };
      }
      if (size !== want.size) return { ok: false, error: `size ${size} ≠ ${want.size}` };
      const got = await b3sum(dst);
      return got === want.blake3 ? { ok: true } : { ok: false, error: `BLAKE3 differs (${got.slice(0, 16)}… ≠ ${want.blake3.slice(0, 16)}…)` };
    }
    let got;
    try {
      got = walk(dst);
    } catch (e) {
      return { ok: false, error: `cannot walk ${dst}: ${(e as Error).message}` };
    }
    const diffs: string[] = [];
    const common: { path: string; blake3: string }[] = [];
    const wantFiles = new Set<string>();
    for (const r of ds.records) {
      if (r.type === "dir") {
        if (!got.dirs.has(r.path)) diffs.push(`missing dir ${r.path}`);
      } else if (r.type === "file") {
        wantFiles.add(r.path);
        const size = got.files.get(r.path);
        if (size === undefined) diffs.push(`missing file ${r.path}`);
        else if (size !== r.size) diffs.push(`size ${r.path}: ${size} ≠ ${r.size}`);
        else if (r.size > 0 && r.blake3 !== undefined) common.push({ path: r.path, blake3: r.blake3 });
      }
    }
    const wantDirs = new Set(ds.records.filter((r) => r.type === "dir").map((r) => r.path));
    for (const d of got.dirs) if (!wantDirs.has(d)) diffs.push(`extra dir ${d}`);
    for (const f of got.files.keys()) if (!wantFiles.has(f)) diffs.push(`extra file ${f}`);
    for (const o of got.other) diffs.push(`unexpected entry ${o}`);
    if (diffs.length > 0) return fail(diffs);
    // b3sum over the copy, 1000 paths per process, one process per CPU at a time (a
    // million-file copy is hashed in ≈ 1 min here instead of twice that one batch at a time).
    const copied: ManifestRecord[] = common.map((c) => ({ path: c.path, type: "file", size: 0, mode: "" }));
    await hashRecords(dst, copied);
    common.forEach((c, i) => {
      if (copied[i]?.blake3 !== c.blake3) diffs.push(`content ${c.path}`);
    });
    return diffs.length > 0 ? fail(diffs) : { ok: true };
  } catch (e) {
    return { ok: false, error: `verification failed: ${(e as Error).message}` };
  }
}

/** For the dummy engine: the run directory must hold no regular file (nor a .part). */
export function verifyNothingWritten(runDir: string): Verdict {
  try {
    const got = walk(runDir);
    if (got.files.size === 0) return { ok: true };
    return fail([...got.files.keys()].map((f) => `dummy engine wrote ${f}`));
  } catch (e) {
    return { ok: false, error: `cannot walk ${runDir}: ${(e as Error).message}` };
  }
}
