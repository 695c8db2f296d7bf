// Measures escp's resource bounds (reliability issue, item 9): peak RSS of the sender and of
// the receiver, run as separate processes over a --mgmt socket, for one big file and for a
// very large file count, under a tight open-files limit (prlimit) that would fail with EMFILE
// if descriptors grew with the file count. Prints a markdown table; bytes are verified.
// Usage: bun bench/resources.ts [--big-gib 4] [--files 100000] [--nofile 256]
import { mkdirSync, rmSync, watch, existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { makeTmpDir } from "../harness/tmp-dir.ts";
import { ESCP_MAIN } from "../harness/escp-run.ts";
import { compareTrees } from "../harness/compare-trees.ts";
import { writeRandomFile } from "../datasets/materialize.ts";
import { parseCli, positiveNumber } from "../harness/cli-args.ts";

const { values } = parseCli("resources", process.argv.slice(2), {
  usage: "usage: bun bench/resources.ts [--big-gib 4] [--files 100000] [--nofile 256]",
  options: {
    "big-gib": { type: "string", help: "size of the big file in GiB (default 4)" },
    files: { type: "string", help: "file count of the many-file run (default 100000)" },
    nofile: { type: "string", help: "open-files limit for both sides (default 256)" },
  },
});
const bigGiB = positiveNumber("resources", "--big-gib", values["big-gib"], 4);
const fileCount = positiveNumber("resources", "--files", values.files, 100_000);
const nofile = positiveNumber("resources", "--nofile", values.nofile, 256);

function appears(path: string): Promise<void> {
  return new Promise((resolve) => {
    const w = watch(dirname(path), (_e, n) => {
      if (n === basename(path) && existsSync(path)) {
        w.close();
        resolve();
      }
    });
  });
}

interface Measured {
  label: string;
  seconds: number;
  senderMiB: number;
  receiverMiB: number;
  ok: boolean;
}

async function measure(label: string, src: string, dstDir: string, flags: string[]): Promise<Measured> {
  const sock = join(dirname(dstDir), `${basename(dstDir)}.sock`);
  const lim = ["prlimit", `--nofile=${nofile}:${nofile}`, "--"];
  const up = appears(sock);
  const rx = Bun.spawn([...lim, process.execPath, ESCP_MAIN, "--server", "--mgmt", sock], { cwd: dstDir, stderr: "inherit" });
  await up;
  const t0 = performance.now();
  const tx = Bun.spawn([...lim, process.execPath, ESCP_MAIN, "-q", "--mgmt", sock, ...flags, src, `localhost:${dstDir}`], { stderr: "inherit" });
  const [txCode, rxCode] = await Promise.all([tx.exited, rx.exited]);
  const seconds = (performance.now() - t0) / 1000;
  const mib = (p: typeof tx): number => Math.round((p.resourceUsage()?.maxRSS ?? 0) / 2 ** 20); // Bun reports bytes
  const diffs = txCode === 0 && rxCode === 0 ? await compareTrees(src, join(dstDir, basename(src))) : ["exit codes"];
  return { label, seconds, senderMiB: mib(tx), receiverMiB: mib(rx), ok: diffs.length === 0 };
}

const dir = makeTmpDir("bench-resources");
const rows: Measured[] = [];
try {
  const big = join(dir, "big");
  mkdirSync(big);
  await writeRandomFile(join(big, "file.bin"), bigGiB * 2 ** 30, 4);
  mkdirSync(join(dir, "out-big"));
  rows.push(await measure(`1 file, ${bigGiB} GiB`, big, join(dir, "out-big"), ["-r"]));
  rmSync(big, { recursive: true });
  const many = join(dir, "many");
  for (let d = 0; d < 100; d++) mkdirSync(join(many, `d${d}`), { recursive: true });
  for (let i = 0; i < fileCount; i++) await Bun.write(join(many, `d${i % 100}`, `f${i}`), `file ${i}\n`);
  mkdirSync(join(dir, "out-many"));
  rows.push(await measure(`${fileCount} files`, many, join(dir, "out-many"), ["-r"]));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`open-files limit (prlimit --nofile): ${nofile} for each side\n`);
console.log("| transfer | wall s | sender peak RSS MiB | receiver peak RSS MiB | bytes verified |");
console.log("|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.label} | ${r.seconds.toFixed(1)} | ${r.senderMiB} | ${r.receiverMiB} | ${r.ok ? "yes" : "NO"} |`);
process.exit(rows.every((r) => r.ok) ? 0 : 1);
