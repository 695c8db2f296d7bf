// `escp plan SRC… DEST --shards N [options]`: one walk of the local sources, bin packing into
// N shards, the plan directory written atomically. The transfer options given with it are
// recorded (plan.json options) and passed to every shard; the plan's own options are not.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { tokenizeArgv, type ParsedArgv } from "../cli/args.ts";
import { term } from "../cli/progress.ts";
import { baseOptions, configFrom } from "../config/load.ts";
import { OPTION_TABLE, type Options, type OptionSpec } from "../config/options.ts";
import { humanBytes } from "./human.ts";
import { describeSysError, EscpError } from "../errors/escp-error.ts";
import type { SourceSpec } from "../fs/discover.ts";
import { log } from "../log/logger.ts";
import { packShards } from "./pack.ts";
import { walkPlanSources } from "./walk.ts";
import { parseHosts, writePlanDir } from "./write-plan.ts";

/** Options that are the plan's business or the launch scripts', never a shard's. */
const NOT_PASSED: ReadonlySet<keyof Options> = new Set<keyof Options>([
  "filelist",
  "json",
  "manifest",
  "help",
  "version",
  "license",
  "server",
  "mgmt",
  "restrict",
  "recursive",
  "blocksize",
  "quiet",
]);

/** File names among the passed options: made absolute (the plan directory's file system is shared). */
const FILE_VALUED: ReadonlySet<keyof Options> = new Set<keyof Options>(["sshConfig", "identity", "logfile", "profile"]);

function flagWords(spec: OptionSpec, value: unknown): string[] {
  const name = spec.long !== undefined ? `--${spec.long}` : `-${spec.short}`;
  if (spec.type === "bool") {
    if (value === true) return [name];
    return spec.negatable === true ? [`--no-${spec.long}`] : [];
  }
  if (spec.type === "list") return (value as string[]).flatMap((v) => [name, v]);
  if (FILE_VALUED.has(spec.field)) return [`${name}=${resolve(String(value))}`]; // the shard runs elsewhere
  if (spec.field === "ioengine") return []; // written with ioengineRx below
  const v = typeof value === "number" ? value / (spec.scale ?? 1) : value;
  return spec.long !== undefined ? [`${name}=${String(v)}`] : [name, String(v)];
}

/** The shards' escp options: what was typed on the command line (canonical spelling), the
 *  plan's block size always. Environment and /etc/escp.conf settings stay the nodes' own. */
export function shardOptions(opts: Options, flags: ParsedArgv["flags"]): string[] {
  const out: string[] = [];
  for (const spec of OPTION_TABLE) {
    if (spec.plan === true || NOT_PASSED.has(spec.field) || flags[spec.field] === undefined) continue;
    if (spec.field === "ioengine") {
      out.push(`--ioengine=${opts.ioengine === opts.ioengineRx ? opts.ioengine : `${opts.ioengine}::${opts.ioengineRx}`}`);
      continue;
    }
    out.push(...flagWords(spec, opts[spec.field]));
  }
  out.push(`--blocksize=${opts.blocksize}`);
  return out;
}

export function createPlan(argv: string[], env: Record<string, string | undefined>): number {
  const cli = tokenizeArgv(argv);
  for (const w of cli.warnings) log.warn(w);
  const opts: Options = { ...baseOptions(env), ...cli.values };
  if (opts.shards === undefined) throw new EscpError("E_USAGE", "escp plan: --shards N is required (escp plan SRC... DEST --shards N)");
  if (cli.flags.manifest !== undefined)
    throw new EscpError("E_USAGE", `${cli.flags.manifest}: not with escp plan (escp plan merge PLAN --manifest FILE writes it)`);
  if (cli.flags.resume !== undefined && !opts.resume)
    throw new EscpError("E_USAGE", `${cli.flags.resume}: not with escp plan (a shard always resumes: a rerun continues it)`);
  const cfg = configFrom(opts, cli.flags, cli.positionals, true);
  if (cfg.remote !== undefined) throw new EscpError("E_USAGE", "escp plan: the sources must be local (a shard runs where its files are)");
  if (cfg.stdin === true || cfg.stdout === true) throw new EscpError("E_USAGE", "escp plan: - (standard input or output) cannot be planned");
  const dest = cfg.dest;
  if (dest === undefined) throw new EscpError("E_USAGE", "escp plan: missing destination");
  let hostsText: string | undefined;
  if (opts.hosts !== undefined) {
    try {
      hostsText = readFileSync(opts.hosts, "utf8");
    } catch (e) {
      throw new EscpError("E_USAGE", `--hosts ${opts.hosts}: cannot read: ${describeSysError(e)}`, { path: opts.hosts });
    }
  }
  const hosts = hostsText !== undefined ? parseHosts(opts.hosts as string, hostsText) : [];
  if (existsSync(opts.planDir) && !opts.force) {
    throw new EscpError("E_USAGE", `--plan-dir ${opts.planDir}: already exists (a plan and its outputs; --force replaces it)`, { path: opts.planDir });
  }
  const filelist = opts.filelist !== undefined;
  const sources: SourceSpec[] = filelist
    ? cfg.filelistEntries.map((e) => ({ path: e.src, ...(e.dst !== undefined ? { dst: e.dst } : {}) }))
    : cfg.sources.map((path) => ({ path }));
  const walked = walkPlanSources(sources, dest, opts.recursive || opts.archive, filelist, opts.hosts !== undefined);
  for (const n of walked.notices) term.warn(`escp plan: ${n}`);
  if (walked.problems.length > 0) {
    for (const p of walked.problems) term.error(`escp plan: ${p}`);
    throw new EscpError("E_SOURCE_UNREADABLE", `escp plan: ${walked.problems.length} source problem(s); no plan written`);
  }
  if (walked.files.length === 0) throw new EscpError("E_NOTHING", "escp plan: no files to plan");
  const packing = packShards(walked.files, opts.shards, opts.blocksize);
  const empty = packing.shards.filter((s) => s.entries.length === 0).length;
  if (empty > 0) {
    const items = packing.shards.reduce((n, s) => n + s.entries.length, 0);
    throw new EscpError(
      "E_USAGE",
      `--shards ${opts.shards}: only ${items} entries to share out (a file is split only when larger than total/N); use --shards ${items} or fewer`,
    );
  }
  const destination = positionalDest(cli.positionals);
  const dir = writePlanDir({
    planDir: opts.planDir,
    force: opts.force,
    sources: filelist ? cfg.filelistEntries.map((e) => e.src) : cfg.sources,
    destination,
    destPath: dest.path,
    ...(dest.host !== undefined ? { destHost: dest.host } : {}),
    ...(dest.user !== undefined ? { destUser: dest.user } : {}),
    blockSize: opts.blocksize,
    options: shardOptions(opts, cli.flags),
    runCmd: opts.runCmd,
    hosts,
    ...(hostsText !== undefined ? { hostsText } : {}),
    ...(opts.maxParallel !== undefined ? { maxParallel: opts.maxParallel } : {}),
    ...(opts.sshConfig !== undefined ? { sshConfig: resolve(opts.sshConfig) } : {}),
    packing,
  });
  const files = packing.files.length;
  const split = packing.files.filter((f) => f.ranges !== undefined).length;
  const least = packing.shards.reduce((m, s) => Math.min(m, s.bytes), Number.POSITIVE_INFINITY);
  const most = packing.shards.reduce((m, s) => Math.max(m, s.bytes), 0);
  term.info(
    `escp plan: ${files} files (${split} split into ranges), ${humanBytes(packing.totalBytes)} in ${packing.shards.length} shards ` +
      `(${humanBytes(least)}..${humanBytes(most)} each) → ${dir}`,
  );
  term.info(`run: sbatch ${dir}/slurm.sbatch  or  ${dir}/parallel.sh; then escp plan status ${dir}, escp plan merge ${dir}`);
  return 0;
}

/** DEST exactly as given (the last positional). */
function positionalDest(positionals: string[]): string {
  return positionals[positionals.length - 1] ?? "";
}
