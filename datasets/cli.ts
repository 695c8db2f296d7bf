// `bun run datasets list` and `bun run datasets make NAME DIR [params] [options]`: the
// command-line door to the catalog, with a progress bar through src/cli/progress.ts.
import { catalog, catalogEntry } from "./catalog.ts";
import { Progress, term } from "../src/cli/progress.ts";
import { dataBytesOf, DirNotEmptyError, makeDataset } from "./make.ts";
import { defaultManifestPath } from "./manifest.ts";
import { describeParams, formatSize, parseParamArgs } from "./params.ts";
import { datasetTotals } from "./spec.ts";

const USAGE = `usage: bun run datasets list
       bun run datasets make NAME DIR [--size S] [--ratio R] [--files N] [--seed N]
                                      [--manifest FILE] [--force] [--no-hash] [-q]
  DIR must be missing or empty (--force writes into it anyway, replacing the dataset's paths).
  The manifest goes to DIR/../NAME.manifest.json unless --manifest FILE is given.
  -q: no progress bar and no summary. Sizes take K/M/G/T suffixes (1024-based).`;

class UsageError extends Error {}

function list(): void {
  const rows = catalog.map((e) => {
    const t = datasetTotals(e.build());
    const counts = `${t.files} files${t.symlinks + t.fifos > 0 ? ` +${t.symlinks + t.fifos} special` : ""}`;
    return [e.name, counts, formatSize(t.bytes), describeParams(e.params) || "-", e.description];
  });
  rows.unshift(["NAME", "DEFAULT", "SIZE", "PARAMS (defaults; all take --seed)", "WHAT"]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  for (const r of rows) {
    const cols = r.slice(0, 4).map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)));
    term.info(`${cols.join("  ")}  ${r[4]}`);
  }
}

interface MakeArgs {
  name: string;
  dir: string;
  params: string[];
  manifest?: string;
  force: boolean;
  quiet: boolean;
  hash: boolean;
}

function parseMake(args: string[]): MakeArgs {
  const out: MakeArgs = { name: "", dir: "", params: [], force: false, quiet: false, hash: true };
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--force" || a === "-f") out.force = true;
    else if (a === "-q" || a === "--quiet") out.quiet = true;
    else if (a === "--no-hash") out.hash = false;
    else if (a === "--hash") out.hash = true; // the default now; kept for old scripts
    else if (a === "--manifest") {
      out.manifest = args[++i];
      if (out.manifest === undefined) throw new UsageError("--manifest needs a file");
    } else if (a.startsWith("--manifest=")) out.manifest = a.slice("--manifest=".length);
    else if (a.startsWith("-")) {
      out.params.push(a);
      if (!a.includes("=") && i + 1 < args.length) out.params.push(args[++i] as string);
    } else positional.push(a);
  }
  if (positional.length !== 2) throw new UsageError(USAGE);
  [out.name, out.dir] = positional as [string, string];
  return out;
}

async function make(args: string[]): Promise<void> {
  const a = parseMake(args);
  const entry = catalogEntry(a.name);
  const spec = entry.build(parseParamArgs(entry.params, a.params));
  const totals = datasetTotals(spec);
  const manifestPath = a.manifest ?? defaultManifestPath(a.name, a.dir);
  const progress = new Progress({ quiet: a.quiet, bits: false });
  const entries = spec.entries.length;
  progress.start(dataBytesOf(spec), entries);
  const t0 = performance.now();
  const records = await makeDataset(spec, a.dir, {
    force: a.force,
    manifestPath,
    noHash: !a.hash,
    onProgress: (bytes, done) => progress.update(bytes, done),
  });
  const seconds = (performance.now() - t0) / 1000;
  if (a.quiet) return;
  const rate = seconds > 0 ? totals.dataBytes / seconds / 1e6 : 0;
  const perSec = seconds > 0 ? Math.round(entries / seconds) : 0;
  const special = totals.symlinks + totals.fifos > 0 ? `, ${totals.symlinks} symlinks, ${totals.fifos} fifos` : "";
  term.info(
    `made ${a.name} in ${a.dir}: ${totals.files} files (${formatSize(totals.bytes)}), ${totals.dirs} dirs${special}` +
      ` in ${seconds.toFixed(2)} s (${rate.toFixed(0)} MB/s${entries >= 100 ? `, ${perSec} entries/s` : ""}, hashing included); manifest ${manifestPath} (${records.length} entries)`,
  );
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === "list") list();
    else if (command === "make") await make(rest);
    else if (command === "-h" || command === "--help" || command === "help") term.info(USAGE);
    else throw new UsageError(USAGE);
    return 0;
  } catch (err) {
    term.error(err instanceof Error ? `datasets: ${err.message}` : String(err));
    return err instanceof UsageError ? 2 : err instanceof DirNotEmptyError ? 3 : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
