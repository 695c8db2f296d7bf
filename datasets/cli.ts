// `bun run datasets list` and `bun run datasets make NAME DIR [--hash] [--manifest FILE]`:
// the command-line door to the dataset catalog.
import { catalog, catalogEntry } from "./catalog.ts";
import { makeTree, specTotals } from "./materialize.ts";

const USAGE = "usage: bun run datasets list\n       bun run datasets make NAME DIR [--hash] [--manifest FILE]";

function list(): void {
  for (const entry of catalog) {
    const t = specTotals(entry.spec());
    const mib = (t.bytes / (1 << 20)).toFixed(1);
    console.log(`${entry.name.padEnd(12)} ${String(t.files).padStart(5)} files ${mib.padStart(8)} MiB  ${entry.description}`);
  }
}

async function make(args: string[]): Promise<void> {
  const positional: string[] = [];
  let hash = false;
  let manifestPath: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--hash") hash = true;
    else if (arg === "--manifest") manifestPath = args[++i];
    else positional.push(arg);
  }
  const [name, dir] = positional;
  if (!name || !dir || positional.length !== 2 || (args.includes("--manifest") && !manifestPath)) {
    throw new Error(USAGE);
  }
  const spec = catalogEntry(name).spec();
  const manifest = await makeTree(dir, spec, { hash, manifestPath });
  const t = specTotals(spec);
  console.log(`made ${name} in ${dir}: ${manifest.length} files, ${t.bytes} bytes, ${t.emptyDirs} empty dirs`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === "list") list();
    else if (command === "make") await make(rest);
    else throw new Error(USAGE);
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
}

process.exit(await main(process.argv.slice(2)));
