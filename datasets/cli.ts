// `bun run datasets list` and `bun run datasets make NAME DIR [params] [options]`: the
// command-line door to the catalog, with a progress bar through src/cli/progress.ts.
import { type CliOption, parseCli, usageExit } from "../harness/cli-args.ts";
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

/** Every dataset parameter any catalog entry takes (the chosen entry checks its own). */
function paramOptions(): Record<string, CliOption> {
  const opts: Record<string, CliOption> = { seed: { type: "string" } };
  for (const e of catalog) for (const d of e.params) opts[d.name] = { type: "string" };
  return opts;
}

function parseMake(args: string[]): MakeArgs {
  const params = paramOptions();
  const { values, positionals } = parseCli("datasets", args, {
    usage: USAGE,
    positionals: true,
    options: {
      ...params,
      force: { type: "boolean", short: "f" },
      quiet: { type: "boolean", short: "q" },
      "no-hash": { type: "boolean" },
      hash: { type: "boolean" }, // the default now; kept for old scripts
      manifest: { type: "string" },
    },
  });
  if (positionals.length !== 2) usageExit("datasets", `make needs NAME and DIR, got ${positionals.length} argument${positionals.length === 1 ? "" : "s"}`);
  const [name, dir] = positionals as [string, string];
  const given = Object.keys(params).flatMap((k) => (values[k] === undefined ? [] : [`--${k}`, values[k] as string]));
  const out: MakeArgs = { name, dir, params: given, force: values.force === true, quiet: values.quiet === true, hash: values["no-hash"] !== true };
  if (values.manifest !== undefined) out.manifest = values.manifest as string;
  return out;
}

async function make(args: string[]): Promise<void> {
  const a = parseMake(args);
  const entry = catalogEntry(a.name);
  let values: ReturnType<typeof parseParamArgs>;
  try {
    values = parseParamArgs(entry.params, a.params);
  } catch (e) {
    usageExit("datasets", (e as Error).message);
  }
  const spec = entry.build(values);
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
    else if (command === undefined) usageExit("datasets", "no command (list or make; see --help)");
    else usageExit("datasets", `unknown command ${command} (list or make; see --help)`);
    return 0;
  } catch (err) {
    term.error(err instanceof Error ? `datasets: ${err.message}` : String(err));
    return err instanceof DirNotEmptyError ? 3 : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
