// `escp plan status` and `escp plan merge` on synthetic shard outputs (the --json lines a shard
// prints, ranges included: their subtrees computed from the real file), checked against b3sum:
// a complete plan gives a manifest that `b3sum -c` accepts, and every kind of gap is named.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { makeTmpDir } from "../../harness/tmp-dir.ts";
import { b3Hex, rangeSubtrees } from "./b3-reference.fixture.ts";
import { createPlan } from "./create.ts";
import { mergePlan, runMerge } from "./merge.ts";
import { plannedEntries, readPlan } from "./shard-events.ts";
import { shardName } from "./shard-list.ts";
import { planStatus } from "./status.ts";

const ENV = { ESCP_CONFIG: "/dev/null" };
const B = 64 * 1024;
const tmp = makeTmpDir("plan-merge");
const SRC = join(tmp, "tree");
const PLAN = join(tmp, "plan");
const contents = new Map<string, Uint8Array>(); // src → bytes

function put(rel: string, data: Uint8Array): void {
  const p = join(SRC, rel);
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, data);
  contents.set(p, data);
}

/** The JSON lines shard `i` would print for its entries (`skip`: entries it leaves out). */
function shardLines(
  i: number,
  opts: { skip?: (dst: string, offset?: number) => boolean; summary?: number; corrupt?: boolean; noCommit?: boolean } = {},
): string[] {
  const plan = readPlan(PLAN);
  const lines: string[] = [JSON.stringify({ type: "start", schema_version: 1 })];
  const mine = plannedEntries(plan).filter((e) => e.shard === i);
  for (const e of mine) {
    if (opts.skip?.(e.dst, e.offset)) continue;
    const data = contents.get(e.src) as Uint8Array;
    const base = { type: "file", schema_version: 1, status: "ok", path: e.src, rel: e.dst, bytes: e.length, resumed_bytes: 0 };
    if (e.offset === undefined) {
      lines.push(JSON.stringify({ ...base, digest: b3Hex(data) }));
      continue;
    }
    const subtrees = rangeSubtrees(data, e.offset, e.length, B);
    if (opts.corrupt === true) subtrees[0] = { ...(subtrees[0] as (typeof subtrees)[0]), cv: "00".repeat(32) };
    const last = e.offset + e.length === e.size && opts.noCommit !== true; // this synthetic run commits with the last range
    lines.push(
      JSON.stringify({ ...base, digest: last ? b3Hex(data) : null, range: { offset: e.offset, length: e.length, block_size: B, subtrees }, committed: last }),
    );
  }
  if (opts.summary !== undefined) {
    const error = opts.summary === 0 ? null : { code: "E_CONNECT", message: "data connections failed" };
    lines.push(JSON.stringify({ type: "summary", schema_version: 1, exit_status: opts.summary, error }));
  }
  return lines;
}

function writeOut(i: number, lines: string[], append = false): void {
  const f = join(PLAN, "out", `${shardName(i)}.jsonl`);
  const text = `${lines.join("\n")}\n`;
  writeFileSync(f, append && existsSync(f) ? readFileSync(f, "utf8") + text : text);
}

beforeAll(() => {
  put("big one.bin", new Uint8Array(randomBytes(9 * B + 4321)));
  put("two/also big.bin", new Uint8Array(randomBytes(7 * B)));
  put("back\\slash.txt", new Uint8Array(randomBytes(10)));
  put("empty", new Uint8Array(0));
  for (let i = 0; i < 12; i++) put(`small/s${i}`, new Uint8Array(randomBytes(i * 333)));
  createPlan(["-r", SRC, tmp, "--shards", "4", "--blocksize", "64K", "--plan-dir", PLAN], ENV);
});

describe("plan status and merge", () => {
  test("the plan splits both big files", () => {
    const plan = readPlan(PLAN);
    expect(
      plan.files
        .filter((f) => f.ranges !== undefined)
        .map((f) => f.dst)
        .sort(),
    ).toEqual(["tree/big one.bin", "tree/two/also big.bin"]);
  });

  test("nothing run: every shard not started, merge names what is missing", () => {
    const st = planStatus(PLAN);
    expect(st.shards.map((s) => s.state)).toEqual(["not-started", "not-started", "not-started", "not-started"]);
    expect(st.totals.entries_done).toBe(0);
    const m = mergePlan(PLAN);
    expect(m.lines).toEqual([]);
    expect(m.problems).toContain(`shard ${readPlan(PLAN).files.find((f) => f.dst === "tree/empty")?.shard}: tree/empty: not copied`);
    expect(m.problems.some((p) => /^shard \d: tree\/big one\.bin@\d+\+\d+: no verified range$/.test(p))).toBe(true);
    expect(runMerge(PLAN, undefined)).toBe(1);
    expect(existsSync(join(PLAN, "manifest.b3"))).toBe(false);
  });

  test("ok, failed, running: status per shard; a second attempt completes the failed one", () => {
    writeOut(0, shardLines(0, { summary: 0 }));
    writeOut(1, shardLines(1, { summary: 6, skip: (dst) => dst.startsWith("tree/small/") }));
    writeOut(2, shardLines(2)); // no summary yet: running
    let st = planStatus(PLAN);
    expect(st.shards.map((s) => s.state)).toEqual(["ok", "failed", "running", "not-started"]);
    expect(st.shards[1]).toMatchObject({ exit_status: 6, code: "E_CONNECT", attempts: 1 });
    expect(st.shards[0]?.entries_done).toBe(st.shards[0]?.entries as number);
    writeOut(1, ["not json: ssh noise", ...shardLines(1, { summary: 0, skip: (dst) => !dst.startsWith("tree/small/") })], true);
    writeOut(2, [JSON.stringify({ type: "summary", schema_version: 1, exit_status: 0, error: null })], true);
    writeOut(3, shardLines(3, { summary: 0 }));
    st = planStatus(PLAN);
    expect(st.shards.map((s) => s.state)).toEqual(["ok", "ok", "ok", "ok"]);
    expect(st.shards[1]?.attempts).toBe(2);
    expect(st.totals.entries_done).toBe(st.totals.entries);
    expect(st.totals.bytes_done).toBe([...contents.values()].reduce((n, d) => n + d.length, 0));
  });

  test("complete: the manifest lists every file, sorted, and b3sum -c accepts it", () => {
    expect(mergePlan(PLAN).problems).toEqual([]);
    const manifest = join(tmp, "m.b3");
    expect(runMerge(PLAN, manifest)).toBe(0);
    const text = readFileSync(manifest, "utf8");
    expect(text.trim().split("\n").length).toBe(contents.size);
    expect(text).toContain("\\"); // the backslash name, escaped as b3sum does
    const check = Bun.spawnSync(["b3sum", "-c", manifest], { cwd: tmp, stdout: "pipe", stderr: "pipe" });
    expect(check.stderr.toString()).toBe("");
    expect(check.exitCode).toBe(0);
    // the split files' digests came from their ranges' subtrees: they equal b3sum's
    const big = Bun.spawnSync(["b3sum", "--no-names", join(SRC, "big one.bin")])
      .stdout.toString()
      .trim();
    expect(text).toContain(`${big}  tree/big one.bin\n`);
  });

  test("a wrong subtree, a missing range and a short file are each named", () => {
    const plan = readPlan(PLAN);
    const big = plan.files.find((f) => f.dst === "tree/big one.bin");
    const r0 = big?.ranges?.[0];
    expect(r0).toBeDefined();
    const saved = readFileSync(join(PLAN, "out", `${shardName(r0?.shard as number)}.jsonl`), "utf8");
    writeOut(r0?.shard as number, shardLines(r0?.shard as number, { summary: 0, corrupt: true }), true); // a later attempt wins
    let m = mergePlan(PLAN);
    expect(m.problems.some((p) => p.startsWith("tree/big one.bin: BLAKE3 from the ranges") && p.includes("differs from the committed digest"))).toBe(true);
    writeOut(r0?.shard as number, shardLines(r0?.shard as number, { summary: 0, skip: (dst, off) => dst === "tree/big one.bin" && off === 0 }));
    m = mergePlan(PLAN);
    expect(m.problems).toContain(`shard ${r0?.shard}: tree/big one.bin@0+${r0?.length}: no verified range`);
    writeFileSync(join(PLAN, "out", `${shardName(r0?.shard as number)}.jsonl`), saved);
    expect(mergePlan(PLAN).problems).toEqual([]);
    rmSync(join(PLAN, "out", `${shardName(3)}.jsonl`));
    expect(mergePlan(PLAN).problems.every((p) => p.startsWith("shard 3: "))).toBe(true);
  });

  test("a rerun of the committing range that does not commit again keeps the first commit's digest", () => {
    writeOut(3, shardLines(3, { summary: 0 }));
    const big = readPlan(PLAN).files.find((f) => f.dst === "tree/big one.bin");
    const lastShard = big?.ranges?.at(-1)?.shard as number;
    writeOut(lastShard, shardLines(lastShard, { summary: 0, noCommit: true }), true);
    expect(mergePlan(PLAN).problems).toEqual([]);
  });

  test("an unreadable plan is an error (E_USAGE)", () => {
    expect(() => planStatus(join(tmp, "nope"))).toThrow("cannot read the plan");
  });
});
