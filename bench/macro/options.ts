// Command line of `bun run bench:macro`.
import { parseSize } from "../../datasets/params.ts";

export const SCENARIOS = ["big-random", "dummy", "axes", "big-text", "losf", "mixed", "wan", "third-party", "resume", "system-tree"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const PEERS = ["escp-orig", "scp", "sftp", "rsync", "tar-ssh", "iperf3", "dd", "cp"] as const;
export type PeerName = (typeof PEERS)[number];

export interface Options {
  scenarios: ScenarioName[];
  smoke: boolean;
  /** Repeats per case; undefined = each scenario's default (1 with --smoke). */
  repeat?: number;
  /** Size of the single-file datasets (big-random, dummy, axes, big-text, wan, resume). */
  size?: number;
  peerEscp?: string;
  peers: PeerName[];
  work: string;
  out?: string;
  /** Run only the cases whose id (scenario/tool/label) contains one of these strings. */
  only?: string[];
  /** Drop the page cache before each disk run (default on; off with --smoke or --no-drop-caches). */
  dropCaches: boolean;
}

export const USAGE = `usage: bun run bench:macro [options]
  --scenario LIST   ${SCENARIOS.join("|")}|all, comma-separated (default all);
                    system-tree copies /usr/include and /usr/lib/x86_64-linux-gnu with -a
  --smoke           tiny sizes, one repeat, every peer that exists; < 60 s (CI)
  --repeat N        repeats of every case (default: 3 for big-random/dummy/losf/resume, but 2
                    for the ssh peers on the 4 GiB file; 2 for the other scenarios)
  --size S          size of the single-file datasets (e.g. 1G; default 4G for big-random,
                    dummy and resume, 1G axes, 512M big-text and wan)
  --peer-escp PATH  the original EScp binary (used on both sides, -D PATH)
  --peers LIST      peers to run besides escp: ${PEERS.join(",")} (default all; "none")
  --work DIR        datasets cache and scratch space (default /var/tmp/escp-bench)
  --out FILE        results JSON (default bench/results/macro-<date>-<sha>.json)
  --only LIST       only the cases whose id (scenario/tool/label, e.g. big-random/escp/pull)
                    contains one of these comma-separated strings
  --no-drop-caches  do not drop the page cache before disk runs`;

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
  const o: Options = { scenarios: [...SCENARIOS], smoke: false, peers: [...PEERS], work: "/var/tmp/escp-bench", dropCaches: true };
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
