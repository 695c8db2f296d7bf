// Reading a plan back: plan.json, what each shard was given, and what its out/shard-NNN.jsonl
// says (the --json lines of every attempt, appended: ok file events are united, a later event
// for the same entry wins; the shard's state is its last attempt's).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describeSysError, EscpError } from "../errors/escp-error.ts";
import { shardName } from "./shard-list.ts";
import type { Subtree } from "./b3-tree.ts";
import type { PlanJson } from "./write-plan.ts";

/** One planned entry of a shard: a whole file or one range. */
export interface PlannedEntry {
  shard: number;
  src: string;
  dst: string;
  /** The file's size. */
  size: number;
  /** Set for a range. */
  offset?: number;
  /** Bytes the entry moves. */
  length: number;
}

/** An ok `file` event as merge needs it. */
export interface OkEvent {
  path: string;
  rel: string;
  bytes: number;
  digest: string | null;
  range?: { offset: number; length: number; block_size: number; subtrees: Subtree[] };
  committed?: boolean;
}

export type ShardState =
  | { kind: "not-started" }
  | { kind: "running" }
  | { kind: "ok" }
  | { kind: "failed"; exitStatus: number; code: string | null; message: string | null };

export interface ShardOutput {
  index: number;
  state: ShardState;
  attempts: number;
  /** Ok events keyed by entryKey, the latest of each. */
  ok: Map<string, OkEvent>;
  /** Whole-file digests reported by ranges that committed their file, by rel (any attempt:
   *  a rerun of a range after its file was named may not say committed again). */
  committed: Map<string, string>;
  /** Lines that are not JSON (ssh's or a wrapper's noise): counted, otherwise ignored. */
  junk: number;
}

export function entryKey(dst: string, offset: number | undefined): string {
  return offset === undefined ? dst : `${dst}@${offset}`;
}

export function plannedEntries(plan: PlanJson): PlannedEntry[] {
  const out: PlannedEntry[] = [];
  for (const f of plan.files) {
    if (f.ranges === undefined) out.push({ shard: f.shard as number, src: f.src, dst: f.dst, size: f.size, length: f.size });
    else for (const r of f.ranges) out.push({ shard: r.shard, src: f.src, dst: f.dst, size: f.size, offset: r.offset, length: r.length });
  }
  return out;
}

/** plan.json of PLAN; E_USAGE naming it when it cannot be read or is not a plan. */
export function readPlan(dir: string): PlanJson {
  const file = join(dir, "plan.json");
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    const why = e instanceof SyntaxError ? `not JSON: ${e.message}` : describeSysError(e);
    throw new EscpError("E_USAGE", `${file}: cannot read the plan: ${why}`, { path: file, cause: e });
  }
  const p = doc as Partial<PlanJson>;
  if (p.version !== 1 || !Array.isArray(p.files) || !Array.isArray(p.shard_lists) || typeof p.shards !== "number") {
    throw new EscpError("E_USAGE", `${file}: not an escp plan (version 1)`, { path: file });
  }
  return p as PlanJson;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses one shard's jsonl text. */
export function parseShardOutput(index: number, text: string | undefined): ShardOutput {
  const out: ShardOutput = { index, state: { kind: "not-started" }, attempts: 0, ok: new Map(), committed: new Map(), junk: 0 };
  if (text === undefined || text.trim() === "") return out;
  let open = false; // lines seen since the last summary
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      out.junk++;
      continue;
    }
    if (!isObject(ev)) {
      out.junk++;
      continue;
    }
    if (!open) out.attempts++;
    open = true;
    if (ev.type === "file" && ev.status === "ok") {
      const range = isObject(ev.range) ? (ev.range as unknown as OkEvent["range"]) : undefined;
      const ok: OkEvent = {
        path: String(ev.path ?? ""),
        rel: String(ev.rel ?? ""),
        bytes: Number(ev.bytes),
        digest: typeof ev.digest === "string" ? ev.digest : null,
        ...(range !== undefined ? { range } : {}),
        ...(typeof ev.committed === "boolean" ? { committed: ev.committed } : {}),
      };
      out.ok.set(entryKey(ok.rel, range?.offset), ok);
      if (ok.committed === true && ok.digest !== null) out.committed.set(ok.rel, ok.digest);
      if (ok.path !== "") out.ok.set(`path:${entryKey(ok.path, range?.offset)}`, ok);
    } else if (ev.type === "summary") {
      open = false;
      const status = Number(ev.exit_status);
      const err = isObject(ev.error) ? ev.error : undefined;
      out.state =
        status === 0
          ? { kind: "ok" }
          : {
              kind: "failed",
              exitStatus: status,
              code: typeof err?.code === "string" ? err.code : null,
              message: typeof err?.message === "string" ? err.message : null,
            };
    }
  }
  if (open) out.state = { kind: "running" };
  return out;
}

/** parallel.sh's joblog: the last finished run of each shard, with its exit status (a task that
 *  failed before escp printed anything — ssh, or the command not found — shows only here). */
export function readJoblog(dir: string): Map<number, { exit: number; signal: number }> {
  const out = new Map<number, { exit: number; signal: number }>();
  let text: string;
  try {
    text = readFileSync(join(dir, "out", "parallel.joblog"), "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n").slice(1)) {
    const cols = line.split("\t");
    const m = / --task (\d+)$/.exec(cols[8] ?? "");
    if (cols.length < 9 || !m) continue;
    out.set(Number(m[1]), { exit: Number(cols[6]), signal: Number(cols[7]) });
  }
  return out;
}

/** Every shard's output (a missing file: not started), with parallel.sh's joblog for a task that
 *  ended without a summary line. */
export function readShardOutputs(dir: string, plan: PlanJson): ShardOutput[] {
  const joblog = readJoblog(dir);
  return Array.from({ length: plan.shards }, (_, i) => {
    let text: string | undefined;
    try {
      text = readFileSync(join(dir, "out", `${shardName(i)}.jsonl`), "utf8");
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw new EscpError("E_USAGE", `${join(dir, "out")}: ${describeSysError(e)}`, { cause: e });
    }
    const out = parseShardOutput(i, text);
    const job = joblog.get(i);
    const ended = job !== undefined && (job.exit !== 0 || job.signal !== 0);
    if (ended && (out.state.kind === "not-started" || out.state.kind === "running")) {
      out.state = { kind: "failed", exitStatus: job.signal !== 0 ? 128 + job.signal : job.exit, code: null, message: null };
    }
    return out;
  });
}

/** The ok event of a planned entry, by its destination name, else by its source path. */
export function okFor(out: ShardOutput | undefined, e: PlannedEntry): OkEvent | undefined {
  if (out === undefined) return undefined;
  return out.ok.get(entryKey(e.dst, e.offset)) ?? out.ok.get(`path:${entryKey(e.src, e.offset)}`);
}

/** Whether an ok event moved the whole planned entry. */
export function entryDone(e: PlannedEntry, ev: OkEvent | undefined): boolean {
  if (ev === undefined || ev.bytes !== e.length) return false;
  if (e.offset === undefined) return ev.range === undefined;
  return ev.range !== undefined && ev.range.offset === e.offset && ev.range.length === e.length;
}
