// Command line of `bun run bench:macro`.
import { parseSize } from "../../datasets/params.ts";
import { CliError, parseCliOrThrow } from "../../harness/cli-args.ts";

export const SCENARIOS = [
  "big-random",
  "dummy",
  "axes",
  "big-text",
  "losf",
  "mixed",
  "wan",
  "third-party",
  "resume",
  "system-tree",
  "files-100k",
  "files-1m",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Scenarios run only when named (or with `--scenario all`): files-1m takes about an hour and
 *  ≈ 10 GB here (its 1,000,000-file dataset plus one copy at a time). */
export const OPT_IN_SCENARIOS: readonly ScenarioName[] = ["files-1m"];
/** What runs without --scenario: every scenario but the opt-in ones. */
export const DEFAULT_SCENARIOS: ScenarioName[] = SCENARIOS.filter((s) => !OPT_IN_SCENARIOS.includes(s));

/** Scenarios whose datasets are many-file trees (the file count --files sets). */
export const TREE_SCENARIOS: readonly ScenarioName[] = ["losf", "mixed", "files-100k", "files-1m"];

export const PEERS = ["escp-orig", "scp", "sftp", "rsync", "tar-ssh", "iperf3", "dd", "cp"] as const;
export type PeerName = (typeof PEERS)[number];

export interface Options {
  scenarios: ScenarioName[];
  smoke: boolean;
  /** Repeats per case; undefined = each scenario's default (1 with --smoke). */
  repeat?: number;
  /** Size of the single-file datasets (big-random, dummy, axes, big-text, wan, resume). */
  size?: number;
  /** File count of the many-file datasets (losf, mixed, files-100k, files-1m). */
  files?: number;
  peerEscp?: string;
  peers: PeerName[];
  work: string;
  out?: string;
  /** Run only the cases whose id (scenario/tool/label) contains one of these strings. */
  only?: string[];
  /** Drop the page cache before each disk run (default on; off with --smoke or --no-drop-caches). */
  dropCaches: boolean;
  /** The loopback sshd's login shell reads an empty ~/.bashrc (harness/sshd.ts quietLogin). */
  quietLogin?: boolean;
}

export const USAGE = `usage: bun run bench:macro [options]
  --scenario LIST   ${SCENARIOS.join("|")}|all, comma-separated
                    (default: every scenario but ${OPT_IN_SCENARIOS.join(", ")}, which runs only when named or with all);
                    system-tree copies /usr/include and /usr/lib/x86_64-linux-gnu with -a;
                    files-100k and files-1m copy 100,000 and 1,000,000 files of 0-64 KiB (dataset
                    small-mixed, dirs of 1,000 files): files/s and peak RSS of both sides for
                    escp push and pull, rsync and cp -r (files-1m: about an hour here)
  --smoke           tiny sizes, one repeat, every peer that exists; < 60 s (CI)
  --repeat N        repeats of every case (default: 3 for big-random/dummy/losf/resume, but 2
                    for the ssh peers on the 4 GiB file; 1 for files-1m; 2 for the other scenarios)
  --size S          size of the single-file datasets (e.g. 1G; default 4G for big-random,
                    dummy and resume, 1G axes, 512M big-text and wan)
  --files N         file count of the many-file datasets (${TREE_SCENARIOS.join(", ")}; default
                    10000, 1000, 100000, 1000000; --smoke: 200, 100, 300, 600)
  --peer-escp PATH  the original EScp binary (used on both sides, -D PATH)
  --peers LIST      peers to run besides escp: ${PEERS.join(",")} (default all; "none")
  --work DIR        datasets cache and scratch space (default /var/tmp/escp-bench)
  --out FILE        results JSON (default bench/results/macro-<date>-<sha>.json)
  --only LIST       only the cases whose id (scenario/tool/label, e.g. big-random/escp/pull)
                    contains one of these comma-separated strings
  --no-drop-caches  do not drop the page cache before disk runs
  --quiet-login     the loopback sshd's login shell reads an empty ~/.bashrc (a private mount
                    namespace): a .bashrc that runs e.g. pyenv init costs every ssh tool alike`;

export class UsageError extends Error {}

function list<T extends string>(value: string, known: readonly T[], what: string): T[] {
  const out: T[] = [];
  for (const raw of value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const name = raw === "tar" ? "tar-ssh" : raw;
    if (!(known as readonly string[]).includes(name)) throw new UsageError(`unknown ${what} "${raw}"; known: ${known.join(", ")}`);
    if (!out.includes(name as T)) out.push(name as T);
  }
  return out;
}

export function parseOptions(argv: readonly string[]): Options {
  const o: Options = { scenarios: [...DEFAULT_SCENARIOS], smoke: false, peers: [...PEERS], work: "/var/tmp/escp-bench", dropCaches: true };
  const str = { type: "string" } as const;
  const flag = { type: "boolean" } as const;
  let parsed: ReturnType<typeof parseCliOrThrow>;
  try {
    parsed = parseCliOrThrow(argv, {
      usage: USAGE,
      options: {
        scenario: str,
        scenarios: str,
        smoke: flag,
        repeat: str,
        size: str,
        files: str,
        "peer-escp": str,
        peers: str,
        work: str,
        out: str,
        only: str,
        "no-drop-caches": flag,
        "drop-caches": flag,
        "quiet-login": flag,
      },
    });
  } catch (e) {
    throw e instanceof CliError ? new UsageError(e.message) : e;
  }
  if (parsed.help) throw new UsageError(USAGE);
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const scenario = (v.scenario ?? v.scenarios) as string | undefined;
  if (scenario !== undefined) {
    o.scenarios = scenario === "all" ? [...SCENARIOS] : list(scenario, SCENARIOS, "scenario");
    if (o.scenarios.length === 0) throw new UsageError("--scenario needs at least one scenario");
  }
  o.smoke = v.smoke === true;
  if (v.repeat !== undefined) {
    const n = Number(v.repeat);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError("--repeat needs an integer 1..100");
    o.repeat = n;
  }
  if (typeof v.size === "string") {
    try {
      o.size = parseSize(v.size);
    } catch (e) {
      throw new UsageError(`--size ${v.size}: ${(e as Error).message}`);
    }
    if (o.size < 4096) throw new UsageError("--size must be at least 4K");
  }
  if (typeof v.files === "string") {
    const n = Number(v.files);
    if (!Number.isSafeInteger(n) || n < 1 || n > 10_000_000) throw new UsageError(`--files ${v.files}: needs an integer 1..10000000`);
    o.files = n;
  }
  if (typeof v["peer-escp"] === "string") o.peerEscp = v["peer-escp"];
  if (typeof v.peers === "string") o.peers = v.peers === "none" ? [] : v.peers === "all" ? [...PEERS] : list(v.peers, PEERS, "peer");
  if (typeof v.work === "string") o.work = v.work;
  if (typeof v.out === "string") o.out = v.out;
  if (typeof v.only === "string") {
    const parts = v.only
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x !== "");
    if (parts.length === 0) throw new UsageError("--only needs at least one case id fragment");
    o.only = parts;
  }
  if (v["quiet-login"] === true) o.quietLogin = true;
  // The later of --drop-caches / --no-drop-caches wins.
  const dropSet = v["drop-caches"] === true || v["no-drop-caches"] === true;
  if (dropSet) o.dropCaches = argv.lastIndexOf("--drop-caches") > argv.lastIndexOf("--no-drop-caches");
  // Smoke runs are tiny and may share the machine with other tests: leave the cache alone.
  if (o.smoke && !dropSet) o.dropCaches = false;
  return o;
}
