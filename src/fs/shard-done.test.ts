// --shard-done: which entries of a shard an earlier attempt's --json output reports verified.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import { EscpError } from "../errors/escp-error.ts";
import { doneKeys, skipDone } from "./shard-done.ts";

const dir = mkdtempSync(join(tmpdir(), "escp-shard-done-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const src = join(dir, "a.bin");
writeFileSync(src, Buffer.alloc(3000, 7));
const big = join(dir, "big.bin");
writeFileSync(big, Buffer.alloc(70000, 1));

const ev = (o: object) => JSON.stringify({ type: "file", schema_version: 1, status: "ok", path: "x", resumed_bytes: 0, digest: null, ...o });
const out = join(dir, "shard-000.jsonl");
writeFileSync(
  out,
  [
    JSON.stringify({ type: "start", schema_version: 1 }),
    ev({ rel: "d/a.bin", bytes: 3000 }),
    ev({ rel: "d/big.bin", bytes: 4096, range: { offset: 0, length: 65536, block_size: 65536, subtrees: [] }, committed: false }),
    JSON.stringify({ type: "file", schema_version: 1, status: "failed", code: "E_WRITE", message: "m", path: "p" }),
    "ssh: some noise",
    `${ev({ rel: "d/torn", bytes: 1 }).slice(0, 20)}`,
  ].join("\n"),
);

test("ok events give keys by destination and bytes (ranges by offset and length); other lines are ignored", () => {
  expect([...doneKeys(out)].sort()).toEqual(["d/a.bin#3000", "d/big.bin@0+65536"]);
});

test("skipDone keeps what was not verified: another range, a source whose size changed, entries without a dst", () => {
  const r = skipDone(out, [
    { src, dst: "d/a.bin" },
    { src: big, dst: "d/big.bin", range: { offset: 0, length: 65536 } },
    { src: big, dst: "d/big.bin", range: { offset: 65536, length: 4464 } },
    { src, dst: "d/other" },
    { src },
  ]);
  expect(r.skipped).toBe(2);
  expect(r.entries.map((e) => `${e.dst}${e.range ? `@${e.range.offset}` : ""}`)).toEqual(["d/big.bin@65536", "d/other", "undefined"]);
  writeFileSync(src, Buffer.alloc(3001, 7)); // the source grew since: sent again
  expect(skipDone(out, [{ src, dst: "d/a.bin" }]).skipped).toBe(0);
  writeFileSync(src, Buffer.alloc(3000, 7));
});

test("a missing file is a usage error naming it; --shard-done needs --shard", () => {
  expect(() => doneKeys(join(dir, "nope.jsonl"))).toThrow(/^--shard-done .*nope\.jsonl: cannot read: /);
  let err: unknown;
  try {
    loadConfig(["--shard-done", out, src, join(dir, "dst")], { ESCP_CONFIG: "/dev/null" });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EscpError);
  expect((err as EscpError).code).toBe("E_USAGE");
  expect((err as EscpError).message).toBe("--shard-done: only with --shard");
});

test("--shard with --shard-done drops the verified entries from the run's list", () => {
  const list = join(dir, "shard.list");
  writeFileSync(list, `- [${JSON.stringify(src)}, "d/a.bin"]\n- [${JSON.stringify(`${big}@65536+4464`)}, "d/big.bin"]\n`);
  const cfg = loadConfig(["--shard", list, "--shard-done", out, "--blocksize", "65536", join(dir, "dst")], { ESCP_CONFIG: "/dev/null" });
  expect(cfg.filelistEntries.map((e) => e.dst)).toEqual(["d/big.bin"]);
  expect(cfg.shardDone).toEqual({ skipped: 1, of: 2 });
});
