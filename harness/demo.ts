// The README demo: materializes the `quickstart` dataset, copies it with
// `escp -r -t 4 SRC DST` to a new local directory, and verifies every file with b3sum.
import { join, resolve } from "node:path";
import { catalogEntry } from "../datasets/catalog.ts";
import { makeTree, specTotals } from "../datasets/materialize.ts";
import { b3sumMany } from "./b3sum.ts";
import { compareTrees } from "./compare-trees.ts";
import { makeTmpDir, removeTmpDir } from "./tmp-dir.ts";

const REPO = resolve(import.meta.dir, "..");
const TRANSFER_TIMEOUT_MS = 10 * 60_000;

/** Runs escp with output passed through (its progress and summary are part of the demo);
 *  returns the exit code and the text it printed. */
async function runEscpVisible(args: string[]): Promise<{ code: number; text: string }> {
  const proc = Bun.spawn([process.execPath, join(REPO, "src/cli/main.ts"), ...args], {
    cwd: REPO,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
  });
  const timer = setTimeout(() => {
    try {
      process.kill(-proc.pid, "SIGKILL"); // its whole process group, receiver included
    } catch {
      // already gone
    }
  }, TRANSFER_TIMEOUT_MS);
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, sink: NodeJS.WriteStream): Promise<void> => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      sink.write(chunk);
    }
  };
  try {
    await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr), proc.exited]);
  } finally {
    clearTimeout(timer);
  }
  return { code: proc.signalCode ? 128 + 9 : (proc.exitCode ?? 1), text };
}

/** The last line escp printed that states a rate (e.g. "… 512.3 MB/s"), if any. */
function rateLine(text: string): string | undefined {
  const lines = text
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, "")
    .split(/[\r\n]+/)
    .map((l) => l.trim());
  return lines.reverse().find((l) => /[0-9.]+\s*[KMGT]i?B\/s/i.test(l) || /[0-9.]+\s*[KMGT]bit\/s/i.test(l));
}

async function main(): Promise<number> {
  const root = makeTmpDir("demo");
  try {
    const src = join(root, "src");
    const dst = join(root, "dst"); // does not exist: escp creates it as a copy of src (scp -r)
    const spec = catalogEntry("quickstart").spec();
    const totals = specTotals(spec);
    console.log(`demo: writing the quickstart dataset to ${src} …`);
    const manifest = await makeTree(src, spec, { hash: true });

    console.log(`demo: escp -r -t 4 ${src} ${dst}`);
    const startedMs = performance.now();
    const run = await runEscpVisible(["-r", "-t", "4", src, dst]);
    const seconds = (performance.now() - startedMs) / 1000;
    if (run.code !== 0) {
      console.error(`demo: FAILED: escp exited with status ${run.code}`);
      return 1;
    }

    const got = await b3sumMany(manifest.map((m) => join(dst, m.path))).catch((err: unknown) => {
      console.error(`demo: FAILED: cannot hash the copy: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
    if (got === undefined) return 1;
    const bad = manifest.filter((m, i) => m.blake3 !== got[i]).map((m) => `content differs: ${m.path}`);
    const treeDiffs = await compareTrees(src, dst);
    const problems = [...bad, ...treeDiffs];
    if (problems.length > 0) {
      console.error(`demo: FAILED: ${problems.length} differences:\n  ${problems.slice(0, 20).join("\n  ")}`);
      return 1;
    }

    const fallbackRate = `${(totals.bytes / seconds / 1e6).toFixed(0)} MB/s wall clock incl. start-up (${seconds.toFixed(2)} s)`;
    console.log(`files: ${totals.files} files, ${totals.emptyDirs} empty dirs, ${totals.bytes} bytes`);
    console.log(`escp: ${rateLine(run.text)?.replace(/\s+/g, " ") ?? fallbackRate}`);
    console.log(`verified: ${manifest.length} files, BLAKE3 equal`);
    return 0;
  } finally {
    removeTmpDir(root);
  }
}

process.exitCode = await main();
