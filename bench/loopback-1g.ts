// Reproduces the README's throughput figure: `bun run escp` pushing one 1 GiB random file
// over a loopback OpenSSH sshd (started by the harness, torn down after), bytes verified.
// Usage: bun bench/loopback-1g.ts [--size-mib N] [-- extra escp flags]
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { startSshd } from "../harness/sshd.ts";
import { makeTmpDir } from "../harness/tmp-dir.ts";
import { ESCP_REMOTE_CMD, REPO_ROOT } from "../harness/escp-run.ts";
import { b3sum } from "../harness/b3sum.ts";
import { parseCli, positiveNumber } from "../harness/cli-args.ts";
import { writeRandomFile } from "../datasets/materialize.ts";

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const extra = dash >= 0 ? argv.slice(dash + 1) : [];
const cli = parseCli("loopback-1g", dash >= 0 ? argv.slice(0, dash) : argv, {
  usage: "usage: bun bench/loopback-1g.ts [--size-mib N] [-- extra escp flags]",
  options: { "size-mib": { type: "string", help: "file size in MiB (default 1024)" } },
});
const sizeMiB = positiveNumber("loopback-1g", "--size-mib", cli.values["size-mib"], 1024);

const dir = makeTmpDir("bench-1g");
const fx = await startSshd();
let code = 1;
try {
  const src = join(dir, "src.bin");
  const dst = join(dir, "dst.bin");
  await writeRandomFile(src, sizeMiB * 2 ** 20, 1);
  const args = ["run", "escp", ...fx.sshArgs, "-D", ESCP_REMOTE_CMD, ...extra, src, `${fx.user}@127.0.0.1:${dst}`];
  console.log(`$ bun ${args.join(" ")}`);
  const t0 = performance.now();
  const p = Bun.spawn(["bun", ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  code = await p.exited;
  const s = (performance.now() - t0) / 1000;
  console.log(out.split("\r").pop()?.trim() ?? out);
  if (code !== 0) throw new Error(`escp exited ${code}`);
  const same = (await b3sum(src)) === (await b3sum(dst));
  const bytes = statSync(dst).size;
  console.log(`wall ${s.toFixed(2)} s incl. ssh start: ${(bytes / s / 1e9).toFixed(2)} GB/s; BLAKE3 ${same ? "equal" : "DIFFERENT"}`);
  code = same ? 0 : 1;
} finally {
  await fx.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
