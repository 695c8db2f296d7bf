// Command line of `bun run bench:macro`.
import { parseSize } from "../../datasets/params.ts";

export const SCENARIOS = ["big-random", "dummy", "axes", "big-text", "losf", "mixed", "wan", "third-party", "resume", "system-tree", "files-100k", "files-1m"] as const;
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
  for (const raw of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const name = raw === "tar" ? "tar-ssh" : raw;
    if (!(known as readonly string[]).includes(name)) throw new UsageError(`unknown ${what} "${raw}"; known: ${known.join(", ")}`);
    if (!out.includes(name as T)) out.push(name as T);
  }
  return out;
}

export function parseOptions(argv: readonly string[]): Options {
  const o: Options = { scenarios: [...DEFAULT_SCENARIOS], smoke: false, peers: [...PEERS], work: "/var/tmp/escp-bench", dropCaches: true };
  let dropSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith("--") && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--scenario":
      case "--scenarios": {
        const v = value();
        o.scenarios = v === "all" ? [...SCENARIOS] : list(v, SCENARIOS, "scenario");
        if (o.scenarios.length === 0) throw new UsageError("--scenario needs at least one scenario");
        break;
      }
      case "--smoke":
        o.smoke = true;
        break;
      case "--repeat": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError("--repeat needs an integer 1..100");
        o.repeat = n;
        break;
      }
      case "--size": {
        const v = value();
        try {
          o.size = parseSize(v);
        } catch (e) {
          throw new UsageError(`--size ${v}: ${(e as Error).message}`);
        }
        if (o.size < 4096) throw new UsageError("--size must be at least 4K");
        break;
      }
      case "--files": {
        const v = value();
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < 1 || n > 10_000_000) throw new UsageError(`--files ${v}: needs an integer 1..10000000`);
        o.files = n;
        break;
      }
      case "--peer-escp":
        o.peerEscp = value();
        break;
      case "--peers": {
        const v = value();
        o.peers = v === "none" ? [] : v === "all" ? [...PEERS] : list(v, PEERS, "peer");
        break;
      }
      case "--work":
        o.work = value();
        break;
      case "--out":
        o.out = value();
        break;
      case "--only": {
        const parts = value().split(",").map((x) => x.trim()).filter((x) => x !== "");
        if (parts.length === 0) throw new UsageError("--only needs at least one case id fragment");
        o.only = parts;
        break;
      }
      case "--no-drop-caches":
        o.dropCaches = false;
        dropSet = true;
        break;
      case "--drop-caches":
        o.dropCaches = true;
        dropSet = true;
        break;
      case "--quiet-login":
        o.quietLogin = true;
        break;
      case "-h":
      case "--help":
        throw new UsageError(USAGE);
      default:
        throw new UsageError(`unknown option ${a}\n${USAGE}`);
    }
  }
  // Smoke runs are tiny and may share the machine with other tests: leave the cache alone.
  if (o.smoke && !dropSet) o.dropCaches = false;
  return o;
}
