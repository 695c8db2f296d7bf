// `escp plan status PLAN [--json]`: each shard's state (not started, running, ok, failed with
// its exit status and error code) and its entries and bytes done against the plan, then the
// totals. Exit 0 whatever the shards did; only an unreadable plan is an error.
import { term } from "../cli/progress.ts";
import { humanBytes } from "./human.ts";
import { entryDone, okFor, plannedEntries, readPlan, readShardOutputs, type ShardState } from "./shard-events.ts";
import { shardName } from "./shard-list.ts";

export interface ShardStatus {
  index: number;
  state: ShardState["kind"];
  exit_status: number | null;
  code: string | null;
  attempts: number;
  entries_done: number;
  entries: number;
  bytes_done: number;
  bytes: number;
}

export interface PlanStatus {
  shards: ShardStatus[];
  totals: { entries_done: number; entries: number; bytes_done: number; bytes: number; by_state: Record<ShardState["kind"], number> };
}

export function planStatus(dir: string): PlanStatus {
  const plan = readPlan(dir);
  const outputs = readShardOutputs(dir, plan);
  const shards: ShardStatus[] = outputs.map((o) => ({
    index: o.index,
    state: o.state.kind,
    exit_status: o.state.kind === "failed" ? o.state.exitStatus : o.state.kind === "ok" ? 0 : null,
    code: o.state.kind === "failed" ? o.state.code : null,
    attempts: o.attempts,
    entries_done: 0,
    entries: 0,
    bytes_done: 0,
    bytes: 0,
  }));
  for (const e of plannedEntries(plan)) {
    const s = shards[e.shard];
    if (s === undefined) continue;
    s.entries++;
    s.bytes += e.length;
    if (entryDone(e, okFor(outputs[e.shard], e))) {
      s.entries_done++;
      s.bytes_done += e.length;
    }
  }
  const by_state = { "not-started": 0, running: 0, ok: 0, failed: 0 };
  const totals = { entries_done: 0, entries: 0, bytes_done: 0, bytes: 0, by_state };
  for (const s of shards) {
    by_state[s.state]++;
    totals.entries_done += s.entries_done;
    totals.entries += s.entries;
    totals.bytes_done += s.bytes_done;
    totals.bytes += s.bytes;
  }
  return { shards, totals };
}

function stateText(s: ShardStatus): string {
  if (s.state === "failed") return `failed (exit ${s.exit_status}${s.code !== null ? `, ${s.code}` : ""})`;
  if (s.state === "not-started") return "not started";
  return s.state;
}

export function statusText(st: PlanStatus): string[] {
  const lines = st.shards.map(
    (s) =>
      `${shardName(s.index)}  ${stateText(s).padEnd(22)} ${`${s.entries_done}/${s.entries}`.padStart(11)} entries  ` +
      `${humanBytes(s.bytes_done)} / ${humanBytes(s.bytes)}${s.attempts > 1 ? `  (${s.attempts} attempts)` : ""}`,
  );
  const t = st.totals;
  const states = (["ok", "failed", "running", "not-started"] as const).filter((k) => t.by_state[k] > 0).map((k) => `${t.by_state[k]} ${k.replace("-", " ")}`);
  lines.push(
    `total: ${st.shards.length} shards (${states.join(", ")}); ${t.entries_done}/${t.entries} entries, ${humanBytes(t.bytes_done)} / ${humanBytes(t.bytes)}`,
  );
  return lines;
}

export function runStatus(dir: string, json: boolean): number {
  const st = planStatus(dir);
  if (json) term.json(JSON.stringify(st));
  else for (const l of statusText(st)) term.info(l);
  return 0;
}
