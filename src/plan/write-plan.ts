// Writes a plan directory (docs/scale-out.md "Plans") atomically: everything goes into a
// temporary directory beside it, which is renamed into place; an existing plan directory is
// refused unless --force (then it is replaced, its old outputs with it).
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { describeSysError, EscpError } from "../errors/escp-error.ts";
import type { Packing } from "./pack.ts";
import { parallelScript, slurmScript, type HostLine } from "./scripts.ts";
import { shardListText, shardName } from "./shard-list.ts";

export const PLAN_VERSION = 1;

export interface PlanJson {
  version: number;
  created: string;
  sources: string[];
  destination: string;
  shards: number;
  block_size: number;
  options: string[];
  run_cmd: string;
  shard_lists: { index: number; list: string; bytes: number; files: number; ranges: number }[];
  files: { src: string; dst: string; size: number; shard?: number; ranges?: { offset: number; length: number; shard: number }[] }[];
}

export interface PlanSpec {
  planDir: string;
  force: boolean;
  sources: string[];
  destination: string;
  destHost?: string;
  destUser?: string;
  destPath: string;
  blockSize: number;
  options: string[];
  runCmd: string;
  hosts: HostLine[];
  /** The hosts file's text, copied as PLAN/hosts. */
  hostsText?: string;
  maxParallel?: number;
  sshConfig?: string;
  packing: Packing;
  now?: Date;
}

export function planJson(spec: PlanSpec): PlanJson {
  const p = spec.packing;
  return {
    version: PLAN_VERSION,
    created: (spec.now ?? new Date()).toISOString(),
    sources: spec.sources.map((s) => resolve(s)),
    destination: spec.destination,
    shards: p.shards.length,
    block_size: spec.blockSize,
    options: spec.options,
    run_cmd: spec.runCmd,
    shard_lists: p.shards.map((s) => ({ index: s.index, list: `shards/${shardName(s.index)}.list`, bytes: s.bytes, files: s.files, ranges: s.ranges })),
    files: p.files.map((f) => ({
      src: f.src,
      dst: f.dst,
      size: f.size,
      ...(f.ranges !== undefined ? { ranges: f.ranges } : { shard: f.shard as number }),
    })),
  };
}

function fail(dir: string, what: string, e: unknown): EscpError {
  return new EscpError("E_WRITE", `--plan-dir ${dir}: ${what}: ${describeSysError(e)}`, { path: dir, cause: e });
}

/** Writes the plan directory; returns its absolute path. */
export function writePlanDir(spec: PlanSpec): string {
  const final = resolve(spec.planDir);
  if (existsSync(final) && !spec.force) {
    throw new EscpError("E_USAGE", `--plan-dir ${spec.planDir}: already exists (a plan and its outputs; --force replaces it)`, { path: spec.planDir });
  }
  const tmp = join(dirname(final), `.${basename(final)}.escp-${randomBytes(6).toString("hex")}.tmp`);
  try {
    mkdirSync(join(tmp, "shards"), { recursive: true });
    mkdirSync(join(tmp, "out"));
  } catch (e) {
    throw fail(spec.planDir, `cannot create ${tmp}`, e);
  }
  try {
    const json = planJson(spec);
    for (const s of spec.packing.shards) writeFileSync(join(tmp, "shards", `${shardName(s.index)}.list`), shardListText(s));
    writeFileSync(join(tmp, "plan.json"), `${JSON.stringify(json, null, 1)}\n`);
    if (spec.hostsText !== undefined) writeFileSync(join(tmp, "hosts"), spec.hostsText);
    const input = {
      planDir: final,
      shards: json.shards,
      destination: spec.destination,
      destPath: spec.destPath,
      options: spec.options,
      runCmd: spec.runCmd,
      hosts: spec.hosts,
      jobName: `escp-${basename(final).replace(/[^A-Za-z0-9._-]/g, "_")}`,
      ...(spec.destHost !== undefined ? { destHost: spec.destHost } : {}),
      ...(spec.destUser !== undefined ? { destUser: spec.destUser } : {}),
      ...(spec.maxParallel !== undefined ? { maxParallel: spec.maxParallel } : {}),
      ...(spec.sshConfig !== undefined ? { sshConfig: spec.sshConfig } : {}),
    };
    writeFileSync(join(tmp, "slurm.sbatch"), slurmScript(input));
    writeFileSync(join(tmp, "parallel.sh"), parallelScript(input));
    chmodSync(join(tmp, "slurm.sbatch"), 0o755);
    chmodSync(join(tmp, "parallel.sh"), 0o755);
    if (existsSync(final)) rmSync(final, { recursive: true, force: true }); // --force
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e instanceof EscpError ? e : fail(spec.planDir, "cannot write the plan", e);
  }
  return final;
}

/** Parses a --hosts file: "SRC_HOST DST_HOST" per line; blank lines and # comments skipped. */
export function parseHosts(file: string, text: string): HostLine[] {
  const out: HostLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const words = line.split(/\s+/);
    const [src, dst] = words;
    if (words.length !== 2 || src === undefined || dst === undefined) {
      throw new EscpError("E_USAGE", `--hosts ${file}: line ${i + 1}: expected "SRC_HOST DST_HOST" (- for this node), got ${JSON.stringify(raw)}`);
    }
    for (const h of [src, dst]) {
      if (h !== "-" && (h.startsWith("-") || /['"\\$`]/.test(h)))
        throw new EscpError("E_USAGE", `--hosts ${file}: line ${i + 1}: bad host name ${JSON.stringify(h)}`);
    }
    out.push({ src, dst });
  });
  if (out.length === 0) throw new EscpError("E_USAGE", `--hosts ${file}: no host lines`);
  return out;
}
