// `escp plan merge PLAN [--manifest FILE]`: checks that every planned file and range arrived
// with its planned size (a split file's ranges cover it exactly, no gap, no overlap), rebuilds a
// split file's whole-file BLAKE3 from its ranges' subtrees and checks it against the digest of
// the range that committed it, and — only when all is there — writes the b3sum manifest
// (default PLAN/manifest.b3), sorted by name. Otherwise exit 1 with one line per missing piece.
import { randomBytes } from "node:crypto";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { term } from "../cli/progress.ts";
import { describeSysError, EscpError } from "../errors/escp-error.ts";
import { manifestLine } from "../transfer/manifest.ts";
import { rootFromSubtrees, type Subtree } from "./b3-tree.ts";
import { entryDone, okFor, plannedEntries, readPlan, readShardOutputs, type OkEvent, type PlannedEntry } from "./shard-events.ts";
import type { PlanJson } from "./write-plan.ts";

/** Lines of the missing-pieces report shown before "… and N more". */
export const REPORT_CAP = 50;

export interface MergeResult {
  /** `<digest>  <dst>` pairs of every file, when complete. */
  lines: { dst: string; digest: string }[];
  /** One line per problem ("shard 3: data/big.bin@67108864+67108864: no verified range"). */
  problems: string[];
}

function what(e: PlannedEntry): string {
  return e.offset === undefined ? e.dst : `${e.dst}@${e.offset}+${e.length}`;
}

function whyMissing(e: PlannedEntry, ev: OkEvent | undefined): string {
  if (ev === undefined) return e.offset === undefined ? "not copied" : "no verified range";
  if (ev.bytes !== e.length) return `copied ${ev.bytes} bytes, planned ${e.length}`;
  return e.offset === undefined ? "copied as a range, planned whole" : "the verified range does not match the plan";
}

/** Gaps and overlaps of a file's planned ranges (a plan written by hand or truncated). */
function coverage(f: PlanJson["files"][number]): string | undefined {
  let at = 0;
  for (const r of [...(f.ranges ?? [])].sort((a, b) => a.offset - b.offset)) {
    if (r.offset > at) return `bytes ${at}..${r.offset} are in no range`;
    if (r.offset < at) return `ranges overlap at byte ${r.offset}`;
    at = r.offset + r.length;
  }
  return at === f.size ? undefined : `ranges end at byte ${at}, the file has ${f.size}`;
}

/** The digest of a split file from its ranges' events, or why there is none. */
function splitDigest(f: PlanJson["files"][number], events: OkEvent[], blockSize: number, committed: string | undefined): { digest: string } | { why: string } {
  const committing = events.find((ev) => ev.committed === true && typeof ev.digest === "string")?.digest ?? committed;
  if (committing === undefined) return { why: "no range reports committing the file (committed: true with its digest)" };
  const bs = events[0]?.range?.block_size ?? blockSize;
  if (events.some((ev) => ev.range?.block_size !== bs)) return { why: "its ranges were copied with different block sizes" };
  const subtrees: Subtree[] = events.flatMap((ev) => ev.range?.subtrees ?? []);
  let root: string;
  try {
    root = rootFromSubtrees(Math.ceil(f.size / bs), subtrees);
  } catch (e) {
    return { why: `cannot rebuild its BLAKE3 from the ranges: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (root !== committing) return { why: `BLAKE3 from the ranges ${root} differs from the committed digest ${committing}` };
  return { digest: root };
}

export function mergePlan(dir: string): MergeResult {
  const plan = readPlan(dir);
  const outputs = readShardOutputs(dir, plan);
  const byFile = new Map<string, PlannedEntry[]>();
  for (const e of plannedEntries(plan)) byFile.set(e.dst, [...(byFile.get(e.dst) ?? []), e]);
  const res: MergeResult = { lines: [], problems: [] };
  for (const f of plan.files) {
    const entries = byFile.get(f.dst) ?? [];
    const gap = f.ranges !== undefined ? coverage(f) : undefined;
    if (gap !== undefined) {
      res.problems.push(`plan: ${f.dst}: ${gap}`);
      continue;
    }
    const events: OkEvent[] = [];
    let missing = false;
    for (const e of entries) {
      const ev = okFor(outputs[e.shard], e);
      if (!entryDone(e, ev)) {
        res.problems.push(`shard ${e.shard}: ${what(e)}: ${whyMissing(e, ev)}`);
        missing = true;
      } else events.push(ev as OkEvent);
    }
    if (missing) continue;
    if (f.ranges === undefined) {
      const digest = events[0]?.digest;
      if (typeof digest !== "string") res.problems.push(`shard ${f.shard}: ${f.dst}: copied without a digest (--nochecksum)`);
      else res.lines.push({ dst: f.dst, digest });
      continue;
    }
    const committed = outputs.map((o) => o.committed.get(f.dst)).find((d) => d !== undefined);
    const d = splitDigest(f, events, plan.block_size, committed);
    if ("why" in d) res.problems.push(`${f.dst}: ${d.why}`);
    else res.lines.push({ dst: f.dst, digest: d.digest });
  }
  res.lines.sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0));
  return res;
}

/** Writes FILE through a temporary beside it, renamed into place. */
function writeManifest(file: string, text: string): void {
  const path = resolve(file);
  const tmp = join(dirname(path), `.${basename(path)}.escp-${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, text, { flag: "wx" });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new EscpError("E_WRITE", `--manifest ${file}: ${describeSysError(e)}`, { path: file, cause: e });
  }
}

export function runMerge(dir: string, manifest: string | undefined): number {
  const res = mergePlan(dir);
  if (res.problems.length > 0) {
    for (const p of res.problems.slice(0, REPORT_CAP)) term.error(p);
    if (res.problems.length > REPORT_CAP) term.error(`… and ${res.problems.length - REPORT_CAP} more`);
    term.error(`escp plan merge: incomplete: ${res.problems.length} problem(s), ${res.lines.length} files verified; no manifest written`);
    return 1;
  }
  const file = manifest ?? join(dir, "manifest.b3");
  writeManifest(file, res.lines.map((l) => manifestLine(l.digest, l.dst)).join(""));
  term.info(`escp plan merge: ${res.lines.length} files verified → ${file}`);
  return 0;
}
